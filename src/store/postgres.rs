//! The shared store: PostgreSQL, for several gateway replicas behind one load
//! balancer, which must see the same activations and searches and keep one access
//! log (each replica its own chain in it). Same schema and encodings as SQLite, so
//! the shared SQL (`sql.rs`) serves both.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use super::StoreError;
use super::sql::{Dialect, sql_store};
use super::write_slot::WriteSlot;

/// The channel on which activation changes are announced to every replica.
pub const ACTIVATION_CHANNEL: &str = "onshi_activations";

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL takes concurrent writers and groups their commits.
    /// Each write takes a connection and gives it back, so that one a restarted
    /// server dropped is found by the pool's check before use.
    writer: Arc<WriteSlot<Postgres>>,
}

impl PgStore {
    /// Connects and runs the migrations. Migrations take an advisory lock, so
    /// replicas starting together apply them once.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A request waits at most this long for a connection, then fails as
            // unavailable: a database that is gone is noticed in bounded time.
            .acquire_timeout(Duration::from_millis(500))
            .connect(url)
            .await?;
        PgStore::migrate(&pool).await?;
        Ok(PgStore {
            writer: Arc::new(WriteSlot::pooled(pool.clone())),
            pool,
        })
    }
}

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const ANCHOR_LOCK: &'static str = " FOR SHARE";
    // Delivered on commit to every replica listening (see `subscribe`).
    const ANNOUNCE: Option<(&'static str, &'static str)> =
        Some(("SELECT pg_notify($1, $2)", ACTIVATION_CHANNEL));
    const INSERT_BATCH: &'static str = "INSERT INTO";
}

sql_store!(PgStore, Postgres, "migrations/postgres", {
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(ACTIVATION_CHANNEL).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                // `try_recv` yields None after the connection was lost and is being
                // re-established: notifications may have been missed, so signal too.
                let signal = match listener.try_recv().await {
                    Ok(_) => (),
                    Err(e) => {
                        tracing::warn!(error = %e, "activation change listener failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                };
                match tx.try_send(signal) {
                    Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Full(())) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => return,
                }
            }
        });
        Ok(Some(rx))
    }
});

//! The shared store: PostgreSQL, for several gateway replicas behind one load
//! balancer, which must see the same activations and searches and keep one access
//! log (each replica its own chain in it). Same schema and encodings as SQLite, so
//! the access-log SQL in `sql.rs` serves both.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::activation_sql::{
    WINDOW_CHUNK, activation_store, activations_from_rows, coverage_from_row, creation,
    insert_activation, insert_revision, insert_windows, select_activations, select_coverage,
};
use super::sql::{
    INSERT_CHECKPOINT, INSERT_CHUNK, INSERT_RECORDS, chain_from_row, checkpoint_from_row,
    from_nanos, head_of, push_checkpoint, push_records, query_records, seq_to_db, stored_from_row,
    to_nanos,
};
use super::{
    AccessQuery, Activation, AreaKey, AuditStore, ChainHead, ChainInfo, Checkpoint, Coverage,
    NewActivation, SearchLedger, SearchRecord, StoreError, StoredRecord,
};
use crate::domain::activation_change::Revision;

/// The channel on which activation changes are announced to every replica.
pub const ACTIVATION_CHANNEL: &str = "onshi_activations";

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and runs the migrations. Migrations take an advisory lock, so
    /// replicas starting together apply them once.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A request waits at most this long for a connection, then fails as unavailable.
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl super::Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

activation_store!(PgStore, Postgres, {
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

/// Writes a revision and its windows inside `tx`.
async fn write_revision(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    activation_id: &str,
    revision: &Revision,
) -> Result<(), StoreError> {
    insert_revision::<Postgres>(activation_id, revision)
        .build()
        .execute(&mut **tx)
        .await?;
    for (i, chunk) in revision.windows.chunks(WINDOW_CHUNK).enumerate() {
        insert_windows::<Postgres>(activation_id, revision.number, i * WINDOW_CHUNK, chunk)
            .build()
            .execute(&mut **tx)
            .await?;
    }
    // Delivered on commit to every replica listening (see `subscribe`).
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ACTIVATION_CHANNEL)
        .bind(activation_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl SearchLedger for PgStore {
    async fn record_search(&self, search: &SearchRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO searches (search_id, facility, at, candidates) VALUES ($1, $2, $3, $4)",
        )
        .bind(&search.search_id)
        .bind(&search.facility)
        .bind(to_nanos(search.at))
        .bind(search.candidate_hashes.join(" "))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_search(&self, search_id: &str) -> Result<Option<SearchRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT search_id, facility, at, candidates FROM searches WHERE search_id = $1",
        )
        .bind(search_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let candidates: String = row.try_get("candidates")?;
            Ok(SearchRecord {
                search_id: row.try_get("search_id")?,
                facility: row.try_get("facility")?,
                at: from_nanos(row.try_get("at")?),
                candidate_hashes: candidates.split_whitespace().map(str::to_string).collect(),
            })
        })
        .transpose()
    }

    async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM searches WHERE at < $1")
            .bind(to_nanos(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn register_chain(&self, chain: &ChainInfo) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_chains (chain_id, public_key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (chain_id) DO NOTHING",
        )
        .bind(&chain.chain_id)
        .bind(&chain.public_key)
        .bind(to_nanos(chain.created_at))
        .execute(&self.pool)
        .await?;
        let known: String =
            sqlx::query_scalar("SELECT public_key FROM audit_chains WHERE chain_id = $1")
                .bind(&chain.chain_id)
                .fetch_one(&self.pool)
                .await?;
        if known != chain.public_key {
            return Err(StoreError::Conflict(format!(
                "chain {} is registered with another public key",
                chain.chain_id
            )));
        }
        Ok(())
    }

    async fn chains(&self) -> Result<Vec<ChainInfo>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_chains ORDER BY created_at, chain_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(chain_from_row).collect()
    }

    async fn logged_chain_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT chain_id FROM access_log UNION SELECT chain_id FROM audit_checkpoints ORDER BY chain_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
        // A checkpoint is the head when retention pruned every record up to it.
        let row = sqlx::query(
            "SELECT seq, hash FROM (SELECT seq, hash FROM access_log WHERE chain_id = $1 \
             UNION ALL SELECT seq, head_hash AS hash FROM audit_checkpoints WHERE chain_id = $1) AS heads \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(chain_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => head_of(Some(row.try_get("seq")?), Some(row.try_get("hash")?)),
            None => Ok(None),
        }
    }

    async fn append(
        &self,
        records: &[StoredRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        // A taken (chain_id, seq) fails the INSERT, and the dropped transaction rolls
        // back the whole batch: another replica's records are never interleaved.
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Postgres>::new(INSERT_RECORDS);
            push_records(&mut insert, chunk);
            insert.build().execute(&mut *tx).await?;
        }
        if let Some(c) = checkpoint {
            let mut insert = QueryBuilder::<Postgres>::new(INSERT_CHECKPOINT);
            push_checkpoint(&mut insert, c);
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn chain_records(
        &self,
        chain_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM access_log WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(chain_id)
        .bind(seq_to_db(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn checkpoints(&self, chain_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints WHERE chain_id = $1 ORDER BY seq")
            .bind(chain_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    async fn query(
        &self,
        query: &AccessQuery,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = query_records::<Postgres>(query, limit)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn prune(&self, chain_id: &str, through_seq: u64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // FOR SHARE: the anchoring checkpoint cannot be deleted by a concurrent prune
        // between this check and the deletes.
        let anchored: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM audit_checkpoints WHERE chain_id = $1 AND seq = $2 FOR SHARE",
        )
        .bind(chain_id)
        .bind(seq_to_db(through_seq))
        .fetch_optional(&mut *tx)
        .await?;
        if anchored.is_none() {
            return Err(StoreError::Conflict(format!(
                "no checkpoint of chain {chain_id} at {through_seq} to anchor what remains"
            )));
        }
        let deleted = sqlx::query("DELETE FROM access_log WHERE chain_id = $1 AND seq <= $2")
            .bind(chain_id)
            .bind(seq_to_db(through_seq))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE chain_id = $1 AND seq < $2")
            .bind(chain_id)
            .bind(seq_to_db(through_seq))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

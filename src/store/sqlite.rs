//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! committed transaction has been fsync'd.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use super::StoreError;
use super::sql::{Dialect, sql_store};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection the access log and the search ledger are written on.
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        // SQLite has one writer at a time. Every write queues for one connection here
        // instead of for the file's lock, where the losers sleep in the busy handler
        // (1 ms, 2 ms, 5 ms, …); and that connection's page cache, which SQLite
        // drops whenever another connection wrote, and its prepared statements
        // stay warm from one batch to the next.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        SqliteStore::migrated(pool, writer).await
    }
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    // SQLite has one writer at a time, and a transaction whose snapshot went stale
    // cannot write: a concurrent prune cannot delete the anchor under this one.
    const ANCHOR_LOCK: &'static str = "";
    // One process owns the file.
    const ANNOUNCE: Option<(&'static str, &'static str)> = None;
}

sql_store!(SqliteStore, Sqlite, "migrations/sqlite", {});

//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! committed transaction has been fsync'd. The WAL is checkpointed beside the
//! writer, not in its commits (`wal_checkpoint.rs`).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use super::StoreError;
use super::sql::{Dialect, sql_store};
use super::wal_checkpoint::{BACKSTOP_PAGES, Checkpointer};
use super::write_slot::WriteSlot;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection every write goes through, kept by the access log's writer
    /// between its commits.
    writer: Arc<WriteSlot<Sqlite>>,
    /// Copies the WAL into the database file beside the writer, for as long as a
    /// clone of the store lives.
    _checkpoints: Arc<Checkpointer>,
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
        //
        // A file's connection cannot go stale as a server's can, so it is not pinged
        // before each use: under load a ping waits for a turn on the busy runtime
        // while the connection sits idle (with the ping sqlx makes when a connection
        // goes back to its pool, ~5 ms of a 16 ms batch commit at 50x20; the access
        // log's writer keeps the connection instead, see `write_slot`).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.pragma("wal_autocheckpoint", BACKSTOP_PAGES.to_string()))
            .await?;
        SqliteStore::migrate(&pool).await?;
        Ok(SqliteStore {
            _checkpoints: Arc::new(Checkpointer::spawn(pool.clone())),
            pool,
            writer: Arc::new(WriteSlot::keeping(writer)),
        })
    }
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    // SQLite has one writer at a time, and a transaction whose snapshot went stale
    // cannot write: a concurrent prune cannot delete the anchor under this one.
    const ANCHOR_LOCK: &'static str = "";
    // One process owns the file.
    const ANNOUNCE: Option<(&'static str, &'static str)> = None;
    // A taken key rolls the whole transaction back at once instead of undoing this
    // statement from a statement journal, which SQLite would otherwise write for
    // every multi-row INSERT inside a transaction.
    const INSERT_BATCH: &'static str = "INSERT OR ROLLBACK INTO";
}

sql_store!(SqliteStore, Sqlite, "migrations/sqlite", {});

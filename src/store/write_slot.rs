//! Where a store's writes get their connection. For SQLite the access-log writer
//! keeps its connection from one commit to the next: a connection given back to
//! sqlx's pool is pinged from a task of its own before the next writer may have it,
//! and under load that task waits for a turn on the busy runtime while every call
//! waits for the commit (0.48 of a 2.3 ms commit at 32×1). Every other write takes
//! the kept connection first, and gives it back to the pool when done.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{Mutex, MutexGuard};

use super::StoreError;
use super::sql::settle;

pub struct WriteSlot<DB: Database> {
    pool: Pool<DB>,
    /// The connection the last commit left, where one is kept (SQLite).
    kept: Option<Mutex<Option<PoolConnection<DB>>>>,
}

impl<DB: Database> WriteSlot<DB> {
    /// Every write takes a connection from `pool` and gives it back.
    pub fn pooled(pool: Pool<DB>) -> Self {
        WriteSlot { pool, kept: None }
    }

    /// As `pooled`, but a commit (`hold`) keeps its connection for the next one.
    pub fn keeping(pool: Pool<DB>) -> Self {
        WriteSlot {
            pool,
            kept: Some(Mutex::new(None)),
        }
    }

    /// A connection for one write: the kept one if there is one, else the pool's.
    /// Either goes back to the pool when dropped.
    pub async fn acquire(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        if let Some(kept) = &self.kept
            && let Some(conn) = kept.lock().await.take()
        {
            return Ok(conn);
        }
        self.pool.acquire().await
    }

    /// A connection for a commit, kept for the next one if the commit succeeds
    /// (`Held::settle`). Writers queue here while it is in use.
    pub async fn hold(&self) -> Result<Held<'_, DB>, StoreError> {
        let mut slot = match &self.kept {
            Some(kept) => Some(kept.lock().await),
            None => None,
        };
        let conn = match slot.as_mut().and_then(|s| s.take()) {
            Some(conn) => conn,
            None => self.pool.acquire().await?,
        };
        Ok(Held { slot, conn })
    }

    /// Gives the kept connection back and closes the pool.
    pub async fn close(&self) {
        if let Some(kept) = &self.kept {
            drop(kept.lock().await.take());
        }
        self.pool.close().await;
    }
}

/// A commit's connection. Dropped unsettled (the commit was cancelled), it goes back
/// to the pool, as any connection does.
pub struct Held<'a, DB: Database> {
    slot: Option<MutexGuard<'a, Option<PoolConnection<DB>>>>,
    conn: PoolConnection<DB>,
}

impl<DB: Database> Held<'_, DB> {
    pub fn conn(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    /// Keeps the connection for the next commit if `result` is a success; closes it
    /// otherwise (`sql::settle`).
    pub async fn settle<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match (result, self.slot) {
            (Ok(value), Some(mut slot)) => {
                *slot = Some(self.conn);
                Ok(value)
            }
            (result, _) => settle(self.conn, result).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Sqlite;
    use sqlx::sqlite::SqlitePoolOptions;

    use super::WriteSlot;
    use crate::store::StoreError;

    async fn slot() -> WriteSlot<Sqlite> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_millis(200))
            .connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        WriteSlot::keeping(pool)
    }

    /// A temporary table lives on the connection that made it: seeing it tells the
    /// connection apart from a fresh one.
    async fn mark(conn: &mut sqlx::SqliteConnection) {
        sqlx::query("CREATE TEMP TABLE marked (x)")
            .execute(conn)
            .await
            .expect("marked");
    }

    async fn is_marked(conn: &mut sqlx::SqliteConnection) -> bool {
        sqlx::query("SELECT 1 FROM temp.sqlite_master WHERE name = 'marked'")
            .fetch_optional(conn)
            .await
            .expect("read")
            .is_some()
    }

    /// A commit on a marked connection that succeeds, so the slot keeps it.
    async fn keep_marked(slot: &WriteSlot<Sqlite>) {
        let mut held = slot.hold().await.expect("held");
        mark(held.conn()).await;
        held.settle(Ok(())).await.expect("kept");
    }

    #[tokio::test]
    async fn a_successful_commit_keeps_its_connection_for_the_next_and_a_failed_one_closes_it() {
        let slot = slot().await;
        keep_marked(&slot).await;
        assert!(
            slot.pool.acquire().await.is_err(),
            "kept by the slot, not given back to the pool"
        );

        let mut held = slot.hold().await.expect("held again");
        assert!(is_marked(held.conn()).await, "the same connection");
        let failed: Result<(), StoreError> = Err(StoreError::Unavailable("disk full".into()));
        assert!(held.settle(failed).await.is_err());

        let mut held = slot.hold().await.expect("a fresh connection");
        assert!(!is_marked(held.conn()).await, "the failed one was closed");
        held.settle(Ok(())).await.expect("kept");
    }

    #[tokio::test]
    async fn another_write_takes_the_kept_connection_and_gives_it_to_the_pool() {
        let slot = slot().await;
        keep_marked(&slot).await;

        // With one connection in all, this would time out if the kept one were not
        // handed over.
        let mut other = slot.acquire().await.expect("the kept connection");
        assert!(is_marked(&mut other).await);
        drop(other);
        let mut held = slot.hold().await.expect("back from the pool");
        assert!(is_marked(held.conn()).await);
        held.settle(Ok(())).await.expect("kept");
        slot.close().await;
    }

    #[tokio::test]
    async fn a_commit_dropped_unsettled_gives_its_connection_back_to_the_pool() {
        let slot = slot().await;
        let mut held = slot.hold().await.expect("held");
        mark(held.conn()).await;
        drop(held);
        let mut held = slot.hold().await.expect("from the pool");
        assert!(is_marked(held.conn()).await, "returned, not closed");
        held.settle(Ok(())).await.expect("kept");
    }
}

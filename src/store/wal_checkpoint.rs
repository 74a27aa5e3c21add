//! SQLite's WAL checkpoints, taken off the access log's commit path.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages copies
//! the WAL into the database file before its commit returns. Here that is always
//! the writer, so every few batches one batch's calls waited for a checkpoint. A
//! task of the store's own copies the WAL instead, on a reading connection, several
//! times a second; a PASSIVE checkpoint never blocks the writer.
//!
//! The writer still checkpoints once the WAL reaches `BACKSTOP_PAGES`. The WAL
//! starts again from its beginning only after a checkpoint caught up with all of
//! it, which one running beside a busy writer seldom does; without the backstop the
//! WAL would grow for as long as the load lasts. By then the task has copied most
//! of it, and the writer's checkpoint has little left to do.

use std::time::Duration;

use sqlx::SqlitePool;
use tokio::task::JoinHandle;

/// The WAL's size, in pages, at which the writer checkpoints on its own.
pub(crate) const BACKSTOP_PAGES: u32 = 4_000;

/// How often the task checkpoints; one with nothing to copy costs a read lock.
const INTERVAL: Duration = Duration::from_millis(100);

/// The task that checkpoints; it stops when this is dropped.
pub(crate) struct Checkpointer {
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Checkpoints the database of `pool` every `INTERVAL`, on one of its connections.
    pub(crate) fn spawn(pool: SqlitePool) -> Checkpointer {
        Checkpointer {
            task: tokio::spawn(checkpoint_forever(pool)),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn checkpoint_forever(pool: SqlitePool) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Ok(_) if failing => {
                tracing::info!("WAL checkpoints succeed again");
                failing = false;
            }
            Ok(_) => {}
            // Said once per failing spell: the writer's backstop still bounds the WAL.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the writer checkpoints at its backstop");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    async fn wal_pool(path: &std::path::Path, autocheckpoint: u32) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", autocheckpoint.to_string());
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("pool")
    }

    /// Writes ~100 pages, far below the backstop, and returns the database
    /// file's size before and after.
    async fn write_some(dir: &std::path::Path, with_task: bool) -> (u64, u64) {
        let path = dir.join("db.sqlite");
        let writer = wal_pool(&path, BACKSTOP_PAGES).await;
        let reader = wal_pool(&path, BACKSTOP_PAGES).await;
        let task = with_task.then(|| Checkpointer::spawn(reader));
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(&writer)
            .await
            .expect("create");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&writer)
            .await
            .expect("checkpoint");
        let before = std::fs::metadata(&path).expect("file").len();
        for _ in 0..100 {
            sqlx::query("INSERT INTO t VALUES (?)")
                .bind("x".repeat(4000))
                .execute(&writer)
                .await
                .expect("insert");
        }
        tokio::time::sleep(INTERVAL * 5).await;
        let after = std::fs::metadata(&path).expect("file").len();
        drop(task);
        (before, after)
    }

    #[tokio::test]
    async fn the_task_copies_the_wal_into_the_database_below_the_backstop() {
        let dir = tempfile::tempdir().expect("dir");
        let (before, after) = write_some(dir.path(), true).await;
        assert!(after >= before + 100 * 4000, "{before} -> {after}");
    }

    #[tokio::test]
    async fn without_the_task_the_wal_stays_uncopied_below_the_backstop() {
        let dir = tempfile::tempdir().expect("dir");
        let (before, after) = write_some(dir.path(), false).await;
        assert_eq!(before, after);
    }
}

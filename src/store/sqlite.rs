//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! committed transaction has been fsync'd.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};

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

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl super::Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

activation_store!(SqliteStore, Sqlite, {});

/// Writes a revision and its windows inside `tx`.
async fn write_revision(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    activation_id: &str,
    revision: &Revision,
) -> Result<(), StoreError> {
    insert_revision::<Sqlite>(activation_id, revision)
        .build()
        .execute(&mut **tx)
        .await?;
    for (i, chunk) in revision.windows.chunks(WINDOW_CHUNK).enumerate() {
        insert_windows::<Sqlite>(activation_id, revision.number, i * WINDOW_CHUNK, chunk)
            .build()
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl SearchLedger for SqliteStore {
    async fn record_search(&self, search: &SearchRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO searches (search_id, facility, at, candidates) VALUES (?, ?, ?, ?)",
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
            "SELECT search_id, facility, at, candidates FROM searches WHERE search_id = ?",
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
        Ok(sqlx::query("DELETE FROM searches WHERE at < ?")
            .bind(to_nanos(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn register_chain(&self, chain: &ChainInfo) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_chains (chain_id, public_key, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (chain_id) DO NOTHING",
        )
        .bind(&chain.chain_id)
        .bind(&chain.public_key)
        .bind(to_nanos(chain.created_at))
        .execute(&self.pool)
        .await?;
        let known: String =
            sqlx::query_scalar("SELECT public_key FROM audit_chains WHERE chain_id = ?")
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
            "SELECT seq, hash FROM (SELECT seq, hash FROM access_log WHERE chain_id = ?1 \
             UNION ALL SELECT seq, head_hash AS hash FROM audit_checkpoints WHERE chain_id = ?1) \
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
        // One multi-row INSERT per chunk: a round trip to SQLite's worker thread per
        // batch rather than per record.
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INSERT_RECORDS);
            push_records(&mut insert, chunk);
            insert.build().execute(&mut *tx).await?;
        }
        if let Some(c) = checkpoint {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INSERT_CHECKPOINT);
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
            "SELECT * FROM access_log WHERE chain_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(chain_id)
        .bind(seq_to_db(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn checkpoints(&self, chain_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints WHERE chain_id = ? ORDER BY seq")
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
        let rows = query_records::<sqlx::Sqlite>(query, limit)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn prune(&self, chain_id: &str, through_seq: u64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let anchored: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM audit_checkpoints WHERE chain_id = ? AND seq = ?")
                .bind(chain_id)
                .bind(seq_to_db(through_seq))
                .fetch_optional(&mut *tx)
                .await?;
        if anchored.is_none() {
            return Err(StoreError::Conflict(format!(
                "no checkpoint of chain {chain_id} at {through_seq} to anchor what remains"
            )));
        }
        let deleted = sqlx::query("DELETE FROM access_log WHERE chain_id = ? AND seq <= ?")
            .bind(chain_id)
            .bind(seq_to_db(through_seq))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE chain_id = ? AND seq < ?")
            .bind(chain_id)
            .bind(seq_to_db(through_seq))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

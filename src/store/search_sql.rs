//! The search ledger's SQL, shared by SQLite and PostgreSQL. Candidates are kept
//! as their hashes joined by spaces: the ledger is only ever asked for a whole
//! search by its id.

use sqlx::{ColumnIndex, Decode, Encode, QueryBuilder, Row, Type};

use super::sql::{Dialect, from_nanos, to_nanos};
use super::{SearchRecord, StoreError, StoredRecord};

pub(crate) const SELECT_SEARCH: &str =
    "SELECT search_id, facility, at, candidates FROM searches WHERE search_id = $1";

pub(crate) const PRUNE_SEARCHES: &str = "DELETE FROM searches WHERE at < $1";

pub(crate) fn candidates_to_db(search: &SearchRecord) -> String {
    search.candidate_hashes.join(" ")
}

/// Searches per INSERT of opened searches: 4 columns.
const SEARCH_CHUNK: usize = 1000;

/// The INSERTs of the searches `records` opened (`AccessRecord::opened_search`),
/// written in the records' own transaction.
pub(crate) fn insert_searches<DB>(records: &[StoredRecord]) -> Vec<QueryBuilder<'static, DB>>
where
    DB: Dialect,
    String: Encode<'static, DB> + Type<DB>,
    i64: Encode<'static, DB> + Type<DB>,
{
    let searches: Vec<SearchRecord> = records
        .iter()
        .filter_map(|s| s.record.opened_search())
        .collect();
    searches
        .chunks(SEARCH_CHUNK)
        .map(|chunk| {
            let mut insert = QueryBuilder::new(format!(
                "{} searches (search_id, facility, at, candidates) ",
                DB::INSERT_BATCH
            ));
            insert.push_values(chunk, |mut row, search| {
                row.push_bind(search.search_id.clone())
                    .push_bind(search.facility.clone())
                    .push_bind(to_nanos(search.at))
                    .push_bind(candidates_to_db(search));
            });
            insert
        })
        .collect()
}

pub(crate) fn search_from_row<'r, R>(row: &'r R) -> Result<SearchRecord, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let candidates: String = row.try_get("candidates")?;
    Ok(SearchRecord {
        search_id: row.try_get("search_id")?,
        facility: row.try_get("facility")?,
        at: from_nanos(row.try_get("at")?),
        candidate_hashes: candidates.split_whitespace().map(str::to_string).collect(),
    })
}

/// The `SearchLedger` impl both databases share (see `sql_store!`).
macro_rules! search_ledger {
    ($store:ty) => {
        const _: () = {
            use chrono::{DateTime, Utc};

            use $crate::store::search_sql::{PRUNE_SEARCHES, SELECT_SEARCH, search_from_row};
            use $crate::store::sql::{find, to_nanos};
            use $crate::store::{SearchLedger, SearchRecord, StoreError};

            #[async_trait::async_trait]
            impl SearchLedger for $store {
                async fn find_search(&self, id: &str) -> Result<Option<SearchRecord>, StoreError> {
                    find(self.pool(), SELECT_SEARCH, id, |row| search_from_row(row)).await
                }

                async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                    let prune = sqlx::query(PRUNE_SEARCHES).bind(to_nanos(before));
                    Ok(prune
                        .execute(&mut *self.writer().acquire().await?)
                        .await?
                        .rows_affected())
                }
            }
        };
    };
}
pub(crate) use search_ledger;

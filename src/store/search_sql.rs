//! The search ledger's SQL, shared by SQLite and PostgreSQL. Candidates are kept
//! as their hashes joined by spaces: the ledger is only ever asked for a whole
//! search by its id.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::sql::from_nanos;
use super::{SearchRecord, StoreError};

pub(crate) const INSERT_SEARCH: &str =
    "INSERT INTO searches (search_id, facility, at, candidates) VALUES ($1, $2, $3, $4)";

pub(crate) const SELECT_SEARCH: &str =
    "SELECT search_id, facility, at, candidates FROM searches WHERE search_id = $1";

pub(crate) const PRUNE_SEARCHES: &str = "DELETE FROM searches WHERE at < $1";

pub(crate) fn candidates_to_db(search: &SearchRecord) -> String {
    search.candidate_hashes.join(" ")
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

            use $crate::store::search_sql::{
                INSERT_SEARCH, PRUNE_SEARCHES, SELECT_SEARCH, candidates_to_db, search_from_row,
            };
            use $crate::store::sql::{find, to_nanos};
            use $crate::store::{SearchLedger, SearchRecord, StoreError};

            #[async_trait::async_trait]
            impl SearchLedger for $store {
                async fn record_search(&self, search: &SearchRecord) -> Result<(), StoreError> {
                    sqlx::query(INSERT_SEARCH)
                        .bind(&search.search_id)
                        .bind(&search.facility)
                        .bind(to_nanos(search.at))
                        .bind(candidates_to_db(search))
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn find_search(&self, id: &str) -> Result<Option<SearchRecord>, StoreError> {
                    find(self.pool(), SELECT_SEARCH, id, |row| search_from_row(row)).await
                }

                async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                    let prune = sqlx::query(PRUNE_SEARCHES).bind(to_nanos(before));
                    Ok(prune.execute(self.writer()).await?.rows_affected())
                }
            }
        };
    };
}
pub(crate) use search_ledger;

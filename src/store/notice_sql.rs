//! The patient-notice outbox's SQL, shared by SQLite and PostgreSQL. Rows are
//! inserted with the access records (`access_log_sql::insert_notices`); here they
//! are claimed under a lease, marked delivered, or put back with a later attempt.
//!
//! A claim is one UPDATE whose outer WHERE repeats the "free" condition: on
//! PostgreSQL a concurrent claimer that waited for the row lock re-checks it against
//! the row as the first one left it, and skips the row; SQLite has one writer.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::sql::{from_nanos, seq_from_db};
use super::{OutboxNotice, StoreError};

const FREE: &str = "delivered_at IS NULL AND next_attempt_at <= $2 \
     AND (lease_until IS NULL OR lease_until <= $2)";

/// `$1` owner, `$2` now, `$3` lease end, `$4` how many.
pub(crate) fn claim_sql() -> String {
    format!(
        "UPDATE patient_notices SET lease_owner = $1, lease_until = $3 \
         WHERE {FREE} AND record_id IN (SELECT record_id FROM patient_notices WHERE {FREE} \
         ORDER BY at, record_id LIMIT $4) \
         RETURNING *"
    )
}

/// `$1` now, `$2` record, `$3` owner.
pub(crate) const DELIVERED: &str = "UPDATE patient_notices \
     SET delivered_at = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL \
     WHERE record_id = $2 AND lease_owner = $3 AND delivered_at IS NULL";

/// `$1` next attempt, `$2` error, `$3` record, `$4` owner.
pub(crate) const RETRY_LATER: &str = "UPDATE patient_notices \
     SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
     lease_owner = NULL, lease_until = NULL \
     WHERE record_id = $3 AND lease_owner = $4 AND delivered_at IS NULL";

pub(crate) const PENDING: &str = "SELECT COUNT(*) FROM patient_notices WHERE delivered_at IS NULL";

pub(crate) fn notice_from_row<'r, R>(row: &'r R) -> Result<OutboxNotice, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let attempts: i64 = row.try_get("attempts")?;
    Ok(OutboxNotice {
        record_id: row.try_get("record_id")?,
        chain_id: row.try_get("chain_id")?,
        seq: seq_from_db(row.try_get("seq")?)?,
        at: from_nanos(row.try_get("at")?),
        facility: row.try_get("facility")?,
        method: row.try_get("method")?,
        items: row.try_get("items")?,
        consent_basis: row.try_get("consent_basis")?,
        exemption_category: row.try_get("exemption_category")?,
        patient_key: row.try_get("patient_key")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

pub(crate) fn nanos(at: DateTime<Utc>) -> i64 {
    super::sql::to_nanos(at)
}

/// The `NoticeOutbox` impl both databases share (see `sql_store!`).
macro_rules! notice_outbox {
    ($store:ty) => {
        const _: () = {
            use chrono::{DateTime, Utc};

            use $crate::store::notice_sql::{
                DELIVERED, PENDING, RETRY_LATER, claim_sql, nanos, notice_from_row,
            };
            use $crate::store::sql::count_from_db;
            use $crate::store::{NoticeOutbox, OutboxNotice, StoreError};

            #[async_trait::async_trait]
            impl NoticeOutbox for $store {
                async fn claim_notices(
                    &self,
                    owner: &str,
                    now: DateTime<Utc>,
                    lease_until: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Vec<OutboxNotice>, StoreError> {
                    let sql = claim_sql();
                    let rows = sqlx::query(&sql)
                        .bind(owner)
                        .bind(nanos(now))
                        .bind(nanos(lease_until))
                        .bind(i64::from(limit))
                        .fetch_all(&mut *self.writer().acquire().await?)
                        .await?;
                    let mut claimed = rows
                        .iter()
                        .map(notice_from_row)
                        .collect::<Result<Vec<_>, _>>()?;
                    claimed.sort_by(|a, b| (a.at, &a.record_id).cmp(&(b.at, &b.record_id)));
                    Ok(claimed)
                }

                async fn notice_delivered(
                    &self,
                    record_id: &str,
                    owner: &str,
                    at: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(DELIVERED)
                        .bind(nanos(at))
                        .bind(record_id)
                        .bind(owner)
                        .execute(&mut *self.writer().acquire().await?)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn notice_failed(
                    &self,
                    record_id: &str,
                    owner: &str,
                    next_attempt: DateTime<Utc>,
                    error: &str,
                ) -> Result<(), StoreError> {
                    sqlx::query(RETRY_LATER)
                        .bind(nanos(next_attempt))
                        .bind(error)
                        .bind(record_id)
                        .bind(owner)
                        .execute(&mut *self.writer().acquire().await?)
                        .await?;
                    Ok(())
                }

                async fn pending_notices(&self) -> Result<u64, StoreError> {
                    let n: i64 = sqlx::query_scalar(PENDING).fetch_one(self.pool()).await?;
                    count_from_db(n)
                }
            }
        };
    };
}
pub(crate) use notice_outbox;

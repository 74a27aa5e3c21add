//! What the SQLite and PostgreSQL stores share: the same tables and encodings
//! (instants as integer nanoseconds, hashes as hex text), so every statement is
//! written once, with `$n` placeholders both databases accept, and decoded
//! generically over `sqlx::Database`. A store module only opens its pool, says
//! what its database does differently, and calls `sql_store!`.

use sqlx::pool::PoolConnection;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Type};

use super::{StoreError, Value};

pub(crate) fn to_nanos(at: chrono::DateTime<chrono::Utc>) -> i64 {
    // Representable until the year 2262; instants here are far inside that.
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub(crate) fn from_nanos(n: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(n)
}

/// Sequence numbers are stored as signed 64-bit integers.
pub(crate) fn seq_to_db(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(crate) fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence number {seq}")))
}

pub(crate) fn count_from_db(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
}

pub(crate) fn migration_failed(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Unavailable(format!("migration failed: {e}"))
}

/// Ends the use of a connection that ran a transaction: one whose transaction failed
/// is closed, never given back to the pool. After a failed statement or COMMIT,
/// SQLite may keep the transaction open (or have rolled it back) while the driver
/// counts otherwise; the next transaction on that connection would then be a mere
/// savepoint whose "commit" makes nothing durable, and its lock would block every
/// other writer. A fresh connection has neither problem.
pub(crate) async fn settle<DB: Database, T>(
    conn: PoolConnection<DB>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    if result.is_err()
        && let Err(e) = conn.close().await
    {
        tracing::debug!(error = %e, "closing a connection after a failed transaction");
    }
    result
}

/// Binds one value into the row being pushed.
pub(crate) fn push_value<'a, DB>(row: &mut Separated<'_, 'a, DB, &'static str>, value: Value<'a>)
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    match value {
        Value::Text(s) => row.push_bind(s),
        Value::OptText(s) => row.push_bind(s),
        Value::Int(n) => row.push_bind(n),
        Value::BigInt(n) => row.push_bind(n),
        Value::Bool(b) => row.push_bind(b),
        Value::OptBigInt(n) => row.push_bind(n),
    };
}

/// The row `sql` selects by one key, decoded; `None` if there is none.
pub(crate) async fn find<DB, T>(
    pool: &Pool<DB>,
    sql: &'static str,
    key: &str,
    decode: impl Fn(&DB::Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let row = sqlx::query(sql).bind(key).fetch_optional(pool).await?;
    row.as_ref().map(decode).transpose()
}

/// What one database does differently from the other; everything else is the
/// shared SQL.
pub(crate) trait Dialect: Database {
    /// `sqlite` or `postgres`, for logs and reports.
    const BACKEND: &'static str;
    /// Appended to the SELECT of the checkpoint a prune keeps as its anchor, so that
    /// no concurrent prune deletes it before this one commits.
    const ANCHOR_LOCK: &'static str;
    /// The statement that tells every other replica, on commit, that an activation
    /// changed (`$1` the channel, `$2` the activation), and its channel; `None`
    /// where no other process shares the database.
    const ANNOUNCE: Option<(&'static str, &'static str)>;
    /// How an access-log batch's multi-row INSERT begins. A batch is all or nothing
    /// and its transaction is dropped on any failure, so the statement need not be
    /// undone alone; saying so spares SQLite a statement journal per INSERT.
    const INSERT_BATCH: &'static str;
}

/// Implements every store trait for `$store`, whose database is `$db`, with the
/// shared SQL. Generic functions build and decode the statements; the impls are a
/// macro because the traits are implemented for two concrete types, and a generic
/// impl would have to restate sqlx's executor and codec bounds on every block.
///
/// `$store` holds its `pool` and its `writer` pool; `$db` implements `Dialect`; `$migrations` is the
/// folder of its migrations; `$extra` holds `ActivationStore` methods of its own
/// (PostgreSQL's `subscribe`).
macro_rules! sql_store {
    ($store:ty, $db:ty, $migrations:tt, { $($extra:tt)* }) => {
        const _: () = {
            use $crate::store::sql::{Dialect, migration_failed};
            use $crate::store::{Store, StoreError};

            impl $store {
                pub fn pool(&self) -> &sqlx::Pool<$db> {
                    &self.pool
                }

                /// Where every write goes: for SQLite one connection of its own (see
                /// `SqliteStore::open`), so that writers queue in the process, not in
                /// SQLite's busy handler, and no other connection's write drops its
                /// page cache.
                pub fn writer(&self) -> &$crate::store::write_slot::WriteSlot<$db> {
                    &self.writer
                }

                /// Runs the migrations on `pool`.
                async fn migrate(pool: &sqlx::Pool<$db>) -> Result<(), StoreError> {
                    sqlx::migrate!($migrations)
                        .run(pool)
                        .await
                        .map_err(migration_failed)
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    <$db as Dialect>::BACKEND
                }

                async fn close(&self) {
                    self.writer().close().await;
                    self.pool().close().await;
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1").execute(self.pool()).await?;
                    Ok(())
                }
            }
        };

        $crate::store::activation_sql::activation_store!($store, $db, { $($extra)* });
        $crate::store::search_sql::search_ledger!($store);
        $crate::store::access_log_sql::audit_store!($store, $db);
        $crate::store::registry_sql::facility_registry!($store, $db);
        $crate::store::site_sql::site_store!($store, $db);
        $crate::store::notice_sql::notice_outbox!($store);
    };
}
pub(crate) use sql_store;

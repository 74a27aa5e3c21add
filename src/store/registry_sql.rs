//! The facility registry's SQL, shared by SQLite and PostgreSQL: both keep the
//! same tables (migrations `*_facility_registry.sql`), so every replica reads the
//! registry the operator loaded once.

use std::collections::HashSet;

use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::sql::{count_from_db, push_value};
use super::{Municipality, RegisteredFacility, RegistryCounts, StoreError, Value};
use crate::domain::facility::FacilityKind;

/// Rows per multi-row upsert: 5 columns × 1,000 rows stays far below both
/// databases' bound-parameter limits (SQLite 32,766, PostgreSQL 65,535) while
/// loading tens of thousands of facilities in a few dozen statements.
pub(super) const REGISTRY_CHUNK: usize = 1000;

const UPSERT_MUNICIPALITIES: &str = "INSERT INTO municipalities (code, name, prefecture) ";
const ON_MUNICIPALITY_CONFLICT: &str = " ON CONFLICT (code) DO UPDATE SET \
     name = excluded.name, prefecture = excluded.prefecture";

const UPSERT_FACILITIES: &str =
    "INSERT INTO facilities (code, name, kind, prefecture, municipality, emergency_hospital) ";
const ON_FACILITY_CONFLICT: &str = " ON CONFLICT (code) DO UPDATE SET \
     name = excluded.name, kind = excluded.kind, prefecture = excluded.prefecture, \
     municipality = excluded.municipality, emergency_hospital = excluded.emergency_hospital";

pub(super) const COUNT_REGISTRY: &str = "SELECT (SELECT COUNT(*) FROM municipalities) AS municipalities, \
     (SELECT COUNT(*) FROM facilities) AS facilities";

/// `SELECT` of every municipality of the given prefectures with its facility count,
/// zero included, in code order. Callers pass at least one prefecture.
pub(super) fn facility_counts_query<'a, DB>(prefectures: &[u8]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i32: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(
        "SELECT m.code, m.name, m.prefecture, COUNT(f.code) AS facilities \
         FROM municipalities m LEFT JOIN facilities f ON f.municipality = m.code \
         WHERE m.prefecture IN (",
    );
    let mut list = b.separated(", ");
    for p in prefectures {
        list.push_bind(i32::from(*p));
    }
    b.push(") GROUP BY m.code, m.name, m.prefecture ORDER BY m.code");
    b
}

/// `SELECT` of the registered facilities per municipality and kind, for the given
/// municipalities. Callers pass at least one.
pub(super) fn kind_counts_query<'a, DB>(municipalities: &[String]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(
        "SELECT municipality, kind, COUNT(*) AS facilities FROM facilities WHERE municipality IN (",
    );
    let mut list = b.separated(", ");
    for m in municipalities {
        list.push_bind(m.clone());
    }
    b.push(") GROUP BY municipality, kind ORDER BY municipality, kind");
    b
}

/// One row of [`kind_counts_query`].
pub(super) fn kind_count_from_row<'r, R>(
    row: &'r R,
) -> Result<(String, FacilityKind, u64), StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    Ok((
        row.try_get("municipality")?,
        kind_from_db(&kind)?,
        count_from_db(row.try_get("facilities")?)?,
    ))
}

/// The items to write, each code once: a later entry replaces an earlier one with
/// the same code, as a later load would. (PostgreSQL refuses an upsert that touches
/// one row twice in a statement.)
fn last_of_each<T>(items: &[T], code: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<&T> = items
        .iter()
        .rev()
        .filter(|item| seen.insert(code(item)))
        .collect();
    kept.reverse();
    kept
}

/// A registry row written by a multi-row upsert: its table's statement and its
/// values in the statement's column order.
pub(super) trait Upsert {
    /// `INSERT INTO <table> (<columns>) ` and the `ON CONFLICT` clause that follows
    /// the values.
    const STATEMENT: (&'static str, &'static str);
    fn code(&self) -> &str;
    fn values(&self) -> Vec<Value<'_>>;
}

impl Upsert for Municipality {
    const STATEMENT: (&'static str, &'static str) =
        (UPSERT_MUNICIPALITIES, ON_MUNICIPALITY_CONFLICT);
    fn code(&self) -> &str {
        &self.code
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.code),
            Value::Text(&self.name),
            Value::Int(i32::from(self.prefecture)),
        ]
    }
}

impl Upsert for RegisteredFacility {
    const STATEMENT: (&'static str, &'static str) = (UPSERT_FACILITIES, ON_FACILITY_CONFLICT);
    fn code(&self) -> &str {
        &self.code
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.code),
            Value::Text(&self.name),
            Value::Text(self.kind.as_str()),
            Value::Int(i32::from(self.prefecture)),
            Value::Text(&self.municipality),
            Value::Bool(self.emergency_hospital),
        ]
    }
}

/// The upserts of `items`, each code once, in statements of `REGISTRY_CHUNK` rows,
/// each built only when the one before it has been sent: a whole registry's bound
/// values at once took ~17 MB, which the allocator kept long after the load.
pub(super) fn upserts<'a, DB, T>(items: &'a [T]) -> impl Iterator<Item = QueryBuilder<'a, DB>>
where
    DB: Database,
    T: Upsert,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    let (statement, on_conflict) = T::STATEMENT;
    let kept = last_of_each(items, T::code);
    (0..kept.len()).step_by(REGISTRY_CHUNK).map(move |start| {
        let chunk = &kept[start..kept.len().min(start + REGISTRY_CHUNK)];
        let mut insert = QueryBuilder::new(statement);
        insert.push_values(chunk.iter().copied(), |mut row, item| {
            for value in item.values() {
                push_value(&mut row, value);
            }
        });
        insert.push(on_conflict);
        insert
    })
}

fn prefecture_from_db(p: i32) -> Result<u8, StoreError> {
    u8::try_from(p)
        .ok()
        .filter(|p| (1..=47).contains(p))
        .ok_or_else(|| StoreError::Corrupt(format!("registry prefecture {p}")))
}

fn kind_from_db(kind: &str) -> Result<FacilityKind, StoreError> {
    FacilityKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| StoreError::Corrupt(format!("registry facility kind {kind:?}")))
}

pub(super) fn municipality_from_row<'r, R>(row: &'r R) -> Result<Municipality, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Municipality {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        prefecture: prefecture_from_db(row.try_get("prefecture")?)?,
    })
}

pub(super) fn facility_from_row<'r, R>(row: &'r R) -> Result<RegisteredFacility, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    Ok(RegisteredFacility {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        kind: kind_from_db(&kind)?,
        prefecture: prefecture_from_db(row.try_get("prefecture")?)?,
        municipality: row.try_get("municipality")?,
        emergency_hospital: row.try_get("emergency_hospital")?,
    })
}

pub(super) fn counts_from_row<'r, R>(row: &'r R) -> Result<RegistryCounts, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RegistryCounts {
        municipalities: count_from_db(row.try_get("municipalities")?)?,
        facilities: count_from_db(row.try_get("facilities")?)?,
    })
}

pub(super) const SELECT_FACILITY: &str = "SELECT code, name, kind, prefecture, municipality, emergency_hospital FROM facilities WHERE code = $1";

pub(super) const SELECT_MUNICIPALITY: &str =
    "SELECT code, name, prefecture FROM municipalities WHERE code = $1";

pub(super) fn counted_from_row<'r, R>(row: &'r R) -> Result<(Municipality, u64), StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((
        municipality_from_row(row)?,
        count_from_db(row.try_get("facilities")?)?,
    ))
}

/// The `FacilityRegistry` impl both databases share (see `sql_store!`).
macro_rules! facility_registry {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::store::registry_sql::*;
            use $crate::store::sql::{find, settle};
            use $crate::store::{
                FacilityRegistry, Municipality, RegisteredFacility, RegistryCounts, StoreError,
            };

            #[async_trait::async_trait]
            impl FacilityRegistry for $store {
                /// Returns the registry's totals once the load is committed.
                async fn load_registry(
                    &self,
                    municipalities: &[Municipality],
                    facilities: &[RegisteredFacility],
                ) -> Result<RegistryCounts, StoreError> {
                    write_registry(self.writer(), municipalities, facilities, false).await
                }

                async fn replace_registry(
                    &self,
                    municipalities: &[Municipality],
                    facilities: &[RegisteredFacility],
                ) -> Result<RegistryCounts, StoreError> {
                    write_registry(self.writer(), municipalities, facilities, true).await
                }

                async fn registry_counts(&self) -> Result<RegistryCounts, StoreError> {
                    counts_from_row(&sqlx::query(COUNT_REGISTRY).fetch_one(self.pool()).await?)
                }

                async fn facility(
                    &self,
                    code: &str,
                ) -> Result<Option<RegisteredFacility>, StoreError> {
                    find(self.pool(), SELECT_FACILITY, code, |row| {
                        facility_from_row(row)
                    })
                    .await
                }

                async fn municipality(
                    &self,
                    code: &str,
                ) -> Result<Option<Municipality>, StoreError> {
                    find(self.pool(), SELECT_MUNICIPALITY, code, |row| {
                        municipality_from_row(row)
                    })
                    .await
                }

                async fn facility_counts(
                    &self,
                    prefectures: &[u8],
                ) -> Result<Vec<(Municipality, u64)>, StoreError> {
                    if prefectures.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut select = facility_counts_query::<$db>(prefectures);
                    let rows = select.build().fetch_all(self.pool()).await?;
                    rows.iter().map(counted_from_row).collect()
                }

                async fn facility_kind_counts(
                    &self,
                    municipalities: &[String],
                ) -> Result<Vec<(String, crate::domain::facility::FacilityKind, u64)>, StoreError>
                {
                    if municipalities.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut select = kind_counts_query::<$db>(municipalities);
                    let rows = select.build().fetch_all(self.pool()).await?;
                    rows.iter().map(kind_count_from_row).collect()
                }
            }

            async fn write_registry(
                writer: &$crate::store::write_slot::WriteSlot<$db>,
                municipalities: &[Municipality],
                facilities: &[RegisteredFacility],
                replace: bool,
            ) -> Result<RegistryCounts, StoreError> {
                let mut conn = writer.acquire().await?;
                let written =
                    write_registry_on(&mut conn, municipalities, facilities, replace).await;
                settle(conn, written).await
            }

            async fn write_registry_on(
                conn: &mut sqlx::pool::PoolConnection<$db>,
                municipalities: &[Municipality],
                facilities: &[RegisteredFacility],
                replace: bool,
            ) -> Result<RegistryCounts, StoreError> {
                let mut tx = sqlx::Connection::begin(&mut **conn).await?;
                if replace {
                    sqlx::query("DELETE FROM facilities")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM municipalities")
                        .execute(&mut *tx)
                        .await?;
                }
                for mut insert in upserts::<$db, _>(municipalities) {
                    insert.build().execute(&mut *tx).await?;
                }
                for mut insert in upserts::<$db, _>(facilities) {
                    insert.build().execute(&mut *tx).await?;
                }
                let counts =
                    counts_from_row(&sqlx::query(COUNT_REGISTRY).fetch_one(&mut *tx).await?)?;
                tx.commit().await?;
                Ok(counts)
            }
        };
    };
}
pub(crate) use facility_registry;

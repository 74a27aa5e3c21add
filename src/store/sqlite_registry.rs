//! The facility registry in the embedded SQLite store. The statements and row
//! decoding are generic over the database and shared with `postgres_registry`:
//! both stores keep the same tables (migrations `*_facility_registry.sql`).

use std::collections::HashSet;

use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::sqlite::SqliteStore;
use super::{Municipality, RegisteredFacility, RegistryCounts, StoreError};
use crate::domain::facility::FacilityKind;

/// Rows per multi-row upsert: 5 columns × 1,000 rows stays far below both
/// databases' bound-parameter limits (SQLite 32,766, PostgreSQL 65,535) while
/// loading tens of thousands of facilities in a few dozen statements.
pub(super) const REGISTRY_CHUNK: usize = 1000;

pub(super) const UPSERT_MUNICIPALITIES: &str =
    "INSERT INTO municipalities (code, name, prefecture) ";
pub(super) const ON_MUNICIPALITY_CONFLICT: &str = " ON CONFLICT (code) DO UPDATE SET \
     name = excluded.name, prefecture = excluded.prefecture";

pub(super) const UPSERT_FACILITIES: &str =
    "INSERT INTO facilities (code, name, kind, prefecture, municipality) ";
pub(super) const ON_FACILITY_CONFLICT: &str = " ON CONFLICT (code) DO UPDATE SET \
     name = excluded.name, kind = excluded.kind, prefecture = excluded.prefecture, \
     municipality = excluded.municipality";

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

/// The items to write, each code once: a later entry replaces an earlier one with
/// the same code, as a later load would. (PostgreSQL refuses an upsert that touches
/// one row twice in a statement.)
pub(super) fn last_of_each<T>(items: &[T], code: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<&T> = items
        .iter()
        .rev()
        .filter(|item| seen.insert(code(item)))
        .collect();
    kept.reverse();
    kept
}

pub(super) fn push_municipalities<'a, DB>(
    insert: &mut QueryBuilder<'a, DB>,
    chunk: &[&'a Municipality],
) where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
{
    insert.push_values(chunk.iter().copied(), |mut row, m| {
        row.push_bind(m.code.as_str())
            .push_bind(m.name.as_str())
            .push_bind(i32::from(m.prefecture));
    });
    insert.push(ON_MUNICIPALITY_CONFLICT);
}

pub(super) fn push_facilities<'a, DB>(
    insert: &mut QueryBuilder<'a, DB>,
    chunk: &[&'a RegisteredFacility],
) where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
{
    insert.push_values(chunk.iter().copied(), |mut row, f| {
        row.push_bind(f.code.as_str())
            .push_bind(f.name.as_str())
            .push_bind(f.kind.as_str())
            .push_bind(i32::from(f.prefecture))
            .push_bind(f.municipality.as_str());
    });
    insert.push(ON_FACILITY_CONFLICT);
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

pub(super) fn count_from_db(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
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
{
    let kind: String = row.try_get("kind")?;
    Ok(RegisteredFacility {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        kind: kind_from_db(&kind)?,
        prefecture: prefecture_from_db(row.try_get("prefecture")?)?,
        municipality: row.try_get("municipality")?,
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

/// The `FacilityRegistry` impl both databases share but for their `Database` type:
/// every statement is built with `QueryBuilder`, so each gets its own placeholders.
macro_rules! facility_registry {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::FacilityRegistry for $store {
            /// Returns the registry's totals once the load is committed.
            async fn load_registry(
                &self,
                municipalities: &[Municipality],
                facilities: &[RegisteredFacility],
            ) -> Result<RegistryCounts, StoreError> {
                self.write_registry(municipalities, facilities, false).await
            }

            async fn replace_registry(
                &self,
                municipalities: &[Municipality],
                facilities: &[RegisteredFacility],
            ) -> Result<RegistryCounts, StoreError> {
                self.write_registry(municipalities, facilities, true).await
            }

            async fn registry_counts(&self) -> Result<RegistryCounts, StoreError> {
                let row = sqlx::query(COUNT_REGISTRY).fetch_one(self.pool()).await?;
                counts_from_row(&row)
            }

            async fn facility(&self, code: &str) -> Result<Option<RegisteredFacility>, StoreError> {
                QueryBuilder::<$db>::new(
                    "SELECT code, name, kind, prefecture, municipality FROM facilities WHERE code = ",
                )
                .push_bind(code)
                .build()
                .fetch_optional(self.pool())
                .await?
                .as_ref()
                .map(facility_from_row)
                .transpose()
            }

            async fn municipality(&self, code: &str) -> Result<Option<Municipality>, StoreError> {
                QueryBuilder::<$db>::new(
                    "SELECT code, name, prefecture FROM municipalities WHERE code = ",
                )
                .push_bind(code)
                .build()
                .fetch_optional(self.pool())
                .await?
                .as_ref()
                .map(municipality_from_row)
                .transpose()
            }

            async fn facility_counts(
                &self,
                prefectures: &[u8],
            ) -> Result<Vec<(Municipality, u64)>, StoreError> {
                if prefectures.is_empty() {
                    return Ok(Vec::new());
                }
                let rows = facility_counts_query::<$db>(prefectures)
                    .build()
                    .fetch_all(self.pool())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            municipality_from_row(row)?,
                            count_from_db(row.try_get("facilities")?)?,
                        ))
                    })
                    .collect()
            }
        }

        impl $store {
            async fn write_registry(
                &self,
                municipalities: &[Municipality],
                facilities: &[RegisteredFacility],
                replace: bool,
            ) -> Result<RegistryCounts, StoreError> {
                let municipalities = last_of_each(municipalities, |m| &m.code);
                let facilities = last_of_each(facilities, |f| &f.code);
                let mut tx = self.pool().begin().await?;
                if replace {
                    sqlx::query("DELETE FROM facilities").execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM municipalities").execute(&mut *tx).await?;
                }
                for chunk in municipalities.chunks(REGISTRY_CHUNK) {
                    let mut insert = QueryBuilder::<$db>::new(UPSERT_MUNICIPALITIES);
                    push_municipalities(&mut insert, chunk);
                    insert.build().execute(&mut *tx).await?;
                }
                for chunk in facilities.chunks(REGISTRY_CHUNK) {
                    let mut insert = QueryBuilder::<$db>::new(UPSERT_FACILITIES);
                    push_facilities(&mut insert, chunk);
                    insert.build().execute(&mut *tx).await?;
                }
                let row = sqlx::query(COUNT_REGISTRY).fetch_one(&mut *tx).await?;
                let counts = counts_from_row(&row)?;
                tx.commit().await?;
                Ok(counts)
            }
        }
    };
}
pub(super) use facility_registry;

facility_registry!(SqliteStore, sqlx::Sqlite);

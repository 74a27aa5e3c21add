//! The facility registry in the shared PostgreSQL store: the same tables and the
//! same generic statements as SQLite (`sqlite_registry`), so every replica reads
//! the registry the operator loaded once.

use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder, Row};

use super::postgres::PgStore;
use super::sqlite_registry::{
    COUNT_REGISTRY, REGISTRY_CHUNK, UPSERT_FACILITIES, UPSERT_MUNICIPALITIES, count_from_db,
    counts_from_row, facility_counts_query, facility_from_row, last_of_each, municipality_from_row,
    push_facilities, push_municipalities,
};
use super::{FacilityRegistry, Municipality, RegisteredFacility, RegistryCounts, StoreError};

#[async_trait]
impl FacilityRegistry for PgStore {
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
        sqlx::query(
            "SELECT code, name, kind, prefecture, municipality FROM facilities WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(facility_from_row)
        .transpose()
    }

    async fn municipality(&self, code: &str) -> Result<Option<Municipality>, StoreError> {
        sqlx::query("SELECT code, name, prefecture FROM municipalities WHERE code = $1")
            .bind(code)
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
        let rows = facility_counts_query::<Postgres>(prefectures)
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

impl PgStore {
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
            sqlx::query("DELETE FROM facilities")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM municipalities")
                .execute(&mut *tx)
                .await?;
        }
        for chunk in municipalities.chunks(REGISTRY_CHUNK) {
            let mut insert = QueryBuilder::<Postgres>::new(UPSERT_MUNICIPALITIES);
            push_municipalities(&mut insert, chunk);
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in facilities.chunks(REGISTRY_CHUNK) {
            let mut insert = QueryBuilder::<Postgres>::new(UPSERT_FACILITIES);
            push_facilities(&mut insert, chunk);
            insert.build().execute(&mut *tx).await?;
        }
        let row = sqlx::query(COUNT_REGISTRY).fetch_one(&mut *tx).await?;
        let counts = counts_from_row(&row)?;
        tx.commit().await?;
        Ok(counts)
    }
}

//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! committed transaction has been fsync'd.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    AccessRecord, Activation, ActivationStore, AreaKey, AuditStore, Coverage, Decision,
    NewActivation, SearchLedger, SearchRecord, StoreError,
};
use crate::domain::jst::Window;

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

pub(crate) fn to_nanos(at: DateTime<Utc>) -> i64 {
    // Representable until the year 2262; instants here are far inside that.
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub(crate) fn from_nanos(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

fn window_of(start: i64, end: i64) -> Result<Window, StoreError> {
    Window::new(from_nanos(start), from_nanos(end))
        .map_err(|e| StoreError::Corrupt(format!("stored window: {e}")))
}

#[async_trait]
impl ActivationStore for SqliteStore {
    async fn add_activation(&self, new: &NewActivation) -> Result<Activation, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let created_at = Utc::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO activations (id, event, notice, created_by, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(&new.event)
            .bind(&new.notice)
            .bind(&new.created_by)
            .bind(to_nanos(created_at))
            .execute(&mut *tx)
            .await?;
        for area in &new.areas {
            sqlx::query("INSERT INTO activation_areas (activation_id, area_kind, area_code, window_start, window_end) VALUES (?, ?, ?, ?, ?)")
                .bind(&id)
                .bind(area.kind())
                .bind(area.code())
                .bind(to_nanos(new.window.start))
                .bind(to_nanos(new.window.end))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Activation {
            id,
            event: new.event.clone(),
            notice: new.notice.clone(),
            areas: new.areas.clone(),
            window: new.window,
            created_by: new.created_by.clone(),
            created_at,
        })
    }

    async fn list_activations(&self) -> Result<Vec<Activation>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.event, a.notice, a.created_by, a.created_at, r.area_kind, r.area_code, r.window_start, r.window_end \
             FROM activations a JOIN activation_areas r ON r.activation_id = a.id ORDER BY a.created_at, a.id, r.rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Activation> = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("area_kind")?;
            let code: String = row.try_get("area_code")?;
            let area = AreaKey::from_parts(&kind, &code)
                .ok_or_else(|| StoreError::Corrupt(format!("area kind {kind}")))?;
            let window = window_of(row.try_get("window_start")?, row.try_get("window_end")?)?;
            match out.last_mut() {
                Some(last) if last.id == id => last.areas.push(area),
                _ => out.push(Activation {
                    id,
                    event: row.try_get("event")?,
                    notice: row.try_get("notice")?,
                    areas: vec![area],
                    window,
                    created_by: row.try_get("created_by")?,
                    created_at: from_nanos(row.try_get("created_at")?),
                }),
            }
        }
        Ok(out)
    }

    async fn coverage(&self, area: &AreaKey) -> Result<Vec<Coverage>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.event, r.window_start, r.window_end FROM activation_areas r \
             JOIN activations a ON a.id = r.activation_id WHERE r.area_kind = ? AND r.area_code = ?",
        )
        .bind(area.kind())
        .bind(area.code())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Coverage {
                    activation_id: row.try_get("id")?,
                    event: row.try_get("event")?,
                    window: window_of(row.try_get("window_start")?, row.try_get("window_end")?)?,
                })
            })
            .collect()
    }
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
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append(&self, records: &[AccessRecord]) -> Result<(), StoreError> {
        // One multi-row INSERT per chunk: a round trip to SQLite's worker thread per
        // batch rather than per record. 20 columns × 40 rows stays far below SQLite's
        // bound-parameter limit.
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(40) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO access_log (id, at, method, items, facility, staff_id, staff_role, patient_key, identification, search_id, \
                 consent_basis, exemption_reason, exemption_identification, purpose, activation_id, decision, reason, grpc_code, \
                 upstream_result, needs_review) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(&r.id)
                    .push_bind(to_nanos(r.at))
                    .push_bind(&r.method)
                    .push_bind(&r.items)
                    .push_bind(&r.facility)
                    .push_bind(&r.staff_id)
                    .push_bind(&r.staff_role)
                    .push_bind(&r.patient_key)
                    .push_bind(&r.identification)
                    .push_bind(&r.search_id)
                    .push_bind(&r.consent_basis)
                    .push_bind(&r.exemption_reason)
                    .push_bind(&r.exemption_identification)
                    .push_bind(&r.purpose)
                    .push_bind(&r.activation_id)
                    .push_bind(r.decision.as_str())
                    .push_bind(&r.reason)
                    .push_bind(r.grpc_code)
                    .push_bind(&r.upstream_result)
                    .push_bind(r.needs_review);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn records(
        &self,
        facility: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM access_log WHERE (?1 IS NULL OR facility = ?1) AND at >= ?2 ORDER BY seq LIMIT ?3",
        )
        .bind(facility)
        .bind(since.map(to_nanos).unwrap_or(i64::MIN))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| record_from_row(&row)).collect()
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AccessRecord, StoreError> {
    let decision: String = row.try_get("decision")?;
    Ok(AccessRecord {
        id: row.try_get("id")?,
        at: from_nanos(row.try_get("at")?),
        method: row.try_get("method")?,
        items: row.try_get("items")?,
        facility: row.try_get("facility")?,
        staff_id: row.try_get("staff_id")?,
        staff_role: row.try_get("staff_role")?,
        patient_key: row.try_get("patient_key")?,
        identification: row.try_get("identification")?,
        search_id: row.try_get("search_id")?,
        consent_basis: row.try_get("consent_basis")?,
        exemption_reason: row.try_get("exemption_reason")?,
        exemption_identification: row.try_get("exemption_identification")?,
        purpose: row.try_get("purpose")?,
        activation_id: row.try_get("activation_id")?,
        decision: Decision::parse(&decision)
            .ok_or_else(|| StoreError::Corrupt(format!("decision {decision}")))?,
        reason: row.try_get("reason")?,
        grpc_code: row.try_get("grpc_code")?,
        upstream_result: row.try_get("upstream_result")?,
        needs_review: row.try_get("needs_review")?,
    })
}

//! The temporary sites' SQL, shared by SQLite and PostgreSQL (see `sql_store!`).
//! A change to a site is announced to the other replicas on the activations'
//! channel: the registry cache reloads sites with the activations.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::StoreError;
use super::sql::from_nanos;
use crate::domain::jst::Window;
use crate::domain::municipality::parse_municipality_code;
use crate::domain::site::{Site, SiteChangeKind, SiteKind, SiteRevision};

pub(crate) const INSERT_SITE: &str = "INSERT INTO sites (id, activation_id, kind, name, municipality, coordinates, sponsor, contact, requires_licence) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

pub(crate) const INSERT_SITE_REVISION: &str = "INSERT INTO site_revisions (site_id, number, recorded_at, author, kind, window_start, window_end, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const SELECT_SITES: &str = "SELECT s.id, s.activation_id, s.kind AS site_kind, s.name, s.municipality, s.coordinates, \
     s.sponsor, s.contact, s.requires_licence, r.number, r.recorded_at, r.author, r.kind, \
     r.window_start, r.window_end, r.detail \
     FROM sites s JOIN site_revisions r ON r.site_id = s.id";

pub(crate) fn select_sites(one: bool) -> String {
    if one {
        format!("{SELECT_SITES} WHERE s.id = $1 ORDER BY s.id, r.number")
    } else {
        format!("{SELECT_SITES} ORDER BY s.id, r.number")
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored site: {what}"))
}

fn revision_from_row<'r, R>(row: &'r R) -> Result<SiteRevision, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    let number: i64 = row.try_get("number")?;
    Ok(SiteRevision {
        number: u32::try_from(number).map_err(|_| corrupt(format!("revision {number}")))?,
        recorded_at: from_nanos(row.try_get("recorded_at")?),
        author: row.try_get("author")?,
        kind: SiteChangeKind::parse(&kind).ok_or_else(|| corrupt(format!("change {kind}")))?,
        window: Window::new(
            from_nanos(row.try_get("window_start")?),
            from_nanos(row.try_get("window_end")?),
        )
        .map_err(corrupt)?,
        detail: row.try_get("detail")?,
    })
}

/// Sites with their revisions, from rows in (site, revision) order.
pub(crate) fn sites_from_rows<'r, R>(rows: &'r [R]) -> Result<Vec<Site>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut out: Vec<Site> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        if out.last().is_none_or(|s| s.id != id) {
            let kind: String = row.try_get("site_kind")?;
            let municipality: String = row.try_get("municipality")?;
            out.push(Site {
                id,
                activation_id: row.try_get("activation_id")?,
                kind: SiteKind::parse("", &kind).map_err(|_| corrupt(format!("kind {kind}")))?,
                name: row.try_get("name")?,
                municipality: parse_municipality_code("", &municipality)
                    .map_err(|_| corrupt(format!("municipality {municipality}")))?,
                coordinates: row.try_get("coordinates")?,
                sponsor: row.try_get("sponsor")?,
                contact: row.try_get("contact")?,
                requires_licence: row.try_get("requires_licence")?,
                revisions: Vec::new(),
            });
        }
        let revision = revision_from_row(row)?;
        if let Some(site) = out.last_mut() {
            site.revisions.push(revision);
        }
    }
    Ok(out)
}

/// The `SiteStore` impl both databases share (see `sql_store!`).
macro_rules! site_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::domain::site::{Site, SiteRevision};
            use $crate::store::site_sql::*;
            use $crate::store::sql::{Dialect, settle, to_nanos};
            use $crate::store::{SiteStore, StoreError};

            #[async_trait::async_trait]
            impl SiteStore for $store {
                async fn add_site(&self, site: &Site) -> Result<(), StoreError> {
                    let mut conn = self.writer().acquire().await?;
                    let written: Result<(), StoreError> = async {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        sqlx::query(INSERT_SITE)
                            .bind(&site.id)
                            .bind(&site.activation_id)
                            .bind(site.kind.as_str())
                            .bind(&site.name)
                            .bind(site.municipality.as_str())
                            .bind(site.coordinates.as_deref())
                            .bind(&site.sponsor)
                            .bind(&site.contact)
                            .bind(site.requires_licence)
                            .execute(&mut *tx)
                            .await?;
                        for revision in &site.revisions {
                            write_site_revision(&mut tx, site, revision).await?;
                        }
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    settle(conn, written).await
                }

                async fn add_site_revision(
                    &self,
                    site: &Site,
                    revision: &SiteRevision,
                ) -> Result<(), StoreError> {
                    let mut conn = self.writer().acquire().await?;
                    let written: Result<(), StoreError> = async {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        write_site_revision(&mut tx, site, revision).await?;
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    settle(conn, written).await
                }

                async fn site(&self, id: &str) -> Result<Option<Site>, StoreError> {
                    let rows = sqlx::query(&select_sites(true))
                        .bind(id)
                        .fetch_all(self.pool())
                        .await?;
                    Ok(sites_from_rows(&rows)?.pop())
                }

                async fn list_sites(&self) -> Result<Vec<Site>, StoreError> {
                    let rows = sqlx::query(&select_sites(false))
                        .fetch_all(self.pool())
                        .await?;
                    sites_from_rows(&rows)
                }
            }

            /// Writes one revision inside `tx` and announces the change to the other
            /// replicas on commit, as an activation change is.
            async fn write_site_revision(
                tx: &mut sqlx::Transaction<'_, $db>,
                site: &Site,
                r: &SiteRevision,
            ) -> Result<(), StoreError> {
                sqlx::query(INSERT_SITE_REVISION)
                    .bind(&site.id)
                    .bind(i64::from(r.number))
                    .bind(to_nanos(r.recorded_at))
                    .bind(&r.author)
                    .bind(r.kind.as_str())
                    .bind(to_nanos(r.window.start))
                    .bind(to_nanos(r.window.end))
                    .bind(&r.detail)
                    .execute(&mut **tx)
                    .await?;
                if let Some((statement, channel)) = <$db as Dialect>::ANNOUNCE {
                    sqlx::query(statement)
                        .bind(channel)
                        .bind(&site.activation_id)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }
        };
    };
}
pub(crate) use site_store;

//! The activation registry's SQL, shared by SQLite and PostgreSQL: built with
//! `QueryBuilder` so each database gets its own placeholders, decoded generically.

use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::sql::{from_nanos, to_nanos};
use super::{Activation, AreaKey, Coverage, NewActivation, StoreError};
use crate::domain::activation_change::{AreaWindow, ChangeKind, Revision};
use crate::domain::jst::Window;

pub(crate) fn insert_activation<'a, DB>(id: &'a str, new: &'a NewActivation) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut b =
        QueryBuilder::new("INSERT INTO activations (id, event, notice, created_by, created_at) ");
    b.push_values(std::iter::once(new), |mut row, n| {
        row.push_bind(id.to_string())
            .push_bind(n.event.clone())
            .push_bind(n.notice.clone())
            .push_bind(n.created_by.clone())
            .push_bind(to_nanos(n.at));
    });
    b
}

pub(crate) fn insert_revision<'a, DB>(id: &'a str, r: &'a Revision) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(
        "INSERT INTO activation_revisions (activation_id, number, recorded_at, author, notice, kind) ",
    );
    b.push_values(std::iter::once(r), |mut row, r| {
        row.push_bind(id.to_string())
            .push_bind(i64::from(r.number))
            .push_bind(to_nanos(r.recorded_at))
            .push_bind(r.author.clone())
            .push_bind(r.notice.clone())
            .push_bind(r.kind.as_str().to_string());
    });
    b
}

/// Rows per INSERT of windows: 7 columns, far below either database's bind limit.
pub(crate) const WINDOW_CHUNK: usize = 500;

pub(crate) fn insert_windows<'a, DB>(
    id: &'a str,
    number: u32,
    first_pos: usize,
    windows: &'a [AreaWindow],
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(
        "INSERT INTO activation_windows (activation_id, revision, pos, area_kind, area_code, window_start, window_end) ",
    );
    b.push_values(windows.iter().enumerate(), |mut row, (i, w)| {
        row.push_bind(id.to_string())
            .push_bind(i64::from(number))
            .push_bind(i64::try_from(first_pos + i).unwrap_or(i64::MAX))
            .push_bind(w.area.kind().to_string())
            .push_bind(w.area.code())
            .push_bind(to_nanos(w.window.start))
            .push_bind(to_nanos(w.window.end));
    });
    b
}

/// Every activation (or one) with its revisions and their windows, in order.
pub(crate) fn select_activations<'a, DB>(id: Option<&'a str>) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(
        "SELECT a.id, a.event, a.notice AS activation_notice, a.created_by, a.created_at, \
         r.number, r.recorded_at, r.author, r.notice, r.kind, \
         w.area_kind, w.area_code, w.window_start, w.window_end \
         FROM activations a \
         JOIN activation_revisions r ON r.activation_id = a.id \
         LEFT JOIN activation_windows w ON w.activation_id = r.activation_id AND w.revision = r.number",
    );
    if let Some(id) = id {
        b.push(" WHERE a.id = ").push_bind(id.to_string());
    }
    b.push(" ORDER BY a.created_at, a.id, r.number, w.pos");
    b
}

/// Each activation's latest window over one area.
pub(crate) fn select_coverage<'a, DB>(area: &'a AreaKey) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(
        "SELECT w.activation_id, a.event, w.window_start, w.window_end \
         FROM activation_windows w JOIN activations a ON a.id = w.activation_id \
         WHERE w.area_kind = ",
    );
    b.push_bind(area.kind().to_string())
        .push(" AND w.area_code = ")
        .push_bind(area.code())
        .push(
            " AND w.revision = (SELECT MAX(l.revision) FROM activation_windows l \
             WHERE l.activation_id = w.activation_id AND l.area_kind = w.area_kind AND l.area_code = w.area_code) \
             ORDER BY w.window_start, w.activation_id",
        );
    b
}

fn window_of(start: i64, end: i64) -> Result<Window, StoreError> {
    Window::new(from_nanos(start), from_nanos(end))
        .map_err(|e| StoreError::Corrupt(format!("stored window: {e}")))
}

fn number_of(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("revision number {n}")))
}

pub(crate) fn activations_from_rows<'r, R>(rows: &'r [R]) -> Result<Vec<Activation>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut out: Vec<Activation> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        if out.last().is_none_or(|a| a.id != id) {
            out.push(Activation {
                id: id.clone(),
                event: row.try_get("event")?,
                notice: row.try_get("activation_notice")?,
                created_by: row.try_get("created_by")?,
                created_at: from_nanos(row.try_get("created_at")?),
                revisions: Vec::new(),
            });
        }
        let activation = out
            .last_mut()
            .ok_or_else(|| StoreError::Corrupt("no activation".into()))?;
        let number = number_of(row.try_get("number")?)?;
        if activation
            .revisions
            .last()
            .is_none_or(|r| r.number != number)
        {
            let kind: String = row.try_get("kind")?;
            activation.revisions.push(Revision {
                number,
                recorded_at: from_nanos(row.try_get("recorded_at")?),
                author: row.try_get("author")?,
                notice: row.try_get("notice")?,
                kind: ChangeKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("revision kind {kind}")))?,
                windows: Vec::new(),
            });
        }
        let kind: Option<String> = row.try_get("area_kind")?;
        let code: Option<String> = row.try_get("area_code")?;
        let start: Option<i64> = row.try_get("window_start")?;
        let end: Option<i64> = row.try_get("window_end")?;
        if let (Some(kind), Some(code), Some(start), Some(end)) = (kind, code, start, end) {
            let area = AreaKey::from_parts(&kind, &code)
                .ok_or_else(|| StoreError::Corrupt(format!("area kind {kind}")))?;
            if let Some(r) = activation.revisions.last_mut() {
                r.windows.push(AreaWindow {
                    area,
                    window: window_of(start, end)?,
                });
            }
        }
    }
    Ok(out)
}

pub(crate) fn coverage_from_row<'r, R>(row: &'r R) -> Result<Coverage, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Coverage {
        activation_id: row.try_get("activation_id")?,
        event: row.try_get("event")?,
        window: window_of(row.try_get("window_start")?, row.try_get("window_end")?)?,
    })
}

/// The first revision of a new activation.
pub(crate) fn creation(new: &NewActivation) -> Revision {
    Revision {
        number: 1,
        recorded_at: new.at,
        author: new.created_by.clone(),
        notice: new.notice.clone(),
        kind: ChangeKind::Create,
        windows: new
            .areas
            .iter()
            .map(|area| AreaWindow {
                area: area.clone(),
                window: new.window,
            })
            .collect(),
    }
}

/// The `ActivationStore` impl both databases share (see `sql_store!`), with the
/// store's own extra methods (PostgreSQL's `subscribe`).
macro_rules! activation_store {
    ($store:ty, $db:ty, { $($extra:tt)* }) => {
        const _: () = {
            use $crate::domain::activation_change::Revision;
            use $crate::store::activation_sql::{
                WINDOW_CHUNK, activations_from_rows, coverage_from_row, creation,
                insert_activation, insert_revision, insert_windows, select_activations,
                select_coverage,
            };
            use $crate::store::sql::{Dialect, settle};
            use $crate::store::{
                Activation, ActivationStore, AreaKey, Coverage, NewActivation, StoreError,
            };

            #[async_trait::async_trait]
            impl ActivationStore for $store {
                async fn add_activation(&self, new: &NewActivation) -> Result<Activation, StoreError> {
                    // Time-ordered ids: activations recorded at the same instant list in order.
                    let id = uuid::Uuid::now_v7().to_string();
                    let revision = creation(new);
                    let mut conn = self.writer().acquire().await?;
                    let written: Result<(), StoreError> = async {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        insert_activation::<$db>(&id, new)
                            .build()
                            .execute(&mut *tx)
                            .await?;
                        write_revision(&mut tx, &id, &revision).await?;
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    settle(conn, written).await?;
                    Ok(Activation {
                        id,
                        event: new.event.clone(),
                        notice: new.notice.clone(),
                        created_by: new.created_by.clone(),
                        created_at: new.at,
                        revisions: vec![revision],
                    })
                }

                async fn add_revision(&self, id: &str, revision: &Revision) -> Result<(), StoreError> {
                    let mut conn = self.writer().acquire().await?;
                    let written: Result<(), StoreError> = async {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        write_revision(&mut tx, id, revision).await?;
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    settle(conn, written).await
                }

                async fn activation(&self, id: &str) -> Result<Option<Activation>, StoreError> {
                    let mut select = select_activations::<$db>(Some(id));
                    let rows = select.build().fetch_all(self.pool()).await?;
                    Ok(activations_from_rows(&rows)?.pop())
                }

                async fn list_activations(&self) -> Result<Vec<Activation>, StoreError> {
                    let mut select = select_activations::<$db>(None);
                    activations_from_rows(&select.build().fetch_all(self.pool()).await?)
                }

                async fn coverage(&self, area: &AreaKey) -> Result<Vec<Coverage>, StoreError> {
                    let mut select = select_coverage::<$db>(area);
                    let rows = select.build().fetch_all(self.pool()).await?;
                    rows.iter().map(coverage_from_row).collect()
                }

                $($extra)*
            }

            /// Writes a revision and its windows inside `tx`, and announces the change
            /// to the other replicas on commit.
            async fn write_revision(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &str,
                revision: &Revision,
            ) -> Result<(), StoreError> {
                insert_revision::<$db>(id, revision)
                    .build()
                    .execute(&mut **tx)
                    .await?;
                for (i, chunk) in revision.windows.chunks(WINDOW_CHUNK).enumerate() {
                    insert_windows::<$db>(id, revision.number, i * WINDOW_CHUNK, chunk)
                        .build()
                        .execute(&mut **tx)
                        .await?;
                }
                if let Some((statement, channel)) = <$db as Dialect>::ANNOUNCE {
                    sqlx::query(statement)
                        .bind(channel)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }
        };
    };
}
pub(crate) use activation_store;

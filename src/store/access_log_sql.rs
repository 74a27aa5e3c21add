//! The access log's SQL, shared by SQLite and PostgreSQL: its statements, the
//! builders of its multi-row inserts and filtered queries, and its row decoding.

use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::sql::{Dialect, from_nanos, push_value, seq_from_db, seq_to_db, to_nanos};
use super::{
    AccessQuery, AccessRecord, Accountability, ChainInfo, Checkpoint, ClinicalStamp, Decision,
    SiteStamp, StoreError, StoredRecord, Value,
};

/// Rows per multi-row INSERT: 36 columns × 40 rows stays far below both databases'
/// bound-parameter limits.
pub(crate) const INSERT_CHUNK: usize = 40;

/// Rows per INSERT of disclosed patients: 4 columns.
pub(crate) const DISCLOSURE_CHUNK: usize = 1000;

/// The INSERTs of the patients `records` disclosed, one row per patient.
pub(crate) fn insert_disclosures<'a, DB>(records: &'a [StoredRecord]) -> Vec<QueryBuilder<'a, DB>>
where
    DB: Dialect,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let rows: Vec<(&StoredRecord, i64, &String)> = records
        .iter()
        .flat_map(|s| {
            (0..)
                .zip(&s.record.disclosed_patients)
                .map(move |(pos, key)| (s, pos, key))
        })
        .collect();
    rows.chunks(DISCLOSURE_CHUNK)
        .map(|chunk| {
            let mut insert = QueryBuilder::new(format!(
                "{} access_log_disclosures (chain_id, seq, pos, patient_key) ",
                DB::INSERT_BATCH
            ));
            insert.push_values(chunk, |mut row, (s, pos, key)| {
                row.push_bind(s.chain_id.as_str())
                    .push_bind(seq_to_db(s.seq))
                    .push_bind(*pos)
                    .push_bind(key.as_str());
            });
            insert
        })
        .collect()
}

pub(crate) const INSERT_CHECKPOINT: &str =
    "INSERT INTO audit_checkpoints (chain_id, seq, head_hash, at, signature) ";

/// One multi-row INSERT of `chunk`, its columns named by the record's fields;
/// `None` for no records.
pub(crate) fn insert_records<'a, DB>(chunk: &'a [StoredRecord]) -> Option<QueryBuilder<'a, DB>>
where
    DB: Dialect,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    let first = &chunk.first()?.record;
    let columns: Vec<&str> = first
        .fields()
        .into_iter()
        .chain(first.clinical_fields())
        .map(|(column, _)| column)
        .chain(first.site.fields().map(|(column, _)| column))
        .chain(Accountability::default().fields().map(|(column, _)| column))
        .collect();
    let mut insert = QueryBuilder::new(format!(
        "{} access_log (chain_id, seq, prev_hash, hash, {}) ",
        DB::INSERT_BATCH,
        columns.join(", ")
    ));
    insert.push_values(chunk, |mut row, s| {
        row.push_bind(s.chain_id.as_str())
            .push_bind(seq_to_db(s.seq))
            .push_bind(s.prev_hash.as_str())
            .push_bind(s.hash.as_str());
        for (_, value) in s.record.fields() {
            push_value(&mut row, value);
        }
        for (_, value) in s.record.clinical_fields() {
            push_value(&mut row, value);
        }
        for (_, value) in s.record.site.fields() {
            push_value(&mut row, Value::OptText(value));
        }
        for (_, value) in accountability_of(&s.record).fields() {
            push_value(&mut row, value);
        }
    });
    Some(insert)
}

fn accountability_of(r: &AccessRecord) -> &Accountability {
    static NONE: std::sync::LazyLock<Accountability> =
        std::sync::LazyLock::new(Accountability::default);
    r.accountability.as_ref().unwrap_or(&NONE)
}

/// The outbox rows of the records that queue a notice to their patient, inserted
/// in the batch's transaction: a notice exists exactly for a committed access.
pub(crate) fn insert_notices<'a, DB>(records: &'a [StoredRecord]) -> Vec<QueryBuilder<'a, DB>>
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let noticed: Vec<(&StoredRecord, &str)> = records
        .iter()
        .filter(|s| accountability_of(&s.record).patient_notice)
        .filter_map(|s| Some((s, s.record.patient_key.as_deref()?)))
        .collect();
    noticed
        .chunks(INSERT_CHUNK)
        .map(|chunk| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO patient_notices (record_id, chain_id, seq, at, facility, method, \
                 items, consent_basis, exemption_category, patient_key, next_attempt_at) ",
            );
            insert.push_values(chunk, |mut row, (s, patient)| {
                let r = &s.record;
                row.push_bind(r.id.as_str())
                    .push_bind(s.chain_id.as_str())
                    .push_bind(seq_to_db(s.seq))
                    .push_bind(to_nanos(r.at))
                    .push_bind(r.facility.as_deref())
                    .push_bind(r.method.as_str())
                    .push_bind(r.items.as_str())
                    .push_bind(r.consent_basis.as_deref())
                    .push_bind(accountability_of(r).exemption_category.as_deref())
                    .push_bind(*patient)
                    .push_bind(to_nanos(r.at));
            });
            // A record committed twice (a commit that took effect though it failed)
            // is still noticed once.
            insert.push(" ON CONFLICT (record_id) DO NOTHING");
            insert
        })
        .collect()
}

pub(crate) fn push_checkpoint<'a, DB>(insert: &mut QueryBuilder<'a, DB>, c: &'a Checkpoint)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    insert.push_values(std::iter::once(c), |mut row, c| {
        row.push_bind(c.chain_id.clone())
            .push_bind(seq_to_db(c.seq))
            .push_bind(c.head_hash.clone())
            .push_bind(to_nanos(c.at))
            .push_bind(c.signature.clone());
    });
}

/// Each record of the selection `FROM (...) AS r` with its disclosed patients, one
/// row each (`disclosed`, NULL for none), in the selection's order: read with
/// `records_from_rows`.
const WITH_DISCLOSURES: &str = "SELECT r.*, d.patient_key AS disclosed FROM (";
const JOIN_DISCLOSURES: &str = ") AS r LEFT JOIN access_log_disclosures d \
     ON d.chain_id = r.chain_id AND d.seq = r.seq";

/// The records matching `q`, in (time, chain, seq) order, at most `limit`, with
/// their disclosed patients.
pub(crate) fn query_records<'a, DB>(q: &'a AccessQuery, limit: u32) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new(WITH_DISCLOSURES);
    b.push("SELECT * FROM access_log WHERE TRUE");
    if let Some(from) = q.from {
        b.push(" AND at >= ").push_bind(to_nanos(from));
    }
    if let Some(until) = q.until {
        b.push(" AND at < ").push_bind(to_nanos(until));
    }
    let text_filters = [
        ("facility", &q.facility),
        ("staff_id", &q.staff_id),
        ("activation_id", &q.activation_id),
        ("reason", &q.reason),
        ("consent_basis", &q.consent_basis),
    ];
    for (column, value) in text_filters {
        if let Some(v) = value {
            b.push(format_args!(" AND {column} = "))
                .push_bind(v.clone());
        }
    }
    if let Some(key) = &q.patient_key {
        // Named by the call, or shown by it (a search's candidates).
        b.push(" AND (patient_key = ")
            .push_bind(key.clone())
            .push(
                " OR (chain_id, seq) IN (SELECT chain_id, seq FROM access_log_disclosures \
                 WHERE patient_key = ",
            )
            .push_bind(key.clone())
            .push("))");
    }
    if !q.excluded_upstream_results.is_empty() {
        b.push(" AND (upstream_result IS NULL OR upstream_result NOT IN (");
        let mut list = b.separated(", ");
        for result in &q.excluded_upstream_results {
            list.push_bind(result.clone());
        }
        b.push("))");
    }
    if let Some(d) = q.decision {
        b.push(" AND decision = ").push_bind(d.as_str().to_string());
    }
    if let Some(review) = q.needs_review {
        b.push(" AND needs_review = ").push_bind(review);
    }
    push_accountability_filters(&mut b, q);
    if let Some(c) = &q.after {
        // Row-value comparison, spelled out: both databases use the (at, chain, seq) index.
        let at = to_nanos(c.at);
        b.push(" AND (at > ")
            .push_bind(at)
            .push(" OR (at = ")
            .push_bind(at)
            .push(" AND (chain_id > ")
            .push_bind(c.chain_id.clone())
            .push(" OR (chain_id = ")
            .push_bind(c.chain_id.clone())
            .push(" AND seq > ")
            .push_bind(seq_to_db(c.seq))
            .push("))))");
    }
    b.push(" ORDER BY at, chain_id, seq LIMIT ")
        .push_bind(i64::from(limit))
        .push(JOIN_DISCLOSURES)
        .push(" ORDER BY r.at, r.chain_id, r.seq, d.pos");
    b
}

/// The filters on the accountability section: a record's kind and operator, and
/// whether a review outcome refers to a flagged access yet.
fn push_accountability_filters<'a, DB>(b: &mut QueryBuilder<'a, DB>, q: &'a AccessQuery)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    if let Some(kind) = &q.kind {
        b.push(" AND record_kind = ").push_bind(kind.clone());
    }
    if let Some(operator) = &q.operator {
        b.push(" AND operator = ").push_bind(operator.clone());
    }
    if q.unreviewed_only {
        b.push(UNREVIEWED);
    }
    if q.hide_patient_view_reads {
        b.push(" AND (method <> 'QueryPatientAccesses' OR record_kind IS NULL)");
    }
}

/// A flagged access no review outcome refers to yet (the table is `access_log`
/// unaliased in the filtered selection).
const UNREVIEWED: &str = " AND needs_review AND NOT EXISTS (SELECT 1 FROM access_log o \
     WHERE o.subject_record = access_log.id AND o.record_kind = 'review_outcome')";

/// `$1` before: flagged accesses made before it and not reviewed yet.
pub(crate) const COUNT_OVERDUE: &str = "SELECT COUNT(*) FROM access_log WHERE at < $1 \
     AND needs_review AND NOT EXISTS (SELECT 1 FROM access_log o \
     WHERE o.subject_record = access_log.id AND o.record_kind = 'review_outcome')";

/// `$1` id: the record with this id (ids are UUIDs, unique in practice).
pub(crate) const RECORD_BY_ID: &str = "SELECT r.*, NULL AS disclosed FROM \
     (SELECT * FROM access_log WHERE id = $1 ORDER BY at LIMIT 1) AS r";

/// Records read with their disclosed patients (`WITH_DISCLOSURES`): a record's
/// rows follow each other, one per disclosed patient.
pub(crate) fn records_from_rows<'r, R>(rows: &'r [R]) -> Result<Vec<StoredRecord>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut out: Vec<StoredRecord> = Vec::new();
    for row in rows {
        let chain_id: String = row.try_get("chain_id")?;
        let seq = seq_from_db(row.try_get("seq")?)?;
        if out
            .last()
            .is_none_or(|s| s.chain_id != chain_id || s.seq != seq)
        {
            out.push(stored_from_row(row)?);
        }
        let disclosed: Option<String> = row.try_get("disclosed")?;
        if let (Some(key), Some(s)) = (disclosed, out.last_mut()) {
            s.record.disclosed_patients.push(key);
        }
    }
    Ok(out)
}

pub(crate) fn stored_from_row<'r, R>(row: &'r R) -> Result<StoredRecord, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let decision: String = row.try_get("decision")?;
    Ok(StoredRecord {
        chain_id: row.try_get("chain_id")?,
        seq: seq_from_db(row.try_get("seq")?)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        record: AccessRecord {
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
            disclosed_patients: Vec::new(),
            clinical: ClinicalStamp::of(row.try_get("access_mode")?, row.try_get("consent_kinds")?),
            site: SiteStamp {
                site_id: row.try_get("site_id")?,
                site_kind: row.try_get("site_kind")?,
                site_name: row.try_get("site_name")?,
                site_sponsor: row.try_get("site_sponsor")?,
                licence_number: row.try_get("licence_number")?,
            },
            accountability: accountability_from_row(row)?,
        },
    })
}

fn accountability_from_row<'r, R>(row: &'r R) -> Result<Option<Accountability>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let a = Accountability {
        exemption_category: row.try_get("exemption_category")?,
        patient_notice: row.try_get("patient_notice")?,
        kind: row.try_get("record_kind")?,
        subject_record: row.try_get("subject_record")?,
        outcome: row.try_get("review_outcome")?,
        note: row.try_get("review_note")?,
        operator: row.try_get("operator")?,
        audit_query: row.try_get("audit_query")?,
        result_count: row.try_get("result_count")?,
    };
    Ok((!a.is_empty()).then_some(a))
}

pub(crate) fn checkpoint_from_row<'r, R>(row: &'r R) -> Result<Checkpoint, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Checkpoint {
        chain_id: row.try_get("chain_id")?,
        seq: seq_from_db(row.try_get("seq")?)?,
        head_hash: row.try_get("head_hash")?,
        at: from_nanos(row.try_get("at")?),
        signature: row.try_get("signature")?,
    })
}

pub(crate) fn chain_from_row<'r, R>(row: &'r R) -> Result<ChainInfo, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ChainInfo {
        chain_id: row.try_get("chain_id")?,
        public_key: row.try_get("public_key")?,
        created_at: from_nanos(row.try_get("created_at")?),
    })
}

pub(crate) fn head_from_row<'r, R>(row: &'r R) -> Result<super::ChainHead, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(super::ChainHead {
        seq: seq_from_db(row.try_get("seq")?)?,
        hash: row.try_get("hash")?,
    })
}

pub(crate) const REGISTER_CHAIN: &str = "INSERT INTO audit_chains (chain_id, public_key, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (chain_id) DO NOTHING";

pub(crate) const CHAIN_KEY: &str = "SELECT public_key FROM audit_chains WHERE chain_id = $1";

pub(crate) const SELECT_CHAINS: &str = "SELECT * FROM audit_chains ORDER BY created_at, chain_id";

pub(crate) const LOGGED_CHAIN_IDS: &str = "SELECT chain_id FROM access_log \
     UNION SELECT chain_id FROM audit_checkpoints ORDER BY chain_id";

/// A checkpoint is the head when retention pruned every record up to it.
pub(crate) const CHAIN_HEAD: &str = "SELECT seq, hash FROM \
     (SELECT seq, hash FROM access_log WHERE chain_id = $1 \
     UNION ALL SELECT seq, head_hash AS hash FROM audit_checkpoints WHERE chain_id = $1) AS heads \
     ORDER BY seq DESC LIMIT 1";

pub(crate) const CHAIN_RECORDS: &str = "SELECT r.*, d.patient_key AS disclosed FROM \
     (SELECT * FROM access_log WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) AS r \
     LEFT JOIN access_log_disclosures d ON d.chain_id = r.chain_id AND d.seq = r.seq \
     ORDER BY r.seq, d.pos";

pub(crate) const SELECT_CHECKPOINTS: &str =
    "SELECT * FROM audit_checkpoints WHERE chain_id = $1 ORDER BY seq";

/// The checkpoint a prune keeps as its anchor; the dialect may lock it.
pub(crate) const ANCHOR_CHECKPOINT: &str =
    "SELECT seq FROM audit_checkpoints WHERE chain_id = $1 AND seq = $2";

pub(crate) const PRUNE_RECORDS: &str = "DELETE FROM access_log WHERE chain_id = $1 AND seq <= $2";

/// Every checkpoint before the one kept as the anchor.
pub(crate) const PRUNE_CHECKPOINTS: &str =
    "DELETE FROM audit_checkpoints WHERE chain_id = $1 AND seq < $2";

pub(crate) fn key_conflict(chain: &ChainInfo) -> StoreError {
    StoreError::Conflict(format!(
        "chain {} is registered with another public key",
        chain.chain_id
    ))
}

pub(crate) fn no_anchor(chain_id: &str, through_seq: u64) -> StoreError {
    StoreError::Conflict(format!(
        "no checkpoint of chain {chain_id} at {through_seq} to anchor what remains"
    ))
}

/// The `AuditStore` impl both databases share (see `sql_store!`).
macro_rules! audit_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::store::access_log_sql::*;
            use $crate::store::search_sql::insert_searches;
            use $crate::store::sql::{Dialect, find, seq_to_db, settle, to_nanos};
            use $crate::store::{
                AccessQuery, AuditStore, ChainHead, ChainInfo, Checkpoint, StoreError, StoredRecord,
            };

            #[async_trait::async_trait]
            impl AuditStore for $store {
                async fn register_chain(&self, chain: &ChainInfo) -> Result<(), StoreError> {
                    // The key is read back on the connection that wrote it.
                    let mut conn = self.writer().acquire().await?;
                    sqlx::query(REGISTER_CHAIN)
                        .bind(&chain.chain_id)
                        .bind(&chain.public_key)
                        .bind(to_nanos(chain.created_at))
                        .execute(&mut *conn)
                        .await?;
                    let known: String = sqlx::query_scalar(CHAIN_KEY)
                        .bind(&chain.chain_id)
                        .fetch_one(&mut *conn)
                        .await?;
                    if known != chain.public_key {
                        return Err(key_conflict(chain));
                    }
                    Ok(())
                }

                async fn chains(&self) -> Result<Vec<ChainInfo>, StoreError> {
                    let rows = sqlx::query(SELECT_CHAINS).fetch_all(self.pool()).await?;
                    rows.iter().map(chain_from_row).collect()
                }

                async fn logged_chain_ids(&self) -> Result<Vec<String>, StoreError> {
                    let select = sqlx::query_scalar(LOGGED_CHAIN_IDS);
                    Ok(select.fetch_all(self.pool()).await?)
                }

                async fn chain_head(
                    &self,
                    chain_id: &str,
                ) -> Result<Option<ChainHead>, StoreError> {
                    find(self.pool(), CHAIN_HEAD, chain_id, |row| head_from_row(row)).await
                }

                async fn append(
                    &self,
                    records: &[StoredRecord],
                    checkpoint: Option<&Checkpoint>,
                ) -> Result<(), StoreError> {
                    // One multi-row INSERT per chunk: a round trip per batch rather than
                    // per record. A taken (chain_id, seq) fails the INSERT, and the
                    // dropped transaction rolls back the whole batch: another replica's
                    // records are never interleaved.
                    let mut held = self.writer().hold().await?;
                    let written: Result<(), StoreError> = async {
                        let mut tx = sqlx::Connection::begin(held.conn()).await?;
                        for chunk in records.chunks(INSERT_CHUNK) {
                            if let Some(mut insert) = insert_records::<$db>(chunk) {
                                insert.build().execute(&mut *tx).await?;
                            }
                        }
                        for mut insert in insert_disclosures::<$db>(records) {
                            insert.build().execute(&mut *tx).await?;
                        }
                        for mut insert in insert_searches::<$db>(records) {
                            insert.build().execute(&mut *tx).await?;
                        }
                        for mut insert in insert_notices::<$db>(records) {
                            insert.build().execute(&mut *tx).await?;
                        }
                        if let Some(c) = checkpoint {
                            let mut insert = sqlx::QueryBuilder::<$db>::new(INSERT_CHECKPOINT);
                            push_checkpoint(&mut insert, c);
                            insert.build().execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    held.settle(written).await
                }

                async fn chain_records(
                    &self,
                    chain_id: &str,
                    after: u64,
                    limit: u32,
                ) -> Result<Vec<StoredRecord>, StoreError> {
                    let rows = sqlx::query(CHAIN_RECORDS)
                        .bind(chain_id)
                        .bind(seq_to_db(after))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?;
                    records_from_rows(&rows)
                }

                async fn checkpoints(&self, chain_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
                    let select = sqlx::query(SELECT_CHECKPOINTS).bind(chain_id);
                    let rows = select.fetch_all(self.pool()).await?;
                    rows.iter().map(checkpoint_from_row).collect()
                }

                async fn query(
                    &self,
                    query: &AccessQuery,
                    limit: u32,
                ) -> Result<Vec<StoredRecord>, StoreError> {
                    let mut select = query_records::<$db>(query, limit);
                    let rows = select.build().fetch_all(self.pool()).await?;
                    records_from_rows(&rows)
                }

                async fn count_overdue_reviews(
                    &self,
                    before: chrono::DateTime<chrono::Utc>,
                ) -> Result<u64, StoreError> {
                    let n: i64 = sqlx::query_scalar(COUNT_OVERDUE)
                        .bind(to_nanos(before))
                        .fetch_one(self.pool())
                        .await?;
                    $crate::store::sql::count_from_db(n)
                }

                async fn record_by_id(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
                    let rows = sqlx::query(RECORD_BY_ID)
                        .bind(id)
                        .fetch_all(self.pool())
                        .await?;
                    Ok(records_from_rows(&rows)?.into_iter().next())
                }

                async fn prune(&self, chain_id: &str, through_seq: u64) -> Result<u64, StoreError> {
                    let through = seq_to_db(through_seq);
                    let anchor = format!("{ANCHOR_CHECKPOINT}{}", <$db as Dialect>::ANCHOR_LOCK);
                    let mut conn = self.writer().acquire().await?;
                    let pruned: Result<u64, StoreError> = async {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        let anchored: Option<i64> = sqlx::query_scalar(&anchor)
                            .bind(chain_id)
                            .bind(through)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if anchored.is_none() {
                            return Err(no_anchor(chain_id, through_seq));
                        }
                        let deleted = sqlx::query(PRUNE_RECORDS)
                            .bind(chain_id)
                            .bind(through)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        sqlx::query(PRUNE_CHECKPOINTS)
                            .bind(chain_id)
                            .bind(through)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(deleted)
                    }
                    .await;
                    settle(conn, pruned).await
                }
            }
        };
    };
}
pub(crate) use audit_store;

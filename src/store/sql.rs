//! SQL shared by the SQLite and PostgreSQL stores: both keep instants as integer
//! nanoseconds and hashes as hex text, so the access log's statements and row
//! decoding are written once, generic over the database.

use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::{AccessQuery, AccessRecord, ChainInfo, Checkpoint, Decision, StoreError, StoredRecord};

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

fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence number {seq}")))
}

/// Rows per multi-row INSERT: 24 columns × 40 rows stays far below both databases'
/// bound-parameter limits.
pub(crate) const INSERT_CHUNK: usize = 40;

pub(crate) const INSERT_RECORDS: &str = "INSERT INTO access_log (chain_id, seq, prev_hash, hash, id, at, method, items, facility, \
     staff_id, staff_role, patient_key, identification, search_id, consent_basis, exemption_reason, \
     exemption_identification, purpose, activation_id, decision, reason, grpc_code, upstream_result, needs_review) ";

pub(crate) const INSERT_CHECKPOINT: &str =
    "INSERT INTO audit_checkpoints (chain_id, seq, head_hash, at, signature) ";

pub(crate) fn push_records<'a, DB>(insert: &mut QueryBuilder<'a, DB>, chunk: &'a [StoredRecord])
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    insert.push_values(chunk, |mut row, s| {
        let r = &s.record;
        row.push_bind(s.chain_id.clone())
            .push_bind(seq_to_db(s.seq))
            .push_bind(s.prev_hash.clone())
            .push_bind(s.hash.clone())
            .push_bind(r.id.clone())
            .push_bind(to_nanos(r.at))
            .push_bind(r.method.clone())
            .push_bind(r.items.clone())
            .push_bind(r.facility.clone())
            .push_bind(r.staff_id.clone())
            .push_bind(r.staff_role.clone())
            .push_bind(r.patient_key.clone())
            .push_bind(r.identification.clone())
            .push_bind(r.search_id.clone())
            .push_bind(r.consent_basis.clone())
            .push_bind(r.exemption_reason.clone())
            .push_bind(r.exemption_identification.clone())
            .push_bind(r.purpose.clone())
            .push_bind(r.activation_id.clone())
            .push_bind(r.decision.as_str().to_string())
            .push_bind(r.reason.clone())
            .push_bind(r.grpc_code)
            .push_bind(r.upstream_result.clone())
            .push_bind(r.needs_review);
    });
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

/// `SELECT * FROM access_log WHERE <filters> ORDER BY at, chain_id, seq LIMIT <limit>`.
pub(crate) fn query_records<'a, DB>(q: &'a AccessQuery, limit: u32) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    let mut b = QueryBuilder::new("SELECT * FROM access_log WHERE TRUE");
    if let Some(from) = q.from {
        b.push(" AND at >= ").push_bind(to_nanos(from));
    }
    if let Some(until) = q.until {
        b.push(" AND at < ").push_bind(to_nanos(until));
    }
    let text_filters = [
        ("facility", &q.facility),
        ("staff_id", &q.staff_id),
        ("patient_key", &q.patient_key),
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
    if let Some(d) = q.decision {
        b.push(" AND decision = ").push_bind(d.as_str().to_string());
    }
    if let Some(review) = q.needs_review {
        b.push(" AND needs_review = ").push_bind(review);
    }
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
        .push_bind(i64::from(limit));
    b
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
        },
    })
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

pub(crate) fn head_of(
    seq: Option<i64>,
    hash: Option<String>,
) -> Result<Option<super::ChainHead>, StoreError> {
    match (seq, hash) {
        (Some(seq), Some(hash)) => Ok(Some(super::ChainHead {
            seq: seq_from_db(seq)?,
            hash,
        })),
        _ => Ok(None),
    }
}

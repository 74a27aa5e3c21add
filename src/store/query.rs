//! What the access log can be asked: the filters shared by the operator, facility
//! and patient views, and a cursor for paging through them.

use chrono::{DateTime, Utc};

use super::Decision;

/// Filters; every one that is set must hold. Results come in (time, chain, seq) order.
/// `patient_key` finds the records that named the patient and those that disclosed
/// them (an attribute search that listed them as a candidate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessQuery {
    /// First instant included.
    pub from: Option<DateTime<Utc>>,
    /// First instant excluded.
    pub until: Option<DateTime<Utc>>,
    pub facility: Option<String>,
    pub staff_id: Option<String>,
    pub patient_key: Option<String>,
    pub activation_id: Option<String>,
    pub decision: Option<Decision>,
    pub reason: Option<String>,
    pub consent_basis: Option<String>,
    /// Only records flagged for review (the life-or-body exemption accesses).
    pub needs_review: Option<bool>,
    /// Leaves out records whose upstream answer summary is one of these, e.g. a
    /// lookup that found no one.
    pub excluded_upstream_results: Vec<String>,
    /// Resume after this record.
    pub after: Option<Cursor>,
    /// Only flagged records that no review outcome refers to yet.
    pub unreviewed_only: bool,
    /// Only records of this kind (`review_outcome`, `audit_read`).
    pub kind: Option<String>,
    /// Only records made by this operator (`<role>:<id>`).
    pub operator: Option<String>,
    /// Leaves out the reads of the log made through the patient view itself.
    pub hide_patient_view_reads: bool,
}

/// The position of one record in query order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub chain_id: String,
    pub seq: u64,
}

impl Cursor {
    /// An opaque page token: `<nanos>.<chain>.<seq>`.
    pub fn to_token(&self) -> String {
        format!(
            "{}.{}.{}",
            self.at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            self.chain_id,
            self.seq
        )
    }

    pub fn from_token(token: &str) -> Option<Cursor> {
        let mut parts = token.splitn(3, '.');
        let at = parts.next()?.parse::<i64>().ok()?;
        let chain_id = parts.next()?.to_string();
        let seq = parts.next()?.parse::<u64>().ok()?;
        if chain_id.is_empty() || !chain_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        Some(Cursor {
            at: DateTime::from_timestamp_nanos(at),
            chain_id,
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_token() {
        let c = Cursor {
            at: DateTime::from_timestamp_nanos(1_647_529_200_123_456_789),
            chain_id: "a1b2c3d4e5f60718".into(),
            seq: 42,
        };
        assert_eq!(Cursor::from_token(&c.to_token()), Some(c));
    }

    #[test]
    fn a_malformed_token_is_refused() {
        for t in [
            "", "1.2", "x.abc.1", "1..1", "1.abc.-1", "1.a-b.1", "1.abc.x",
        ] {
            assert_eq!(Cursor::from_token(t), None, "{t}");
        }
    }
}

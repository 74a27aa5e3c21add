//! What a record carries so that an access can be answered for afterwards: the
//! exemption's reason category, whether the patient is told of it, and the records
//! of the log's own accountability (review outcomes, reads of the log). Kept
//! together, hashed as one tagged section after the rest of the record (docs/audit.md).

use super::Value;

/// `AccessRecord::kind` of a review outcome.
pub const KIND_REVIEW_OUTCOME: &str = "review_outcome";
/// `AccessRecord::kind` of a read of the log by an operator.
pub const KIND_AUDIT_READ: &str = "audit_read";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accountability {
    /// With the exemption: the reason's category (`ExemptionCategory::as_str`).
    pub exemption_category: Option<String>,
    /// A notice to the patient was queued in the outbox with this record.
    pub patient_notice: bool,
    /// `None` for a terminal's call; `review_outcome` or `audit_read` otherwise.
    pub kind: Option<String>,
    /// Of a review outcome: the id of the access reviewed.
    pub subject_record: Option<String>,
    /// Of a review outcome: `justified`, `not_justified` or `needs_follow_up`.
    pub outcome: Option<String>,
    /// Of a review outcome: the reviewer's note.
    pub note: Option<String>,
    /// Of a review outcome or a read of the log: `<role>:<id>` from the certificate.
    pub operator: Option<String>,
    /// Of a read of the log: the RPC and its filters.
    pub audit_query: Option<String>,
    /// Of a read of the log: how many records it returned.
    pub result_count: Option<i64>,
}

impl Accountability {
    /// Whether nothing is set: such a record has no section and hashes as before.
    pub fn is_empty(&self) -> bool {
        self == &Accountability::default()
    }

    /// The columns, in the one order of the table and of the hash section.
    pub fn fields(&self) -> [(&'static str, Value<'_>); 9] {
        [
            ("exemption_category", text(&self.exemption_category)),
            ("patient_notice", Value::Bool(self.patient_notice)),
            ("record_kind", text(&self.kind)),
            ("subject_record", text(&self.subject_record)),
            ("review_outcome", text(&self.outcome)),
            ("review_note", text(&self.note)),
            ("operator", text(&self.operator)),
            ("audit_query", text(&self.audit_query)),
            ("result_count", Value::OptBigInt(self.result_count)),
        ]
    }
}

fn text(v: &Option<String>) -> Value<'_> {
    Value::OptText(v.as_deref())
}

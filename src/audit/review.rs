//! Review of a flagged access: what a reviewer may record, and the outcome as a
//! record of its own, appended to the chain and referring to the access (the
//! access's record is never edited).

use chrono::{DateTime, Utc};

use crate::domain::names::validate_text;
use crate::domain::{Reason, Violation};
use crate::store::{AccessRecord, Accountability, KIND_REVIEW_OUTCOME, StoredRecord};

/// At most this many characters in a reviewer's note.
pub const NOTE_MAX_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Justified,
    NotJustified,
    NeedsFollowUp,
}

impl Outcome {
    /// From the wire enum `ReviewOutcome`: 1, 2, 3.
    pub fn from_wire(n: i32) -> Option<Outcome> {
        match n {
            1 => Some(Outcome::Justified),
            2 => Some(Outcome::NotJustified),
            3 => Some(Outcome::NeedsFollowUp),
            _ => None,
        }
    }

    pub fn wire(self) -> i32 {
        match self {
            Outcome::Justified => 1,
            Outcome::NotJustified => 2,
            Outcome::NeedsFollowUp => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Justified => "justified",
            Outcome::NotJustified => "not_justified",
            Outcome::NeedsFollowUp => "needs_follow_up",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Justified,
            Outcome::NotJustified,
            Outcome::NeedsFollowUp,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A review as requested, judged before the access is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewInput {
    pub record_id: String,
    pub outcome: Outcome,
    pub note: Option<String>,
}

/// Judges the request's fields: the access named, an outcome, and a note (required
/// unless the access is found justified). Every field at fault is named.
pub fn review_input(record_id: &str, outcome: i32, note: &str) -> Result<ReviewInput, Violation> {
    let mut faults = Vec::new();
    let record_id = record_id.trim();
    if record_id.is_empty() {
        faults.push(Violation::new(
            Reason::ReviewSubjectNotFound,
            "record_id",
            "name the record_id of the flagged access reviewed",
        ));
    }
    let outcome = Outcome::from_wire(outcome);
    if outcome.is_none() {
        faults.push(Violation::new(
            Reason::ReviewOutcomeInvalid,
            "outcome",
            "the outcome is 1 (justified), 2 (not justified) or 3 (needs follow-up with the facility)",
        ));
    }
    let note = match validate_text("note", note, NOTE_MAX_CHARS, Reason::ReviewNoteInvalid) {
        Ok(n) => (!n.is_empty()).then_some(n),
        Err(v) => {
            faults.push(v);
            None
        }
    };
    if note.is_none()
        && matches!(
            outcome,
            Some(Outcome::NotJustified | Outcome::NeedsFollowUp)
        )
        && faults.iter().all(|f| f.field != "note")
    {
        faults.push(Violation::new(
            Reason::ReviewNoteInvalid,
            "note",
            "an access found not justified, or needing follow-up, needs a note saying why",
        ));
    }
    if let Some(v) = Violation::merge(faults) {
        return Err(v);
    }
    Ok(ReviewInput {
        record_id: record_id.to_string(),
        outcome: outcome.unwrap_or(Outcome::Justified),
        note,
    })
}

/// The outcome's record: `subject` must be a flagged access.
pub fn outcome_record(
    subject: &StoredRecord,
    input: &ReviewInput,
    reviewer: &str,
    at: DateTime<Utc>,
) -> Result<AccessRecord, Violation> {
    if !subject.record.needs_review {
        return Err(Violation::new(
            Reason::ReviewSubjectNotFlagged,
            "record_id",
            format!(
                "record {} is not an access flagged for review; only accesses under the exemption are reviewed",
                input.record_id
            ),
        ));
    }
    Ok(AccessRecord {
        accountability: Some(Accountability {
            kind: Some(KIND_REVIEW_OUTCOME.into()),
            subject_record: Some(subject.record.id.clone()),
            outcome: Some(input.outcome.as_str().into()),
            note: input.note.clone(),
            operator: Some(reviewer.to_string()),
            ..Accountability::default()
        }),
        ..AccessRecord::operators("RecordReviewOutcome", KIND_REVIEW_OUTCOME, at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::tests::record;

    fn fields(r: Result<ReviewInput, Violation>) -> Vec<(Reason, String)> {
        r.expect_err("refused")
            .all()
            .map(|v| (v.reason, v.field.clone()))
            .collect()
    }

    #[test]
    fn a_justified_access_needs_no_note() {
        let input = review_input(" r1 ", 1, "").expect("fine");
        assert_eq!(input.record_id, "r1");
        assert_eq!(input.outcome, Outcome::Justified);
        assert_eq!(input.note, None);
    }

    #[test]
    fn the_other_outcomes_need_a_note() {
        for n in [2, 3] {
            assert_eq!(
                fields(review_input("r1", n, " ")),
                [(Reason::ReviewNoteInvalid, "note".to_string())]
            );
            let input = review_input("r1", n, "家族への確認が取れていない").expect("with a note");
            assert_eq!(input.outcome.wire(), n);
        }
    }

    #[test]
    fn every_field_at_fault_is_named() {
        assert_eq!(
            fields(review_input("", 0, &"x".repeat(1001))),
            [
                (Reason::ReviewSubjectNotFound, "record_id".to_string()),
                (Reason::ReviewOutcomeInvalid, "outcome".to_string()),
                (Reason::ReviewNoteInvalid, "note".to_string()),
            ]
        );
        for n in [4, -1, i32::MAX] {
            assert_eq!(
                fields(review_input("r", n, "x"))[0].0,
                Reason::ReviewOutcomeInvalid
            );
        }
        assert!(review_input("r", 1, &"x".repeat(1000)).is_ok());
        assert_eq!(
            fields(review_input("r", 1, "a\u{0}b")),
            [(Reason::ReviewNoteInvalid, "note".to_string())]
        );
    }

    fn stored(needs_review: bool) -> StoredRecord {
        let mut r = record("access-1");
        r.needs_review = needs_review;
        StoredRecord {
            chain_id: "c1".into(),
            seq: 1,
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
            record: r,
        }
    }

    #[test]
    fn the_outcome_refers_to_the_access_and_edits_nothing() {
        let subject = stored(true);
        let input = review_input("access-1", 2, "不要な閲覧").expect("valid");
        let at = chrono::DateTime::from_timestamp_nanos(1_700_000_000_000_000_000);
        let r = outcome_record(&subject, &input, "reviewer:kato", at).expect("flagged");
        let a = r.accountability.expect("section");
        assert_eq!(a.kind.as_deref(), Some(KIND_REVIEW_OUTCOME));
        assert_eq!(a.subject_record.as_deref(), Some("access-1"));
        assert_eq!(a.outcome.as_deref(), Some("not_justified"));
        assert_eq!(a.operator.as_deref(), Some("reviewer:kato"));
        assert!(!r.needs_review, "an outcome is not itself to be reviewed");
        assert_ne!(r.id, "access-1");
    }

    #[test]
    fn only_flagged_accesses_are_reviewed() {
        let input = review_input("access-1", 1, "").expect("valid");
        let v = outcome_record(&stored(false), &input, "auditor:a", chrono::Utc::now())
            .expect_err("not flagged");
        assert_eq!(v.reason, Reason::ReviewSubjectNotFlagged);
    }

    #[test]
    fn outcome_names_round_trip() {
        for n in 1..=3 {
            let o = Outcome::from_wire(n).expect("known");
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::from_wire(0), None);
    }
}

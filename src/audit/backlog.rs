//! The records of calls the access log could not take in time. Their callers were
//! refused with AUDIT_UNAVAILABLE (no data left with them), and each record is
//! rewritten to say so; the writer keeps them here and commits them, in order and
//! before anything newer, once the store takes writes again.
//!
//! A commit that failed may still have taken effect (its acknowledgement was lost):
//! its records are held "in doubt" until the chain's head is read back, and kept only
//! if the head shows they are not stored, so none is written twice.

use std::collections::VecDeque;

use crate::domain::Reason;
use crate::store::{AccessRecord, Decision};
use crate::telemetry::metrics::AuditMetrics;

pub(super) struct Backlog {
    records: VecDeque<AccessRecord>,
    in_doubt: Option<InDoubt>,
    limit: usize,
    metrics: AuditMetrics,
}

/// The records of a failed commit, and the chain position the last of them took.
struct InDoubt {
    last_seq: u64,
    records: Vec<AccessRecord>,
}

impl Backlog {
    pub(super) fn new(limit: usize, metrics: AuditMetrics) -> Backlog {
        Backlog {
            records: VecDeque::new(),
            in_doubt: None,
            limit: limit.max(1),
            metrics,
        }
    }

    /// Nothing waits to be committed or checked.
    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty() && self.in_doubt.is_none()
    }

    pub(super) fn len(&self) -> usize {
        self.records.len() + self.in_doubt.as_ref().map_or(0, |d| d.records.len())
    }

    /// Keeps the records of refused calls, after those already kept.
    pub(super) fn keep(&mut self, records: impl IntoIterator<Item = AccessRecord>) {
        for record in records {
            if self.len() >= self.limit {
                // Memory is the bound: say so loudly, and count each one.
                self.metrics.lost.inc();
                tracing::error!(
                    id = record.id,
                    limit = self.limit,
                    "the access-log backlog is full: the record of a refused call is lost"
                );
                continue;
            }
            self.records.push_back(refused(record));
        }
        self.publish();
    }

    /// Holds the records of a commit whose outcome is unknown, ending at `last_seq`.
    pub(super) fn doubt(&mut self, last_seq: u64, records: Vec<AccessRecord>) {
        let records = records.into_iter().map(refused).collect();
        self.in_doubt = Some(InDoubt { last_seq, records });
        self.publish();
    }

    /// Settles the records in doubt against the chain's head: stored if the head
    /// reached them, otherwise kept, ahead of everything later.
    pub(super) fn settle(&mut self, head_seq: u64) {
        let Some(doubt) = self.in_doubt.take() else {
            return;
        };
        if head_seq >= doubt.last_seq {
            tracing::info!(
                records = doubt.records.len(),
                "a commit reported as failed had taken effect; its records are stored"
            );
        } else {
            for record in doubt.records.into_iter().rev() {
                self.records.push_front(record);
            }
        }
        self.publish();
    }

    /// Up to `n` of the oldest records, to be committed next.
    pub(super) fn take(&mut self, n: usize) -> Vec<AccessRecord> {
        let n = n.min(self.records.len());
        let taken = self.records.drain(..n).collect();
        self.publish();
        taken
    }

    fn publish(&self) {
        self.metrics
            .pending
            .set(i64::try_from(self.len()).unwrap_or(i64::MAX));
    }
}

/// The record as its caller was answered: refused, because the access log could not
/// take it. What the rules and the upstream did stays, e.g. the upstream's result.
fn refused(mut record: AccessRecord) -> AccessRecord {
    if record.decision == Decision::Allowed {
        // Fetched but never delivered.
        record.decision = Decision::Failed;
    }
    record.reason = Some(Reason::AuditUnavailable.as_str().to_string());
    record.grpc_code = tonic::Code::Unavailable as i32;
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AccessRecord {
        let mut r = crate::audit::chain::tests::record(id);
        r.decision = Decision::Allowed;
        r.grpc_code = 0;
        r.reason = None;
        r
    }

    fn ids(records: &[AccessRecord]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn kept_records_say_their_call_was_refused_for_the_access_log() {
        let mut backlog = Backlog::new(10, AuditMetrics::default());
        backlog.keep([record("a")]);
        let taken = backlog.take(10);
        assert_eq!(taken[0].decision, Decision::Failed);
        assert_eq!(taken[0].reason.as_deref(), Some("AUDIT_UNAVAILABLE"));
        assert_eq!(taken[0].grpc_code, tonic::Code::Unavailable as i32);
        assert!(backlog.is_empty());
    }

    #[test]
    fn records_in_doubt_go_first_unless_the_head_shows_them_stored() {
        let mut backlog = Backlog::new(10, AuditMetrics::default());
        backlog.keep([record("later")]);
        backlog.doubt(7, vec![record("a"), record("b")]);
        assert_eq!(backlog.len(), 3);
        backlog.settle(5);
        assert_eq!(ids(&backlog.take(10)), ["a", "b", "later"]);

        backlog.doubt(7, vec![record("c")]);
        backlog.settle(7);
        assert!(backlog.is_empty(), "stored: not written twice");
    }

    #[test]
    fn beyond_its_limit_records_are_counted_as_lost() {
        let metrics = AuditMetrics::default();
        let mut backlog = Backlog::new(2, metrics.clone());
        backlog.keep([record("a"), record("b"), record("c")]);
        assert_eq!(backlog.len(), 2);
        assert_eq!(metrics.lost.get(), 1);
        assert_eq!(metrics.pending.get(), 2);
        assert_eq!(ids(&backlog.take(1)), ["a"]);
        assert_eq!(metrics.pending.get(), 1);
    }
}

//! A global bound on patient-data calls in flight, with load shedding: a call beyond
//! the bound is refused at once with OVERLOADED and a short retry hint, instead of
//! joining a queue with no bound.
//!
//! It sits inside the audit layer (so the refusal is recorded like any other) and after
//! the identity and rate-limit rules (so the record names the facility, and a facility
//! over its rate never takes a slot). A slot is held from there until the call's access
//! record is committed: a store slow to commit fills the slots and sheds new calls at
//! once, instead of letting them pile up in the access log's queue.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;
use tonic::Request;

use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, Rule};
use crate::status::RETRY_AFTER_MS;

/// The retry hint of OVERLOADED lies in `[RETRY_HINT, 2 × RETRY_HINT)`, randomised so
/// that callers shed together do not come back together.
pub const RETRY_HINT: Duration = Duration::from_millis(200);

/// The slots shared by every patient-data RPC.
#[derive(Clone)]
pub struct InFlightLimit {
    slots: Arc<Semaphore>,
    max: usize,
}

impl InFlightLimit {
    /// At most `max` calls in flight; None when `max` is 0 (no bound).
    pub fn new(max: usize) -> Option<InFlightLimit> {
        (max > 0).then(|| InFlightLimit {
            slots: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            max,
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.max
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.slots.available_permits())
    }
}

/// The in-flight bound as a rule: a call beyond it is refused, a call within it takes
/// a slot that its note holds until the call's record is committed (the audit layer
/// releases it); without the audit layer, until the last handle on the note is gone.
impl<M: Send + 'static> Rule<M> for InFlightLimit {
    const NAME: &'static str = "limit.in_flight";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!(max_in_flight = self.max, "shedding a call");
            return Err(overloaded(self.max));
        };
        Note::of(req).hold_until_recorded(slot);
        Ok(())
    }
}

fn overloaded(max: usize) -> Violation {
    let hint = RETRY_HINT.as_millis() as u64;
    let ms = rand::thread_rng().gen_range(hint..2 * hint);
    Violation::new(
        Reason::Overloaded,
        "",
        format!(
            "the gateway has {max} patient-data calls in flight, its limit; try again in {ms} ms"
        ),
    )
    .with("max_in_flight", max.to_string())
    .with(RETRY_AFTER_MS, ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::status_of;
    use tonic::Code;
    use tonic_types::StatusExt;

    /// A call's request, with the note the audit layer keeps a handle on.
    fn call() -> (Request<()>, Note) {
        let note = Note::default();
        let mut req = Request::new(());
        req.extensions_mut().insert(note.clone());
        (req, note)
    }

    #[tokio::test]
    async fn beyond_the_bound_calls_are_refused_at_once_and_slots_come_back() {
        let limit = InFlightLimit::new(2).expect("bounded");
        let mut notes = Vec::new();
        for _ in 0..2 {
            let (mut req, note) = call();
            limit.check(&mut req).await.expect("within the bound");
            notes.push(note);
        }
        assert_eq!(limit.in_flight(), 2);

        let (mut req, _) = call();
        let violation = limit.check(&mut req).await.expect_err("over the bound");
        let status = status_of(&violation);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.get_details_error_info().expect("error info").reason,
            "OVERLOADED"
        );
        let delay = status
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .expect("retry delay");
        assert!(delay >= RETRY_HINT && delay < 2 * RETRY_HINT, "{delay:?}");

        for note in notes {
            note.release();
        }
        assert_eq!(limit.in_flight(), 0);
        let (mut req, _) = call();
        limit.check(&mut req).await.expect("a slot came back");
    }

    #[tokio::test]
    async fn a_slot_is_held_until_the_record_is_committed() {
        let limit = InFlightLimit::new(1).expect("bounded");
        let (mut req, note) = call();
        limit.check(&mut req).await.expect("within the bound");
        // The call is over (its request dropped), but its record is not committed yet.
        drop(req);
        assert_eq!(limit.in_flight(), 1, "the record is not committed yet");
        let (mut refused, _) = call();
        assert_eq!(
            limit.check(&mut refused).await.expect_err("no slot").reason,
            Reason::Overloaded
        );
        note.release();
        assert_eq!(limit.in_flight(), 0);
        let (mut req, _) = call();
        limit.check(&mut req).await.expect("served");
    }

    #[tokio::test]
    async fn without_the_audit_layer_the_slot_goes_with_the_last_handle_on_the_note() {
        let limit = InFlightLimit::new(1).expect("bounded");
        let mut req = Request::new(());
        limit.check(&mut req).await.expect("within the bound");
        assert_eq!(limit.in_flight(), 1);
        drop(req);
        assert_eq!(limit.in_flight(), 0);
    }

    #[test]
    fn zero_means_no_bound() {
        assert!(InFlightLimit::new(0).is_none());
    }
}

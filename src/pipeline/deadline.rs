//! A call's deadline, from the caller's `grpc-timeout`, split in two: the rules and
//! the upstream must be done a little before it, which leaves the time to commit the
//! call's record; and the answer is sent just before it, so the caller hears
//! DEADLINE_EXCEEDED from the gateway (naming the call's record) rather than the
//! transport's bare CANCELLED.

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use crate::pipeline::forward::caller_deadline;

/// The instant by which the rules and the upstream must be done, in the request's
/// extensions for the stage that waits (the upstream call, which ends there itself).
#[derive(Debug, Clone, Copy)]
pub struct WorkDeadline(pub Instant);

/// Kept for the access record's commit: a tenth of the caller's time, within these
/// bounds, and never more than half of it.
const RESERVE_MIN: Duration = Duration::from_millis(20);
const RESERVE_MAX: Duration = Duration::from_millis(250);
/// The answer goes out this long before the caller's deadline (at most half the
/// reserve), ahead of the caller's and the transport's own timers.
const ANSWER_MARGIN: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, Default)]
pub struct Deadlines {
    /// The rules and the upstream call are cut off here.
    pub work: Option<Instant>,
    /// The caller is answered by then, whatever the state of its record's commit.
    pub answer: Option<Instant>,
}

impl Deadlines {
    /// No deadline without a `grpc-timeout`: the upstream's own timeout bounds the call.
    pub fn of(metadata: &MetadataMap) -> Deadlines {
        caller_deadline(metadata)
            .map_or_else(Deadlines::default, |t| Deadlines::within(Instant::now(), t))
    }

    pub fn within(now: Instant, timeout: Duration) -> Deadlines {
        let reserve = (timeout / 10)
            .clamp(RESERVE_MIN, RESERVE_MAX)
            .min(timeout / 2);
        Deadlines {
            work: Some(now + timeout - reserve),
            answer: Some(now + timeout - ANSWER_MARGIN.min(reserve / 2)),
        }
    }

    /// The caller's time is up (or nearly: its answer is due).
    pub fn passed(&self) -> bool {
        self.answer.is_some_and(|at| Instant::now() >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_tenth_within_bounds_and_at_most_half() {
        let now = Instant::now();
        let at = |t: u64| {
            let d = Deadlines::within(now, Duration::from_millis(t));
            (
                d.work.map(|w| (w - now).as_millis()),
                d.answer.map(|a| (a - now).as_millis()),
            )
        };
        assert_eq!(at(2000), (Some(1800), Some(1980)));
        assert_eq!(at(100), (Some(80), Some(90)));
        assert_eq!(at(30), (Some(15), Some(22)));
        assert_eq!(at(60_000), (Some(59_750), Some(59_980)));
    }

    #[test]
    fn without_grpc_timeout_there_is_no_deadline() {
        let d = Deadlines::of(&MetadataMap::new());
        assert!(d.work.is_none() && d.answer.is_none() && !d.passed());
    }
}

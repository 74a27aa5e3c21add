//! When a forwarded call is sent again. Every forwarded call is an idempotent read,
//! so a call whose transport failed (connection cut, GOAWAY, refused stream) may go
//! again; an answer the upstream gave, and a deadline that passed, never do. Only a
//! few attempts, after a short jittered pause (calls cut together do not come back
//! together), and only while the pause and a useful attempt fit before the deadline.

use std::time::Duration;

use rand::Rng;

use crate::pipeline::fault::Fault;

/// Attempts of one call at most, the first included.
pub const MAX_ATTEMPTS: u32 = 3;

/// The pause before the first retry lies in `[BASE / 2, BASE]`; it doubles each time.
const BASE: Duration = Duration::from_millis(40);

/// A retry needs at least this much time left after its pause: with less, it would
/// most likely not be answered in time, and only add to the upstream's load.
const MIN_ATTEMPT: Duration = Duration::from_millis(20);

/// The pause before sending again after attempt `made` (1 for the first) failed with
/// `fault`, with `remaining` until the deadline; None when it is not sent again.
pub fn pause_after(fault: Fault, made: u32, remaining: Duration) -> Option<Duration> {
    if fault != Fault::Transport || made >= MAX_ATTEMPTS {
        return None;
    }
    let ceiling = BASE * 2u32.saturating_pow(made.saturating_sub(1));
    let pause = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
    (pause + MIN_ATTEMPT <= remaining).then_some(pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLENTY: Duration = Duration::from_secs(2);

    #[test]
    fn only_transport_failures_go_again_a_bounded_number_of_times() {
        assert!(pause_after(Fault::Answer, 1, PLENTY).is_none());
        assert!(pause_after(Fault::Timeout, 1, PLENTY).is_none());
        let first = pause_after(Fault::Transport, 1, PLENTY).expect("a retry");
        assert!(first >= BASE / 2 && first <= BASE, "{first:?}");
        let second = pause_after(Fault::Transport, 2, PLENTY).expect("a second retry");
        assert!(second >= BASE && second <= BASE * 2, "{second:?}");
        assert!(pause_after(Fault::Transport, MAX_ATTEMPTS, PLENTY).is_none());
    }

    #[test]
    fn no_retry_that_would_not_fit_before_the_deadline() {
        assert!(pause_after(Fault::Transport, 1, BASE / 2 + MIN_ATTEMPT / 2).is_none());
        assert!(pause_after(Fault::Transport, 1, BASE + MIN_ATTEMPT).is_some());
        for _ in 0..100 {
            let remaining = Duration::from_millis(70);
            if let Some(pause) = pause_after(Fault::Transport, 1, remaining) {
                assert!(pause + MIN_ATTEMPT <= remaining, "{pause:?}");
            }
        }
    }
}

//! The upstream's circuit breaker. While the upstream keeps failing (transport
//! failures, timeouts), calls to it are refused at once with UPSTREAM_UNAVAILABLE and
//! a retry delay, rather than each waiting out its deadline against an upstream that
//! is down or drowning. After a jittered cool-down one probe call goes through: its
//! success closes the circuit, its failure opens it again.
//!
//! It opens after a run of failed calls, if most recent calls failed too: at a few
//! hundred calls a second, a run of five comes by chance every few seconds from an
//! upstream that times out one call in three, and opening then would refuse every
//! call for a second to spare one in three. An answer, even NOT_FOUND or INTERNAL, is
//! a success: the upstream is there. A call counts once, after its retries, so a
//! connection lost and replaced under it does not count at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::telemetry::metrics::UpstreamMetrics;
use crate::telemetry::metrics::upstream::{CLOSED, HALF_OPEN, OPEN};

/// When the circuit opens and for how long.
#[derive(Debug, Clone)]
pub struct CircuitPolicy {
    /// Failed calls in a row that open it…
    pub consecutive: u32,
    /// …if at least this percentage of the recent calls failed, counting the run:
    pub failure_percent: usize,
    /// the last `window` calls at most, none older than `window_age` (at a few calls
    /// a minute, only the run itself).
    pub window: usize,
    pub window_age: Duration,
    /// How long it stays open before a probe, plus up to half as much again at random,
    /// so that replicas opened together do not probe together.
    pub cool_down: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        CircuitPolicy {
            consecutive: 5,
            failure_percent: 50,
            window: 50,
            window_age: Duration::from_secs(10),
            cool_down: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// The cool-down is over; `probing` while the one call let through is out.
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Counts the closings, so that a call let through before one does not count after.
    epoch: u64,
    consecutive: u32,
    /// The recent calls: when each ended, and whether it failed.
    recent: VecDeque<(Instant, bool)>,
    /// What opened it, e.g. " after 5 consecutive upstream failures".
    opened_by: String,
    /// Probes that failed since.
    failed_probes: u32,
}

/// Shared by every clone of the upstream client.
#[derive(Debug)]
pub struct Circuit {
    policy: CircuitPolicy,
    inner: Mutex<Inner>,
    health: watch::Sender<Result<(), String>>,
    metrics: UpstreamMetrics,
}

/// Leave to make one call: report its outcome with [`Pass::report`].
#[derive(Debug)]
pub struct Pass {
    circuit: Arc<Circuit>,
    epoch: u64,
    probe: bool,
    reported: bool,
}

/// A call refused by the open circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When the caller may try again, jittered.
    pub retry_after: Duration,
    /// Why the circuit is open, e.g. "circuit open after 5 consecutive upstream failures".
    pub why: String,
}

impl Circuit {
    pub fn new(policy: CircuitPolicy, metrics: UpstreamMetrics) -> Arc<Circuit> {
        metrics.circuit_state.set(CLOSED);
        Arc::new(Circuit {
            inner: Mutex::new(Inner {
                state: State::Closed,
                epoch: 0,
                consecutive: 0,
                recent: VecDeque::with_capacity(policy.window),
                opened_by: String::new(),
                failed_probes: 0,
            }),
            policy,
            health: watch::channel(Ok(())).0,
            metrics,
        })
    }

    /// Ok while the circuit is closed; Err(why) while it is open or probing.
    pub fn health(&self) -> watch::Receiver<Result<(), String>> {
        self.health.subscribe()
    }

    /// Lets a call through (once the cool-down is over, as the probe), or refuses it.
    pub fn admit(self: &Arc<Self>) -> Result<Pass, Refusal> {
        let now = Instant::now();
        let mut inner = self.lock();
        let refused = match inner.state {
            State::Closed => return Ok(self.pass(&inner, false)),
            State::Open { until } if now < until => until - now,
            // A probe is out: the answer is due within a call's time.
            State::HalfOpen { probing: true } => self.policy.cool_down / 4,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                return Ok(self.start_probe(&mut inner));
            }
        };
        self.metrics.circuit_refused.inc();
        let jitter = rand::thread_rng().gen_range(Duration::ZERO..=self.policy.cool_down / 4);
        Err(Refusal {
            retry_after: refused.max(Duration::from_millis(50)) + jitter,
            why: why(&inner),
        })
    }

    /// The probe, if one is due and none is out; for a prober when no call comes.
    pub fn try_probe(self: &Arc<Self>) -> Option<Pass> {
        let mut inner = self.lock();
        match inner.state {
            State::Open { until } if Instant::now() >= until => Some(self.start_probe(&mut inner)),
            State::HalfOpen { probing: false } => Some(self.start_probe(&mut inner)),
            _ => None,
        }
    }

    /// When a probe is next due: None while closed or while a probe is out.
    pub fn probe_due(&self) -> Option<Instant> {
        match self.lock().state {
            State::Open { until } => Some(until),
            State::HalfOpen { probing: false } => Some(Instant::now()),
            State::Closed | State::HalfOpen { probing: true } => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pass(self: &Arc<Self>, inner: &Inner, probe: bool) -> Pass {
        Pass {
            circuit: self.clone(),
            epoch: inner.epoch,
            probe,
            reported: false,
        }
    }

    fn start_probe(self: &Arc<Self>, inner: &mut Inner) -> Pass {
        self.enter(inner, State::HalfOpen { probing: true });
        self.pass(inner, true)
    }

    fn report(&self, epoch: u64, probe: bool, failed: bool) {
        let mut inner = self.lock();
        if epoch != inner.epoch {
            return;
        }
        match inner.state {
            State::Closed => self.count(&mut inner, failed),
            State::HalfOpen { probing: true } if probe && failed => {
                inner.failed_probes += 1;
                self.open(&mut inner);
            }
            State::HalfOpen { probing: true } if probe => {
                inner.epoch += 1;
                inner.consecutive = 0;
                inner.recent.clear();
                inner.failed_probes = 0;
                self.enter(&mut inner, State::Closed);
                tracing::info!("upstream circuit closed: the probe call succeeded");
            }
            // A call let through before the circuit opened: it is judged already.
            _ => {}
        }
    }

    /// A probe dropped unanswered (its caller went away) leaves the probe to the next.
    fn abandon_probe(&self, epoch: u64) {
        let mut inner = self.lock();
        if epoch == inner.epoch && inner.state == (State::HalfOpen { probing: true }) {
            self.enter(&mut inner, State::HalfOpen { probing: false });
        }
    }

    fn count(&self, inner: &mut Inner, failed: bool) {
        let now = Instant::now();
        inner.recent.push_back((now, failed));
        while inner.recent.len() > self.policy.window
            || inner
                .recent
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > self.policy.window_age)
        {
            inner.recent.pop_front();
        }
        inner.consecutive = if failed { inner.consecutive + 1 } else { 0 };
        if inner.consecutive < self.policy.consecutive {
            return;
        }
        let calls = inner.recent.len();
        let failures = inner.recent.iter().filter(|(_, failed)| *failed).count();
        let percent = failures * 100 / calls.max(1);
        if percent < self.policy.failure_percent {
            return;
        }
        inner.opened_by = format!(" after {} consecutive upstream failures", inner.consecutive);
        if failures < calls {
            inner.opened_by += &format!("; {percent}% of the last {calls} upstream calls failed");
        }
        self.open(inner);
    }

    fn open(&self, inner: &mut Inner) {
        let jitter = rand::thread_rng().gen_range(Duration::ZERO..=self.policy.cool_down / 2);
        let until = Instant::now() + self.policy.cool_down + jitter;
        self.enter(inner, State::Open { until });
        // Once when it opens; a failed probe, every second or so, only to debug.
        if inner.failed_probes == 0 {
            tracing::warn!(why = %why(inner), "upstream circuit open: calls are refused");
        } else {
            tracing::debug!(why = %why(inner), "upstream circuit open again");
        }
    }

    /// Moves to `state` and says so on the gauge and the health channel.
    fn enter(&self, inner: &mut Inner, state: State) {
        inner.state = state;
        let (gauge, health) = match state {
            State::Closed => (CLOSED, Ok(())),
            State::Open { .. } => (OPEN, Err(why(inner))),
            State::HalfOpen { .. } => (HALF_OPEN, Err(why(inner))),
        };
        self.metrics.circuit_state.set(gauge);
        // Sent even when equal: a prober waits on it for an abandoned probe.
        let _previous = self.health.send_replace(health);
    }
}

fn why(inner: &Inner) -> String {
    let probes = match inner.failed_probes {
        0 => String::new(),
        1 => "; a probe since failed too".into(),
        n => format!("; {n} probes since failed too"),
    };
    let probing = match inner.state {
        State::HalfOpen { .. } => "; probing whether the upstream is back",
        _ => "",
    };
    format!("circuit open{}{probes}{probing}", inner.opened_by)
}

impl Pass {
    /// Whether this call is the probe of a half-open circuit.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call's outcome, after its retries: whether the upstream failed it.
    pub fn report(mut self, failed: bool) {
        self.reported = true;
        self.circuit.report(self.epoch, self.probe, failed);
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.circuit.abandon_probe(self.epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(1);

    fn circuit() -> (Arc<Circuit>, UpstreamMetrics) {
        let metrics = UpstreamMetrics::default();
        let policy = CircuitPolicy {
            cool_down: COOL_DOWN,
            ..CircuitPolicy::default()
        };
        (Circuit::new(policy, metrics.clone()), metrics)
    }

    fn call(circuit: &Arc<Circuit>, failed: bool) {
        circuit.admit().expect("let through").report(failed);
    }

    /// Past the longest jittered cool-down.
    async fn cool_down() {
        tokio::time::advance(COOL_DOWN * 3 / 2 + Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_of_failures_opens_it_and_calls_fail_at_once() {
        let (circuit, metrics) = circuit();
        let health = circuit.health();
        for _ in 0..4 {
            call(&circuit, true);
        }
        assert_eq!(*health.borrow(), Ok(()));
        call(&circuit, true);
        assert_eq!(metrics.circuit_state.get(), OPEN);
        let refusal = circuit.admit().expect_err("open");
        assert_eq!(
            refusal.why,
            "circuit open after 5 consecutive upstream failures"
        );
        assert!(
            refusal.retry_after >= COOL_DOWN && refusal.retry_after <= COOL_DOWN * 2,
            "{refusal:?}"
        );
        assert_eq!(metrics.circuit_refused.get(), 1);
        assert_eq!(*health.borrow(), Err(refusal.why));

        // Still open just before the shortest cool-down ends.
        tokio::time::advance(COOL_DOWN - Duration::from_millis(10)).await;
        let refusal = circuit.admit().expect_err("still open");
        assert!(
            refusal.retry_after >= Duration::from_millis(10),
            "{refusal:?}"
        );
        assert_eq!(metrics.circuit_refused.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_one_probe_goes_and_its_success_closes_it() {
        let (circuit, metrics) = circuit();
        let health = circuit.health();
        for _ in 0..5 {
            call(&circuit, true);
        }
        assert_eq!(
            circuit.probe_due().map(|at| at > Instant::now()),
            Some(true)
        );
        cool_down().await;
        let probe = circuit.admit().expect("the probe");
        assert!(probe.is_probe());
        assert_eq!(metrics.circuit_state.get(), HALF_OPEN);
        assert!(
            health
                .borrow()
                .as_ref()
                .is_err_and(|why| why.contains("probing"))
        );
        // One probe at a time: the others are refused meanwhile.
        let refusal = circuit.admit().expect_err("a probe is out");
        assert!(refusal.retry_after < COOL_DOWN, "{refusal:?}");
        assert!(circuit.try_probe().is_none());
        assert_eq!(circuit.probe_due(), None);

        probe.report(false);
        assert_eq!(metrics.circuit_state.get(), CLOSED);
        assert_eq!(*health.borrow(), Ok(()));
        let pass = circuit.admit().expect("closed");
        assert!(!pass.is_probe());
        // A fresh start: four failures do not open it again.
        drop(pass);
        for _ in 0..4 {
            call(&circuit, true);
        }
        assert!(circuit.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_again_for_another_cool_down() {
        let (circuit, metrics) = circuit();
        for _ in 0..5 {
            call(&circuit, true);
        }
        cool_down().await;
        circuit.admit().expect("the probe").report(true);
        assert_eq!(metrics.circuit_state.get(), OPEN);
        let refusal = circuit.admit().expect_err("open again");
        assert_eq!(
            refusal.why,
            "circuit open after 5 consecutive upstream failures; a probe since failed too"
        );
        assert!(refusal.retry_after >= COOL_DOWN - Duration::from_millis(1));

        cool_down().await;
        let probe = circuit.try_probe().expect("a prober's turn");
        probe.report(false);
        assert_eq!(metrics.circuit_state.get(), CLOSED);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_successes_and_break_a_run() {
        let (circuit, _) = circuit();
        for _ in 0..20 {
            for _ in 0..4 {
                call(&circuit, true);
            }
            call(&circuit, false);
        }
        assert!(circuit.admit().is_ok(), "never five failures in a row");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_among_mostly_successes_does_not_open_it_until_most_fail() {
        let (circuit, _) = circuit();
        for _ in 0..45 {
            call(&circuit, false);
        }
        // Five in a row, but one call in ten: a busy upstream's bad moment.
        for _ in 0..5 {
            call(&circuit, true);
        }
        assert!(circuit.admit().is_ok());
        // Failing on, they push the successes out of the last 50.
        for _ in 0..19 {
            call(&circuit, true);
        }
        assert!(circuit.admit().is_ok(), "24 of the last 50");
        call(&circuit, true);
        let refusal = circuit.admit().expect_err("half of the last 50");
        assert_eq!(
            refusal.why,
            "circuit open after 25 consecutive upstream failures; \
             50% of the last 50 upstream calls failed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_recent_calls_weigh_so_a_quiet_upstream_opens_on_a_run() {
        let (circuit, _) = circuit();
        for _ in 0..45 {
            call(&circuit, false);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..5 {
            call(&circuit, true);
        }
        let refusal = circuit.admit().expect_err("the successes are old");
        assert_eq!(
            refusal.why,
            "circuit open after 5 consecutive upstream failures"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_whose_caller_went_away_leaves_the_probe_to_the_next_call() {
        let (circuit, _) = circuit();
        for _ in 0..5 {
            call(&circuit, true);
        }
        cool_down().await;
        let probe = circuit.admit().expect("the probe");
        drop(probe);
        assert_eq!(
            circuit.probe_due().map(|at| at <= Instant::now()),
            Some(true)
        );
        let next = circuit.admit().expect("the next probe");
        assert!(next.is_probe());
        next.report(false);
        assert!(circuit.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_let_through_before_it_opened_do_not_count_after() {
        let (circuit, metrics) = circuit();
        let late: Vec<Pass> = (0..3).map(|_| circuit.admit().expect("closed")).collect();
        for _ in 0..5 {
            call(&circuit, true);
        }
        cool_down().await;
        circuit.admit().expect("the probe").report(false);
        assert_eq!(metrics.circuit_state.get(), CLOSED);
        // Failures of calls from before it opened, reported now, are stale.
        for pass in late {
            pass.report(true);
        }
        for _ in 0..4 {
            call(&circuit, true);
        }
        assert!(circuit.admit().is_ok());
    }
}

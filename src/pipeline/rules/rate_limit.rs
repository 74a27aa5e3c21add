//! Per-facility rate limit: each calling facility has a token bucket (`burst` tokens,
//! refilled at `per_sec` a second) and a patient-data call takes one token. A facility
//! that has spent its tokens is refused with RATE_LIMITED and told when the next token
//! is due, so a flood from one facility costs the others nothing but the refusals'
//! access records.
//!
//! The bucket is kept in its GCRA form: one instant per facility, the "theoretical
//! arrival time" (TAT) at which its bucket would be full again, in integer nanoseconds
//! of the gateway's clock, so decisions are exact and tests can drive them with a
//! manual clock. Buckets live in a bounded cache and are forgotten after a while idle
//! (a facility idle that long would have a full bucket anyway).
//!
//! The rule runs right after the identity rule, which establishes the caller's facility.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::future::Cache;
use tonic::Request;

use crate::clock::SharedClock;
use crate::domain::facility::FacilityCode;
use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::status::RETRY_AFTER_MS;

/// Facilities whose buckets are kept at once; well above the number of medical
/// institutions and pharmacies in Japan (about 240,000). A facility evicted or not
/// admitted starts again with a full bucket: the limit loosens, never tightens.
const MAX_BUCKETS: u64 = 300_000;

/// A bucket idle this long (or long enough to be full again, if longer) is forgotten.
const MIN_IDLE: Duration = Duration::from_secs(10 * 60);

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The shared buckets of every facility, one set for all patient-data RPCs.
#[derive(Clone)]
pub struct FacilityLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    per_sec: u32,
    burst: u32,
    gcra: Gcra,
    buckets: Cache<FacilityCode, Arc<AtomicI64>>,
}

impl FacilityLimiter {
    /// `per_sec` calls a second per facility, in bursts of up to `burst` (at least 1).
    /// None when `per_sec` is 0: no per-facility limit.
    pub fn new(per_sec: u32, burst: u32) -> Option<FacilityLimiter> {
        let gcra = Gcra::new(per_sec, burst)?;
        let burst = burst.max(1);
        let full_again = Duration::from_nanos(
            u64::try_from(gcra.interval.saturating_mul(i64::from(burst))).unwrap_or(u64::MAX),
        );
        let buckets = Cache::builder()
            .max_capacity(MAX_BUCKETS)
            .time_to_idle(MIN_IDLE.max(full_again.min(Duration::from_secs(24 * 3600))))
            .build();
        Some(FacilityLimiter {
            inner: Arc::new(Inner {
                per_sec,
                burst,
                gcra,
                buckets,
            }),
        })
    }

    pub fn per_sec(&self) -> u32 {
        self.inner.per_sec
    }

    pub fn burst(&self) -> u32 {
        self.inner.burst
    }

    /// Takes a token of `facility`'s bucket at `now`, or says how long until one is due.
    pub async fn acquire(
        &self,
        facility: &FacilityCode,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        let now = nanos(now);
        let bucket = self
            .inner
            .buckets
            .get_with_by_ref(facility, async { Arc::new(AtomicI64::new(i64::MIN)) })
            .await;
        let mut tat = bucket.load(Ordering::Acquire);
        loop {
            let (next, verdict) = self.inner.gcra.decide(tat, now);
            if next == tat {
                return verdict;
            }
            match bucket.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return verdict,
                Err(current) => tat = current,
            }
        }
    }
}

/// How far back the clock must be stepped before the bucket is reset rather than
/// refusing until it catches up (callers' readings of "now" differ by far less).
const CLOCK_STEP: i64 = 60 * NANOS_PER_SEC;

/// The token bucket as the generic cell rate algorithm, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    /// Time for one token to come back.
    interval: i64,
    /// How far ahead of now the TAT may be and still admit a call: `burst - 1` intervals.
    tolerance: i64,
}

impl Gcra {
    fn new(per_sec: u32, burst: u32) -> Option<Gcra> {
        if per_sec == 0 {
            return None;
        }
        let interval = (NANOS_PER_SEC / i64::from(per_sec)).max(1);
        Some(Gcra {
            interval,
            tolerance: interval.saturating_mul(i64::from(burst.max(1) - 1)),
        })
    }

    /// The TAT to keep, and whether a call at `now` is admitted or else how long until
    /// it would be.
    fn decide(&self, tat: i64, now: i64) -> (i64, Result<(), Duration>) {
        // After any admitted call the TAT is at most `tolerance + interval` ahead of
        // the clock. Concurrent callers read the clock a little apart, so a TAT a
        // little further ahead is normal and must not admit extra calls; only far
        // further ahead means the clock was stepped back: then count the bucket empty
        // from now rather than refusing until the clock catches up.
        let empty = now
            .saturating_add(self.tolerance)
            .saturating_add(self.interval);
        let tat = if tat > empty.saturating_add(CLOCK_STEP) {
            empty
        } else {
            tat.max(now)
        };
        let ahead = tat - now;
        if ahead <= self.tolerance {
            (tat.saturating_add(self.interval), Ok(()))
        } else {
            let wait = ahead - self.tolerance;
            (
                tat,
                Err(Duration::from_nanos(u64::try_from(wait).unwrap_or(0))),
            )
        }
    }
}

fn nanos(at: DateTime<Utc>) -> i64 {
    // Outside 1677-2262 only: saturate.
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN / 2
    } else {
        i64::MAX / 2
    })
}

/// A wait in whole milliseconds, rounded up: waiting that long is always enough.
pub fn ceil_millis(wait: Duration) -> u64 {
    let ms = wait.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

/// Refuses a facility's call once its bucket is empty.
#[derive(Clone)]
pub struct RateLimitRule {
    limiter: FacilityLimiter,
    clock: SharedClock,
}

impl RateLimitRule {
    pub fn new(limiter: FacilityLimiter, clock: SharedClock) -> Self {
        RateLimitRule { limiter, clock }
    }
}

impl<M: PatientRequest> Rule<M> for RateLimitRule {
    const NAME: &'static str = "rule.rate_limit";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let limiter = &self.limiter;
        let facility = Note::of(req).facility()?;
        limiter
            .acquire(&facility, self.clock.now())
            .await
            .map_err(|wait| rate_limited(limiter, &facility, wait))
    }
}

fn rate_limited(limiter: &FacilityLimiter, facility: &FacilityCode, wait: Duration) -> Violation {
    let ms = ceil_millis(wait);
    Violation::new(
        Reason::RateLimited,
        "",
        format!(
            "facility {facility} is calling faster than {} a second (bursts of {}); try again in {ms} ms",
            limiter.per_sec(),
            limiter.burst()
        ),
    )
    .with("facility", facility.to_string())
    .with(RETRY_AFTER_MS, ms.to_string())
    .with("rate_per_sec", limiter.per_sec().to_string())
    .with("burst", limiter.burst().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facility::FacilityKind;

    const MS: i64 = 1_000_000;

    fn facility(prefecture: u8) -> FacilityCode {
        crate::demo::facility(prefecture, FacilityKind::Medical, 1001)
    }

    /// Admitted calls at `now` until the first refusal; the refusal's wait.
    fn drain(g: &Gcra, tat: &mut i64, now: i64) -> (u32, Duration) {
        let mut admitted = 0;
        loop {
            let (next, verdict) = g.decide(*tat, now);
            *tat = next;
            match verdict {
                Ok(()) => admitted += 1,
                Err(wait) => return (admitted, wait),
            }
        }
    }

    #[test]
    fn a_full_bucket_admits_the_burst_then_one_call_per_interval() {
        let g = Gcra::new(20, 40).expect("limited");
        let mut tat = i64::MIN;
        let t0 = 1_000_000 * MS;
        let (admitted, wait) = drain(&g, &mut tat, t0);
        assert_eq!(admitted, 40);
        assert_eq!(wait, Duration::from_millis(50));
        // 49 ms later: still nothing; at 50 ms exactly one.
        assert_eq!(
            g.decide(tat, t0 + 49 * MS),
            (tat, Err(Duration::from_millis(1)))
        );
        let (admitted, wait) = drain(&g, &mut tat, t0 + 50 * MS);
        assert_eq!((admitted, wait), (1, Duration::from_millis(50)));
        // A second idle refills 20 tokens, not more than the burst after longer.
        let (admitted, _) = drain(&g, &mut tat, t0 + 1050 * MS);
        assert_eq!(admitted, 20);
        let (admitted, _) = drain(&g, &mut tat, t0 + 3_600_000 * MS);
        assert_eq!(admitted, 40);
    }

    #[test]
    fn a_clock_going_back_empties_the_bucket_instead_of_blocking_until_it_catches_up() {
        let g = Gcra::new(10, 5).expect("limited");
        let mut tat = i64::MIN;
        let t0 = 1_000_000 * MS;
        drain(&g, &mut tat, t0);
        // An hour back: one interval's wait, not an hour's.
        let back = t0 - 3_600_000 * MS;
        assert_eq!(drain(&g, &mut tat, back), (0, Duration::from_millis(100)));
        assert_eq!(
            drain(&g, &mut tat, back + 100 * MS),
            (1, Duration::from_millis(100))
        );
        // Refilling from there as usual.
        assert_eq!(drain(&g, &mut tat, back + 1000 * MS).0, 5);
    }

    #[test]
    fn a_caller_reading_the_clock_a_little_earlier_gets_no_extra_token() {
        let g = Gcra::new(10, 5).expect("limited");
        let mut tat = i64::MIN;
        let t0 = 1_000_000 * MS;
        assert_eq!(drain(&g, &mut tat, t0).0, 5);
        // A concurrent caller whose "now" was read 90 ms before: refused, and it must
        // not pull the bucket's state back either…
        assert_eq!(drain(&g, &mut tat, t0 - 90 * MS).0, 0);
        // …so 10 ms on, the bucket is still empty (a token is due only at t0 + 100 ms).
        assert_eq!(drain(&g, &mut tat, t0 + 10 * MS).0, 0);
    }

    #[test]
    fn a_burst_of_one_admits_exactly_the_rate() {
        let g = Gcra::new(4, 1).expect("limited");
        let mut tat = i64::MIN;
        let t0 = 1_000_000 * MS;
        assert_eq!(drain(&g, &mut tat, t0), (1, Duration::from_millis(250)));
        assert_eq!(
            drain(&g, &mut tat, t0 + 250 * MS),
            (1, Duration::from_millis(250))
        );
        // A burst of 0 is read as 1.
        assert_eq!(Gcra::new(4, 0).expect("limited").tolerance, 0);
        assert!(Gcra::new(0, 40).is_none());
    }

    #[test]
    fn waits_round_up_to_whole_milliseconds() {
        assert_eq!(ceil_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_millis(Duration::from_millis(50)), 50);
        assert_eq!(ceil_millis(Duration::from_micros(50_001)), 51);
        assert_eq!(ceil_millis(Duration::ZERO), 1);
    }

    #[tokio::test]
    async fn facilities_have_their_own_buckets() {
        let limiter = FacilityLimiter::new(1, 3).expect("limited");
        let a = facility(4);
        let b = facility(7);
        let now = Utc::now();
        for _ in 0..3 {
            limiter.acquire(&a, now).await.expect("within the burst");
        }
        assert_eq!(limiter.acquire(&a, now).await, Err(Duration::from_secs(1)));
        for _ in 0..3 {
            limiter.acquire(&b, now).await.expect("b's own burst");
        }
        limiter
            .acquire(&a, now + chrono::Duration::seconds(1))
            .await
            .expect("a token came back");
    }

    #[tokio::test]
    async fn concurrent_callers_never_take_more_than_the_burst() {
        let limiter = FacilityLimiter::new(1, 50).expect("limited");
        let a = facility(4);
        let now = Utc::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let limiter = limiter.clone();
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..20 {
                    if limiter.acquire(&a, now).await.is_ok() {
                        admitted += 1;
                    }
                }
                admitted
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("joined");
        }
        assert_eq!(total, 50);
    }
}

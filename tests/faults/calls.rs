//! What a run of the load says: calls served, refused by reason, hung, the rate held,
//! latency percentiles and when service came back after a fault.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::load::{Calls, Outcome};

impl Calls {
    pub fn ok(&self) -> usize {
        self.outcomes.iter().filter(|o| o.ok()).count()
    }

    /// Calls sent a second, over the time the load ran.
    pub fn held(&self) -> f64 {
        let ran = (self.stopped - self.started).as_secs_f64().max(0.001);
        self.outcomes.len() as f64 / ran
    }

    /// Refusals counted by reason (or by code, when a refusal has no reason).
    pub fn refused(&self) -> BTreeMap<String, usize> {
        refused(self.outcomes.iter())
    }

    /// The calls sent in `[from, until)`.
    pub fn sent_between(&self, from: Instant, until: Instant) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.sent >= from && o.sent < until)
            .collect()
    }

    /// How long after `since` service was back for good: the end of the first call
    /// sent after `since` from which on every call was served. None if the run ended
    /// without that (or with no call at all after `since`).
    pub fn recovered(&self, since: Instant) -> Option<Duration> {
        let after: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.sent >= since).collect();
        let last_bad = after.iter().rposition(|o| !o.ok());
        let first_good = match last_bad {
            Some(i) => after.get(i + 1)?,
            None => after.first()?,
        };
        Some(first_good.ended.saturating_duration_since(since))
    }

    /// A few unexpected outcomes, for a failure message.
    pub fn examples<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> String {
        outcomes
            .into_iter()
            .take(5)
            .map(|o| {
                format!(
                    "{:?} {:?} naming {:?} after {:?}: {}",
                    o.code,
                    o.reason,
                    o.record,
                    o.took(),
                    o.message
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn refused<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for reason in outcomes.into_iter().filter_map(Outcome::refusal) {
        *by.entry(reason).or_insert(0) += 1;
    }
    by
}

/// The `p`-quantile (0.0-1.0) of how long `outcomes` took; zero when there are none.
pub fn percentile<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>, p: f64) -> Duration {
    let mut took: Vec<Duration> = outcomes.into_iter().map(Outcome::took).collect();
    if took.is_empty() {
        return Duration::ZERO;
    }
    took.sort();
    let i = ((took.len() - 1) as f64 * p).round() as usize;
    took[i.min(took.len() - 1)]
}

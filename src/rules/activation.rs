//! The emergency function must be active for the caller's area now (Japan time,
//! half-open window). Areas checked: the facility itself, then its prefecture.

use chrono::{DateTime, Utc};
use tonic::Request;

use super::identity::CallerFacility;
use super::{Note, PatientRequest, Rule};
use crate::activation_cache::ActivationCache;
use crate::clock::SharedClock;
use crate::domain::jst::to_jst_string;
use crate::domain::{Reason, Violation};
use crate::store::{AreaKey, Coverage};

#[derive(Clone)]
pub struct ActivationRule {
    cache: ActivationCache,
    clock: SharedClock,
}

impl ActivationRule {
    pub fn new(cache: ActivationCache, clock: SharedClock) -> Self {
        ActivationRule { cache, clock }
    }
}

/// The coverage whose window contains `now`, if any.
pub fn active_at(coverages: &[Coverage], now: DateTime<Utc>) -> Option<&Coverage> {
    coverages.iter().find(|c| c.window.contains(now))
}

/// Explains a refusal: the window that ended most recently, or the next one to open.
fn explain(mut v: Violation, coverages: &[Coverage], now: DateTime<Utc>) -> Violation {
    let ended = coverages
        .iter()
        .filter(|c| c.window.end <= now)
        .max_by_key(|c| c.window.end);
    let upcoming = coverages
        .iter()
        .filter(|c| c.window.start > now)
        .min_by_key(|c| c.window.start);
    if let Some(c) = ended {
        v = v
            .with("last_window_end", to_jst_string(c.window.end))
            .with("last_activation", c.activation_id.clone());
        v.description.push_str(&format!(
            "; the last window ended at {}",
            to_jst_string(c.window.end)
        ));
    }
    if let Some(c) = upcoming {
        v = v.with("next_window_start", to_jst_string(c.window.start));
        v.description.push_str(&format!(
            "; the next window opens at {}",
            to_jst_string(c.window.start)
        ));
    }
    v
}

impl<M: PatientRequest> Rule<M> for ActivationRule {
    const NAME: &'static str = "rule.activation";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let facility = req
            .extensions()
            .get::<CallerFacility>()
            .map(|f| f.0.clone())
            .ok_or_else(|| {
                Violation::new(Reason::FacilityUnidentified, "", "no identified facility")
            })?;
        let now = self.clock.now();
        let prefecture = facility.prefecture();
        let areas = [
            AreaKey::Facility(facility.to_string()),
            AreaKey::Prefecture(prefecture.code()),
        ];
        let mut seen = Vec::new();
        for area in &areas {
            let coverages = self.cache.coverage(area).await.map_err(|e| {
                Violation::new(
                    Reason::ActivationStoreUnavailable,
                    "",
                    format!("the activation registry cannot be read: {e}"),
                )
            })?;
            if let Some(c) = active_at(&coverages, now) {
                Note::of(req).lock().activation_id = Some(c.activation_id.clone());
                return Ok(());
            }
            seen.extend(coverages.iter().cloned());
        }
        let v = Violation::new(
            Reason::AreaNotActivated,
            "",
            format!(
                "the emergency function is not active for facility {facility} ({}) at {}",
                prefecture.name_ja(),
                to_jst_string(now)
            ),
        )
        .with("facility", facility.to_string())
        .with("prefecture", prefecture.code_str())
        .with("at", to_jst_string(now));
        Err(explain(v, &seen, now))
    }
}

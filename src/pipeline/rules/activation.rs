//! The emergency function must be active for the caller's area now (Japan time,
//! half-open window): the facility itself, its municipality (from the facility
//! registry) or its prefecture. The decision is `activation_index::decide`.

use tonic::Request;

use crate::activation::cache::ActivationCache;
use crate::activation::index::decide;
use crate::activation::sites::site_allowed_now;
use crate::clock::SharedClock;
use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, PatientRequest, Rule};

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

fn unavailable(e: impl std::fmt::Display) -> Violation {
    Violation::new(
        Reason::ActivationStoreUnavailable,
        "",
        format!("the activation registry cannot be read: {e}"),
    )
}

impl<M: PatientRequest> Rule<M> for ActivationRule {
    const NAME: &'static str = "rule.activation";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        // Emergency viewing is its own mode, without activation (rules/emergency_viewing).
        if Note::of(req).lock().emergency_viewing {
            return Ok(());
        }
        let now = self.clock.now();
        // A temporary site is decided by its own window and municipality alone.
        let site = Note::of(req).lock().site.site_id.clone();
        if let Some(site) = site {
            let allowed = site_allowed_now(&self.cache, &site, now).await?;
            Note::of(req).lock().activation_id = Some(allowed.coverage.activation_id);
            return Ok(());
        }
        let facility = Note::of(req).facility()?;
        let index = self.cache.index().await.map_err(unavailable)?;
        let registered = match self.cache.facility(facility.as_str()).await {
            Ok(r) => r,
            // Without the registry only the facility and prefecture areas can allow;
            // a refusal then would be a guess, so it is reported as unavailability.
            Err(e) => {
                return match decide(&index, &facility, None, now) {
                    Ok(allowed) => {
                        Note::of(req).lock().activation_id = Some(allowed.coverage.activation_id);
                        Ok(())
                    }
                    Err(_) => Err(unavailable(e)),
                };
            }
        };
        let allowed = decide(&index, &facility, registered.as_ref(), now)?;
        Note::of(req).lock().activation_id = Some(allowed.coverage.activation_id);
        Ok(())
    }
}

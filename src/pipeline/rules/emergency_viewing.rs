//! Emergency viewing outside a disaster (救急時医療情報閲覧, since 2024-12-09): a
//! hospital with an emergency department may view an unconscious patient's
//! emergency summary with no activation. Only facilities the registry marks as
//! such, only the summary, only under the life-or-body exemption; each view is
//! flagged for review and marked in the access log. A call in the disaster mode
//! passes untouched: the activation rule decides it as before.
//!
//! Runs before the activation rule, which lets an accepted emergency view through.

use tonic::Request;

use crate::activation::cache::ActivationCache;
use crate::domain::consent_kind::AccessMode;
use crate::domain::facility::FacilityKind;
use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::proto::ConsentBasis;

#[derive(Clone)]
pub struct EmergencyViewingRule {
    registry: ActivationCache,
}

impl EmergencyViewingRule {
    pub fn new(registry: ActivationCache) -> Self {
        EmergencyViewingRule { registry }
    }
}

const FIELD_MODE: &str = crate::domain::consent_kind::FIELD_MODE;

/// What the request says apart from the facility: the summary, under the exemption.
fn check_request<M: PatientRequest>(request: &M) -> Result<(), Violation> {
    if !M::EMERGENCY_VIEWABLE {
        return Err(Violation::new(
            Reason::EmergencyViewingSummaryOnly,
            FIELD_MODE,
            format!(
                "emergency viewing shows the emergency summary only, not {}; outside a disaster use GetEmergencySummary",
                M::METHOD
            ),
        )
        .with("method", M::METHOD));
    }
    let basis = request
        .access()
        .and_then(|a| a.consent.as_ref())
        .map_or(0, |c| c.basis);
    if basis != ConsentBasis::LifeOrBodyExemption as i32 {
        return Err(Violation::new(
            Reason::EmergencyViewingRequiresExemption,
            "access.consent.basis",
            "emergency viewing is for a patient who cannot consent: state the life-or-body exemption with its reason and identification",
        ));
    }
    Ok(())
}

impl<M: PatientRequest> Rule<M> for EmergencyViewingRule {
    const NAME: &'static str = "rule.emergency_viewing";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let mode = req.get_ref().access().map_or(0, |a| a.mode);
        if AccessMode::from_wire(mode)? == AccessMode::Disaster {
            return Ok(());
        }
        check_request(req.get_ref())?;
        let facility = Note::of(req).facility()?;
        let registered = self
            .registry
            .facility(facility.as_str())
            .await
            .map_err(|e| {
                Violation::new(
                    Reason::ActivationStoreUnavailable,
                    "",
                    format!("the facility registry cannot be read: {e}"),
                )
            })?;
        let eligible = registered
            .as_ref()
            .is_some_and(|f| f.kind == FacilityKind::Medical && f.emergency_hospital);
        if !eligible {
            let why = match registered {
                None => "is not in the facility registry".to_string(),
                Some(f) if f.kind != FacilityKind::Medical => {
                    format!("is a {} facility", f.kind.as_str())
                }
                Some(_) => {
                    "is not registered as a hospital with an emergency department".to_string()
                }
            };
            return Err(Violation::new(
                Reason::EmergencyViewingFacilityNotEligible,
                "",
                format!(
                    "emergency viewing outside a disaster is for hospitals with an emergency department; facility {facility} {why}"
                ),
            )
            .with("facility", facility.to_string()));
        }
        let note = Note::of(req);
        let mut n = note.lock();
        n.emergency_viewing = true;
        n.needs_review = true;
        Ok(())
    }
}

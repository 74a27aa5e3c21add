//! Consent per kind of information: the call's kinds (drugs, check-ups, clinical
//! information, operations) must be among those the patient agreed to. The
//! life-or-body exemption covers every kind. Runs after the consent rule, which
//! has judged the basis.

use tonic::Request;

use crate::domain::Violation;
use crate::domain::consent::ConsentBasis;
use crate::domain::consent_kind::{KindsGiven, check_kinds, parse_kinds};
use crate::pipeline::{Note, PatientRequest, Rule};

#[derive(Clone, Default)]
pub struct ConsentKindRule;

impl<M: PatientRequest> Rule<M> for ConsentKindRule {
    const NAME: &'static str = "rule.consent_kind";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let consent = req
            .get_ref()
            .access()
            .and_then(|a| a.consent.clone())
            .unwrap_or_default();
        let exempt =
            ConsentBasis::from_wire(consent.basis) == Some(ConsentBasis::LifeOrBodyExemption);
        let given = if exempt {
            KindsGiven::All
        } else {
            parse_kinds(&consent.kinds)?
        };
        Note::of(req).lock().consent_kinds = Some(given.as_record());
        check_kinds(&given, &req.get_ref().kinds())
    }
}

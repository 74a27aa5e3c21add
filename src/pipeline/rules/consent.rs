//! The legal basis and the purpose: the patient's consent (oral is enough) or the
//! life-or-body exemption with a reason and identification evidence; purpose is care.

use tonic::Request;

use crate::domain::Violation;
use crate::domain::consent::evaluate_consent_with_category;
use crate::pipeline::{Note, PatientRequest, Rule};

#[derive(Clone, Default)]
pub struct ConsentRule;

impl<M: PatientRequest> Rule<M> for ConsentRule {
    const NAME: &'static str = "rule.consent";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let access = req.get_ref().access().cloned().unwrap_or_default();
        let consent = access.consent.unwrap_or_default();
        let decision = evaluate_consent_with_category(
            consent.basis,
            consent.exemption_category,
            &consent.exemption_reason,
            consent.exemption_identification,
            access.purpose,
        );
        let note = Note::of(req);
        let mut n = note.lock();
        let decision = decision?;
        n.consent_basis = Some(decision.basis.as_str());
        n.exemption_reason = decision.exemption_reason.clone();
        n.exemption_category = decision
            .exemption_category
            .map(crate::domain::exemption_category::ExemptionCategory::as_str);
        n.exemption_identification = decision
            .exemption_identification
            .map(crate::domain::consent::ExemptionIdentification::as_str);
        n.purpose = Some("medical_care");
        n.needs_review = decision.needs_review;
        Ok(())
    }
}

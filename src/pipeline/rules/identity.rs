//! Who is calling: the facility (from the transport, never from the request body)
//! and the member of staff the terminal names.

use tonic::Request;

use crate::domain::staff::evaluate_staff;
use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::tls::identity::{IdentitySource, refuse_other_claim, transport_facility};

#[derive(Clone)]
pub struct IdentityRule {
    source: IdentitySource,
}

impl IdentityRule {
    pub fn new(source: IdentitySource) -> Self {
        IdentityRule { source }
    }
}

impl<M: PatientRequest> Rule<M> for IdentityRule {
    const NAME: &'static str = "rule.identity";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let note = Note::of(req);
        let facility = transport_facility(self.source, req)?;
        note.lock().facility = Some(facility.clone());
        refuse_other_claim(self.source, req, &facility)?;

        let access = req.get_ref().access().ok_or_else(|| {
            Violation::new(
                Reason::AccessContextMissing,
                "access",
                "every patient-data request carries an access context (staff, consent, purpose, identification)",
            )
        })?;
        let staff = access.staff.clone().unwrap_or_default();
        let (staff_id, role) = evaluate_staff(&staff.staff_id, staff.role)?;
        let mut n = note.lock();
        n.staff_id = Some(staff_id);
        n.staff_role = Some(role.as_str());
        Ok(())
    }
}

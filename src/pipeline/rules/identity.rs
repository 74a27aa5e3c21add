//! Who is calling: the facility (from the transport, never from the request body)
//! and the member of staff the terminal names.

use tonic::Request;

use crate::domain::facility::FacilityCode;
use crate::domain::staff::evaluate_staff;
use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::tls::identity::{IdentitySource, facility_of};

/// The caller's facility, as established by this rule, for the rules after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerFacility(pub FacilityCode);

#[derive(Clone)]
pub struct IdentityRule {
    source: IdentitySource,
}

impl IdentityRule {
    pub fn new(source: IdentitySource) -> Self {
        IdentityRule { source }
    }

    fn facility<M>(&self, req: &Request<M>) -> Result<FacilityCode, Violation> {
        facility_of(self.source, req)
    }
}

impl<M: PatientRequest> Rule<M> for IdentityRule {
    const NAME: &'static str = "rule.identity";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let note = Note::of(req);
        let facility = self.facility(req)?;
        note.lock().facility = Some(facility.to_string());
        req.extensions_mut().insert(CallerFacility(facility));

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

//! Who is calling: the facility (from the transport, never from the request body)
//! and the member of staff the terminal names.

use tonic::Request;

use super::{Note, PatientRequest, Rule};
use crate::domain::facility::{FacilityCode, parse_facility_code};
use crate::domain::staff::evaluate_staff;
use crate::domain::{Reason, Violation};
use crate::tls::{Peer, peer_of};

/// The metadata key read in development mode only.
pub const DEV_FACILITY_HEADER: &str = "x-onshi-dev-facility";

/// Where the facility's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// Nothing is configured: every call is refused with FACILITY_UNIDENTIFIED.
    Unconfigured,
    /// DEVELOPMENT ONLY: the facility code is taken from the `x-onshi-dev-facility`
    /// metadata, which any caller can set.
    DevelopmentMetadata,
    /// The facility is the one the verified client certificate names (mutual TLS).
    Certificate,
}

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

/// The calling facility of `req` under `source`: from the verified client
/// certificate, or (development only) from metadata.
pub fn facility_of<M>(source: IdentitySource, req: &Request<M>) -> Result<FacilityCode, Violation> {
    match source {
        IdentitySource::Unconfigured => Err(Violation::new(
            Reason::FacilityUnidentified,
            "",
            "the gateway has no facility identity source configured",
        )),
        IdentitySource::DevelopmentMetadata => {
            let raw = req
                    .metadata()
                    .get(DEV_FACILITY_HEADER)
                    .ok_or_else(|| {
                        Violation::new(
                            Reason::FacilityUnidentified,
                            "",
                            format!("development mode: send the facility code in `{DEV_FACILITY_HEADER}` metadata"),
                        )
                    })?
                    .to_str()
                    .map_err(|_| {
                        Violation::new(
                            Reason::FacilityCodeFormat,
                            "",
                            format!("`{DEV_FACILITY_HEADER}` is not ASCII"),
                        )
                    })?;
            parse_facility_code("", raw).map_err(|v| v.with("metadata", DEV_FACILITY_HEADER))
        }
        IdentitySource::Certificate => {
            let certs = req.peer_certs().ok_or_else(|| {
                Violation::new(
                    Reason::FacilityUnidentified,
                    "",
                    "no client certificate: terminals must connect with their facility certificate",
                )
            })?;
            let leaf = certs.first().ok_or_else(|| {
                Violation::new(Reason::FacilityUnidentified, "", "no client certificate")
            })?;
            let facility = match peer_of(leaf.as_ref())? {
                Peer::Facility(f) => f,
                Peer::Operator { .. } => {
                    return Err(Violation::new(
                        Reason::FacilityUnidentified,
                        "",
                        "an operator certificate cannot call the terminal services",
                    ));
                }
            };
            // What the request says about the caller is never believed; if it
            // contradicts the certificate, the call is refused rather than guessed.
            if let Some(claimed) = req.metadata().get(DEV_FACILITY_HEADER)
                && claimed.to_str().ok().map(str::trim) != Some(facility.as_str())
            {
                return Err(Violation::new(
                    Reason::FacilityMismatch,
                    "",
                    format!(
                        "the request claims another facility than the certificate's {facility}"
                    ),
                )
                .with("facility", facility.to_string()));
            }
            Ok(facility)
        }
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

//! Who the caller is at the transport: the facility its verified client certificate
//! names, or (development only) the facility in `x-onshi-dev-facility` metadata.
//! Never what a request field claims.

use tonic::Request;

use crate::domain::facility::{FacilityCode, parse_facility_code};
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

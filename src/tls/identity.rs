//! Who the caller is at the transport: the facility its verified client certificate
//! names, or (development only) the facility in `x-onshi-dev-facility` metadata.
//! Never what a request field claims.

use tonic::Request;

use crate::domain::facility::{FacilityCode, parse_facility_code};
use crate::domain::{Reason, Violation};
use crate::tls::{Peer, peer_of};

/// The metadata key read in development mode only.
pub const DEV_FACILITY_HEADER: &str = "x-onshi-dev-facility";
/// The metadata key naming a temporary site, read in development mode only.
pub const DEV_SITE_HEADER: &str = "x-onshi-dev-site";

/// Who calls, as the transport establishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Facility(FacilityCode),
    /// A temporary site, by id: the registry says who sponsors it.
    Site(String),
}

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

/// The calling facility of `req` under `source`, refusing a request that claims
/// another one.
pub fn facility_of<M>(source: IdentitySource, req: &Request<M>) -> Result<FacilityCode, Violation> {
    let facility = transport_facility(source, req)?;
    refuse_other_claim(source, req, &facility)?;
    Ok(facility)
}

/// What the request says about the caller is never believed: under a certificate,
/// a request whose metadata names another facility is refused rather than guessed.
/// The refusal comes after the certificate's facility is known, so that the
/// attempt is on that facility's record.
pub fn refuse_other_claim<M>(
    source: IdentitySource,
    req: &Request<M>,
    facility: &FacilityCode,
) -> Result<(), Violation> {
    if source != IdentitySource::Certificate {
        return Ok(());
    }
    match req.metadata().get(DEV_FACILITY_HEADER) {
        Some(claimed) if claimed.to_str().ok().map(str::trim) != Some(facility.as_str()) => {
            Err(Violation::new(
                Reason::FacilityMismatch,
                "",
                format!("the request claims another facility than the certificate's {facility}"),
            )
            .with("facility", facility.to_string()))
        }
        _ => Ok(()),
    }
}

/// The calling facility of `req` under `source`, as the transport establishes it:
/// from the verified client certificate, or (development only) from metadata. A
/// temporary site is refused: it is not its sponsor, and may only call the
/// patient-data services, whose rules know sites.
pub fn transport_facility<M>(
    source: IdentitySource,
    req: &Request<M>,
) -> Result<FacilityCode, Violation> {
    match transport_caller(source, req)? {
        Caller::Facility(f) => Ok(f),
        Caller::Site(id) => Err(Violation::new(
            Reason::SiteNotPermitted,
            "",
            format!("site {id} may call the patient-data services only, never as its sponsor"),
        )
        .with("site", id)),
    }
}

/// A site names itself by its certificate alone: any facility it claims besides
/// (its sponsor's included) is refused, so a site never passes as its sponsor.
pub fn refuse_site_claim<M>(req: &Request<M>, site: &str) -> Result<(), Violation> {
    match req.metadata().get(DEV_FACILITY_HEADER) {
        Some(_) => Err(Violation::new(
            Reason::FacilityMismatch,
            "",
            format!("site {site} claims a facility: a site calls as itself, never as its sponsor"),
        )
        .with("site", site.to_string())),
        None => Ok(()),
    }
}

/// The caller of `req` under `source`: the facility or site its verified client
/// certificate names, or (development only) the one in metadata.
pub fn transport_caller<M>(source: IdentitySource, req: &Request<M>) -> Result<Caller, Violation> {
    if source == IdentitySource::DevelopmentMetadata
        && let Some(site) = req.metadata().get(DEV_SITE_HEADER)
    {
        let site = site.to_str().map_err(|_| {
            Violation::new(
                Reason::FacilityUnidentified,
                "",
                format!("`{DEV_SITE_HEADER}` is not ASCII"),
            )
        })?;
        return Ok(Caller::Site(site.trim().to_string()));
    }
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
            parse_facility_code("", raw)
                .map(Caller::Facility)
                .map_err(|v| v.with("metadata", DEV_FACILITY_HEADER))
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
            match peer_of(leaf.as_ref())? {
                Peer::Facility(f) => Ok(Caller::Facility(f)),
                Peer::Site(id) => Ok(Caller::Site(id)),
                Peer::Operator { .. } => Err(Violation::new(
                    Reason::FacilityUnidentified,
                    "",
                    "an operator certificate cannot call the terminal services",
                )),
            }
        }
    }
}

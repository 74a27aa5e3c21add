//! Reading the caller's identity from its (already verified) client certificate.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::domain::facility::{FacilityCode, parse_facility_code};
use crate::domain::site::SITE_URI_PREFIX;
use crate::domain::{Reason, Violation};

pub const FACILITY_URI_PREFIX: &str = "urn:onshi:facility:";
pub const OPERATOR_URI_PREFIX: &str = "urn:onshi:operator:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorRole {
    /// Creates and changes activations.
    ActivationManager,
    /// Reads the access log.
    Auditor,
    /// A prefecture's health department: registers and closes temporary sites.
    PrefectureHealth,
    /// Reviews the accesses made under the exemption and records their outcomes.
    Reviewer,
    /// Another organisation's witness: fetches checkpoints and proofs, never a record.
    Witness,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::ActivationManager => "activation-manager",
            OperatorRole::Auditor => "auditor",
            OperatorRole::PrefectureHealth => "prefecture",
            OperatorRole::Reviewer => "reviewer",
            OperatorRole::Witness => "witness",
        }
    }

    pub fn parse(s: &str) -> Option<OperatorRole> {
        match s {
            "activation-manager" => Some(OperatorRole::ActivationManager),
            "auditor" => Some(OperatorRole::Auditor),
            "prefecture" => Some(OperatorRole::PrefectureHealth),
            "reviewer" => Some(OperatorRole::Reviewer),
            "witness" => Some(OperatorRole::Witness),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Facility(FacilityCode),
    Operator {
        id: String,
        role: OperatorRole,
    },
    /// A temporary site (first-aid post, mobile clinic, …) by its registered id.
    Site(String),
}

fn unidentified(description: impl Into<String>) -> Violation {
    Violation::new(Reason::FacilityUnidentified, "", description)
}

/// The identity in a DER certificate's SAN URIs: exactly one facility or operator URI.
pub fn peer_of(der: &[u8]) -> Result<Peer, Violation> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| unidentified(format!("the client certificate cannot be read: {e}")))?;
    let uris: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let identities: Vec<&str> = uris
        .iter()
        .copied()
        .filter(|u| {
            u.starts_with(FACILITY_URI_PREFIX)
                || u.starts_with(OPERATOR_URI_PREFIX)
                || u.starts_with(SITE_URI_PREFIX)
        })
        .collect();
    let [uri] = identities[..] else {
        return Err(unidentified(format!(
            "the client certificate must name exactly one identity as a SAN URI \
             ({FACILITY_URI_PREFIX}<facility code>, {SITE_URI_PREFIX}<site id> or {OPERATOR_URI_PREFIX}<role>:<id>); it names {}",
            identities.len()
        )));
    };
    if let Some(code) = uri.strip_prefix(FACILITY_URI_PREFIX) {
        // A code with a wrong check digit is refused with its own reason.
        return parse_facility_code("certificate", code).map(Peer::Facility);
    }
    if let Some(id) = uri.strip_prefix(SITE_URI_PREFIX) {
        return site_id(id).map(|id| Peer::Site(id.to_string()));
    }
    let rest = uri.strip_prefix(OPERATOR_URI_PREFIX).unwrap_or_default();
    let (role, id) = rest.split_once(':').unwrap_or((rest, ""));
    match (OperatorRole::parse(role), id.is_empty()) {
        (Some(role), false) => Ok(Peer::Operator {
            id: id.to_string(),
            role,
        }),
        _ => Err(unidentified(format!(
            "{uri} is not an operator identity {OPERATOR_URI_PREFIX}<activation-manager|auditor|prefecture|reviewer>:<id>"
        ))),
    }
}

/// A site id as certificates carry it: 1 to 64 of `[A-Za-z0-9-]`.
fn site_id(id: &str) -> Result<&str, Violation> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(unidentified(format!(
            "{SITE_URI_PREFIX}{id} does not name a site: a site id is 1 to 64 letters, digits or hyphens"
        )));
    }
    Ok(id)
}

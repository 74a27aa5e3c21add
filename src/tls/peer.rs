//! Reading the caller's identity from its (already verified) client certificate.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::domain::facility::{FacilityCode, parse_facility_code};
use crate::domain::{Reason, Violation};

pub const FACILITY_URI_PREFIX: &str = "urn:onshi:facility:";
pub const OPERATOR_URI_PREFIX: &str = "urn:onshi:operator:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorRole {
    /// Creates and changes activations.
    ActivationManager,
    /// Reads the access log.
    Auditor,
    /// Another organisation's witness: fetches checkpoints and proofs, never a record.
    Witness,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::ActivationManager => "activation-manager",
            OperatorRole::Auditor => "auditor",
            OperatorRole::Witness => "witness",
        }
    }

    pub fn parse(s: &str) -> Option<OperatorRole> {
        match s {
            "activation-manager" => Some(OperatorRole::ActivationManager),
            "auditor" => Some(OperatorRole::Auditor),
            "witness" => Some(OperatorRole::Witness),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Facility(FacilityCode),
    Operator { id: String, role: OperatorRole },
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
        .filter(|u| u.starts_with(FACILITY_URI_PREFIX) || u.starts_with(OPERATOR_URI_PREFIX))
        .collect();
    let [uri] = identities[..] else {
        return Err(unidentified(format!(
            "the client certificate must name exactly one identity as a SAN URI \
             ({FACILITY_URI_PREFIX}<facility code> or {OPERATOR_URI_PREFIX}<role>:<id>); it names {}",
            identities.len()
        )));
    };
    if let Some(code) = uri.strip_prefix(FACILITY_URI_PREFIX) {
        // A code with a wrong check digit is refused with its own reason.
        return parse_facility_code("certificate", code).map(Peer::Facility);
    }
    let rest = uri.strip_prefix(OPERATOR_URI_PREFIX).unwrap_or_default();
    let (role, id) = rest.split_once(':').unwrap_or((rest, ""));
    match (OperatorRole::parse(role), id.is_empty()) {
        (Some(role), false) => Ok(Peer::Operator {
            id: id.to_string(),
            role,
        }),
        _ => Err(unidentified(format!(
            "{uri} is not an operator identity {OPERATOR_URI_PREFIX}<activation-manager|auditor>:<id>"
        ))),
    }
}

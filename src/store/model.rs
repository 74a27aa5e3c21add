//! The stored shapes, independent of any database.

use chrono::{DateTime, Utc};

use crate::domain::jst::Window;

/// An area an activation can cover. Prefecture and facility areas need no registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AreaKey {
    Prefecture(u8),
    Municipality(String),
    Facility(String),
}

impl AreaKey {
    pub fn kind(&self) -> &'static str {
        match self {
            AreaKey::Prefecture(_) => "prefecture",
            AreaKey::Municipality(_) => "municipality",
            AreaKey::Facility(_) => "facility",
        }
    }

    pub fn code(&self) -> String {
        match self {
            AreaKey::Prefecture(p) => format!("{p:02}"),
            AreaKey::Municipality(m) => m.clone(),
            AreaKey::Facility(f) => f.clone(),
        }
    }

    pub fn from_parts(kind: &str, code: &str) -> Option<AreaKey> {
        match kind {
            "prefecture" => code.parse().ok().map(AreaKey::Prefecture),
            "municipality" => Some(AreaKey::Municipality(code.to_string())),
            "facility" => Some(AreaKey::Facility(code.to_string())),
            _ => None,
        }
    }
}

impl std::fmt::Display for AreaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.code())
    }
}

#[derive(Debug, Clone)]
pub struct NewActivation {
    pub event: String,
    pub notice: String,
    pub areas: Vec<AreaKey>,
    pub window: Window,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct Activation {
    pub id: String,
    pub event: String,
    pub notice: String,
    pub areas: Vec<AreaKey>,
    pub window: Window,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One window of one activation over one area: what the activation rule decides by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub activation_id: String,
    pub event: String,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRecord {
    pub search_id: String,
    pub facility: String,
    pub at: DateTime<Utc>,
    /// SHA-256 (hex) of each candidate's insured-number key: enough to check
    /// membership, no identifier kept in clear.
    pub candidate_hashes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every rule passed and the upstream answered.
    Allowed,
    /// A rule refused the call.
    Denied,
    /// Every rule passed but the upstream failed; no data left the gateway.
    Failed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allowed" => Some(Decision::Allowed),
            "denied" => Some(Decision::Denied),
            "failed" => Some(Decision::Failed),
            _ => None,
        }
    }
}

/// One access record: who, what, why, how identified, the decision and the upstream's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub id: String,
    pub at: DateTime<Utc>,
    /// The RPC, e.g. `GetDrugHistory`.
    pub method: String,
    /// What was (or would have been) shown: `qualification`, `candidates`, `drug_history`, `health_checkups`.
    pub items: String,
    pub facility: Option<String>,
    pub staff_id: Option<String>,
    pub staff_role: Option<String>,
    /// The insured-number key of the patient, when the request named one.
    pub patient_key: Option<String>,
    pub identification: Option<String>,
    pub search_id: Option<String>,
    pub consent_basis: Option<String>,
    pub exemption_reason: Option<String>,
    pub exemption_identification: Option<String>,
    pub purpose: Option<String>,
    pub activation_id: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
    /// The gRPC status code returned to the caller.
    pub grpc_code: i32,
    /// What the upstream said: its status code or result (e.g. `OK status=1`).
    pub upstream_result: Option<String>,
    /// Exemption accesses are flagged for the operators' review.
    pub needs_review: bool,
}

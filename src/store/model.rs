//! The stored shapes, independent of any database.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::activation_change::{self, AreaWindow, Revision};
use crate::domain::jst::Window;

use super::Value;

pub use crate::domain::area::AreaKey;

#[derive(Debug, Clone)]
pub struct NewActivation {
    pub event: String,
    pub notice: String,
    pub areas: Vec<AreaKey>,
    pub window: Window,
    pub created_by: String,
    /// When it is recorded: from then on it applies to decisions.
    pub at: DateTime<Utc>,
}

/// An activation with every revision it has had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub id: String,
    pub event: String,
    pub notice: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// In number order; the first is the creation.
    pub revisions: Vec<Revision>,
}

impl Activation {
    /// The windows in force now: each area's latest.
    pub fn areas(&self) -> Vec<AreaWindow> {
        activation_change::current(&self.revisions)
    }

    /// The windows known at `known_at`.
    pub fn areas_at(&self, known_at: DateTime<Utc>) -> Vec<AreaWindow> {
        activation_change::state_at(&self.revisions, known_at)
    }

    /// Whether any area is open at `at`, as known now.
    pub fn is_open_at(&self, at: DateTime<Utc>) -> bool {
        self.areas().iter().any(|a| a.window.contains(at))
    }

    /// The earliest start and the latest end over its areas, as known now.
    pub fn span(&self) -> Option<Window> {
        let areas = self.areas();
        let start = areas.iter().map(|a| a.window.start).min()?;
        let end = areas.iter().map(|a| a.window.end).max()?;
        Some(Window { start, end })
    }

    pub fn latest_revision(&self) -> u32 {
        self.revisions.last().map_or(0, |r| r.number)
    }
}

/// One window of one activation over one area: what the activation rule decides by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub activation_id: String,
    pub event: String,
    pub window: Window,
}

/// The RPC whose allowed calls open a search (`SearchPatients`): a later call may
/// identify a patient as one of its candidates.
pub const SEARCH_METHOD: &str = "SearchPatients";

/// How a candidate is kept in the search ledger: a hash of its insured-number key.
pub fn candidate_hash(insured_key: &str) -> String {
    hex::encode(Sha256::digest(insured_key.as_bytes()))
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
    /// The patients whose data the reply showed besides `patient_key`, by the same
    /// key: an attribute search's candidates, in the order shown.
    pub disclosed_patients: Vec<String>,
    /// The access mode and the consent's kinds; `None` on records written before
    /// they were kept (and then absent from the hash input, see docs/audit.md).
    pub clinical: Option<ClinicalStamp>,
    /// What a call from a temporary site adds; empty for a facility's own calls.
    pub site: SiteStamp,
    /// The exemption's category, the patient's notice, review outcomes and reads of
    /// the log; `None` when none applies (the record then hashes as before).
    pub accountability: Option<super::Accountability>,
}

/// What a record says of the access mode and of consent per kind. Its hash input
/// is the tagged section 0x10 (`audit::chain::record_hash`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClinicalStamp {
    /// `emergency_viewing` for 救急時医療情報閲覧, `disaster` when stated so.
    pub access_mode: Option<String>,
    /// `all`, or the kinds joined by `,` (e.g. `drugs,checkups`).
    pub consent_kinds: Option<String>,
}

impl ClinicalStamp {
    /// The stamp of these values, `None` when neither is set.
    pub fn of(access_mode: Option<String>, consent_kinds: Option<String>) -> Option<ClinicalStamp> {
        (access_mode.is_some() || consent_kinds.is_some()).then_some(ClinicalStamp {
            access_mode,
            consent_kinds,
        })
    }
}

/// A temporary site's part of an access record: which site called, what kind, its
/// sponsoring facility, and the professional's licence registration number if the
/// call named one. Hashed as its own tagged section (docs/audit.md), present only
/// when a field is set, so records without one verify as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteStamp {
    pub site_id: Option<String>,
    pub site_kind: Option<String>,
    /// The site's name, as the patient's access history shows it.
    pub site_name: Option<String>,
    pub site_sponsor: Option<String>,
    pub licence_number: Option<String>,
}

impl SiteStamp {
    /// The tag of the section in the record hash.
    pub const TAG: u8 = 0x20;

    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }

    /// The fields with their column names, in the one order the columns and the
    /// hash section follow.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("site_id", self.site_id.as_deref()),
            ("site_kind", self.site_kind.as_deref()),
            ("site_name", self.site_name.as_deref()),
            ("site_sponsor", self.site_sponsor.as_deref()),
            ("licence_number", self.licence_number.as_deref()),
        ]
    }
}

impl AccessRecord {
    /// A fresh record id: a UUID of version 7, which begins with its time, so that the
    /// log's unique index on ids grows at its end instead of taking each record at a
    /// random page (random ids dirtied a page of that index per record in every
    /// commit). Its other 74 bits are random (uuid's `fast-rng`: a ChaCha generator
    /// the kernel seeds), so ids stay unguessable.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// The search this record's call opened, if it is an allowed search that named
    /// one: its id, facility, time and candidates, as the search ledger keeps them.
    /// The store writes it in the record's own transaction, so a search can be
    /// found exactly when the record of the call that showed it is committed.
    pub fn opened_search(&self) -> Option<SearchRecord> {
        if self.method != SEARCH_METHOD || self.decision != Decision::Allowed {
            return None;
        }
        Some(SearchRecord {
            search_id: self.search_id.clone()?,
            facility: self.facility.clone()?,
            at: self.at,
            candidate_hashes: self
                .disclosed_patients
                .iter()
                .map(|key| candidate_hash(key))
                .collect(),
        })
    }

    /// A record of the gateway's own accountability (a review outcome, a read of the
    /// log, a site's change): allowed, with a fresh id and nothing else set yet.
    pub fn operators(method: &str, items: &str, at: DateTime<Utc>) -> AccessRecord {
        AccessRecord {
            id: AccessRecord::new_id(),
            at,
            method: method.to_string(),
            items: items.to_string(),
            facility: None,
            staff_id: None,
            staff_role: None,
            patient_key: None,
            identification: None,
            search_id: None,
            consent_basis: None,
            exemption_reason: None,
            exemption_identification: None,
            purpose: None,
            activation_id: None,
            decision: Decision::Allowed,
            reason: None,
            grpc_code: 0,
            upstream_result: None,
            needs_review: false,
            disclosed_patients: Vec::new(),
            clinical: None,
            site: SiteStamp::default(),
            accountability: None,
        }
    }

    /// Every field but the disclosed patients (kept in a table of their own) with
    /// its column name, in the one order that the table's columns, the INSERT and
    /// the hash chain's canonical form (docs/audit.md) follow.
    pub fn fields(&self) -> [(&'static str, Value<'_>); 20] {
        self.base_fields()
    }

    /// The columns of the clinical stamp, after `fields` in the table's INSERT; in
    /// the hash they are the tagged section 0x10, not part of the fixed fields.
    pub fn clinical_fields(&self) -> [(&'static str, Value<'_>); 2] {
        let stamp = self.clinical.as_ref();
        [
            (
                "access_mode",
                Value::OptText(stamp.and_then(|c| c.access_mode.as_deref())),
            ),
            (
                "consent_kinds",
                Value::OptText(stamp.and_then(|c| c.consent_kinds.as_deref())),
            ),
        ]
    }

    /// Whether the record is of an emergency view outside a disaster.
    pub fn is_emergency_viewing(&self) -> bool {
        self.clinical
            .as_ref()
            .and_then(|c| c.access_mode.as_deref())
            == Some("emergency_viewing")
    }

    fn base_fields(&self) -> [(&'static str, Value<'_>); 20] {
        [
            ("id", Value::Text(&self.id)),
            ("at", Value::BigInt(super::sql::to_nanos(self.at))),
            ("method", Value::Text(&self.method)),
            ("items", Value::Text(&self.items)),
            ("facility", opt(&self.facility)),
            ("staff_id", opt(&self.staff_id)),
            ("staff_role", opt(&self.staff_role)),
            ("patient_key", opt(&self.patient_key)),
            ("identification", opt(&self.identification)),
            ("search_id", opt(&self.search_id)),
            ("consent_basis", opt(&self.consent_basis)),
            ("exemption_reason", opt(&self.exemption_reason)),
            (
                "exemption_identification",
                opt(&self.exemption_identification),
            ),
            ("purpose", opt(&self.purpose)),
            ("activation_id", opt(&self.activation_id)),
            ("decision", Value::Text(self.decision.as_str())),
            ("reason", opt(&self.reason)),
            ("grpc_code", Value::Int(self.grpc_code)),
            ("upstream_result", opt(&self.upstream_result)),
            ("needs_review", Value::Bool(self.needs_review)),
        ]
    }
}

fn opt(v: &Option<String>) -> Value<'_> {
    Value::OptText(v.as_deref())
}

#[cfg(test)]
mod tests {
    use super::AccessRecord;

    #[test]
    fn record_ids_follow_the_order_they_were_made_in() {
        let ids: Vec<String> = (0..1000).map(|_| AccessRecord::new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "an index on ids grows at its end");
        let id = uuid::Uuid::parse_str(&ids[0]).expect("a UUID");
        assert_eq!(id.get_version_num(), 7);
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}

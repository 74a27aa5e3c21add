//! One access record as a FHIR R4 `AuditEvent`, shaped after IHE Basic Audit Log
//! Patterns (BALP): the query as type and subtype, the action, when, the outcome,
//! the agents (the facility as an organisation, the staff member with their role,
//! the gateway), the source, the patients as entities by identifier, and the
//! purpose of use (`TREAT`, or `ETREAT` with the break-the-glass label under the
//! life-or-body exemption). `audit export --format fhir` writes one per line
//! (NDJSON, as FHIR bulk data does).
//!
//! Agents and entities are lists of small builders: a new agent (say, the site a
//! temporary clinic runs) or a new detail (say, the exemption's reason category)
//! is one more line in `AGENTS` or `exemption_details`.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::domain::jst::jst;
use crate::store::{Decision, StoredRecord};

const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const FACILITY_CODE: &str = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
/// The identifier systems this gateway names itself.
const INSURED_KEY: &str = "urn:onshi:insured-number";
const STAFF_ID: &str = "urn:onshi:staff-id";
const RPC: &str = "urn:onshi:rpc";
const ACCESS_RECORD: &str = "urn:onshi:access-record";
const STAFF_ROLE: &str = "urn:onshi:staff-role";
const SITE_ID: &str = "urn:onshi:site";

type Agent = fn(&StoredRecord) -> Option<Value>;

/// Who took part, in BALP's order: the requesting user, their organisation (or a
/// caller refused before it was identified), the gateway that answered.
const AGENTS: [Agent; 5] = [
    staff_agent,
    facility_agent,
    site_agent,
    unidentified_agent,
    gateway_agent,
];

/// The record as an AuditEvent resource (JSON).
pub fn audit_event(s: &StoredRecord) -> Value {
    let r = &s.record;
    let exemption = r.needs_review;
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": fhir_id(&r.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation"
        },
        "subtype": [interaction(&r.method), {"system": RPC, "code": r.method}],
        "action": if interaction(&r.method)["code"] == "search" { "E" } else { "R" },
        "recorded": r.at.with_timezone(&jst()).to_rfc3339_opts(SecondsFormat::Millis, false),
        "outcome": outcome(r.decision),
        "purposeOfEvent": [purpose(exemption, r.exemption_reason.as_deref())],
        "agent": AGENTS.iter().filter_map(|a| a(s)).collect::<Vec<_>>(),
        "source": {
            "site": "onshi-gateway",
            "observer": {"identifier": {"system": "urn:onshi:audit-chain", "value": s.chain_id}},
            "type": [{
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server"
            }]
        },
        "entity": entities(s),
    });
    if let Some(reason) = &r.reason {
        event["outcomeDesc"] = json!(reason);
    }
    if exemption {
        event["meta"] = json!({"security": [{
            "system": ACT_REASON, "code": "BTG", "display": "break the glass"
        }]});
    }
    event
}

/// A FHIR id holds at most 64 of `A-Z a-z 0-9 - .`; record ids are UUIDs.
fn fhir_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect()
}

/// An attribute search is a FHIR search; the lookups by insured number read.
fn interaction(method: &str) -> Value {
    let code = if method == "SearchPatients" {
        "search"
    } else {
        "read"
    };
    json!({"system": "http://hl7.org/fhir/restful-interaction", "code": code})
}

fn outcome(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "0",
        Decision::Denied => "4",
        Decision::Failed => "8",
    }
}

fn purpose(exemption: bool, reason: Option<&str>) -> Value {
    let (code, display) = if exemption {
        ("ETREAT", "Emergency Treatment")
    } else {
        ("TREAT", "treatment")
    };
    let mut p = json!({"coding": [{"system": ACT_REASON, "code": code, "display": display}]});
    if let Some(reason) = reason.filter(|_| exemption) {
        p["text"] = json!(reason);
    }
    p
}

fn staff_agent(s: &StoredRecord) -> Option<Value> {
    let r = &s.record;
    let id = r.staff_id.as_deref()?;
    let mut agent = json!({
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
            "code": "humanuser",
            "display": "human user"
        }]},
        "who": {"identifier": {"system": STAFF_ID, "value": id}},
        "requestor": true,
    });
    if let Some(role) = &r.staff_role {
        agent["role"] = json!([{"coding": [{"system": STAFF_ROLE, "code": role}], "text": role}]);
    }
    // The licence registration number (医籍 / 薬剤師名簿) names the professional
    // beyond the facility's own staff id.
    if let Some(licence) = &r.site.licence_number {
        agent["altId"] = json!(licence);
    }
    Some(agent)
}

/// A temporary site (first-aid post, mobile clinic, …) where the access was made,
/// beside its sponsoring facility.
fn site_agent(s: &StoredRecord) -> Option<Value> {
    let site = &s.record.site;
    let id = site.site_id.as_deref()?;
    let mut agent = json!({
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
            "code": "SDLOC",
            "display": "service delivery location"
        }]},
        "who": {"type": "Organization", "identifier": {"system": SITE_ID, "value": id}},
        "requestor": false,
    });
    if let Some(name) = &site.site_name {
        agent["who"]["display"] = json!(name);
    }
    Some(agent)
}

fn facility_agent(s: &StoredRecord) -> Option<Value> {
    let code = s.record.facility.as_deref()?;
    Some(json!({
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
            "code": "PROV",
            "display": "healthcare provider"
        }]},
        "who": {"type": "Organization", "identifier": {"system": FACILITY_CODE, "value": code}},
        // The facility asked, when no staff member was named.
        "requestor": s.record.staff_id.is_none(),
    }))
}

/// A call refused before its caller was known still had a caller: it is the requestor.
fn unidentified_agent(s: &StoredRecord) -> Option<Value> {
    let r = &s.record;
    if r.staff_id.is_some() || r.facility.is_some() {
        return None;
    }
    Some(json!({"who": {"display": "unidentified caller"}, "requestor": true}))
}

fn gateway_agent(_: &StoredRecord) -> Option<Value> {
    Some(json!({
        "type": {"coding": [{
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110152",
            "display": "Destination Role ID"
        }]},
        "who": {"display": "onshi-gateway"},
        "requestor": false,
    }))
}

/// The patients (the one named, then those the reply showed), and the record
/// itself with its place in the hash chain.
fn entities(s: &StoredRecord) -> Vec<Value> {
    let r = &s.record;
    let patients = r.patient_key.iter().chain(r.disclosed_patients.iter());
    let mut out: Vec<Value> = patients
        .map(|key| {
            json!({
                "what": {"type": "Patient", "identifier": {"system": INSURED_KEY, "value": key}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person"
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient"
                }
            })
        })
        .collect();
    let mut detail = vec![
        detail("items", &r.items),
        detail("chain_id", &s.chain_id),
        detail("seq", &s.seq.to_string()),
        detail("hash", &s.hash),
    ];
    detail.extend(exemption_details(s));
    out.push(json!({
        "what": {"identifier": {"system": ACCESS_RECORD, "value": r.id}},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2",
            "display": "System Object"
        },
        "detail": detail,
    }));
    out
}

/// What the access says of itself beyond its purpose: how an exempted patient was
/// identified and why, the access mode, the kind of temporary site.
fn exemption_details(s: &StoredRecord) -> Vec<Value> {
    let r = &s.record;
    let a = r.accountability.as_ref();
    let clinical = r.clinical.as_ref();
    [
        (
            "exemption_identification",
            r.exemption_identification.as_ref(),
        ),
        (
            "exemption_category",
            a.and_then(|a| a.exemption_category.as_ref()),
        ),
        ("access_mode", clinical.and_then(|c| c.access_mode.as_ref())),
        ("site_kind", r.site.site_kind.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| detail(name, v)))
    .collect()
}

fn detail(name: &str, value: &str) -> Value {
    json!({"type": name, "valueString": value})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::tests::record;

    fn stored(r: crate::store::AccessRecord) -> StoredRecord {
        StoredRecord {
            chain_id: "0123456789abcdef".into(),
            seq: 7,
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
            record: r,
        }
    }

    #[test]
    fn a_plain_lookup_is_a_read_for_treatment_without_a_security_label() {
        let e = audit_event(&stored(record("r-1")));
        assert_eq!(e["resourceType"], "AuditEvent");
        assert_eq!(e["action"], "R");
        assert_eq!(e["outcome"], "0");
        assert_eq!(e["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
        assert!(e.get("meta").is_none());
        assert_eq!(e["agent"].as_array().map(Vec::len), Some(3));
        assert_eq!(e["agent"][0]["requestor"], true);
        assert_eq!(e["agent"][1]["who"]["identifier"]["value"], "0411234567");
        assert_eq!(e["recorded"], "2022-03-18T00:00:00.000+09:00");
    }

    #[test]
    fn an_exemption_is_emergency_treatment_under_break_the_glass() {
        let mut r = record("r-2");
        r.needs_review = true;
        r.exemption_reason = Some("意識障害".into());
        r.exemption_identification = Some("photo_id".into());
        r.patient_key = Some("01040013|40250311|152|00".into());
        let e = audit_event(&stored(r));
        assert_eq!(e["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(e["purposeOfEvent"][0]["text"], "意識障害");
        assert_eq!(e["meta"]["security"][0]["code"], "BTG");
        assert_eq!(
            e["entity"][0]["what"]["identifier"]["value"],
            "01040013|40250311|152|00"
        );
        let details = e["entity"][1]["detail"].to_string();
        assert!(details.contains("photo_id"), "{details}");
    }

    #[test]
    fn a_search_lists_every_patient_shown_and_a_denial_is_a_minor_failure() {
        let mut r = record("r-3");
        r.method = "SearchPatients".into();
        r.decision = Decision::Denied;
        r.reason = Some("AREA_NOT_ACTIVATED".into());
        r.disclosed_patients = vec!["a".into(), "b".into()];
        let e = audit_event(&stored(r));
        assert_eq!(e["action"], "E");
        assert_eq!(e["subtype"][0]["code"], "search");
        assert_eq!(e["outcome"], "4");
        assert_eq!(e["outcomeDesc"], "AREA_NOT_ACTIVATED");
        assert_eq!(e["entity"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn there_is_always_exactly_one_requestor() {
        let requestors = |r: crate::store::AccessRecord| {
            let e = audit_event(&stored(r));
            e["agent"]
                .as_array()
                .map(|a| a.iter().filter(|a| a["requestor"] == true).count())
        };
        let mut no_staff = record("r-4");
        no_staff.staff_id = None;
        let mut no_one = no_staff.clone();
        no_one.facility = None;
        assert_eq!(requestors(record("r-5")), Some(1));
        assert_eq!(requestors(no_staff), Some(1));
        assert_eq!(requestors(no_one), Some(1));
    }
}

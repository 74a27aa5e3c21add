//! `audit export --format fhir`: every line of the export is validated as an R4
//! AuditEvent by a published FHIR model library (`fhir.resources`, pinned in
//! tests/fhir/requirements.txt and installed by tests/fhir/setup.sh), not by a
//! schema of our own. The records cover each decision, a search that disclosed
//! patients, an exemption access, and a record with no staff or facility at all.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use onshi_gateway::audit::ChainSigner;
use onshi_gateway::audit::chain::Linker;
use onshi_gateway::store::{self, AccessRecord, Decision, StoreLocation};

const BIN: &str = env!("CARGO_BIN_EXE_onshi-gateway");

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(1_647_734_400_123_456_789) + chrono::Duration::minutes(minute)
}

fn lookup(i: i64) -> AccessRecord {
    AccessRecord {
        id: uuid::Uuid::new_v4().to_string(),
        at: at(i),
        method: "LookupQualification".into(),
        items: "qualification".into(),
        facility: Some("0411234567".into()),
        staff_id: Some(format!("dr-{i:04}")),
        staff_role: Some("doctor".into()),
        patient_key: Some("01040013|40250311|152|00".into()),
        identification: Some("insured_number_known".into()),
        search_id: None,
        consent_basis: Some("patient_consent".into()),
        exemption_reason: None,
        exemption_identification: None,
        purpose: Some("medical_care".into()),
        activation_id: Some("act-1".into()),
        decision: Decision::Allowed,
        reason: None,
        grpc_code: 0,
        upstream_result: Some("OK status=VALID".into()),
        needs_review: false,
        disclosed_patients: Vec::new(),
        clinical: None,
        site: Default::default(),
        accountability: None,
    }
}

fn records() -> Vec<AccessRecord> {
    let denied = AccessRecord {
        decision: Decision::Denied,
        reason: Some("AREA_NOT_ACTIVATED".into()),
        grpc_code: 7,
        upstream_result: None,
        ..lookup(1)
    };
    let failed = AccessRecord {
        method: "GetDrugHistory".into(),
        items: "drug_history".into(),
        decision: Decision::Failed,
        reason: Some("UPSTREAM_UNAVAILABLE".into()),
        grpc_code: 14,
        upstream_result: Some("Unavailable".into()),
        ..lookup(2)
    };
    let search = AccessRecord {
        method: "SearchPatients".into(),
        items: "candidates".into(),
        patient_key: None,
        identification: None,
        disclosed_patients: vec!["01040013|40250311|152|00".into(), "06139998|1|2|00".into()],
        ..lookup(3)
    };
    let exemption = AccessRecord {
        consent_basis: Some("life_or_body_exemption".into()),
        exemption_reason: Some("意識不明、家族に連絡つかず".into()),
        exemption_identification: Some("belongings".into()),
        needs_review: true,
        ..lookup(4)
    };
    // A call refused before anyone was identified: no facility, staff or patient.
    let anonymous = AccessRecord {
        facility: None,
        staff_id: None,
        staff_role: None,
        patient_key: None,
        decision: Decision::Denied,
        reason: Some("FACILITY_UNIDENTIFIED".into()),
        grpc_code: 16,
        upstream_result: None,
        ..lookup(5)
    };
    // An emergency summary at a shelter's first-aid post under the exemption, by a
    // visiting doctor who gave a licence number: the site is an agent of its own.
    let at_a_site = AccessRecord {
        method: "GetEmergencySummary".into(),
        items: "emergency_summary".into(),
        consent_basis: Some("life_or_body_exemption".into()),
        exemption_reason: Some("意識障害".into()),
        exemption_identification: Some("id_document".into()),
        needs_review: true,
        clinical: onshi_gateway::store::ClinicalStamp::of(None, Some("all".into())),
        site: onshi_gateway::store::SiteStamp {
            site_id: Some("s-17204-01".into()),
            site_kind: Some("first-aid-post".into()),
            site_name: Some("輪島中学校 救護所".into()),
            site_sponsor: Some("1710110011".into()),
            licence_number: Some("123456".into()),
        },
        accountability: Some(onshi_gateway::store::Accountability {
            exemption_category: Some("impaired_consciousness".into()),
            patient_notice: true,
            ..Default::default()
        }),
        ..lookup(6)
    };
    vec![
        lookup(0),
        denied,
        failed,
        search,
        exemption,
        anonymous,
        at_a_site,
    ]
}

fn validator() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir");
    let setup = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .status()
        .expect("tests/fhir/setup.sh runs");
    assert!(setup.success(), "installing the FHIR validator failed");
    dir
}

#[tokio::test]
async fn every_exported_line_is_a_valid_r4_audit_event() {
    let data = tempfile::tempdir().expect("tempdir");
    let location = StoreLocation::Sqlite(data.path().join("onshi.db"));
    let store = store::open(&location).await.expect("store");
    let signer = ChainSigner::generate();
    store
        .register_chain(&signer.chain_info(at(0)))
        .await
        .expect("registered");
    let mut linker = Linker::resume(signer.chain_id(), None).expect("new chain");
    let written = records();
    store
        .append(&linker.link(written.clone()), None)
        .await
        .expect("appended");
    store.close().await;

    let out = data.path().join("audit.ndjson");
    let export = Command::new(BIN)
        .args(["audit", "export", "--format", "fhir", "--data-dir"])
        .arg(data.path())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("export runs");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("export written");
    assert_eq!(
        text.lines().count(),
        written.len(),
        "one line per record:\n{text}"
    );
    for (line, record) in text.lines().zip(&written) {
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(event["id"], record.id.as_str());
    }
    // The first-aid post is an agent beside its sponsor, the doctor carries the
    // licence number, and the reason's category is a detail of the record.
    let site: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    let agents = site["agent"].as_array().expect("agents");
    assert!(
        agents
            .iter()
            .any(|a| a["who"]["identifier"]["value"] == "s-17204-01"
                && a["who"]["display"] == "輪島中学校 救護所"),
        "{site}"
    );
    assert!(agents.iter().any(|a| a["altId"] == "123456"), "{site}");
    assert!(
        site.to_string().contains("impaired_consciousness"),
        "{site}"
    );

    let dir = validator();
    let check = Command::new(dir.join(".venv/bin/python"))
        .arg(dir.join("validate.py"))
        .arg(&out)
        .output()
        .expect("validator runs");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        report.contains(&format!("{} valid, 0 invalid", written.len())),
        "{report}"
    );
    assert_eq!(report.matches(" ETREAT").count(), 2, "{report}");
}

#[test]
fn the_validator_refuses_what_is_not_an_audit_event() {
    let dir = validator();
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("bad.ndjson");
    // No source (required in R4), and an element AuditEvent does not have.
    std::fs::write(
        &bad,
        "{\"resourceType\":\"AuditEvent\",\"type\":{\"code\":\"rest\"},\"recorded\":\"2022-03-20T10:00:00+09:00\",\"agent\":[{\"requestor\":true}]}\n\
         {\"resourceType\":\"AuditEvent\",\"type\":{\"code\":\"rest\"},\"recorded\":\"2022-03-20T10:00:00+09:00\",\"agent\":[{\"requestor\":true}],\"source\":{\"observer\":{\"display\":\"x\"}},\"patient\":\"p\"}\n",
    )
    .expect("written");
    let check = Command::new(dir.join(".venv/bin/python"))
        .arg(dir.join("validate.py"))
        .arg(&bad)
        .output()
        .expect("validator runs");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{report}");
    assert!(report.contains("0 valid, 2 invalid"), "{report}");
}

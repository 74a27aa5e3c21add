//! The operators' console in a real browser: headless Chromium (Debian's `chromium`)
//! driven by Playwright for Python (`tests/console/requirements.txt`, installed by
//! `tests/console/setup.sh`), presenting operator certificates as a browser does.
//! The scenario (`tests/console/scenario.py`): paste the Noto 2024 notice of 47
//! municipalities, see them resolved, counted and on the map, activate, see "Now"
//! change; extend 18; ask whether a facility was allowed at an instant and by which
//! revision; record a review outcome as a reviewer; a facility certificate is refused.
//! Screenshots of each page are kept in `target/console-screenshots/`.

mod common;
#[path = "console/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::domain::facility::{FacilityKind, make_facility_code};
use onshi_gateway::domain::prefecture::Prefecture;
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::RegisteredFacility;
use onshi_gateway::tls::OperatorRole;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

// The Noto 2024 lists of tests/activation_fixtures.rs: 47 in Niigata, Toyama,
// Ishikawa and Fukui; 18 extended to 14 January.
const NOTO_47: [&str; 47] = [
    "17201", "17202", "17203", "17204", "17205", "17206", "17207", "17209", "17210", "17211",
    "17361", "17365", "17384", "17386", "17407", "17461", "17463", "16201", "16202", "16204",
    "16205", "16206", "16207", "16208", "16209", "16210", "16211", "16321", "16322", "16323",
    "16342", "16343", "15100", "15202", "15204", "15205", "15206", "15211", "15213", "15216",
    "15217", "15222", "15223", "15224", "15504", "18208", "18210",
];
const EXTENDED_18: [&str; 18] = [
    "17202", "17203", "17204", "17205", "17206", "17207", "17209", "17210", "17211", "17361",
    "17365", "17384", "17386", "17407", "17461", "17463", "16202", "16205",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The notice as MHLW writes one: each prefecture, then its municipalities by name.
async fn notice(t: &support::ConsoleGateway, codes: &[&str]) -> String {
    let mut text =
        String::from("下記の市町村において、緊急時医療情報・資格確認機能を利用可能とする。\n");
    let mut last = String::new();
    for code in codes {
        let m = t
            .gateway
            .store
            .municipality(code)
            .await
            .expect("read")
            .expect("in the master");
        let prefecture = Prefecture::new(m.prefecture).expect("prefecture").name_ja();
        if prefecture != last {
            text.push_str(&format!("\n{prefecture}"));
            last = prefecture.to_string();
        } else {
            text.push('、');
        }
        text.push_str(&m.name);
    }
    text
}

/// A flagged access in the log, for the review queue: a Miyagi clinic's exemption
/// lookup under the 2022 activation (the clock is then moved to 2024).
async fn flagged_access(t: &support::ConsoleGateway) -> String {
    let window = window_from("2022-03-17", None, Some("2022-03-23"), false).expect("window");
    let new =
        new_activation("令和4年福島沖地震", "", &["04".into()], &[], window, "test").expect("new");
    t.gateway.store.add_activation(&new).await.expect("stored");
    t.gateway.activations.invalidate();
    let code = miyagi_clinic().to_string();
    let issued = t.pki.facility_ca.facility(&code).expect("cert");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&t.pki.server_ca.cert_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(&issued.cert_pem, &issued.key_pem));
    let channel = Channel::from_shared(format!("https://{}", t.gateway.addr))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connects");
    let mut request = lookup(DEMO_PATIENT.insured());
    let access = request.access.as_mut().expect("access");
    access.consent = Some(Consent {
        basis: ConsentBasis::LifeOrBodyExemption as i32,
        exemption_reason: "意識不明で搬送".into(),
        exemption_identification: ExemptionIdentification::IdDocument as i32,
        exemption_category: ExemptionCategory::ImpairedConsciousness as i32,
        ..Consent::default()
    });
    let reply = QualificationServiceClient::new(channel)
        .lookup_qualification(request)
        .await
        .expect("an exemption lookup in Miyagi during the 2022 activation");
    reply
        .metadata()
        .get(ACCESS_RECORD_HEADER)
        .expect("record id")
        .to_str()
        .expect("ascii")
        .to_string()
}

/// A registered clinic in 輪島市, one of the 18 extended.
async fn wajima_clinic(t: &support::ConsoleGateway) -> String {
    let ishikawa = Prefecture::new(17).expect("17");
    let code = make_facility_code(ishikawa, FacilityKind::Medical, 1, 2999).to_string();
    let clinic = RegisteredFacility {
        code: code.clone(),
        name: "輪島テスト診療所".into(),
        kind: FacilityKind::Medical,
        prefecture: 17,
        municipality: "17204".into(),
        emergency_hospital: false,
    };
    t.gateway
        .store
        .load_registry(&[], &[clinic])
        .await
        .expect("registered");
    code
}

fn screenshots() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target.join("console-screenshots")
}

fn install(dir: &Path) {
    let setup = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .status()
        .expect("tests/console/setup.sh runs");
    assert!(setup.success(), "installing Playwright for Python failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_noto_notices_are_pasted_activated_extended_and_reviewed_in_a_browser() {
    let chromium = chromium().expect("Debian's chromium is installed (.ci/run installs it)");
    let dir = root().join("tests/console");
    install(&dir);
    let t = support::start(jst_at(2022, 3, 20, 10, 0), test_audit_batch()).await;
    let flagged = flagged_access(&t).await;
    // 16:30 on 1 January 2024, twenty minutes after the earthquake.
    t.clock.set(jst_at(2024, 1, 1, 16, 30));
    t.gateway.activations.invalidate();
    let facility = wajima_clinic(&t).await;
    let manager = t.operator_files(OperatorRole::ActivationManager, "op-noto");
    let reviewer = t.operator_files(OperatorRole::Reviewer, "rv-1");
    let auditor = t.operator_files(OperatorRole::Auditor, "au-1");
    let clinic = t.pki.facility_ca.facility(&facility).expect("cert");
    let clinic = t.write("facility", &clinic.cert_pem, &clinic.key_pem);
    let scenario = serde_json::json!({
        "base": t.console_url(),
        "chromium": chromium,
        "shots": screenshots(),
        "manager": {"cert": manager.0, "key": manager.1},
        "reviewer": {"cert": reviewer.0, "key": reviewer.1},
        "auditor": {"cert": auditor.0, "key": auditor.1},
        "flagged_facility": miyagi_clinic().to_string(),
        "facility": {"cert": clinic.0, "key": clinic.1},
        "notice_47": notice(&t, &NOTO_47).await,
        "notice_18": notice(&t, &EXTENDED_18).await,
        "facility_code": facility,
        "ask_at": "2024-01-10 10:03",
        "later": "2024-01-20 10:00",
    });
    let python = dir.join(".venv/bin/python");
    let script = dir.join("scenario.py");
    let arg = scenario.to_string();
    let out =
        tokio::task::spawn_blocking(move || Command::new(python).arg(script).arg(arg).output())
            .await
            .expect("joined")
            .expect("the scenario runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser scenario failed:\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the scenario's JSON");
    assert_eq!(seen["in_force_after"], 47);
    assert_eq!(seen["in_force_jan10"], 18);
    assert_eq!(seen["deciding_revision"], "2");
    assert_eq!(seen["reviewed_record"], flagged.as_str());

    // What the browser did is in the stores, attributed to the certificates.
    let activations = t.gateway.store.list_activations().await.expect("read");
    let noto = activations
        .iter()
        .find(|a| a.event == "令和6年能登半島地震")
        .expect("created");
    assert_eq!(noto.created_by, "activation-manager:op-noto");
    assert_eq!(noto.revisions.len(), 2);
    assert_eq!(noto.revisions[1].author, "activation-manager:op-noto");
    let records = t
        .gateway
        .store
        .chain_records(&t.gateway.chain_id, 0, 10_000)
        .await
        .expect("log");
    let outcome = records
        .iter()
        .filter_map(|r| r.record.accountability.as_ref())
        .find(|a| a.subject_record.as_deref() == Some(flagged.as_str()))
        .expect("the outcome recorded on the chain");
    assert_eq!(outcome.operator.as_deref(), Some("reviewer:rv-1"));
    let reads = records
        .iter()
        .filter_map(|r| r.record.accountability.as_ref())
        .filter(|a| {
            a.audit_query
                .as_deref()
                .is_some_and(|q| q.starts_with("ListUnreviewed"))
        })
        .count();
    assert!(
        reads >= 2,
        "each view of the queue logged as a read, saw {reads}"
    );
    let exports: Vec<_> = records
        .iter()
        .filter_map(|r| r.record.accountability.as_ref())
        .filter(|a| {
            a.audit_query
                .as_deref()
                .is_some_and(|q| q.starts_with("ConsoleExport"))
        })
        .collect();
    assert_eq!(exports.len(), 2, "each export logged as a read");
    assert!(
        exports
            .iter()
            .all(|a| a.operator.as_deref() == Some("auditor:au-1") && a.result_count == Some(1))
    );
    t.gateway.shutdown().await.expect("stops");
}

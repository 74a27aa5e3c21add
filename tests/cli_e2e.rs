//! The real binary: the demo scenario, and activations added and listed from the CLI.

#[path = "common/process.rs"]
mod process;

use process::{Serving, Spawned, bin, dev_certs, free_port};

#[test]
fn demo_runs_the_scenario_and_shows_allowed_and_denied_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bin()
        .args([
            "demo",
            "--exit",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
            "--population",
            "3000",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Real mutual TLS, not the development identity mode.
    assert!(!stderr.contains("DEVELOPMENT IDENTITY MODE"), "{stderr}");
    assert!(stdout.contains("over mutual TLS"), "{stdout}");
    // How to open the operators' console with the demo operator's certificate.
    assert!(
        stdout.contains("The operators' console: https://localhost:")
            && stdout.contains("operator-activation-manager.pem"),
        "{stdout}"
    );
    for expected in [
        "SingleMatch: 1 candidate(s)",
        "山田 太郎",
        "Valid:",
        "dispensing(s)",
        "check-up(s)",
        "AREA_NOT_ACTIVATED",
        "INSURER_NUMBER_CHECK_DIGIT",
        "EXEMPTION_REASON_MISSING",
        "SEARCH_FACILITY_MISMATCH",
        "INSURER_OR_ADDRESS_MISSING",
        "CONSENT_BASIS_MISSING",
        // Read back through the audit service, and verified.
        "(life-or-body exemption)",
        "意識不明で救急搬送",
        // 13 calls, and the operators' 2 reads of the log (the patient's history and
        // the review queue), which are logged like any access.
        "15 records verified, intact",
        // Emergency viewing outside a disaster: a dialysis patient's summary at a
        // hospital, and the same refused to a clinic.
        "血液透析 since",
        "emergency_summary (life-or-body exemption, emergency viewing)",
        "EMERGENCY_VIEWING_FACILITY_NOT_ELIGIBLE",
        // The operators' part: preview, activate municipalities, check facilities.
        "17204 輪島市",
        "輪島市 clinic",
        "ALLOWED through municipality 輪島市",
        "refused, AREA_NOT_ACTIVATED",
        // The Noto replay's first-aid post, registered by the prefecture, with a
        // certificate from its own CSR, reads a dialysis patient's summary.
        "「輪島中学校 救護所」 in 17204 輪島市",
        "issued from the post's CSR",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let post = stdout.split("12. ").nth(1).unwrap_or_default();
    assert!(
        post.contains("血液透析 since"),
        "the post's summary:\n{post}"
    );
    // Every call of the scenario is in the access log: 6 allowed, 7 denied; the
    // operators' 2 reads of the log and the site's registration and certificate,
    // each allowed; and the first-aid post's summary, which names the site.
    let log = bin()
        .args(["audit", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let log = String::from_utf8_lossy(&log.stdout);
    assert_eq!(
        log.lines().filter(|l| l.contains(" allowed ")).count(),
        6 + 2 + 2 + 1,
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("GetEmergencySummary")
            && l.contains(" allowed ")
            && l.contains(" site=")
            && l.contains("basis=patient_consent")),
        "the first-aid post's summary, naming its site:\n{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains(" denied ")).count(),
        7,
        "{log}"
    );

    let verify = bin()
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(report.contains("18 records verified"), "{report}");
    assert!(report.contains("intact"), "{report}");

    // The export holds the same records: a header and one CSV row each, the
    // exemption access flagged for review.
    let csv = bin()
        .args(["audit", "export", "--format", "csv", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(csv.status.success());
    let csv = String::from_utf8_lossy(&csv.stdout);
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("at,id,method,items,decision,reason"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 13 + 2 + 3, "{csv}");
    // Two exemption accesses were allowed (a lookup, and the emergency summary viewed
    // by the hospital); the refused ones keep the basis they stated.
    let exemption = |decision: &str| {
        rows.iter()
            .filter(|r| r.contains("life_or_body_exemption") && r.contains(decision))
            .count()
    };
    assert_eq!(exemption(",allowed,"), 2, "{csv}");
    assert_eq!(
        exemption(",denied,EMERGENCY_VIEWING_FACILITY_NOT_ELIGIBLE,"),
        1,
        "{csv}"
    );
    assert_eq!(exemption(",denied,EXEMPTION_REASON_MISSING,"), 1, "{csv}");
    let jsonl = bin()
        .args([
            "audit",
            "export",
            "--format",
            "jsonl",
            "--decision",
            "allowed",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let jsonl = String::from_utf8_lossy(&jsonl.stdout);
    // 6 calls and the 2 reads of the log, these marked as such; the site's 2
    // changes and its call, each naming the site.
    assert_eq!(jsonl.lines().count(), 6 + 2 + 3, "{jsonl}");
    assert_eq!(
        jsonl.matches("\"site_kind\":\"first-aid-post\"").count(),
        3,
        "{jsonl}"
    );
    assert_eq!(
        jsonl.matches("\"record_kind\":\"audit_read\"").count(),
        2,
        "{jsonl}"
    );
    let mut searches = Vec::new();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        assert_eq!(v["decision"], "allowed");
        assert_eq!(v["hash"].as_str().map(str::len), Some(64));
        if v["method"] == "SearchPatients" {
            searches.push(v["disclosed_patients"].clone());
        }
    }
    // The search's record names the patient it listed, as the chain hash covers it.
    assert_eq!(
        searches,
        vec![serde_json::json!("01040013|40250311|152|00")]
    );
    // A malformed filter is refused by name, not ignored.
    let bad = bin()
        .args(["audit", "export", "--decision", "maybe", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    // Bad input, like every command's: exit 2, naming the flag.
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--decision"));
    for (flag, value) in [("--from", "yesterday"), ("--patient", "01040013|40250311")] {
        let bad = bin()
            .args(["audit", "list", flag, value, "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
}

/// A gateway serving in the background on free ports; killed when dropped.
fn serve(dir: &std::path::Path) -> (Serving, String) {
    let gateway = Serving::serve(
        bin()
            .args(["serve", "--population", "2000", "--data-dir"])
            .arg(dir),
        &dir.join("gateway.log"),
    );
    let admin = gateway.admin_url();
    (gateway, admin)
}

#[test]
fn activation_create_and_list_fukushima_2022_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_gateway, admin) = serve(dir.path());
    let out = bin()
        .args([
            "activation",
            "create",
            "--event",
            "令和4年福島沖地震",
            "--prefecture",
            "04,07",
            "--from",
            "2022-03-17",
            "--last-day",
            "2022-03-23",
            "--by",
            "operator-1",
            "--admin",
            &admin,
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in ["prefecture   04", "prefecture   07"] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
    assert!(
        stdout.contains("[2022-03-17T00:00:00+09:00 .. 2022-03-24T00:00:00+09:00)"),
        "{stdout}"
    );

    let list = bin()
        .args(["activation", "list", "--admin", &admin])
        .output()
        .expect("runs");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("令和4年福島沖地震"), "{list}");
    assert!(list.contains("宮城県") && list.contains("福島県"), "{list}");
    assert!(list.contains("revision 1, by operator-1"), "{list}");
}

#[test]
fn bad_activation_input_is_refused_with_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_gateway, admin) = serve(dir.path());
    for (args, field) in [
        (
            vec!["--prefecture", "48", "--from", "2022-03-17", "--one-week"],
            "areas.prefectures[0]",
        ),
        (
            vec![
                "--prefecture",
                "04",
                "--from",
                "2022-03-17",
                "--until",
                "2022-03-16",
            ],
            "window.instants.end",
        ),
        (vec!["--from", "2022-03-17", "--one-week"], "areas"),
        (
            vec!["--prefecture", "04", "--from", "2022-02-30", "--one-week"],
            "window.one_week_from",
        ),
        (
            vec![
                "--municipality",
                "99999",
                "--from",
                "2022-03-17",
                "--one-week",
            ],
            "areas.municipalities[0]",
        ),
        (
            vec![
                "--municipality",
                "172041",
                "--from",
                "2022-03-17",
                "--one-week",
            ],
            "areas.municipalities[0]",
        ),
    ] {
        let out = bin()
            .args([
                "activation",
                "create",
                "--event",
                "e",
                "--by",
                "op",
                "--admin",
                &admin,
            ])
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(field), "{args:?}: {field} in {stderr}");
    }
    let list = bin()
        .args(["activation", "list", "--admin", &admin])
        .output()
        .expect("runs");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).trim().is_empty());
}

#[tokio::test]
async fn separate_upstream_process_serves_the_gateway_and_sigterm_stops_it_cleanly() {
    use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
    use onshi_gateway::proto::*;
    use onshi_gateway::simulator::fixtures::DEMO_PATIENT;

    let dir = tempfile::tempdir().expect("temp dir");
    let upstream_port = free_port();
    let mut upstream = Spawned::start(
        bin()
            .args([
                "upstream",
                "--population",
                "2000",
                "--listen",
                &format!("127.0.0.1:{upstream_port}"),
            ])
            .stdout(std::process::Stdio::null()),
    );
    upstream.wait_listening(upstream_port);

    let mut gateway = Serving::serve(
        bin()
            .args(["serve", "--dev-identity-from-metadata"])
            .args([
                "--upstream",
                &format!("http://127.0.0.1:{upstream_port}"),
                "--data-dir",
            ])
            .arg(dir.path()),
        &dir.path().join("gateway.log"),
    );
    gateway.activate_around_now("04", "test");

    let mut client = QualificationServiceClient::connect(format!("http://{}", gateway.addr))
        .await
        .expect("connect");
    let mut req = tonic::Request::new(LookupQualificationRequest {
        access: Some(AccessContext::for_care(
            "dr-1",
            StaffRole::Doctor,
            Consent::patient(),
            Some(Identification::insured_number_known()),
        )),
        insured: Some(DEMO_PATIENT.insured()),
        birth_date: String::new(),
    });
    let clinic = onshi_gateway::demo::facility(
        4,
        onshi_gateway::domain::facility::FacilityKind::Medical,
        1001,
    );
    req.metadata_mut().insert(
        "x-onshi-dev-facility",
        clinic.to_string().parse().expect("ascii"),
    );
    let reply = client
        .lookup_qualification(req)
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    assert_eq!(
        reply.qualification.expect("qualification").name,
        DEMO_PATIENT.name
    );

    // SIGTERM: the gateway drains, flushes the access log and exits 0.
    drop(client);
    gateway.process.terminate();
    // Wait off the runtime, so the client's connection task can close its connection.
    let status = tokio::task::spawn_blocking(move || gateway.process.child.wait())
        .await
        .expect("joined")
        .expect("exits");
    assert!(status.success(), "{status}");
    let log = bin()
        .args(["audit", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let log = String::from_utf8_lossy(&log.stdout);
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("LookupQualification") && l.contains(" allowed "))
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn certs_dev_writes_a_pki_the_gateway_serves_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dev_certs(dir.path(), &[]);
    for file in [
        "server-ca.pem",
        "facility-ca.pem",
        "operator-ca.pem",
        "server.pem",
        "server.key",
        "operator-activation-manager.pem",
        "operator-auditor.key",
    ] {
        assert!(certs.join(file).is_file(), "{file}");
    }
    let miyagi = onshi_gateway::demo::facility(
        4,
        onshi_gateway::domain::facility::FacilityKind::Medical,
        1001,
    );
    assert!(certs.join(format!("facility-{miyagi}.pem")).is_file());

    // The gateway starts with them; the development identity mode is refused with them.
    let refused = bin()
        .args([
            "serve",
            "--dev-identity-from-metadata",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-dir")
        .arg(&certs)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused with TLS"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let _gateway = Serving::serve(
        bin()
            .arg("serve")
            .arg("--tls-dir")
            .arg(&certs)
            .arg("--data-dir")
            .arg(dir.path()),
        &dir.path().join("gateway.log"),
    );
}

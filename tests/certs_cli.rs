//! `certs dev` and `certs issue` with the real binary: bad facility codes are
//! refused before anything is written; an existing PKI is kept unless `--force`,
//! which replaces all of it so that every certificate left verifies against the new
//! CAs; `certs issue` adds a facility or operator certificate that a gateway
//! serving the directory accepts, and refuses what it cannot do, with exit 2.

mod common;
#[path = "common/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::today_jst;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use process::{TlsGateway, bin, dev_certs};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn certs(args: &[&str]) -> Output {
    bin().arg("certs").args(args).output().expect("certs runs")
}

#[track_caller]
fn assert_refused(out: &Output, says: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}{}", text(&out.stdout));
    for s in says {
        assert!(stderr.contains(s), "{s:?} not in: {stderr}");
    }
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn miyagi_clinic() -> String {
    onshi_gateway::demo::facility(4, FacilityKind::Medical, 1001).to_string()
}

/// The same code with its last (check) digit changed.
fn wrong_check_digit(code: &str) -> String {
    let last = code.as_bytes()[9] - b'0';
    format!("{}{}", &code[..9], (last + 1) % 10)
}

#[test]
fn certs_dev_refuses_bad_facility_codes_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("certs");
    let good = miyagi_clinic();
    let bad_check = wrong_check_digit(&good);
    for (codes, says) in [
        (bad_check.clone(), vec![bad_check.as_str(), "check digit"]),
        (
            format!("{good},4810110019"),
            vec!["4810110019", "not a prefecture code"],
        ),
        ("0420110019".into(), vec!["0420110019", "not a fee table"]),
        ("041011001".into(), vec!["041011001", "10 digits"]),
        (
            format!("{bad_check},0420110019"),
            vec!["2 codes", bad_check.as_str(), "0420110019"],
        ),
    ] {
        let out = certs(&["dev", "--dir", path(&out_dir), "--facility", &codes]);
        assert_refused(&out, &says);
        assert!(!out_dir.exists(), "{codes}: something was written");
    }
}

/// Every certificate in `dir` verifies against the CA beside it for its kind.
fn assert_all_verify(dir: &Path) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = |name: &str| {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(dir.join(name)).expect("a CA certificate");
        roots.add(ca).expect("a root");
        Arc::new(roots)
    };
    let client = |ca: &str| {
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca), provider.clone())
            .build()
            .expect("verifier")
    };
    let (facilities, operators) = (client("facility-ca.pem"), client("operator-ca.pem"));
    let server = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots("server-ca.pem"),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("the directory") {
        let file = entry.expect("an entry").path();
        let name = file.file_name().and_then(|n| n.to_str()).expect("a name");
        if !name.ends_with(".pem") || name.ends_with("-ca.pem") {
            continue;
        }
        let der = CertificateDer::from_pem_file(&file).expect("a certificate");
        let now = UnixTime::now();
        let verdict = if name == "server.pem" {
            let localhost = ServerName::try_from("localhost").expect("a name");
            server
                .verify_server_cert(&der, &[], &localhost, &[], now)
                .map(|_| ())
        } else if name.starts_with("facility-") {
            facilities.verify_client_cert(&der, &[], now).map(|_| ())
        } else {
            assert!(name.starts_with("operator-"), "unexpected {name}");
            operators.verify_client_cert(&der, &[], now).map(|_| ())
        };
        verdict.unwrap_or_else(|e| panic!("{name} does not verify: {e}"));
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} certificates");
}

#[test]
fn certs_dev_keeps_an_existing_pki_unless_forced_and_then_replaces_all_of_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs_dir = dev_certs(dir.path(), &[]);
    let extra = onshi_gateway::demo::facility(7, FacilityKind::Pharmacy, 4002).to_string();
    assert_ok(&certs(&[
        "issue",
        "--ca-dir",
        path(&certs_dir),
        "--facility",
        &extra,
    ]));
    let ca_before = std::fs::read(certs_dir.join("facility-ca.pem")).expect("read");

    let again = certs(&["dev", "--dir", path(&certs_dir)]);
    assert_refused(&again, &["already holds a PKI", "--force"]);
    let ca_after = std::fs::read(certs_dir.join("facility-ca.pem")).expect("read");
    assert_eq!(ca_before, ca_after, "a refused run changes nothing");

    let clinic = miyagi_clinic();
    assert_ok(&certs(&[
        "dev",
        "--dir",
        path(&certs_dir),
        "--force",
        "--facility",
        &clinic,
    ]));
    assert_ne!(
        std::fs::read(certs_dir.join("facility-ca.pem")).expect("read"),
        ca_before,
        "new CAs"
    );
    assert!(
        !certs_dir.join(format!("facility-{extra}.pem")).exists(),
        "the old CA's certificate is gone"
    );
    assert!(certs_dir.join(format!("facility-{clinic}.pem")).exists());
    assert_all_verify(&certs_dir);
}

#[cfg(unix)]
#[test]
fn the_ca_keys_are_kept_for_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let certs_dir = dev_certs(dir.path(), &[]);
    for key in ["facility-ca.key", "operator-ca.key", "server.key"] {
        let mode = std::fs::metadata(certs_dir.join(key))
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
}

#[test]
fn certs_issue_refuses_what_it_cannot_do_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs_dir = dev_certs(dir.path(), &[]);
    let ca_dir = path(&certs_dir);
    let issue = |args: &[&str]| {
        let mut all = vec!["issue", "--ca-dir", ca_dir];
        all.extend(args);
        certs(&all)
    };
    let files = || {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&certs_dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        names
    };
    let before = files();
    let bad = wrong_check_digit(&miyagi_clinic());
    assert_refused(
        &issue(&["--facility", &bad]),
        &["--facility", &bad, "check digit"],
    );
    assert_refused(
        &issue(&["--operator", "admin:alice"]),
        &[
            "\"admin\" is not an operator role",
            "activation-manager, auditor, prefecture, reviewer or witness",
        ],
    );
    assert_refused(&issue(&["--operator", "auditor"]), &["ROLE:ID"]);
    assert_refused(
        &issue(&["--operator", "auditor:al ice"]),
        &["not an operator id"],
    );
    assert_refused(
        &issue(&["--operator", "auditor:alice", "--days", "0"]),
        &["--days"],
    );
    assert_refused(
        &issue(&["--operator", "auditor:alice", "--days", "826"]),
        &["--days"],
    );
    // The one certs dev wrote is not replaced without --force.
    assert_refused(
        &issue(&["--operator", "auditor:alice"]),
        &["operator-auditor.pem already exists", "--force"],
    );
    assert_eq!(files(), before, "nothing written");

    let missing = dir.path().join("nowhere");
    assert_refused(
        &certs(&[
            "issue",
            "--ca-dir",
            path(&missing),
            "--operator",
            "auditor:alice",
        ]),
        &["--ca-dir", "nowhere/operator-ca.pem", "cannot read it"],
    );
    // A CA without its key, or with another's, cannot sign.
    std::fs::copy(
        certs_dir.join("operator-ca.key"),
        certs_dir.join("facility-ca.key"),
    )
    .expect("copied");
    let clinic = onshi_gateway::demo::facility(4, FacilityKind::Dental, 3001).to_string();
    assert_refused(
        &issue(&["--facility", &clinic]),
        &["facility-ca.pem", "not the certificate's"],
    );
    std::fs::remove_file(certs_dir.join("facility-ca.key")).expect("removed");
    assert_refused(
        &issue(&["--facility", &clinic]),
        &["facility-ca.key", "cannot read it", "certs dev --force"],
    );
    assert!(!certs_dir.join(format!("facility-{clinic}.pem")).exists());
}

async fn channel(gateway: &TlsGateway, stem: &str) -> Channel {
    let read = |name: String| std::fs::read(gateway.certs.join(name)).expect("a PKI file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("server-ca.pem".into())))
        .identity(Identity::from_pem(
            read(format!("{stem}.pem")),
            read(format!("{stem}.key")),
        ))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{}", gateway.serving.addr))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connects")
}

#[tokio::test]
async fn issued_certificates_are_accepted_by_a_gateway_serving_the_directory() {
    let gateway = TlsGateway::start(&[], &["--population", "2000", "--seed", "20220317"]);
    let ca_dir = gateway.certs.display().to_string();
    // A facility certs dev did not issue for, and a new activation manager.
    let clinic = onshi_gateway::demo::facility(4, FacilityKind::Medical, 1234).to_string();
    assert_ok(&certs(&[
        "issue",
        "--ca-dir",
        &ca_dir,
        "--facility",
        &clinic,
        "--days",
        "7",
    ]));
    assert_ok(&certs(&[
        "issue",
        "--ca-dir",
        &ca_dir,
        "--operator",
        "activation-manager:alice",
        "--force",
    ]));

    // The operators' listener takes the new operator certificate, with its role.
    let today = today_jst(chrono::Utc::now());
    let activated = bin()
        .args(["activation", "create", "--event", "訓練", "--by", "alice"])
        .args([
            "--prefecture",
            "04",
            "--from",
            &today.to_string(),
            "--one-week",
        ])
        .args(["--admin", &format!("https://{}", gateway.serving.admin)])
        .args(gateway.operator_flags("activation-manager"))
        .output()
        .expect("activation create runs");
    assert!(
        activated.status.success(),
        "{}{}\ngateway:\n{}",
        text(&activated.stdout),
        text(&activated.stderr),
        gateway.serving.process.log()
    );

    // The terminal listener takes the new facility certificate as that facility.
    let mut terminal =
        QualificationServiceClient::new(channel(&gateway, &format!("facility-{clinic}")).await);
    let answer = terminal
        .lookup_qualification(common::lookup(DEMO_PATIENT.insured()))
        .await;
    assert!(
        answer.is_ok(),
        "{answer:?}\ngateway:\n{}",
        gateway.serving.process.log()
    );
}

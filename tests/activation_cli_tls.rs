//! The operators' CLI against a gateway serving with mutual TLS (the real binary):
//! `certs dev`, `serve --tls-dir`, then `activation …` over https with the
//! development operator certificates. The role in the certificate decides: the
//! activation manager changes, the auditor only reads.

#[path = "common/process.rs"]
mod process;

use std::process::Output;

use process::{TlsGateway, bin, dev_certs, free_addr};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `activation ARGS` at `https://HOST:PORT` with the gateway's CA and the
/// certificate of `operator` (`activation-manager`, `auditor`).
fn as_operator(gateway: &TlsGateway, host: &str, operator: &str, args: &[&str]) -> Output {
    bin()
        .arg("activation")
        .args(args)
        .args([
            "--admin",
            &format!("https://{host}:{}", gateway.serving.admin.port()),
        ])
        .args(gateway.operator_flags(operator))
        .output()
        .expect("the CLI runs")
}

/// A gateway serving with mutual TLS and the development certificates.
fn start() -> TlsGateway {
    TlsGateway::start(&[], &["--population", "2000"])
}

const FUKUSHIMA_2022: [&str; 11] = [
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
];

/// The activations a listing shows.
fn listed(out: &Output) -> usize {
    assert!(
        out.status.success(),
        "list failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("activation "))
        .count()
}

#[test]
fn the_activation_manager_changes_and_the_auditor_only_reads_over_mutual_tls() {
    let gateway = start();

    let created = as_operator(&gateway, "127.0.0.1", "activation-manager", &FUKUSHIMA_2022);
    let stdout = text(&created.stdout);
    assert!(
        created.status.success(),
        "create as activation manager: {stdout}{}\ngateway:\n{}",
        text(&created.stderr),
        gateway.serving.process.log()
    );
    assert!(stdout.contains("令和4年福島沖地震"), "{stdout}");
    assert!(stdout.contains("revision 1, by operator-1"), "{stdout}");
    for line in ["prefecture   04", "prefecture   07"] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }

    let list = as_operator(&gateway, "127.0.0.1", "activation-manager", &["list"]);
    assert_eq!(listed(&list), 1, "{}", text(&list.stdout));
    assert!(text(&list.stdout).contains("令和4年福島沖地震"));

    // The auditor reads, here by the name the certificate carries besides the
    // address, and with everything from the environment.
    let by_environment = bin()
        .args(["activation", "list"])
        .env(
            "ONSHI_ADMIN",
            format!("https://localhost:{}", gateway.serving.admin.port()),
        )
        .env("ONSHI_ADMIN_CA", gateway.file("server-ca.pem"))
        .env("ONSHI_OPERATOR_CERT", gateway.file("operator-auditor.pem"))
        .env("ONSHI_OPERATOR_KEY", gateway.file("operator-auditor.key"))
        .output()
        .expect("the CLI runs");
    assert_eq!(
        listed(&by_environment),
        1,
        "{}",
        text(&by_environment.stdout)
    );

    // …but may not change anything.
    let refused = as_operator(&gateway, "127.0.0.1", "auditor", &FUKUSHIMA_2022);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    assert!(stderr.contains("OPERATOR_ROLE_REQUIRED"), "{stderr}");
    assert!(stderr.contains("activation-manager"), "{stderr}");
    let list = as_operator(&gateway, "127.0.0.1", "auditor", &["list"]);
    assert_eq!(listed(&list), 1, "nothing written: {}", text(&list.stdout));
}

#[test]
fn the_gateway_is_verified_by_its_ca_and_name() {
    let gateway = start();
    let admin = format!("https://127.0.0.1:{}", gateway.serving.admin.port());
    let cert = gateway.file("operator-activation-manager.pem");
    let key = gateway.file("operator-activation-manager.key");

    // Another CA than the one that issued the gateway's certificate.
    let untrusted = bin()
        .args(["activation", "list", "--admin", &admin])
        .args(["--ca", &gateway.file("operator-ca.pem")])
        .args(["--cert", &cert, "--key", &key])
        .output()
        .expect("the CLI runs");
    let stderr = text(&untrusted.stderr);
    assert!(!untrusted.status.success(), "{}", text(&untrusted.stdout));
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    // A name the certificate does not carry.
    let misnamed = bin()
        .args(["activation", "list", "--admin", &admin])
        .args(["--ca", &gateway.file("server-ca.pem")])
        .args(["--cert", &cert, "--key", &key])
        .args(["--tls-domain", "gateway.example"])
        .output()
        .expect("the CLI runs");
    let stderr = text(&misnamed.stderr);
    assert!(!misnamed.status.success(), "{}", text(&misnamed.stdout));
    assert!(stderr.contains("gateway.example"), "{stderr}");

    let named = bin()
        .args(["activation", "list", "--admin", &admin])
        .args(["--ca", &gateway.file("server-ca.pem")])
        .args(["--cert", &cert, "--key", &key])
        .args(["--tls-domain", "localhost"])
        .output()
        .expect("the CLI runs");
    assert_eq!(listed(&named), 0);
}

/// Runs `activation list ARGS` and expects it refused before any connection:
/// exit code 2 and an error naming `flag` and containing `says`.
fn refused_input(args: &[&str], flag: &str, says: &str) {
    let out = bin()
        .args(["activation", "list"])
        .args(args)
        .output()
        .expect("the CLI runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(&format!("error: {flag}:")),
        "{args:?} names {flag}: {stderr}"
    );
    assert!(stderr.contains(says), "{args:?} says {says:?}: {stderr}");
}

#[test]
fn missing_or_unreadable_tls_files_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dev_certs(dir.path(), &[]);
    let file = |name: &str| certs.join(name).display().to_string();
    let (ca, cert, key) = (
        file("server-ca.pem"),
        file("operator-activation-manager.pem"),
        file("operator-activation-manager.key"),
    );
    // Nothing listens here: each refusal comes before connecting.
    let admin = format!("https://127.0.0.1:{}", free_addr().port());

    refused_input(
        &["--admin", &admin, "--cert", &cert, "--key", &key],
        "--ca",
        "ONSHI_ADMIN_CA",
    );
    refused_input(&["--admin", &admin, "--ca", &ca], "--cert", "--key");
    refused_input(
        &["--admin", &admin, "--ca", &ca, "--cert", &cert],
        "--key",
        "--cert needs --key",
    );
    refused_input(
        &["--admin", &admin, "--ca", &ca, "--key", &key],
        "--cert",
        "--key needs --cert",
    );
    let missing = file("no-such-ca.pem");
    refused_input(
        &[
            "--admin", &admin, "--ca", &missing, "--cert", &cert, "--key", &key,
        ],
        "--ca",
        &format!("{missing}: cannot read it"),
    );
    refused_input(
        &[
            "--admin", &admin, "--ca", &ca, "--cert", &key, "--key", &key,
        ],
        "--cert",
        "holds no PEM certificate",
    );
    refused_input(
        &[
            "--admin",
            &admin,
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &file("operator-auditor.key"),
        ],
        "--cert",
        "operator-auditor.key",
    );
    // Certificates with a plaintext address would silently not be used.
    refused_input(
        &["--admin", "http://127.0.0.1:50061", "--ca", &ca],
        "--ca",
        "use https://",
    );
}

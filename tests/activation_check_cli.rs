//! `activation check` for scripts, with the real binary: exit 0 when allowed, 4
//! when refused, and both answers when the one known then differs from the one
//! known now.

#[path = "common/process.rs"]
mod process;

use std::process::Output;

use onshi_gateway::domain::facility::FacilityKind;
use process::{Serving, bin};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `activation ARGS --admin URL`.
fn activation(admin: &str, args: &[&str]) -> Output {
    bin()
        .arg("activation")
        .args(args)
        .args(["--admin", admin])
        .output()
        .expect("the CLI runs")
}

/// `activation check FACILITY ARGS`: its exit status and what it printed.
fn check(admin: &str, facility: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = activation(admin, &[&["check", facility], args].concat());
    let stdout = text(&out.stdout);
    (out.status.code(), format!("{stdout}{}", text(&out.stderr)))
}

fn facility(prefecture: u8, number: u16) -> String {
    onshi_gateway::demo::facility(prefecture, FacilityKind::Medical, number).to_string()
}

#[test]
fn check_exits_0_when_allowed_4_when_refused_and_shows_then_and_now() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = Serving::serve(
        bin()
            .args(["serve", "--population", "2000", "--data-dir"])
            .arg(dir.path()),
        &dir.path().join("gateway.log"),
    );
    let admin = gateway.admin_url();
    gateway.activate_around_now("04", "宮城の試験");
    let (miyagi, tokyo) = (facility(4, 1001), facility(13, 1001));

    let (code, out) = check(&admin, &miyagi, &[]);
    assert_eq!(code, Some(0), "allowed now:\n{out}");
    assert!(out.starts_with("ALLOWED by "), "{out}");
    assert_eq!(out.lines().count(), 1, "one answer:\n{out}");

    let (code, out) = check(&admin, &tokyo, &[]);
    assert_eq!(code, Some(4), "refused now:\n{out}");
    assert!(out.starts_with("REFUSED AREA_NOT_ACTIVATED"), "{out}");
    assert_eq!(out.lines().count(), 1, "one answer:\n{out}");

    // Recorded today for March 2022: unknown at the time, known now.
    let created = activation(
        &admin,
        &[
            "create",
            "--event",
            "令和4年福島沖地震",
            "--prefecture",
            "07",
            "--from",
            "2022-03-17",
            "--last-day",
            "2022-03-23",
            "--by",
            "operator-1",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let fukushima = facility(7, 1001);
    let (code, out) = check(&admin, &fukushima, &["--at", "2022-03-20T10:00"]);
    assert_eq!(code, Some(4), "refused as known then:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "then and now:\n{out}");
    assert!(
        lines[0].starts_with("as known at 2022-03-20") && lines[0].contains(": REFUSED "),
        "{out}"
    );
    assert!(
        lines[1].starts_with("as known now (") && lines[1].contains("): ALLOWED by "),
        "{out}"
    );
    assert!(lines[1].contains("令和4年福島沖地震"), "{out}");

    // Asked as known now, the answer is the same either way: one line, allowed.
    let now = chrono::Utc::now().to_rfc3339();
    let (code, out) = check(
        &admin,
        &fukushima,
        &["--at", "2022-03-20T10:00", "--as-of", &now],
    );
    assert_eq!(code, Some(0), "allowed as known now:\n{out}");
    assert!(out.starts_with("ALLOWED by "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    // Bad input stays 2.
    let (code, out) = check(&admin, &fukushima, &["--at", "yesterday"]);
    assert_eq!(code, Some(2), "{out}");
}

#[test]
fn check_documents_its_exit_statuses() {
    let out = bin()
        .args(["activation", "check", "--help"])
        .output()
        .expect("runs");
    let help = text(&out.stdout);
    assert!(out.status.success(), "{help}");
    for status in ["0 allowed", "4 refused", "2 bad"] {
        assert!(help.contains(status), "{status} in:\n{help}");
    }
}

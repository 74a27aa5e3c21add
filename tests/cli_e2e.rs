//! The real binary: the demo scenario, and activations added and listed from the CLI.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onshi-gateway"))
}

#[test]
fn demo_runs_the_scenario_and_shows_allowed_and_denied_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bin()
        .args([
            "demo",
            "--exit",
            "--listen",
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
    assert!(stderr.contains("DEVELOPMENT IDENTITY MODE"), "{stderr}");
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
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // Every call of the scenario is in the access log: 5 allowed, 6 denied.
    let log = bin()
        .args(["audit", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let log = String::from_utf8_lossy(&log.stdout);
    assert_eq!(
        log.lines().filter(|l| l.contains(" allowed ")).count(),
        5,
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains(" denied ")).count(),
        6,
        "{log}"
    );
}

#[test]
fn activation_add_and_list_fukushima_2022_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bin()
        .args([
            "activation",
            "add",
            "--event",
            "令和4年福島沖地震",
            "--prefecture",
            "04,07",
            "--from",
            "2022-03-17",
            "--last-day",
            "2022-03-23",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2022-03-17T00:00:00+09:00 to 2022-03-24T00:00:00+09:00"),
        "{stdout}"
    );

    let list = bin()
        .args(["activation", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("令和4年福島沖地震"), "{list}");
    assert!(list.contains("prefecture:04,prefecture:07"), "{list}");
    assert!(list.contains("inactive"), "{list}");
}

#[test]
fn bad_activation_input_is_refused_with_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        vec!["--prefecture", "48", "--from", "2022-03-17", "--one-week"],
        vec![
            "--prefecture",
            "04",
            "--from",
            "2022-03-17",
            "--until",
            "2022-03-16",
        ],
        vec!["--from", "2022-03-17", "--one-week"],
        vec!["--prefecture", "04", "--from", "2022-02-30", "--one-week"],
    ] {
        let out = bin()
            .args(["activation", "add", "--event", "e"])
            .args(&args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
    let list = bin()
        .args(["activation", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).trim().is_empty());
}

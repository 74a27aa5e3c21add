//! The configuration file as an operator uses it: the committed onshi-gateway.toml is
//! the defaults, every setting is in it and documented, flags beat environment
//! variables beat the file beat the defaults, `config check` names what is wrong,
//! `config print` hides passwords, and `--log-format json` logs JSON lines.

#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use onshi_gateway::config::{self, Settings};
use process::{Spawned, bin};

fn committed_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("onshi-gateway.toml")
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("runs the binary");
    (
        status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes the file");
    path
}

/// `config check` of `text`: exit 2 and a problem line naming `key`.
fn check_refuses(text: &str, key: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "bad.toml", text);
    let (code, stdout, stderr) = run(bin().args(["config", "check", "--config"]).arg(&file));
    assert_eq!(code, 2, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains(&format!("{key}: "))),
        "{key} not named in:\n{stderr}"
    );
    assert!(!stdout.contains("ok:"), "{stdout}");
    stderr
}

#[test]
fn the_committed_file_is_exactly_the_defaults() {
    let (parsed, problems) = config::load::read(&committed_file());
    assert_eq!(problems, [], "onshi-gateway.toml has problems");
    assert_eq!(parsed, Settings::default());
    let (code, stdout, stderr) = run(bin()
        .args(["config", "check", "--config"])
        .arg(committed_file()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn every_setting_is_in_the_file_documented_with_its_variable_and_flag() {
    let text = std::fs::read_to_string(committed_file()).expect("reads onshi-gateway.toml");
    let file: toml::Table = text.parse().expect("TOML");
    let defaults = toml::Table::try_from(Settings::default()).expect("serializes");
    let help = {
        let (code, stdout, stderr) = run(bin().args(["serve", "--help"]));
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = 0;
    for (section, keys_of) in &defaults {
        let keys_of = keys_of.as_table().expect("each setting is in a section");
        let in_file = file
            .get(section)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("[{section}] missing from onshi-gateway.toml"));
        for key in keys_of.keys() {
            keys += 1;
            assert!(
                in_file.contains_key(key),
                "{section}.{key} missing from onshi-gateway.toml"
            );
            // The comment just above the key says which variable and flag set it,
            // and the binary knows both.
            let header = lines
                .iter()
                .position(|l| *l == format!("[{section}]"))
                .unwrap_or_else(|| panic!("no [{section}] header"));
            let at = header
                + lines[header..]
                    .iter()
                    .position(|l| l.starts_with(&format!("{key} = ")))
                    .unwrap_or_else(|| panic!("{section}.{key} not on a line of its own"));
            let comment: Vec<&str> = lines[..at]
                .iter()
                .rev()
                .take_while(|l| l.starts_with('#'))
                .copied()
                .collect();
            assert!(!comment.is_empty(), "{section}.{key} has no comment");
            let names = comment
                .iter()
                .find(|l| l.contains("ONSHI_"))
                .unwrap_or_else(|| panic!("{section}.{key}: no environment variable named"));
            let mut words = names.split_whitespace();
            let flag = words
                .find(|w| w.starts_with("--"))
                .unwrap_or_else(|| panic!("{section}.{key}: no flag named"));
            let var = names
                .split_whitespace()
                .find(|w| w.starts_with("ONSHI_"))
                .expect("named above");
            assert!(
                [" ", "["]
                    .iter()
                    .any(|end| help.contains(&format!("{flag}{end}"))),
                "{flag} unknown to serve:\n{help}"
            );
            assert!(
                help.contains(&format!("[env: {var}=")),
                "{var} unknown to serve"
            );
        }
    }
    // Not vacuous: the sections and keys the gateway has.
    assert!(keys >= 30, "only {keys} settings");
}

/// `config print` with these variables and arguments, read back as TOML.
fn printed(vars: &[(&str, &str)], args: &[&str]) -> toml::Table {
    let (code, stdout, stderr) = run(bin()
        .envs(vars.iter().copied())
        .args(["config", "print"])
        .args(args));
    assert_eq!(code, 0, "{stderr}");
    stdout.parse().expect("config print is TOML")
}

#[test]
fn a_flag_beats_its_variable_beats_the_file_beats_the_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "gateway.toml",
        "[limits]\nfacility_burst = 41\n[log]\nformat = \"json\"\n",
    );
    let file = file.to_str().expect("a UTF-8 temp path");
    let burst = |t: toml::Table| t["limits"]["facility_burst"].as_integer();
    assert_eq!(burst(printed(&[], &[])), Some(40), "the default");
    assert_eq!(
        burst(printed(&[("ONSHI_CONFIG", file)], &[])),
        Some(41),
        "the file named by ONSHI_CONFIG"
    );
    assert_eq!(
        burst(printed(&[], &["--config", file])),
        Some(41),
        "the file named by --config"
    );
    assert_eq!(
        burst(printed(
            &[("ONSHI_FACILITY_BURST", "42")],
            &["--config", file]
        )),
        Some(42),
        "the variable over the file"
    );
    assert_eq!(
        burst(printed(
            &[("ONSHI_CONFIG", file), ("ONSHI_FACILITY_BURST", "42")],
            &["--facility-burst", "43"]
        )),
        Some(43),
        "the flag over the variable"
    );

    // The same for a setting of the newer sections: the log format, a global flag.
    let format = |t: toml::Table| t["log"]["format"].as_str().map(str::to_string);
    let json = Some("json".to_string());
    let text = Some("text".to_string());
    assert_eq!(format(printed(&[], &[])), text);
    assert_eq!(format(printed(&[("ONSHI_CONFIG", file)], &[])), json);
    assert_eq!(
        format(printed(
            &[("ONSHI_CONFIG", file), ("ONSHI_LOG_FORMAT", "text")],
            &[]
        )),
        text
    );
    assert_eq!(
        format(printed(
            &[("ONSHI_CONFIG", file), ("ONSHI_LOG_FORMAT", "text")],
            &["--log-format", "json"]
        )),
        json
    );
}

#[test]
fn check_names_an_unknown_key_with_its_line() {
    let stderr = check_refuses("[grpc]\nmax_mesage_bytes = 1024\n", "grpc.max_mesage_bytes");
    assert!(
        stderr.contains("line 2: grpc.max_mesage_bytes: unknown key"),
        "{stderr}"
    );
}

#[test]
fn check_names_a_value_of_the_wrong_type() {
    let stderr = check_refuses(
        "[upstream]\ntimeout_ms = \"five seconds\"\n",
        "upstream.timeout_ms",
    );
    assert!(stderr.contains("\"five seconds\""), "{stderr}");
}

#[test]
fn check_names_an_address_that_does_not_parse() {
    check_refuses("[listen]\nadmin = \"localhost\"\n", "listen.admin");
}

#[test]
fn check_refuses_a_sample_ratio_over_one() {
    check_refuses(
        "[telemetry]\nsample_ratio = 1.5\n",
        "telemetry.sample_ratio",
    );
}

#[test]
fn check_refuses_the_development_identity_with_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let (code, _, stderr) = run(bin().args(["certs", "dev", "--dir"]).arg(&certs));
    assert_eq!(code, 0, "{stderr}");
    let text = format!(
        "[tls]\ndir = {:?}\ndev_identity_from_metadata = true\n",
        certs.display().to_string()
    );
    let stderr = check_refuses(&text, "tls.dev_identity_from_metadata");
    // The directory itself is fine: only the combination is refused.
    assert!(
        !stderr
            .lines()
            .any(|l| l.trim_start().starts_with("tls.dir:")),
        "{stderr}"
    );
    // And without the development identity, the same directory passes.
    let ok = write(
        dir.path(),
        "ok.toml",
        &format!("[tls]\ndir = {:?}\n", certs.display().to_string()),
    );
    let (code, stdout, stderr) = run(bin().args(["config", "check", "--config"]).arg(&ok));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("mutual TLS"), "{stdout}");
}

#[test]
fn check_reports_every_problem_at_once() {
    let stderr = check_refuses(
        "[grpc]\nmax_mesage_bytes = 1\n[listen]\nterminals = \"nowhere\"\n[telemetry]\nsample_ratio = -0.5\n",
        "grpc.max_mesage_bytes",
    );
    for key in ["listen.terminals", "telemetry.sample_ratio"] {
        assert!(
            stderr.contains(&format!("{key}: ")),
            "{key} not named in:\n{stderr}"
        );
    }
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}

#[test]
fn a_syntax_error_is_reported_with_its_line() {
    let stderr = check_refuses("[store]\ndata_dir = \"data\"\nlinger_ms = = 3\n", "syntax");
    assert!(
        stderr.contains("line 3, ") || stderr.contains("line 3: "),
        "{stderr}"
    );
    assert!(stderr.contains("column "), "{stderr}");
}

#[test]
fn print_masks_the_database_password_and_check_accepts_what_it_prints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run(bin().args([
        "config",
        "print",
        "--database-url",
        "postgres://onshi:hunter2@db.internal:5432/onshi",
        "--otlp-endpoint",
        "https://tenant:t0ken@collector.example:4317",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(!stdout.contains("t0ken"), "{stdout}");
    assert!(
        stdout.contains("database_url = \"postgres://onshi:****@db.internal:5432/onshi\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("otlp_endpoint = \"https://tenant:****@collector.example:4317\""),
        "{stdout}"
    );
    let printed = write(dir.path(), "printed.toml", &stdout);
    let (code, check_out, stderr) = run(bin().args(["config", "check", "--config"]).arg(&printed));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        check_out.contains("postgres://onshi:****@db.internal"),
        "{check_out}"
    );
}

#[test]
fn serve_refuses_a_bad_configuration_before_it_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run(bin()
        .args(["serve", "--trace-sample-ratio", "1.5", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::null()));
    assert_eq!(code, 2, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("telemetry.sample_ratio: "), "{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
}

#[test]
fn the_store_commands_find_the_store_through_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("state");
    let file = write(
        dir.path(),
        "gateway.toml",
        &format!("[store]\ndata_dir = {:?}\n", store.display().to_string()),
    );
    let (code, _, stderr) = run(bin().args(["audit", "list", "--config"]).arg(&file));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        store.join("onshi.db").exists(),
        "the store is not in [store] data_dir"
    );
}

/// The first line `serve` writes to stderr (it warns that no facility identity is
/// configured, and logs the audit key it generated).
fn first_log_line(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut serve = Spawned::start(
        bin()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--population",
                "1000",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = serve.child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(60));
    serve.kill();
    line.expect("serve wrote no log line within 60 s")
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let line = first_log_line(&["--log-format", "json"]);
    let event: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert!(event["level"].is_string(), "{line}");
    assert!(event["target"].is_string(), "{line}");
    assert!(event["timestamp"].is_string(), "{line}");
    assert!(event["fields"]["message"].is_string(), "{line}");
}

#[test]
fn the_default_log_format_is_text() {
    let line = first_log_line(&[]);
    assert!(
        serde_json::from_str::<serde_json::Value>(&line).is_err(),
        "text expected: {line}"
    );
    assert!(line.contains("onshi_gateway"), "{line}");
}

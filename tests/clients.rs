//! The example clients as terminal vendors write them (`examples/python`, generated
//! with grpcio-tools; `examples/node`, @grpc/grpc-js with proto-loader) against the
//! real binary: a development PKI from `certs dev`, `serve --tls-dir`, an activation
//! made by an operator over mutual TLS, then the demo scenario from each client.
//! The clients' packages come from PyPI and npm through `examples/setup.sh`, which
//! the tests run themselves (it is quick when everything is installed).

#[path = "common/process.rs"]
mod process;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::today_jst;
use onshi_gateway::simulator::fixtures::{DEMO_PATIENT, Fixture};
use process::{TlsGateway, bin};
use serde_json::Value;

/// The part of the demo patient's address a user types.
const ADDRESS_FRAGMENT: &str = "石巻";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Runs `examples/setup.sh` once per test binary: it creates the Python venv and
/// the Node modules if missing or stale, and does nothing otherwise.
fn clients_installed() {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let result = SETUP.get_or_init(|| {
        let missing: Vec<&str> = ["python3", "node", "npm"]
            .into_iter()
            .filter(|tool| {
                Command::new(tool)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_err()
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the example-client tests need {} on PATH (Python 3.9+ with venv, Node.js 18.3+ with npm)",
                missing.join(", ")
            ));
        }
        let out = Command::new("bash")
            .arg(examples().join("setup.sh"))
            .output()
            .map_err(|e| format!("cannot run examples/setup.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "examples/setup.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

fn facility(prefecture: u8, kind: FacilityKind) -> String {
    let number = if kind == FacilityKind::Pharmacy {
        4001
    } else {
        1001
    };
    onshi_gateway::demo::facility(prefecture, kind, number).to_string()
}

/// The facilities of the scenario: a clinic and a pharmacy in the activated
/// prefectures (Miyagi 04, Fukushima 07), a clinic outside them (Tokyo 13).
struct Facilities {
    home: String,
    other: String,
    outside: String,
}

impl Facilities {
    fn demo() -> Facilities {
        Facilities {
            home: facility(4, FacilityKind::Medical),
            other: facility(7, FacilityKind::Pharmacy),
            outside: facility(13, FacilityKind::Medical),
        }
    }
}

/// A gateway serving with mutual TLS, with certificates for the scenario's
/// facilities; killed when dropped.
struct Gateway(TlsGateway);

impl Gateway {
    fn start(facilities: &Facilities) -> Gateway {
        let codes = [&facilities.home, &facilities.other, &facilities.outside];
        Gateway(TlsGateway::start(
            &["--facility", &codes.map(String::as_str).join(",")],
            // A small population of the default seed: the demo patient is a fixture
            // of every population.
            &["--population", "2000", "--seed", "20220317"],
        ))
    }

    /// Opens the emergency function for `prefectures` for one week from today, as
    /// an activation manager would: `activation create` over mutual TLS, presenting
    /// the activation manager's certificate.
    fn activate(&self, prefectures: &[&str]) {
        let out = bin()
            .args([
                "activation",
                "create",
                "--event",
                "訓練: 令和4年福島沖地震の再現",
            ])
            .args(["--prefecture", &prefectures.join(",")])
            .args(["--from", &today_jst(chrono::Utc::now()).to_string()])
            .args(["--one-week", "--by", "operator-1"])
            .args(["--admin", &format!("https://{}", self.0.serving.admin)])
            .args(self.0.operator_flags("activation-manager"))
            .output()
            .expect("activation create runs");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "activation refused: {stdout}{}\ngateway:\n{}",
            text(&out.stderr),
            self.0.serving.process.log()
        );
        // One area line per prefecture asked for.
        let areas = stdout.lines().filter(|l| l.starts_with("  ")).count();
        assert_eq!(areas, prefectures.len(), "{stdout}");
        for prefecture in prefectures {
            let line = format!("prefecture   {prefecture}");
            assert!(stdout.contains(&line), "{line} in {stdout}");
        }
    }

    /// SIGTERM, then the exit (killed after a while): the access log is then read
    /// from the store as the operators' CLI reads it.
    fn stop(&mut self) {
        let process = &mut self.0.serving.process;
        process.terminate();
        if process.wait_exit(Duration::from_secs(30)).is_none() {
            process.kill();
        }
    }

    /// Every access record, by id (`audit export --format jsonl`).
    fn access_log(&self) -> HashMap<String, Value> {
        let out = bin()
            .args(["audit", "export", "--format", "jsonl", "--data-dir"])
            .arg(&self.0.data)
            .output()
            .expect("audit export runs");
        assert!(out.status.success(), "audit export: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|line| {
                let record: Value = serde_json::from_str(line).expect("a JSON record per line");
                (record["id"].as_str().expect("an id").to_string(), record)
            })
            .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The name as a user at a terminal types it: hiragana, a full-width space.
fn typed_kana(katakana: &str) -> String {
    katakana
        .chars()
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            ' ' => '\u{3000}',
            c => c,
        })
        .collect()
}

/// The client's arguments: the gateway, the certificates, the facilities, and the
/// patient's four attributes.
fn client_args(gateway: &Gateway, facilities: &Facilities, patient: &Fixture) -> Vec<String> {
    assert!(patient.address.contains(ADDRESS_FRAGMENT));
    let sex = match patient.sex {
        onshi_gateway::proto::Sex::Female => "female",
        _ => "male",
    };
    [
        ("--target", gateway.0.serving.addr.to_string()),
        ("--authority", "localhost".into()),
        ("--certs", gateway.0.certs.display().to_string()),
        ("--facility", facilities.home.clone()),
        ("--other-facility", facilities.other.clone()),
        ("--outside-facility", facilities.outside.clone()),
        ("--name", typed_kana(patient.name_kana)),
        ("--birth-date", patient.birth_date.to_string()),
        ("--sex", sex.into()),
        ("--address", ADDRESS_FRAGMENT.into()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// The client's JSON lines, by step, after checking it exited 0.
fn steps(client: &str, out: &Output) -> HashMap<String, Value> {
    let stdout = text(&out.stdout);
    let context = format!(
        "{client} client ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(out.status.success(), "{context}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{context}"))
        })
        .collect();
    let by_step: HashMap<String, Value> = lines
        .iter()
        .map(|v| (v["step"].as_str().unwrap_or("").to_string(), v.clone()))
        .collect();
    assert_eq!(by_step.len(), lines.len(), "each step once: {context}");
    by_step
}

/// The refusals of the scenario: step, gRPC code, ErrorInfo reason, the fields a
/// BadRequest names (every field at fault).
const REFUSALS: [(&str, &str, &str, &[&str]); 7] = [
    (
        "refused_outside_area",
        "PERMISSION_DENIED",
        "AREA_NOT_ACTIVATED",
        &[],
    ),
    (
        "refused_check_digit",
        "INVALID_ARGUMENT",
        "INSURER_NUMBER_CHECK_DIGIT",
        &["insured.insurer_number"],
    ),
    (
        "refused_exemption_without_reason",
        "INVALID_ARGUMENT",
        "EXEMPTION_REASON_MISSING",
        &["access.consent.exemption_reason"],
    ),
    (
        "refused_other_facility_search",
        "PERMISSION_DENIED",
        "SEARCH_FACILITY_MISMATCH",
        &["access.identification.search_id"],
    ),
    (
        "refused_search_without_insurer_or_address",
        "INVALID_ARGUMENT",
        "INSURER_OR_ADDRESS_MISSING",
        &["insurer_name", "address_fragment"],
    ),
    (
        "refused_consent_kind",
        "PERMISSION_DENIED",
        "CONSENT_KIND_NOT_GIVEN",
        &["access.consent.kinds"],
    ),
    (
        "refused_no_consent_basis",
        "INVALID_ARGUMENT",
        "CONSENT_BASIS_MISSING",
        &["access.consent.basis"],
    ),
];

const ALLOWED: [&str; 7] = [
    "search",
    "lookup",
    "drug_history",
    "checkups",
    "exemption_lookup",
    "clinical_information",
    "emergency_summary",
];

/// What a user checks in a client's output, then in the gateway's access log.
fn assert_scenario(client: &str, out: &Output, gateway: &mut Gateway, facilities: &Facilities) {
    let steps = steps(client, out);
    let p = DEMO_PATIENT;
    let insured = serde_json::json!({
        "insurer_number": p.insurer_number, "symbol": p.symbol, "number": p.number, "branch": p.branch,
    });
    let step = |name: &str| -> &Value {
        steps
            .get(name)
            .unwrap_or_else(|| panic!("{client}: no step {name} in {steps:#?}"))
    };
    assert_eq!(step("summary")["failed"], 0, "{client}");
    assert_eq!(step("summary")["passed"], 14, "{client}");
    for name in ALLOWED {
        assert_eq!(step(name)["ok"], true, "{client} {name}: {}", step(name));
        assert_eq!(step(name)["code"], "OK", "{client} {name}");
    }

    // The patient found by the four attributes: exactly one candidate, the demo patient.
    let search = step("search");
    assert_eq!(
        search["outcome"], "SEARCH_OUTCOME_SINGLE_MATCH",
        "{client}: {search}"
    );
    let candidates = search["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 1, "{client}: {search}");
    assert_eq!(candidates[0]["insured"], insured, "{client}");
    assert_eq!(candidates[0]["name"], p.name, "{client}");
    assert_eq!(candidates[0]["insurer_name"], p.insurer_name, "{client}");
    assert!(
        !search["search_id"].as_str().unwrap_or("").is_empty(),
        "{client}: {search}"
    );

    // The qualification of that candidate.
    let lookup = step("lookup");
    assert_eq!(
        lookup["status"], "QUALIFICATION_STATUS_VALID",
        "{client}: {lookup}"
    );
    let q = &lookup["qualification"];
    assert_eq!(q["insured"], insured, "{client}");
    assert_eq!(q["name"], p.name, "{client}");
    assert_eq!(q["birth_date"], p.birth_date.to_string(), "{client}");
    assert_eq!(q["address"], p.address, "{client}");
    assert_eq!(q["insurer_name"], p.insurer_name, "{client}");
    assert_eq!(q["qualification_end"], "", "{client}: still qualified");

    // Drug history: the patient's regular warfarin among the dispensings.
    let drugs = step("drug_history");
    let dispensings = drugs["dispensings"].as_array().expect("dispensings");
    assert!(!dispensings.is_empty(), "{client}: {drugs}");
    assert_eq!(drugs["count"], dispensings.len(), "{client}");
    assert!(
        dispensings.iter().any(|d| d["drug_name"]
            .as_str()
            .unwrap_or("")
            .contains("ワルファリン")),
        "{client}: {drugs}"
    );
    assert!(
        dispensings
            .iter()
            .all(|d| d["drug_code"].as_str().map(str::len) == Some(12))
    );

    let checkups = step("checkups");
    let list = checkups["checkups"].as_array().expect("checkups");
    assert!(!list.is_empty(), "{client}: {checkups}");
    assert!(
        list.iter()
            .all(|c| !c["items"].as_array().expect("items").is_empty()),
        "{client}: {checkups}"
    );

    let exempt = step("exemption_lookup");
    assert_eq!(
        exempt["status"], "QUALIFICATION_STATUS_VALID",
        "{client}: {exempt}"
    );
    assert_eq!(exempt["qualification"]["insured"], insured, "{client}");

    // Clinical information and the summary of the demo patient, on dialysis.
    let clinical = step("clinical_information");
    assert_eq!(clinical["on_dialysis"], true, "{client}: {clinical}");
    assert!(
        clinical["count"].as_u64().unwrap_or(0) > 0,
        "{client}: {clinical}"
    );
    let summary = step("emergency_summary");
    assert_eq!(summary["on_dialysis"], true, "{client}: {summary}");
    for section in ["qualification", "dialysis", "dispensings", "visits"] {
        assert_eq!(
            summary["sections"][section], "SECTION_STATUS_COMPLETE",
            "{client} {section}: {summary}"
        );
    }

    // Each refusal as the terminal read it from the status details.
    for (name, code, reason, field) in REFUSALS {
        let s = step(name);
        assert_eq!(s["ok"], true, "{client} {name}: {s}");
        assert_eq!(s["code"], code, "{client} {name}: {s}");
        assert_eq!(s["reason"], reason, "{client} {name}: {s}");
        assert_eq!(s["domain"], "onshi.gateway", "{client} {name}: {s}");
        let fields: Vec<&str> = s["field_violations"]
            .as_array()
            .expect("field_violations")
            .iter()
            .filter_map(|v| v["field"].as_str())
            .collect();
        assert_eq!(fields, field, "{client} {name}: {s}");
    }
    let outside = step("refused_outside_area");
    assert_eq!(
        outside["metadata"]["facility"],
        facilities.outside.as_str(),
        "{client}"
    );
    assert_eq!(outside["metadata"]["prefecture"], "13", "{client}");

    // Every call the client printed is in the gateway's access log, with the
    // decision and reason the client saw; the exemption is queued for review.
    gateway.stop();
    let log = gateway.access_log();
    for name in ALLOWED.iter().chain(REFUSALS.iter().map(|r| &r.0)) {
        let id = step(name)["access_record"].as_str().unwrap_or("");
        let record = log
            .get(id)
            .unwrap_or_else(|| panic!("{client} {name}: access record {id:?} not in the log"));
        let refusal = REFUSALS.iter().find(|r| r.0 == *name);
        match refusal {
            Some((_, _, reason, _)) => {
                assert_eq!(record["decision"], "denied", "{client} {name}: {record}");
                assert_eq!(record["reason"], *reason, "{client} {name}: {record}");
            }
            None => assert_eq!(record["decision"], "allowed", "{client} {name}: {record}"),
        }
        let facility = if *name == "refused_outside_area" {
            &facilities.outside
        } else if *name == "refused_other_facility_search" {
            &facilities.other
        } else {
            &facilities.home
        };
        assert_eq!(
            record["facility"],
            facility.as_str(),
            "{client} {name}: {record}"
        );
    }
    let exemption = &log[step("exemption_lookup")["access_record"]
        .as_str()
        .unwrap_or("")];
    assert_eq!(
        exemption["consent_basis"], "life_or_body_exemption",
        "{exemption}"
    );
    assert_eq!(exemption["needs_review"], true, "{exemption}");
    assert_eq!(
        exemption["exemption_identification"], "id_document",
        "{exemption}"
    );
    assert_eq!(log.len(), 14, "nothing but the client's calls: {log:#?}");
    for (name, items) in [
        ("clinical_information", "clinical_information"),
        ("emergency_summary", "emergency_summary"),
    ] {
        let record = &log[step(name)["access_record"].as_str().unwrap_or("")];
        assert_eq!(record["items"], items, "{client} {name}: {record}");
    }
}

fn run_client(mut command: Command, gateway: &Gateway, facilities: &Facilities) -> Output {
    command
        .args(client_args(gateway, facilities, &DEMO_PATIENT))
        .output()
        .expect("the client runs")
}

#[test]
fn python_client_runs_the_demo_scenario_over_mutual_tls() {
    clients_installed();
    let facilities = Facilities::demo();
    let mut gateway = Gateway::start(&facilities);
    gateway.activate(&["04", "07"]);
    let python = examples().join("python");
    let mut command = Command::new(python.join(".venv/bin/python"));
    command.arg(python.join("onshi_client.py"));
    let out = run_client(command, &gateway, &facilities);
    assert_scenario("python", &out, &mut gateway, &facilities);
}

#[test]
fn node_client_runs_the_demo_scenario_over_mutual_tls() {
    clients_installed();
    let facilities = Facilities::demo();
    let mut gateway = Gateway::start(&facilities);
    gateway.activate(&["04", "07"]);
    let mut command = Command::new("node");
    command.arg(examples().join("node/client.js"));
    let out = run_client(command, &gateway, &facilities);
    assert_scenario("node", &out, &mut gateway, &facilities);
}

#[test]
fn clients_refused_everywhere_exit_non_zero_and_say_why() {
    // No activation: the first call is refused, and each client says so and fails,
    // rather than printing a scenario that did not happen.
    clients_installed();
    let facilities = Facilities::demo();
    let gateway = Gateway::start(&facilities);
    let python = examples().join("python");
    let mut python_client = Command::new(python.join(".venv/bin/python"));
    python_client.arg(python.join("onshi_client.py"));
    let mut node_client = Command::new("node");
    node_client.arg(examples().join("node/client.js"));
    for (client, command) in [("python", python_client), ("node", node_client)] {
        let out = run_client(command, &gateway, &facilities);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{client}: {stdout}{}",
            text(&out.stderr)
        );
        let first: Value = serde_json::from_str(stdout.lines().next().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{client}: not JSON ({e}): {stdout}"));
        assert_eq!(first["step"], "search", "{client}: {stdout}");
        assert_eq!(first["ok"], false, "{client}: {stdout}");
        assert_eq!(first["code"], "PERMISSION_DENIED", "{client}: {stdout}");
        assert_eq!(first["reason"], "AREA_NOT_ACTIVATED", "{client}: {stdout}");
        assert!(
            first["problem"]
                .as_str()
                .is_some_and(|p| p.contains("AREA_NOT_ACTIVATED"))
        );
        assert!(
            first["access_record"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{client}"
        );
        assert!(
            stdout.contains(r#""failed":1"#) || stdout.contains(r#""failed": 1"#),
            "{client}: {stdout}"
        );
    }
}

/// `BIN ARGS --admin … (operator's flags)`, which must succeed; its stdout.
fn operator_cli(gateway: &Gateway, operator: &str, args: &[&str]) -> String {
    let out = bin()
        .args(args)
        .args(["--admin", &format!("https://{}", gateway.0.serving.admin)])
        .args(gateway.0.operator_flags(operator))
        .output()
        .expect("the CLI runs");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn python_site_terminal_makes_its_csr_and_looks_up_with_the_signed_certificate() {
    clients_installed();
    let gateway = Gateway::start(&Facilities::demo());
    let today = today_jst(chrono::Utc::now()).to_string();
    let created = operator_cli(
        &gateway,
        "activation-manager",
        &[
            "activation",
            "create",
            "--event",
            "訓練: 能登",
            "--municipality",
            "17204",
            "--from",
            &today,
            "--one-week",
            "--by",
            "operator-1",
        ],
    );
    let activation = created
        .split_whitespace()
        .nth(1)
        .expect("the activation's id");
    let registered = operator_cli(
        &gateway,
        "prefecture",
        &[
            "site",
            "register",
            "--activation",
            activation,
            "--kind",
            "first-aid-post",
            "--municipality",
            "17204",
            "--name",
            "輪島中学校 救護所",
            "--sponsor",
            &facility(13, FacilityKind::Medical),
            "--contact",
            "0768-00-0000",
            "--by",
            "ishikawa-1",
        ],
    );
    let site = registered.split_whitespace().nth(1).expect("the site's id");

    let dir = tempfile::tempdir().expect("temp dir");
    let (key, csr, cert) = (
        dir.path().join("site.key"),
        dir.path().join("site.csr"),
        dir.path().join("site.pem"),
    );
    let python = examples().join("python");
    let terminal = || {
        let mut c = Command::new(python.join(".venv/bin/python"));
        c.arg(python.join("site_terminal.py"));
        c
    };
    let made = terminal()
        .args(["keygen", "--key"])
        .arg(&key)
        .arg("--csr")
        .arg(&csr)
        .output()
        .expect("keygen runs");
    assert!(made.status.success(), "{}", text(&made.stderr));
    operator_cli(
        &gateway,
        "prefecture",
        &[
            "site",
            "issue-cert",
            site,
            "--csr",
            &csr.display().to_string(),
            "--out",
            &cert.display().to_string(),
            "--by",
            "ishikawa-1",
        ],
    );
    let lookup = || {
        terminal()
            .args(["lookup", "--target", &gateway.0.serving.addr.to_string()])
            .args([
                "--ca",
                &gateway.0.file("server-ca.pem"),
                "--authority",
                "localhost",
            ])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .output()
            .expect("lookup runs")
    };
    let out = lookup();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(DEMO_PATIENT.name),
        "{}",
        text(&out.stdout)
    );

    operator_cli(
        &gateway,
        "prefecture",
        &["site", "close", site, "--by", "ishikawa-1"],
    );
    let out = lookup();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("SITE_NOT_OPEN"),
        "{}",
        text(&out.stderr)
    );
}

//! The vendors' integration guide (docs/integration-guide.md) follows the gateway:
//! every denial reason the gateway can return has a row with its gRPC code; the
//! reasons a terminal can meet tell the user what to do, in Japanese, with retry
//! advice that fits the code; no row names a reason the gateway lacks; every RPC of
//! the terminal services has its section; and the names a client depends on (error
//! domain, metadata keys, certificate URI) are the code's.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use onshi_gateway::domain::Reason;
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::status::{ERROR_DOMAIN, RETRY_AFTER_MS, code_of};
use onshi_gateway::tls::peer::FACILITY_URI_PREFIX;

const GUIDE: &str = "docs/integration-guide.md";

fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// A table row of the guide that documents a reason: the reason in backticks in its
/// first cell, then the other cells.
struct Row {
    line: usize,
    reason: String,
    cells: Vec<String>,
}

impl Row {
    /// Rows of the terminals' tables have six columns (reason, code, when, retry,
    /// what to show, its meaning); the operators' table has three.
    fn for_terminals(&self) -> bool {
        self.cells.len() == 6
    }
}

fn reason_rows(guide: &str) -> Vec<Row> {
    guide
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("| `"))
        .map(|(i, l)| {
            let cells: Vec<String> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            Row {
                line: i + 1,
                reason: cells[0].trim_matches('`').to_string(),
                cells,
            }
        })
        .collect()
}

fn rows_by_reason(guide: &str) -> HashMap<String, Row> {
    let mut by_reason = HashMap::new();
    for row in reason_rows(guide) {
        let line = row.line;
        if let Some(first) = by_reason.insert(row.reason.clone(), row) {
            panic!(
                "{GUIDE}: {} has two rows, lines {} and {line}",
                first.reason, first.line
            );
        }
    }
    by_reason
}

/// `PERMISSION_DENIED` for `Code::PermissionDenied`, as the guide writes codes.
fn code_name(reason: Reason) -> String {
    let camel = format!("{:?}", code_of(reason));
    let mut name = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// `AreaNotActivated` for `AREA_NOT_ACTIVATED`: the variant's name in the source.
fn variant_name(reason: &str) -> String {
    reason
        .split('_')
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let p = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn japanese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{3040}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}'))
}

#[test]
fn every_reason_is_in_the_guide_with_its_grpc_code() {
    let rows = rows_by_reason(&read(GUIDE));
    let mut missing = Vec::new();
    for reason in Reason::ALL {
        let Some(row) = rows.get(reason.as_str()) else {
            missing.push(reason.as_str());
            continue;
        };
        assert_eq!(
            row.cells.get(1).map(String::as_str),
            Some(code_name(*reason).as_str()),
            "{GUIDE} line {}: {} is returned with {}",
            row.line,
            reason.as_str(),
            code_name(*reason)
        );
    }
    assert!(
        missing.is_empty(),
        "{GUIDE} lacks a row for these denial reasons: {missing:?}"
    );
}

#[test]
fn the_guide_names_no_reason_the_gateway_lacks() {
    let known: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    let unknown: Vec<String> = reason_rows(&read(GUIDE))
        .into_iter()
        .filter(|row| !known.contains(row.reason.as_str()))
        .map(|row| format!("line {}: {}", row.line, row.reason))
        .collect();
    assert!(
        unknown.is_empty(),
        "{GUIDE} documents reasons the gateway does not have: {unknown:?}"
    );
}

/// `Reason::ALL` is what the guide is checked against; a reason with a wire name
/// but left out of that list would escape the check.
#[test]
fn the_reason_list_holds_every_wire_name() {
    let source = read("src/domain/violation.rs");
    let wire_names: BTreeSet<&str> = source
        .lines()
        .filter(|l| l.trim_start().starts_with("Reason::") && l.contains("=> \""))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(
        wire_names.len() > 50,
        "found only {} wire names in src/domain/violation.rs: has `Reason::as_str` moved?",
        wire_names.len()
    );
    let listed: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    let unlisted: Vec<&&str> = wire_names.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "reasons missing from Reason::ALL: {unlisted:?}"
    );
}

#[test]
fn terminal_reasons_say_what_to_show_and_whether_to_retry() {
    for row in reason_rows(&read(GUIDE)) {
        if !row.for_terminals() {
            assert_eq!(
                row.cells.len(),
                3,
                "{GUIDE} line {}: a reason row has 6 columns (terminals) or 3 (operators)",
                row.line
            );
            continue;
        }
        let (code, when, retry, show, meaning) = (
            &row.cells[1],
            &row.cells[2],
            &row.cells[3],
            &row.cells[4],
            &row.cells[5],
        );
        let at = format!("{GUIDE} line {} ({})", row.line, row.reason);
        assert!(!when.is_empty(), "{at}: say when it happens");
        assert!(
            japanese(show),
            "{at}: the message for the user is in Japanese"
        );
        assert!(!meaning.is_empty(), "{at}: give the message's meaning");
        let expected: &[&str] = match code.as_str() {
            "INVALID_ARGUMENT"
            | "PERMISSION_DENIED"
            | "UNAUTHENTICATED"
            | "NOT_FOUND"
            | "FAILED_PRECONDITION" => &["no"],
            "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "INTERNAL" => &["yes"],
            "RESOURCE_EXHAUSTED" => &["after RetryInfo"],
            other => panic!("{at}: no retry advice is defined for {other}"),
        };
        assert!(
            expected.contains(&retry.as_str()),
            "{at}: retry is {retry:?}, expected one of {expected:?} for {code}"
        );
    }
}

/// A reason raised on the request path (the rules, the upstream call, the access
/// log and its facility view) reaches terminals, so it needs a message for the user.
#[test]
fn reasons_of_the_request_path_are_in_the_terminals_tables() {
    let rows = rows_by_reason(&read(GUIDE));
    let mut files = Vec::new();
    for dir in ["src/pipeline", "src/audit"] {
        rust_files(&path(dir), &mut files);
    }
    // Checkpoints and proofs are served on the operators' listener only.
    files.retain(|f| !f.starts_with(path("src/audit/transparency")));
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
            (f, text)
        })
        .collect();
    let mut raised = 0;
    for reason in Reason::ALL {
        let variant = format!("Reason::{}", variant_name(reason.as_str()));
        let Some((file, _)) = sources.iter().find(|(_, text)| {
            text.match_indices(&variant).any(|(i, _)| {
                !text[i + variant.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
            })
        }) else {
            continue;
        };
        raised += 1;
        let row = rows
            .get(reason.as_str())
            .unwrap_or_else(|| panic!("{GUIDE} lacks {}", reason.as_str()));
        assert!(
            row.for_terminals(),
            "{GUIDE} line {}: {} is raised in {} and reaches terminals: give it a row in a terminals' table",
            row.line,
            reason.as_str(),
            file.display()
        );
    }
    assert!(
        raised > 20,
        "found only {raised} reasons raised under src/pipeline and src/audit: have they moved?"
    );
}

#[test]
fn every_terminal_rpc_has_its_section() {
    let guide = read(GUIDE);
    for proto in [
        "proto/onshi/v1/qualification.proto",
        "proto/onshi/v1/medical.proto",
    ] {
        let text = read(proto);
        let service = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("service "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{proto} declares no service"));
        let rpcs: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|rest| rest.split('(').next())
            .collect();
        assert!(!rpcs.is_empty(), "{proto} declares no rpc");
        for rpc in rpcs {
            let heading = format!("### `{service}/{rpc}`");
            assert!(
                guide.lines().any(|l| l.trim() == heading),
                "{GUIDE} has no section `{heading}`"
            );
        }
    }
}

#[test]
fn the_guide_uses_the_names_clients_depend_on() {
    let guide = read(GUIDE);
    for (what, name) in [
        ("the ErrorInfo domain", ERROR_DOMAIN),
        ("the access-record metadata", ACCESS_RECORD_HEADER),
        ("the retry-delay metadata", RETRY_AFTER_MS),
        ("the facility certificate's SAN URI", FACILITY_URI_PREFIX),
    ] {
        assert!(
            guide.contains(&format!("`{name}")),
            "{GUIDE} does not name {what} `{name}`"
        );
    }
}

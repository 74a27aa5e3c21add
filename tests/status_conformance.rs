//! One status, one code: every refusal the gateway sends carries the same gRPC code
//! in `grpc-status` and in the `google.rpc.Status` of `grpc-status-details-bin`
//! (and the same message), so a client library that checks them, such as Python's
//! `grpc_status.rpc_status.from_call`, reads every refusal.
//!
//! Each reason of docs/reasons.md that a loopback gateway can be brought to is
//! provoked by a real call, on the terminals' listener and on the operators'
//! listener, and read twice: here, from the raw trailers, and by grpcio-status in
//! Python (tests/status_conformance.py, run with the example clients' virtualenv from
//! examples/setup.sh), which must agree on the code and find the expected
//! `ErrorInfo` reason. The reasons that cannot be provoked are listed in
//! [`NOT_PROVOKED`] with why; a reason in neither list fails the test.

mod common;
#[path = "common/raw_codec.rs"]
mod raw_codec;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::Reason;
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::proto::qualification_service_server::{
    QualificationService, QualificationServiceServer,
};
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::{DEMO_PATIENT, DEMO_SPOUSE};
use onshi_gateway::status::{ERROR_DOMAIN, code_of};
use onshi_gateway::tls::dev_ca::{DevPki, Issued};
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, IdentitySource};
use onshi_gateway::tls::{OperatorRole, TlsFiles};
use prost::Message;
use raw_codec::RawCodec;
use serde_json::{Value, json};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// Reasons no loopback test can bring about, and why. Their statuses are built by
/// the same function as every other (`status::status_with_code`, checked for every
/// reason and code in its unit tests).
const NOT_PROVOKED: &[(&str, &str)] = &[
    (
        "EXEMPTION_CATEGORY_UNKNOWN",
        "provoked on the terminals' listener by tests/accountability.rs (the_reason_category_is_judged_and_recorded)",
    ),
    (
        "EXEMPTION_OTHER_REASON_MISSING",
        "provoked on the terminals' listener by tests/accountability.rs (the_reason_category_is_judged_and_recorded)",
    ),
    (
        "REVIEW_OUTCOME_INVALID",
        "provoked on the operators' listener by tests/accountability.rs (review_outcomes_are_chained_and_empty_the_queue)",
    ),
    (
        "REVIEW_NOTE_INVALID",
        "provoked on the operators' listener by tests/accountability.rs (review_outcomes_are_chained_and_empty_the_queue)",
    ),
    (
        "REVIEW_SUBJECT_NOT_FOUND",
        "provoked on the operators' listener by tests/accountability.rs (review_outcomes_are_chained_and_empty_the_queue)",
    ),
    (
        "REVIEW_SUBJECT_NOT_FLAGGED",
        "provoked on the operators' listener by tests/accountability.rs (review_outcomes_are_chained_and_empty_the_queue)",
    ),
    (
        "TREE_PRUNED",
        "needs a chain pruned by retention (five years by default); the mapping to its code is tested in src/audit/transparency/service.rs (each_tree_failure_has_its_reason_and_code)",
    ),
    (
        "TREE_UNAVAILABLE",
        "needs the store to fail between the chain check and the read of its hashes; the mapping to its code is tested in src/audit/transparency/service.rs (each_tree_failure_has_its_reason_and_code)",
    ),
    (
        "SEARCH_LEDGER_UNAVAILABLE",
        "the search ledger lives in the store that also takes the access record, so a call that finds it down is refused with AUDIT_UNAVAILABLE instead",
    ),
    (
        "CALL_DEADLINE_EXCEEDED",
        "a slow upstream is cut at the same instant and answers UPSTREAM_TIMEOUT; this reason needs the access log's commit (or a store read) slower than the caller's deadline, which tests/drain_and_deadlines.rs arranges with a slow access log in-process",
    ),
    (
        "SITE_NOT_FOUND",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_NOT_OPEN",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs and tests/sites_tls_replicas.rs sets up and provokes over real calls",
    ),
    (
        "SITE_OUTSIDE_ACTIVATION",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_WINDOW_INVALID",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_KIND_UNKNOWN",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_FIELD_INVALID",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_LICENCE_REQUIRED",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "LICENCE_NUMBER_INVALID",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_CSR_INVALID",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites_tls_replicas.rs sets up and provokes over real calls",
    ),
    (
        "SITE_CERTIFICATE_VALIDITY",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites_tls_replicas.rs sets up and provokes over real calls",
    ),
    (
        "SITE_NOT_PERMITTED",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
    (
        "SITE_CA_UNAVAILABLE",
        "a temporary site's reason: it needs a registered site (and for some the site CA), which tests/sites.rs sets up and provokes over real calls",
    ),
];

const LOOKUP: &str = "/onshi.v1.QualificationService/LookupQualification";
const SEARCH: &str = "/onshi.v1.QualificationService/SearchPatients";
const DRUGS: &str = "/onshi.v1.MedicalInformationService/GetDrugHistory";
const CLINICAL: &str = "/onshi.v1.MedicalInformationService/GetClinicalInformation";
const SUMMARY: &str = "/onshi.v1.MedicalInformationService/GetEmergencySummary";
const FACILITY_LOG: &str = "/onshi.v1.AuditService/QueryFacilityAccessLog";
const ACCESS_LOG: &str = "/onshi.v1.AuditService/QueryAccessLog";
const PATIENT_ACCESSES: &str = "/onshi.v1.AuditService/QueryPatientAccesses";
const CREATE: &str = "/onshi.v1.ActivationAdminService/CreateActivation";
const ADD_AREAS: &str = "/onshi.v1.ActivationAdminService/AddAreas";
const EXTEND: &str = "/onshi.v1.ActivationAdminService/ExtendWindow";
const GET: &str = "/onshi.v1.ActivationAdminService/GetActivation";
const LIST: &str = "/onshi.v1.ActivationAdminService/ListActivations";
const PREVIEW: &str = "/onshi.v1.ActivationAdminService/PreviewAreas";
const CHECK: &str = "/onshi.v1.ActivationAdminService/CheckFacility";
const CHECKPOINT: &str = "/onshi.v1.TransparencyService/GetCheckpoint";
const INCLUSION: &str = "/onshi.v1.TransparencyService/GetInclusionProof";

// ---------------------------------------------------------------------------------
// Raw calls: an encoded request to a method path, the refusal read from its trailers.

/// The client certificate a TLS target is called with.
struct TlsClient {
    ca: String,
    client: Issued,
}

/// A listener the cases are sent to.
struct Target {
    address: SocketAddr,
    tls: Option<TlsClient>,
}

impl Target {
    fn plain(address: SocketAddr) -> Target {
        Target { address, tls: None }
    }

    async fn channel(&self) -> Channel {
        let Some(tls) = &self.tls else {
            return Channel::from_shared(format!("http://{}", self.address))
                .expect("uri")
                .connect()
                .await
                .expect("connect");
        };
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&tls.ca))
            .domain_name("localhost")
            .identity(Identity::from_pem(
                &tls.client.cert_pem,
                &tls.client.key_pem,
            ));
        Channel::from_shared(format!("https://{}", self.address))
            .expect("uri")
            .tls_config(config)
            .expect("tls")
            .connect()
            .await
            .expect("connect over TLS")
    }

    fn json(&self) -> Value {
        json!({
            "address": self.address.to_string(),
            "tls": self.tls.as_ref().map(|t| json!({
                "ca": t.ca, "cert": t.client.cert_pem, "key": t.client.key_pem,
            })),
        })
    }
}

/// One refusal to provoke: the request, where it goes, and what must come back.
struct Case {
    name: String,
    method: &'static str,
    metadata: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Sent this many times; the last answer is the one judged.
    repeat: u32,
    code: Code,
    reason: Reason,
}

/// A case refused with the reason's own code.
fn case(name: &str, method: &'static str, message: &impl Message, reason: Reason) -> Case {
    Case {
        name: name.to_string(),
        method,
        metadata: Vec::new(),
        body: message.encode_to_vec(),
        repeat: 1,
        code: code_of(reason),
        reason,
    }
}

impl Case {
    /// Called as this facility (the development identity's metadata).
    fn from(mut self, facility: &str) -> Case {
        self.metadata
            .push((DEV_FACILITY_HEADER, facility.to_string()));
        self
    }

    fn by_clinic(self) -> Case {
        let clinic = miyagi_clinic().to_string();
        self.from(&clinic)
    }

    /// Refused with another code than the reason's own (bad input from an operator).
    fn with_code(mut self, code: Code) -> Case {
        self.code = code;
        self
    }

    fn times(mut self, n: u32) -> Case {
        self.repeat = n;
        self
    }
}

/// Sends the case over `channel` and checks the refusal as it arrives: one code in
/// the status and its details, the expected reason and domain, one message.
async fn check_raw(channel: &Channel, case: &Case) {
    let name = &case.name;
    let mut result = Ok(());
    for _ in 0..case.repeat {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let mut request = Request::new(case.body.clone());
        for (key, value) in &case.metadata {
            let value = AsciiMetadataValue::try_from(value.as_str()).expect("ascii");
            request.metadata_mut().insert(*key, value);
        }
        result = grpc
            .unary(
                request,
                http::uri::PathAndQuery::from_static(case.method),
                RawCodec,
            )
            .await
            .map(|_| ());
    }
    let status = result.expect_err(name);
    assert_eq!(status.code(), case.code, "{name}: {status:?}");
    let details = tonic_types::Status::decode(status.details()).unwrap_or_else(|e| {
        panic!("{name}: grpc-status-details-bin is not a google.rpc.Status: {e}")
    });
    assert_eq!(
        details.code,
        status.code() as i32,
        "{name}: the details' code is the status' code"
    );
    assert_eq!(details.message, status.message(), "{name}: one message");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("{name}: no ErrorInfo in {status:?}"));
    assert_eq!(
        info.reason,
        case.reason.as_str(),
        "{name}: {}",
        status.message()
    );
    assert_eq!(info.domain, ERROR_DOMAIN, "{name}");
}

// ---------------------------------------------------------------------------------
// The Python reader.

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The example clients' virtualenv, installed by examples/setup.sh (quick when it
/// is up to date).
fn python() -> PathBuf {
    let out = Command::new("bash")
        .arg(examples().join("setup.sh"))
        .output()
        .expect("examples/setup.sh runs");
    assert!(
        out.status.success(),
        "examples/setup.sh failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    examples().join("python/.venv/bin/python")
}

/// Runs tests/status_conformance.py over the cases and checks what grpcio-status read.
fn check_python(python: &Path, targets: &BTreeMap<&str, &Target>, cases: &[(&str, Case)]) {
    let spec = json!({
        "targets": targets.iter().map(|(k, t)| (k.to_string(), t.json())).collect::<serde_json::Map<_, _>>(),
        "cases": cases.iter().map(|(target, c)| json!({
            "name": c.name,
            "target": target,
            "method": c.method,
            "metadata": c.metadata.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": hex::encode(&c.body),
            "repeat": c.repeat,
        })).collect::<Vec<_>>(),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/status_conformance.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(spec.to_string().as_bytes())
            .expect("spec written");
    }
    let out = child.wait_with_output().expect("python ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {}\n{stdout}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(read.len(), cases.len(), "one line per case:\n{stdout}");
    for ((_, case), got) in cases.iter().zip(&read) {
        let name = &case.name;
        assert_eq!(got["name"], json!(name), "{got}");
        assert_eq!(
            got.get("from_call_error"),
            None,
            "{name}: rpc_status.from_call refused the status"
        );
        let code = format!("{:?}", case.code);
        let python_code = got["code"].as_str().unwrap_or("").replace('_', "");
        assert!(
            python_code.eq_ignore_ascii_case(&code),
            "{name}: grpcio sees {} for {code}",
            got["code"]
        );
        assert_eq!(got["details"], json!(true), "{name}: {got}");
        assert_eq!(got["status_code"], got["code_number"], "{name}: {got}");
        assert_eq!(got["status_code"], json!(case.code as i32), "{name}: {got}");
        assert_eq!(got["reason"], json!(case.reason.as_str()), "{name}: {got}");
        assert_eq!(got["domain"], json!(ERROR_DOMAIN), "{name}: {got}");
    }
}

/// Checks every case over raw tonic, then all of them through Python; returns the
/// reasons seen.
async fn check_all(
    python: &Path,
    targets: &BTreeMap<&str, &Target>,
    cases: Vec<(&str, Case)>,
) -> BTreeSet<&'static str> {
    let mut channels = BTreeMap::new();
    for (name, target) in targets {
        channels.insert(*name, target.channel().await);
    }
    for (target, case) in &cases {
        check_raw(&channels[target], case).await;
    }
    check_python(python, targets, &cases);
    cases.iter().map(|(_, c)| c.reason.as_str()).collect()
}

// ---------------------------------------------------------------------------------
// The requests.

fn demo_lookup() -> LookupQualificationRequest {
    lookup(DEMO_PATIENT.insured())
}

fn lookup_with(f: impl FnOnce(&mut LookupQualificationRequest)) -> LookupQualificationRequest {
    let mut r = demo_lookup();
    f(&mut r);
    r
}

fn insured_with(f: impl FnOnce(&mut InsuredNumber)) -> LookupQualificationRequest {
    lookup_with(|r| f(r.insured.as_mut().expect("insured")))
}

fn search_with(f: impl FnOnce(&mut SearchPatientsRequest)) -> SearchPatientsRequest {
    let mut r = search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻");
    f(&mut r);
    r
}

fn access_of(r: &mut LookupQualificationRequest) -> &mut AccessContext {
    r.access.as_mut().expect("access")
}

fn with_check(body: &str) -> String {
    onshi_gateway::domain::insurer::make_insurer_number(body)
}

fn wrong_check_digit(code: &str) -> String {
    let last = code.as_bytes()[code.len() - 1] - b'0';
    format!("{}{}", &code[..code.len() - 1], (last + 1) % 10)
}

fn exemption(reason: &str, identification: i32) -> Option<Consent> {
    Some(Consent {
        basis: ConsentBasis::LifeOrBodyExemption as i32,
        exemption_reason: reason.into(),
        exemption_identification: identification,
        // As a client from before the reason category.
        ..Consent::default()
    })
}

fn by(author: &str) -> Option<ChangeContext> {
    Some(ChangeContext {
        author: author.into(),
        ..ChangeContext::default()
    })
}

fn prefectures(codes: &[&str]) -> Option<Areas> {
    Some(Areas {
        prefectures: codes.iter().map(ToString::to_string).collect(),
        ..Areas::default()
    })
}

fn municipalities(codes: &[&str]) -> Option<Areas> {
    Some(Areas {
        municipalities: codes.iter().map(ToString::to_string).collect(),
        ..Areas::default()
    })
}

fn week_from(day: &str) -> Option<WindowSpec> {
    Some(WindowSpec {
        form: Some(window_spec::Form::OneWeekFrom(day.into())),
    })
}

fn create(event: &str, areas: Option<Areas>, author: &str) -> CreateActivationRequest {
    CreateActivationRequest {
        event: event.into(),
        areas,
        window: week_from("2022-03-17"),
        change: by(author),
    }
}

fn until_end_of(day: &str) -> Option<WindowEnd> {
    Some(WindowEnd {
        form: Some(window_end::Form::EndOfDay(day.into())),
    })
}

fn time_range_backwards() -> Option<TimeRange> {
    let at = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
    Some(TimeRange {
        from: Some(at(1_700_000_000)),
        until: Some(at(1_600_000_000)),
    })
}

fn paging(page_size: u32, token: &str) -> Option<Paging> {
    Some(Paging {
        page_size,
        max_records: 0,
        page_token: token.into(),
    })
}

/// The terminals' refusals of the input rules, the identity and the area.
fn terminal_input_cases() -> Vec<Case> {
    use Reason::*;
    let clinic = miyagi_clinic().to_string();
    vec![
        case("no facility", LOOKUP, &demo_lookup(), FacilityUnidentified),
        case(
            "facility 9 digits",
            LOOKUP,
            &demo_lookup(),
            FacilityCodeFormat,
        )
        .from(&clinic[..9]),
        case(
            "facility prefecture 48",
            LOOKUP,
            &demo_lookup(),
            FacilityCodePrefecture,
        )
        .from(&with_check("481011001")),
        case(
            "facility fee table 2",
            LOOKUP,
            &demo_lookup(),
            FacilityCodeFeeTable,
        )
        .from(&with_check("042011001")),
        case(
            "facility check digit",
            LOOKUP,
            &demo_lookup(),
            FacilityCodeCheckDigit,
        )
        .from(&wrong_check_digit(&clinic)),
        case(
            "no access",
            LOOKUP,
            &lookup_with(|r| r.access = None),
            AccessContextMissing,
        )
        .by_clinic(),
        case(
            "no staff id",
            LOOKUP,
            &lookup_with(|r| access_of(r).staff.as_mut().expect("staff").staff_id.clear()),
            StaffIdMissing,
        )
        .by_clinic(),
        case(
            "staff id too long",
            LOOKUP,
            &lookup_with(|r| access_of(r).staff.as_mut().expect("staff").staff_id = "d".repeat(65)),
            StaffIdInvalid,
        )
        .by_clinic(),
        case(
            "no staff role",
            LOOKUP,
            &lookup_with(|r| access_of(r).staff.as_mut().expect("staff").role = 0),
            StaffRoleMissing,
        )
        .by_clinic(),
        case(
            "staff role 99",
            LOOKUP,
            &lookup_with(|r| access_of(r).staff.as_mut().expect("staff").role = 99),
            StaffRoleUnknown,
        )
        .by_clinic(),
        case("outside the area", LOOKUP, &demo_lookup(), AreaNotActivated)
            .from(&tokyo_clinic().to_string()),
        case(
            "no insured",
            LOOKUP,
            &lookup_with(|r| r.insured = None),
            InsuredNumberMissing,
        )
        .by_clinic(),
        case(
            "insurer 7 digits",
            LOOKUP,
            &insured_with(|i| i.insurer_number = "0104001".into()),
            InsurerNumberFormat,
        )
        .by_clinic(),
        case(
            "insurer prefecture 48",
            LOOKUP,
            &insured_with(|i| i.insurer_number = with_check("0148001")),
            InsurerNumberPrefecture,
        )
        .by_clinic(),
        case(
            "insurer check digit, and the branch",
            LOOKUP,
            &insured_with(|i| {
                i.insurer_number = "01234567".into();
                i.branch = "1a".into();
            }),
            InsurerNumberCheckDigit,
        )
        .by_clinic(),
        case(
            "symbol with a space",
            LOOKUP,
            &insured_with(|i| i.symbol = "12 34".into()),
            SymbolInvalid,
        )
        .by_clinic(),
        case(
            "no number",
            LOOKUP,
            &insured_with(|i| i.number.clear()),
            NumberMissing,
        )
        .by_clinic(),
        case(
            "number in kana",
            LOOKUP,
            &insured_with(|i| i.number = "イチ".into()),
            NumberInvalid,
        )
        .by_clinic(),
        case(
            "branch one digit",
            LOOKUP,
            &insured_with(|i| i.branch = "0".into()),
            BranchInvalid,
        )
        .by_clinic(),
        case(
            "no name",
            SEARCH,
            &search_with(|r| r.name.clear()),
            NameMissing,
        )
        .by_clinic(),
        case(
            "name with a NUL",
            SEARCH,
            &search_with(|r| r.name = "山田\u{0}".into()),
            NameInvalid,
        )
        .by_clinic(),
        case(
            "no birth date",
            SEARCH,
            &search_with(|r| r.birth_date.clear()),
            BirthDateMissing,
        )
        .by_clinic(),
        case(
            "birth date 2023-02-30, and no sex",
            SEARCH,
            &search_with(|r| {
                r.birth_date = "2023-02-30".into();
                r.sex = 0;
            }),
            BirthDateInvalid,
        )
        .by_clinic(),
        case("no sex", SEARCH, &search_with(|r| r.sex = 0), SexMissing).by_clinic(),
        case(
            "neither insurer nor address",
            SEARCH,
            &search_with(|r| r.address_fragment.clear()),
            InsurerOrAddressMissing,
        )
        .by_clinic(),
        case(
            "insurer name too long",
            SEARCH,
            &search_with(|r| r.insurer_name = "協".repeat(101)),
            InsurerNameInvalid,
        )
        .by_clinic(),
        case(
            "address with a BOM",
            SEARCH,
            &search_with(|r| r.address_fragment = "\u{FEFF}石巻".into()),
            AddressFragmentInvalid,
        )
        .by_clinic(),
        case(
            "period from after to",
            DRUGS,
            &GetDrugHistoryRequest {
                period: Some(Period {
                    from: "2022-03-02".into(),
                    to: "2022-03-01".into(),
                }),
                ..drugs(DEMO_PATIENT.insured(), known())
            },
            PeriodInvalid,
        )
        .by_clinic(),
        case(
            "no identification",
            LOOKUP,
            &lookup_with(|r| access_of(r).identification = None),
            IdentificationMissing,
        )
        .by_clinic(),
        case(
            "search without its id",
            LOOKUP,
            &lookup_with(|r| access_of(r).identification = by_search(" ")),
            SearchIdMissing,
        )
        .by_clinic(),
        case(
            "search that does not exist",
            LOOKUP,
            &lookup_with(|r| {
                access_of(r).identification = by_search("0190a0f1-0000-7000-8000-000000000000");
            }),
            SearchNotFound,
        )
        .by_clinic(),
    ]
}

fn terminal_consent_cases() -> Vec<Case> {
    use Reason::*;
    let consent = |c: Option<Consent>| lookup_with(|r| access_of(r).consent = c);
    let purpose = |p: i32| lookup_with(|r| access_of(r).purpose = p);
    vec![
        case("no consent", LOOKUP, &consent(None), ConsentBasisMissing).by_clinic(),
        case(
            "consent basis 9",
            LOOKUP,
            &consent(Some(Consent {
                basis: 9,
                ..Consent::default()
            })),
            ConsentBasisUnknown,
        )
        .by_clinic(),
        case(
            "exemption without reason",
            LOOKUP,
            &consent(exemption("", 1)),
            ExemptionReasonMissing,
        )
        .by_clinic(),
        case(
            "exemption reason with an escape",
            LOOKUP,
            &consent(exemption("意識\u{1b}[2J不明", 1)),
            ExemptionReasonInvalid,
        )
        .by_clinic(),
        case(
            "exemption without identification",
            LOOKUP,
            &consent(exemption("意識不明", 0)),
            ExemptionIdentificationMissing,
        )
        .by_clinic(),
        case("no purpose", LOOKUP, &purpose(0), PurposeMissing).by_clinic(),
        case("purpose 2", LOOKUP, &purpose(2), PurposeNotPermitted).by_clinic(),
        case(
            "a number the upstream does not know",
            DRUGS,
            &drugs(
                InsuredNumber {
                    number: "99999999".into(),
                    ..DEMO_PATIENT.insured()
                },
                known(),
            ),
            PatientNotFound,
        )
        .by_clinic(),
    ]
}

/// Consent per kind, the access mode and emergency viewing, clinical options.
fn clinical_cases() -> Vec<Case> {
    use Reason::*;
    let drugs_with = |kinds: Vec<i32>| {
        let mut r = drugs(DEMO_PATIENT.insured(), known());
        if let Some(c) = access_of_drugs(&mut r).consent.as_mut() {
            c.kinds = kinds;
        }
        r
    };
    let moded = |mode: i32, consent: Option<Consent>| {
        let mut access = access(known()).expect("access");
        access.mode = mode;
        access.consent = consent;
        GetEmergencySummaryRequest {
            access: Some(access),
            insured: Some(DEMO_PATIENT.insured()),
        }
    };
    let exempt = exemption("意識不明", 1);
    vec![
        case(
            "consent kind 9",
            DRUGS,
            &drugs_with(vec![9]),
            ConsentKindUnknown,
        )
        .by_clinic(),
        case(
            "drugs under a consent to check-ups",
            DRUGS,
            &drugs_with(vec![ConsentKind::Checkups as i32]),
            ConsentKindNotGiven,
        )
        .by_clinic(),
        case(
            "access mode 7",
            LOOKUP,
            &lookup_with(|r| access_of(r).mode = 7),
            AccessModeUnknown,
        )
        .by_clinic(),
        case(
            "emergency viewing of a qualification",
            LOOKUP,
            &lookup_with(|r| access_of(r).mode = AccessMode::EmergencyViewing as i32),
            EmergencyViewingSummaryOnly,
        )
        .by_clinic(),
        case(
            "emergency viewing with consent",
            SUMMARY,
            &moded(
                AccessMode::EmergencyViewing as i32,
                Some(Consent::patient()),
            ),
            EmergencyViewingRequiresExemption,
        )
        .by_clinic(),
        case(
            "emergency viewing from a clinic",
            SUMMARY,
            &moded(AccessMode::EmergencyViewing as i32, exempt),
            EmergencyViewingFacilityNotEligible,
        )
        .by_clinic(),
        case(
            "clinical category 9",
            CLINICAL,
            &GetClinicalInformationRequest {
                access: access(known()),
                insured: Some(DEMO_PATIENT.insured()),
                categories: vec![9],
                ..Default::default()
            },
            ClinicalCategoryUnknown,
        )
        .by_clinic(),
    ]
}

fn access_of_drugs(r: &mut GetDrugHistoryRequest) -> &mut AccessContext {
    r.access.as_mut().expect("access")
}

/// The facility's own access log on the terminals' listener.
fn terminal_audit_cases() -> Vec<Case> {
    use Reason::*;
    let clinic = miyagi_clinic().to_string();
    let own = |f: fn(&mut QueryFacilityAccessLogRequest)| {
        let mut r = QueryFacilityAccessLogRequest {
            facility_code: clinic.clone(),
            ..QueryFacilityAccessLogRequest::default()
        };
        f(&mut r);
        r
    };
    vec![
        case(
            "another facility's log",
            FACILITY_LOG,
            &QueryFacilityAccessLogRequest {
                facility_code: fukushima_pharmacy().to_string(),
                ..QueryFacilityAccessLogRequest::default()
            },
            FacilityMismatch,
        )
        .by_clinic(),
        case(
            "an operators' view",
            ACCESS_LOG,
            &QueryAccessLogRequest::default(),
            OperatorRoleRequired,
        )
        .by_clinic(),
        case(
            "facility log backwards",
            FACILITY_LOG,
            &own(|r| r.time = time_range_backwards()),
            QueryTimeRangeInvalid,
        )
        .by_clinic(),
        case(
            "facility log decision 9",
            FACILITY_LOG,
            &own(|r| r.decision = 9),
            QueryFilterInvalid,
        )
        .by_clinic(),
        case(
            "facility log page of 5000",
            FACILITY_LOG,
            &own(|r| r.paging = paging(5000, "")),
            PageSizeInvalid,
        )
        .by_clinic(),
        case(
            "facility log forged token",
            FACILITY_LOG,
            &own(|r| r.paging = paging(10, "forged")),
            PageTokenInvalid,
        )
        .by_clinic(),
    ]
}

/// The operators' refusals of the activation service and the access log.
fn operator_cases(activation_id: &str) -> Vec<Case> {
    use Reason::*;
    let clinic = miyagi_clinic().to_string();
    let extend = |areas: &[&str], day: &str, revision: u32| ExtendWindowRequest {
        activation_id: activation_id.into(),
        areas: prefectures(areas),
        until: until_end_of(day),
        change: Some(ChangeContext {
            author: "op-1".into(),
            expected_revision: revision,
            ..ChangeContext::default()
        }),
    };
    let preview = |code: &str| PreviewAreasRequest {
        areas: municipalities(&[code]),
    };
    let check = |code: String| CheckFacilityRequest {
        facility_code: code,
        ..CheckFacilityRequest::default()
    };
    let bad_input = Code::InvalidArgument;
    vec![
        case(
            "no event",
            CREATE,
            &create("", prefectures(&["04"]), "op-1"),
            ActivationEventMissing,
        ),
        case(
            "no areas",
            CREATE,
            &create("e", None, "op-1"),
            ActivationAreasMissing,
        ),
        case(
            "an area twice",
            CREATE,
            &create("e", prefectures(&["04", "04"]), "op-1"),
            ActivationAreaDuplicate,
        ),
        case(
            "prefecture 48",
            CREATE,
            &create("e", prefectures(&["48"]), "op-1"),
            PrefectureCodeUnknown,
        ),
        case(
            "no author",
            CREATE,
            &create("e", prefectures(&["04"]), ""),
            ChangeAuthorMissing,
        ),
        case(
            "a window from no date",
            CREATE,
            &CreateActivationRequest {
                window: week_from("2022-02-30"),
                ..create("e", prefectures(&["04"]), "op-1")
            },
            ActivationWindowInvalid,
        ),
        case(
            "adding an area already in",
            ADD_AREAS,
            &AddAreasRequest {
                activation_id: activation_id.into(),
                areas: prefectures(&["04"]),
                window: week_from("2022-03-17"),
                change: by("op-1"),
            },
            ActivationAreaAlreadyIncluded,
        ),
        case(
            "extending an area not in",
            EXTEND,
            &extend(&["13"], "2022-03-30", 0),
            ActivationAreaNotIncluded,
        ),
        case(
            "extending to before the end",
            EXTEND,
            &extend(&["04"], "2022-03-20", 0),
            ActivationRevisionContradicts,
        ),
        case(
            "a stale revision",
            EXTEND,
            &extend(&["04"], "2022-03-30", 99),
            ActivationRevisionConflict,
        ),
        case(
            "no such activation",
            GET,
            &GetActivationRequest {
                activation_id: "no-such-activation".into(),
                as_known_at: None,
            },
            ActivationNotFound,
        ),
        case(
            "municipality 4 digits",
            PREVIEW,
            &preview("1720"),
            MunicipalityCodeFormat,
        ),
        case(
            "municipality check digit",
            PREVIEW,
            &preview("172015"),
            MunicipalityCodeCheckDigit,
        ),
        case(
            "municipality not in the master",
            PREVIEW,
            &preview("17999"),
            MunicipalityUnknown,
        ),
        // A facility code typed by an operator is bad input, not an identity failure.
        case(
            "operator: facility 9 digits",
            CHECK,
            &check(clinic[..9].to_string()),
            FacilityCodeFormat,
        )
        .with_code(bad_input),
        case(
            "operator: facility prefecture 48",
            CHECK,
            &check(with_check("481011001")),
            FacilityCodePrefecture,
        )
        .with_code(bad_input),
        case(
            "operator: facility fee table 2",
            CHECK,
            &check(with_check("042011001")),
            FacilityCodeFeeTable,
        )
        .with_code(bad_input),
        case(
            "operator: facility check digit",
            CHECK,
            &check(wrong_check_digit(&clinic)),
            FacilityCodeCheckDigit,
        )
        .with_code(bad_input),
        case(
            "operator: access log backwards",
            ACCESS_LOG,
            &QueryAccessLogRequest {
                time: time_range_backwards(),
                ..QueryAccessLogRequest::default()
            },
            QueryTimeRangeInvalid,
        ),
        case(
            "operator: access log consent 9",
            ACCESS_LOG,
            &QueryAccessLogRequest {
                consent_basis: 9,
                ..QueryAccessLogRequest::default()
            },
            QueryFilterInvalid,
        ),
        case(
            "operator: access log page of 5000",
            ACCESS_LOG,
            &QueryAccessLogRequest {
                paging: paging(5000, ""),
                ..QueryAccessLogRequest::default()
            },
            PageSizeInvalid,
        ),
        case(
            "operator: patient with a bad insurer check digit",
            PATIENT_ACCESSES,
            &QueryPatientAccessesRequest {
                patient: Some(InsuredNumber {
                    insurer_number: "01234567".into(),
                    ..DEMO_PATIENT.insured()
                }),
                ..QueryPatientAccessesRequest::default()
            },
            InsurerNumberCheckDigit,
        ),
        case(
            "transparency: another replica's chain",
            CHECKPOINT,
            &GetCheckpointRequest {
                chain_id: "0000000000000000".into(),
                ..GetCheckpointRequest::default()
            },
            ChainNotServedHere,
        ),
        case(
            "transparency: record 0",
            INCLUSION,
            &GetInclusionProofRequest::default(),
            TreeSizeInvalid,
        ),
    ]
}

// ---------------------------------------------------------------------------------
// The gateways.

async fn admin_client(
    h: &Harness,
) -> activation_admin_service_client::ActivationAdminServiceClient<Channel> {
    let addr = h.gateway.admin_addr.expect("admin listener");
    activation_admin_service_client::ActivationAdminServiceClient::new(
        Target::plain(addr).channel().await,
    )
}

/// The searches the search cases name: one made 31 minutes ago (expired), one just now.
async fn searches(h: &mut Harness) -> (String, String) {
    let (old, _) = h.search_demo_patient(&miyagi_clinic()).await;
    h.clock.set(jst_at(2022, 3, 20, 10, 31));
    let (fresh, _) = h.search_demo_patient(&miyagi_clinic()).await;
    (old, fresh)
}

fn search_cases(old: &str, fresh: &str) -> Vec<Case> {
    use Reason::*;
    let by = |id: &str| lookup_with(|r| access_of(r).identification = by_search(id));
    vec![
        case("an expired search", LOOKUP, &by(old), SearchExpired).by_clinic(),
        case(
            "another facility's search",
            LOOKUP,
            &by(fresh),
            SearchFacilityMismatch,
        )
        .from(&fukushima_pharmacy().to_string()),
        case(
            "a patient not in the search",
            LOOKUP,
            &lookup_with(|r| {
                r.insured = Some(DEMO_SPOUSE.insured());
                access_of(r).identification = by_search(fresh);
            }),
            PatientNotInSearch,
        )
        .by_clinic(),
    ]
}

/// The default gateway: the terminals' input, identity, area, search, consent and
/// access-log refusals, and the operators' refusals.
async fn main_gateway(python: &Path) -> BTreeSet<&'static str> {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let (old, fresh) = searches(&mut h).await;
    let mut admin = admin_client(&h).await;
    let activation_id = admin
        .list_activations(ListActivationsRequest {})
        .await
        .expect("activations listed")
        .into_inner()
        .activations
        .pop()
        .expect("the Fukushima-oki activation")
        .id;
    // Wajima alone, for a municipality-level activation in Ishikawa, where a
    // facility not in the registry cannot be placed.
    admin
        .create_activation(CreateActivationRequest {
            window: Some(WindowSpec {
                form: Some(window_spec::Form::Days(Days {
                    first_day: "2022-03-17".into(),
                    last_day: "2022-03-23".into(),
                })),
            }),
            ..create("訓練", municipalities(&["17204"]), "op-1")
        })
        .await
        .expect("created");
    let unregistered = onshi_gateway::demo::facility(17, FacilityKind::Medical, 1050).to_string();
    let terminal = Target::plain(h.gateway.addr);
    let operators = Target::plain(h.gateway.admin_addr.expect("admin listener"));
    let mut cases: Vec<(&str, Case)> = Vec::new();
    for c in terminal_input_cases()
        .into_iter()
        .chain(terminal_consent_cases())
        .chain(terminal_audit_cases())
        .chain(search_cases(&old, &fresh))
        .chain(clinical_cases())
    {
        cases.push(("terminal", c));
    }
    cases.push((
        "terminal",
        case(
            "a facility not in the registry",
            LOOKUP,
            &demo_lookup(),
            Reason::FacilityNotInRegistry,
        )
        .from(&unregistered),
    ));
    for c in operator_cases(&activation_id) {
        cases.push(("operators", c));
    }
    let targets = BTreeMap::from([("terminal", &terminal), ("operators", &operators)]);
    check_all(python, &targets, cases).await
}

/// An upstream that answers every qualification call with INTERNAL and every
/// medical-information call with DEADLINE_EXCEEDED.
async fn failing_upstream() -> String {
    let up = own_upstream(100, jst_at(2022, 3, 20, 10, 0)).await;
    let url = up.url.clone();
    let qualification = InterceptedService::new(up.qualification, |_: Request<()>| {
        Err(Status::internal("the OQS failed"))
    });
    let medical = InterceptedService::new(up.medical, |_: Request<()>| {
        Err(Status::deadline_exceeded("the OQS gave up"))
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(qualification)
            .add_service(medical)
            .serve_with_incoming(up.incoming),
    );
    url
}

/// The upstream's failures, then the store's.
async fn failing_gateways(python: &Path) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let h = Harness::start_with(Options {
        upstream: Some(failing_upstream().await),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let terminal = Target::plain(h.gateway.addr);
    let targets = BTreeMap::from([("terminal", &terminal)]);
    let cases = vec![
        (
            "terminal",
            case(
                "the upstream fails",
                LOOKUP,
                &demo_lookup(),
                Reason::UpstreamError,
            )
            .by_clinic(),
        ),
        (
            "terminal",
            case(
                "the upstream times out",
                DRUGS,
                &drugs(DEMO_PATIENT.insured(), known()),
                Reason::UpstreamTimeout,
            )
            .by_clinic(),
        ),
    ];
    seen.extend(check_all(python, &targets, cases).await);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    // A long refresh keeps the activation in cache once the store is down.
    let h = Harness::start_with(Options {
        upstream: Some(format!("http://{closed_addr}")),
        activation_refresh: Duration::from_secs(600),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let terminal = Target::plain(h.gateway.addr);
    let operators = Target::plain(h.gateway.admin_addr.expect("admin listener"));
    let targets = BTreeMap::from([("terminal", &terminal), ("operators", &operators)]);
    let down = vec![(
        "terminal",
        case(
            "the upstream is down",
            LOOKUP,
            &demo_lookup(),
            Reason::UpstreamUnavailable,
        )
        .by_clinic(),
    )];
    seen.extend(check_all(python, &targets, down).await);
    h.gateway.store.close().await;
    let store_down = vec![
        (
            "terminal",
            case(
                "the access log is down",
                LOOKUP,
                &demo_lookup(),
                Reason::AuditUnavailable,
            )
            .by_clinic(),
        ),
        (
            "operators",
            case(
                "the registry is down",
                LIST,
                &ListActivationsRequest {},
                Reason::ActivationStoreUnavailable,
            ),
        ),
    ];
    seen.extend(check_all(python, &targets, store_down).await);
    seen
}

/// A gateway with load limits (`rate_per_sec` and `burst` per facility, at most
/// `max_in_flight` calls at once; 0 for none), inside the 2022 Fukushima-oki
/// activation.
async fn limited_gateway(
    rate_per_sec: u32,
    burst: u32,
    max_in_flight: usize,
    upstream: UpstreamTarget,
) -> (RunningGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: None,
        metrics_listen: None,
        data_dir: dir.path().to_path_buf(),
        upstream,
        identity: IdentitySource::DevelopmentMetadata,
        upstream_timeout: Duration::from_secs(120),
        facility_rate_per_sec: rate_per_sec,
        facility_burst: burst,
        max_in_flight,
        drain_timeout: Duration::from_secs(1),
        audit: common::test_audit_batch(),
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, ManualClock::new(jst_at(2022, 3, 20, 10, 0)))
        .await
        .expect("gateway starts");
    let window = window_from("2022-03-17", None, Some("2022-03-23"), false).expect("window");
    let activation = new_activation(
        "令和4年福島沖地震",
        "",
        &["04".into(), "07".into()],
        &[],
        window,
        "test",
    )
    .expect("activation");
    gateway
        .store
        .add_activation(&activation)
        .await
        .expect("stored");
    gateway.activations.invalidate();
    (gateway, dir)
}

/// An upstream whose lookups never answer; each says when it has arrived.
struct HeldUpstream(tokio::sync::mpsc::Sender<()>);

#[tonic::async_trait]
impl QualificationService for HeldUpstream {
    async fn lookup_qualification(
        &self,
        _request: Request<LookupQualificationRequest>,
    ) -> Result<tonic::Response<LookupQualificationResponse>, Status> {
        let _ = self.0.send(()).await;
        std::future::pending().await
    }

    async fn search_patients(
        &self,
        _request: Request<SearchPatientsRequest>,
    ) -> Result<tonic::Response<SearchPatientsResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }
}

async fn load_gateways(python: &Path) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let builtin = || UpstreamTarget::Builtin {
        seed: 7,
        population: 100,
    };
    let (rated, _dir) = limited_gateway(1, 1, 0, builtin()).await;
    let terminal = Target::plain(rated.addr);
    let targets = BTreeMap::from([("terminal", &terminal)]);
    // Two calls within the burst of one: the second is refused (the gateway's clock
    // stands still, so the bucket never refills).
    let rated_cases = vec![(
        "terminal",
        case(
            "a facility over its rate",
            LOOKUP,
            &demo_lookup(),
            Reason::RateLimited,
        )
        .by_clinic()
        .times(2),
    )];
    seen.extend(check_all(python, &targets, rated_cases).await);

    // One call in flight, held by the upstream, takes the only slot.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let (arrived, mut arrivals) = tokio::sync::mpsc::channel(4);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(QualificationServiceServer::new(HeldUpstream(arrived)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let (full, _dir) = limited_gateway(
        0,
        0,
        1,
        UpstreamTarget::Remote(format!("http://{upstream}")),
    )
    .await;
    let terminal = Target::plain(full.addr);
    let mut held =
        qualification_service_client::QualificationServiceClient::new(terminal.channel().await);
    let _held = tokio::spawn(async move {
        held.lookup_qualification(as_facility(&fukushima_pharmacy(), demo_lookup()))
            .await
    });
    tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
        .await
        .expect("the held call reaches the upstream");
    let targets = BTreeMap::from([("terminal", &terminal)]);
    let full_cases = vec![(
        "terminal",
        case(
            "no room in flight",
            LOOKUP,
            &demo_lookup(),
            Reason::Overloaded,
        )
        .by_clinic(),
    )];
    seen.extend(check_all(python, &targets, full_cases).await);
    seen
}

/// Mutual TLS: the operators' listener refuses a role, the terminals' listener a
/// request that claims another facility than its certificate.
async fn tls_gateway(python: &Path) -> BTreeSet<&'static str> {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().expect("pki");
    pki.write(&dir.path().join("certs"), &[]).expect("written");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        metrics_listen: None,
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: 100,
        },
        identity: IdentitySource::Certificate,
        tls: Some(TlsFiles::in_dir(&dir.path().join("certs"))),
        audit: common::test_audit_batch(),
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, ManualClock::new(jst_at(2022, 3, 20, 10, 0)))
        .await
        .expect("gateway starts");
    let clinic = miyagi_clinic().to_string();
    let auditor = Target {
        address: gateway.admin_addr.expect("admin listener"),
        tls: Some(TlsClient {
            ca: pki.server_ca.cert_pem.clone(),
            client: pki
                .operator_ca
                .operator(OperatorRole::Auditor, "aud-1")
                .expect("cert"),
        }),
    };
    let facility = Target {
        address: gateway.addr,
        tls: Some(TlsClient {
            ca: pki.server_ca.cert_pem.clone(),
            client: pki.facility_ca.facility(&clinic).expect("cert"),
        }),
    };
    let targets = BTreeMap::from([("auditor", &auditor), ("facility", &facility)]);
    let cases = vec![
        (
            "auditor",
            case(
                "an auditor creates an activation",
                CREATE,
                &create("e", prefectures(&["04"]), "aud-1"),
                Reason::OperatorRoleRequired,
            ),
        ),
        (
            "facility",
            case(
                "a certificate claiming another facility",
                LOOKUP,
                &demo_lookup(),
                Reason::FacilityMismatch,
            )
            .from(&tokyo_clinic().to_string()),
        ),
    ];
    check_all(python, &targets, cases).await
}

/// Every reason of docs/reasons.md.
fn documented_reasons() -> BTreeSet<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reasons.md"))
            .expect("docs/reasons.md");
    let reasons: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert!(reasons.len() > 50, "{reasons:?}");
    reasons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_one_code_and_python_reads_it() {
    let python = python();
    let mut seen = main_gateway(&python).await;
    seen.extend(failing_gateways(&python).await);
    seen.extend(load_gateways(&python).await);
    seen.extend(tls_gateway(&python).await);

    let not_provoked: BTreeMap<&str, &str> = NOT_PROVOKED.iter().copied().collect();
    for (reason, why) in &not_provoked {
        assert!(!why.is_empty());
        assert!(
            !seen.contains(reason),
            "{reason} is provoked after all: take it off NOT_PROVOKED"
        );
    }
    let unaccounted: Vec<String> = documented_reasons()
        .into_iter()
        .filter(|r| !seen.contains(r.as_str()) && !not_provoked.contains_key(r.as_str()))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "reasons neither provoked nor listed as impossible to provoke: {unaccounted:?}"
    );
}

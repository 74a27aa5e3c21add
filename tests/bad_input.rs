//! A corpus of bad input, run end to end against one gateway: every case is a request
//! built from a valid one with one thing wrong, and the gRPC code, the `ErrorInfo`
//! reason and the `BadRequest` field it must get back. A few cases are not bad at all
//! but look it (full-width digits, mixed scripts, SQL metacharacters in free text):
//! they must be served, and their text kept as typed.
//!
//! After the corpus: the access log verifies (every chain intact), every refused call
//! has its own access record with decision `denied` and its reason, and the calls
//! refused by the transport before any rule ran (oversized or malformed messages)
//! left no record and did not take the gateway down.
//!
//! Decisions asserted here, from the code:
//! - full-width digits: request fields are folded with NFKC, so a full-width insurer
//!   number (or a whole card, or a date) is ACCEPTED as its half-width twin; a
//!   full-width facility code in the development header is NOT: metadata must be
//!   visible ASCII, so it is FACILITY_CODE_FORMAT before any folding;
//! - mixed scripts in a name (Latin + kanji, kanji + kana) are valid text and are
//!   searched as typed; they match nobody, because a name is compared whole with the
//!   person's kanji name or their kana name, never a mix: NO_MATCH, not a refusal;
//! - a message over `max_message_bytes` is refused by tonic's decoder with
//!   OUT_OF_RANGE (tonic 0.14: "decoded message length too large"), not
//!   RESOURCE_EXHAUSTED; undecodable protobuf is INTERNAL (tonic-prost maps every
//!   prost decode error to INTERNAL). Neither reaches the rules, so neither carries an
//!   `ErrorInfo` or leaves an access record.

mod common;
#[path = "common/databases.rs"]
mod databases;
#[path = "common/raw_codec.rs"]
mod raw_codec;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use common::*;
use onshi_gateway::audit::verify::verify_store;
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::fixtures::{DEMO_PATIENT, DEMO_SPOUSE};
use onshi_gateway::store::{AccessRecord, Decision};
use onshi_gateway::tls::identity::DEV_FACILITY_HEADER;
use prost::Message;
use raw_codec::RawCodec;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// The search lifetime of this gateway (shorter than the default, to show it is the
/// configured one that counts).
const SEARCH_TTL: Duration = Duration::from_secs(10 * 60);

/// SQL metacharacters, put in every text field.
const SQL: [&str; 2] = ["'; DROP TABLE access_log;--", "\" OR 1=1"];

/// "Now" for every case that does not set its own: inside the Fukushima-oki 2022
/// window, which opened Miyagi and Fukushima until the end of 23 March (JST).
fn base() -> DateTime<Utc> {
    jst_at(2022, 3, 20, 10, 0)
}

fn window_end() -> DateTime<Utc> {
    jst_at(2022, 3, 24, 0, 0)
}

fn ns(n: i64) -> ChronoDuration {
    ChronoDuration::nanoseconds(n)
}

fn ttl() -> ChronoDuration {
    ChronoDuration::from_std(SEARCH_TTL).expect("ttl")
}

/// Full-width twin of ASCII digits and letters (U+FF10.., U+FF21.., U+FF41..) and '-'.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' | 'A'..='Z' | 'a'..='z' => {
                char::from_u32(c as u32 - 0x20 + 0xFF00).expect("full-width form")
            }
            '-' => '－',
            c => c,
        })
        .collect()
}

/// The facility code with its last digit changed.
fn wrong_check_digit(code: &str) -> String {
    let last = code.as_bytes()[code.len() - 1] - b'0';
    format!("{}{}", &code[..code.len() - 1], (last + 1) % 10)
}

// ---------------------------------------------------------------------------------
// The corpus' data model.

/// How the caller names its facility.
#[derive(Clone)]
enum Caller {
    /// `x-onshi-dev-facility` with this (ASCII) value.
    Header(String),
    /// `x-onshi-dev-facility` with these bytes (visible ASCII or not).
    HeaderBytes(Vec<u8>),
    /// No facility metadata at all.
    Anonymous,
}

enum Call {
    Lookup(LookupQualificationRequest),
    Search(SearchPatientsRequest),
    Drugs(GetDrugHistoryRequest),
    Checkups(GetHealthCheckupsRequest),
}

/// What a served call must show, beyond being served and recorded as allowed.
#[derive(Debug, Clone, PartialEq)]
enum Check {
    Status(QualificationStatus),
    Outcome(SearchOutcome),
    /// The access record keeps the staff id exactly as this.
    StaffId(String),
    /// The access record keeps the exemption reason exactly as this (and flags the view).
    ExemptionReason(String),
    /// The access record's patient key (canonical insured number) is this.
    PatientKey(String),
}

enum Expect {
    Denied {
        code: Code,
        reason: &'static str,
        /// The `BadRequest` field; empty when no single field is at fault (then there
        /// is no `BadRequest` at all).
        field: String,
        /// `ErrorInfo.metadata` entries that must be present.
        metadata: Vec<(&'static str, String)>,
        /// Further `BadRequest` fields, after `field`: the other fields at fault.
        also: Vec<&'static str>,
    },
    Served(Vec<Check>),
}

fn denied(code: Code, reason: &'static str, field: &str) -> Expect {
    Expect::Denied {
        code,
        reason,
        field: field.to_string(),
        metadata: Vec::new(),
        also: Vec::new(),
    }
}

fn invalid(reason: &'static str, field: &str) -> Expect {
    denied(Code::InvalidArgument, reason, field)
}

fn unauthenticated(reason: &'static str) -> Expect {
    denied(Code::Unauthenticated, reason, "")
}

fn served(checks: Vec<Check>) -> Expect {
    Expect::Served(checks)
}

impl Expect {
    fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Expect {
        if let Expect::Denied { metadata, .. } = &mut self {
            metadata.push((key, value.into()));
        }
        self
    }

    /// Another field the refusal's `BadRequest` names, in order after the first.
    fn also(mut self, field: &'static str) -> Expect {
        if let Expect::Denied { also, .. } = &mut self {
            also.push(field);
        }
        self
    }
}

struct Case {
    name: String,
    caller: Caller,
    /// The gateway's clock during the call; `None`: [`base`].
    at: Option<DateTime<Utc>>,
    call: Call,
    expect: Expect,
}

fn case(name: impl Into<String>, call: Call, expect: Expect) -> Case {
    Case {
        name: name.into(),
        caller: Caller::Header(miyagi_clinic().to_string()),
        at: None,
        call,
        expect,
    }
}

impl Case {
    fn from(mut self, caller: Caller) -> Case {
        self.caller = caller;
        self
    }

    fn at(mut self, at: DateTime<Utc>) -> Case {
        self.at = Some(at);
        self
    }
}

// ---------------------------------------------------------------------------------
// Valid requests, and one thing changed.

fn demo_lookup() -> LookupQualificationRequest {
    lookup(DEMO_PATIENT.insured())
}

fn demo_search() -> SearchPatientsRequest {
    search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻")
}

fn lookup_with(f: impl FnOnce(&mut LookupQualificationRequest)) -> Call {
    let mut r = demo_lookup();
    f(&mut r);
    Call::Lookup(r)
}

fn insured_with(f: impl FnOnce(&mut InsuredNumber)) -> Call {
    lookup_with(|r| f(r.insured.as_mut().expect("insured")))
}

fn search_with(f: impl FnOnce(&mut SearchPatientsRequest)) -> Call {
    let mut r = demo_search();
    f(&mut r);
    Call::Search(r)
}

fn drugs_with(f: impl FnOnce(&mut GetDrugHistoryRequest)) -> Call {
    let mut r = drugs(DEMO_PATIENT.insured(), known());
    f(&mut r);
    Call::Drugs(r)
}

fn checkups_with(f: impl FnOnce(&mut GetHealthCheckupsRequest)) -> Call {
    let mut r = GetHealthCheckupsRequest {
        access: access(known()),
        insured: Some(DEMO_PATIENT.insured()),
        period: None,
    };
    f(&mut r);
    Call::Checkups(r)
}

fn period(from: &str, to: &str) -> Option<Period> {
    Some(Period {
        from: from.into(),
        to: to.into(),
    })
}

fn access_mut(a: &mut Option<AccessContext>) -> &mut AccessContext {
    a.as_mut().expect("access context")
}

fn staff_mut(a: &mut Option<AccessContext>) -> &mut Staff {
    access_mut(a).staff.as_mut().expect("staff")
}

fn consent_mut(a: &mut Option<AccessContext>) -> &mut Consent {
    access_mut(a).consent.as_mut().expect("consent")
}

/// The life-or-body exemption with `reason`, identified from an ID document.
fn exemption(a: &mut Option<AccessContext>, reason: &str) {
    *consent_mut(a) = Consent {
        basis: ConsentBasis::LifeOrBodyExemption as i32,
        exemption_reason: reason.into(),
        exemption_identification: ExemptionIdentification::IdDocument as i32,
        // As a client from before the reason category.
        ..Consent::default()
    };
}

fn demo_key() -> String {
    format!(
        "{}|{}|{}|{}",
        DEMO_PATIENT.insurer_number, DEMO_PATIENT.symbol, DEMO_PATIENT.number, DEMO_PATIENT.branch
    )
}

// ---------------------------------------------------------------------------------
// The corpus.

struct Ids {
    /// A search by the Miyagi clinic that found the demo patient, made at [`base`].
    search_id: String,
}

fn corpus(ids: &Ids) -> Vec<Case> {
    let clinic = miyagi_clinic().to_string();
    let mut cases = vec![
        // --- the valid request itself, as a control
        case(
            "control: the demo lookup",
            Call::Lookup(demo_lookup()),
            served(vec![
                Check::Status(QualificationStatus::Valid),
                Check::PatientKey(demo_key()),
            ]),
        ),
        case(
            "control: the demo search",
            Call::Search(demo_search()),
            served(vec![Check::Outcome(SearchOutcome::SingleMatch)]),
        ),
        // --- the facility code in the development header
        case(
            "facility code: wrong check digit",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_CHECK_DIGIT"),
        )
        .from(Caller::Header(wrong_check_digit(&clinic))),
        case(
            "facility code: 9 digits",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_FORMAT").with_metadata("found_length", "9"),
        )
        .from(Caller::Header(clinic[..9].to_string())),
        case(
            "facility code: 11 digits",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_FORMAT").with_metadata("found_length", "11"),
        )
        .from(Caller::Header(format!("{clinic}0"))),
        case(
            "facility code: a letter",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_FORMAT"),
        )
        .from(Caller::Header(format!("{}A", &clinic[..9]))),
        case(
            "facility code: empty header",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_FORMAT").with_metadata("found_length", "0"),
        )
        .from(Caller::Header(String::new())),
        case(
            "facility code: prefecture 48",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_PREFECTURE"),
        )
        .from(Caller::Header(with_check("481011001"))),
        case(
            "facility code: fee table 2",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_FEE_TABLE"),
        )
        .from(Caller::Header(with_check("042011001"))),
        // Metadata is visible ASCII, so a full-width code never reaches the NFKC fold:
        // refused, unlike a full-width insurer number in the body.
        case(
            "facility code: full-width digits in the header",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_CODE_FORMAT"),
        )
        .from(Caller::HeaderBytes(full_width(&clinic).into_bytes())),
        case(
            "facility code: no header",
            Call::Lookup(demo_lookup()),
            unauthenticated("FACILITY_UNIDENTIFIED"),
        )
        .from(Caller::Anonymous),
        // --- the insurer number
        case(
            "insurer number: wrong check digit",
            insured_with(|i| i.insurer_number = "01040014".into()),
            invalid("INSURER_NUMBER_CHECK_DIGIT", "insured.insurer_number"),
        ),
        case(
            "insurer number: public sample 01234567",
            insured_with(|i| i.insurer_number = "01234567".into()),
            invalid("INSURER_NUMBER_CHECK_DIGIT", "insured.insurer_number"),
        ),
        case(
            "insurer number: 7 digits",
            insured_with(|i| i.insurer_number = "0104001".into()),
            invalid("INSURER_NUMBER_FORMAT", "insured.insurer_number")
                .with_metadata("found_length", "7"),
        ),
        case(
            "insurer number: 9 digits",
            insured_with(|i| i.insurer_number = "010400130".into()),
            invalid("INSURER_NUMBER_FORMAT", "insured.insurer_number"),
        ),
        case(
            "insurer number: a letter O for a zero",
            insured_with(|i| i.insurer_number = "O1040013".into()),
            invalid("INSURER_NUMBER_FORMAT", "insured.insurer_number"),
        ),
        case(
            "insurer number: hyphenated",
            insured_with(|i| i.insurer_number = "0104-0013".into()),
            invalid("INSURER_NUMBER_FORMAT", "insured.insurer_number"),
        ),
        // NFKC does not fold Arabic-Indic digits to ASCII: still not digits.
        case(
            "insurer number: Arabic-Indic digits",
            insured_with(|i| i.insurer_number = "٠١٠٤٠٠١٣".into()),
            invalid("INSURER_NUMBER_FORMAT", "insured.insurer_number"),
        ),
        case(
            "insurer number: prefecture digits 00",
            insured_with(|i| i.insurer_number = with_check("0100001")),
            invalid("INSURER_NUMBER_PREFECTURE", "insured.insurer_number"),
        ),
        case(
            "insurer number: prefecture digits 48",
            insured_with(|i| i.insurer_number = with_check("0148001")),
            invalid("INSURER_NUMBER_PREFECTURE", "insured.insurer_number"),
        ),
        case(
            "insurer number: prefecture digits 98",
            insured_with(|i| i.insurer_number = with_check("0198001")),
            invalid("INSURER_NUMBER_PREFECTURE", "insured.insurer_number"),
        ),
        case(
            "insurer number: empty",
            insured_with(|i| i.insurer_number = String::new()),
            invalid("INSURED_NUMBER_MISSING", "insured.insurer_number"),
        ),
        // Full-width digits are folded with NFKC: a full-width insurer number with a
        // valid check digit is ACCEPTED, and the record keeps the canonical form.
        case(
            "insurer number: full-width digits are accepted",
            insured_with(|i| i.insurer_number = full_width(DEMO_PATIENT.insurer_number)),
            served(vec![
                Check::Status(QualificationStatus::Valid),
                Check::PatientKey(demo_key()),
            ]),
        ),
        case(
            "insured number: the whole card in full width, ideographic spaces around",
            insured_with(|i| {
                i.insurer_number = format!("\u{3000}{}", full_width(DEMO_PATIENT.insurer_number));
                i.symbol = full_width(DEMO_PATIENT.symbol);
                i.number = format!("{}\u{3000}", full_width(DEMO_PATIENT.number));
                i.branch = full_width(DEMO_PATIENT.branch);
            }),
            served(vec![
                Check::Status(QualificationStatus::Valid),
                Check::PatientKey(demo_key()),
            ]),
        ),
        // Folding does not bypass the check digit.
        case(
            "insurer number: full-width with a wrong check digit",
            insured_with(|i| i.insurer_number = full_width("01040014")),
            invalid("INSURER_NUMBER_CHECK_DIGIT", "insured.insurer_number"),
        ),
        // --- symbol, number, branch
        case(
            "symbol: 21 characters",
            insured_with(|i| i.symbol = "1".repeat(21)),
            invalid("SYMBOL_INVALID", "insured.symbol").with_metadata("max_chars", "20"),
        ),
        case(
            "symbol: a NUL",
            insured_with(|i| i.symbol = "4025\u{0}0311".into()),
            invalid("SYMBOL_INVALID", "insured.symbol"),
        ),
        case(
            "number: empty",
            insured_with(|i| i.number = String::new()),
            invalid("NUMBER_MISSING", "insured.number"),
        ),
        case(
            "number: 21 characters",
            insured_with(|i| i.number = "1".repeat(21)),
            invalid("NUMBER_INVALID", "insured.number"),
        ),
        case(
            "number: a tab inside",
            insured_with(|i| i.number = "1\t52".into()),
            invalid("NUMBER_INVALID", "insured.number"),
        ),
        case(
            "number: kana",
            insured_with(|i| i.number = "イチ".into()),
            invalid("NUMBER_INVALID", "insured.number"),
        ),
        case(
            "branch: empty",
            insured_with(|i| i.branch = String::new()),
            invalid("BRANCH_INVALID", "insured.branch"),
        ),
        case(
            "branch: one digit",
            insured_with(|i| i.branch = "0".into()),
            invalid("BRANCH_INVALID", "insured.branch"),
        ),
        case(
            "branch: three digits",
            insured_with(|i| i.branch = "000".into()),
            invalid("BRANCH_INVALID", "insured.branch"),
        ),
        case(
            "insured: absent",
            lookup_with(|r| r.insured = None),
            invalid("INSURED_NUMBER_MISSING", "insured"),
        ),
        // --- dates
        case(
            "lookup birth date: 2023-02-30 does not exist",
            lookup_with(|r| r.birth_date = "2023-02-30".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "lookup birth date: in the future",
            lookup_with(|r| r.birth_date = "2022-03-21".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "lookup birth date: before 1900",
            lookup_with(|r| r.birth_date = "1899-12-31".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "lookup birth date: full-width cross-check is folded and matches",
            lookup_with(|r| r.birth_date = full_width("1958-04-12")),
            served(vec![Check::Status(QualificationStatus::Valid)]),
        ),
        case(
            "search birth date: 2023-02-30 does not exist",
            search_with(|r| r.birth_date = "2023-02-30".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: 2021-02-29 (not a leap year)",
            search_with(|r| r.birth_date = "2021-02-29".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: month 13",
            search_with(|r| r.birth_date = "1958-13-12".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: tomorrow (JST)",
            search_with(|r| r.birth_date = "2022-03-21".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: today (JST) is allowed",
            search_with(|r| r.birth_date = "2022-03-20".into()),
            served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
        ),
        case(
            "search birth date: 1899-12-31",
            search_with(|r| r.birth_date = "1899-12-31".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: 1900-01-01 is allowed",
            search_with(|r| r.birth_date = "1900-01-01".into()),
            served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
        ),
        case(
            "search birth date: Japanese era form",
            search_with(|r| r.birth_date = "昭和33年4月12日".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: slashes",
            search_with(|r| r.birth_date = "1958/04/12".into()),
            invalid("BIRTH_DATE_INVALID", "birth_date"),
        ),
        case(
            "search birth date: empty",
            search_with(|r| r.birth_date = String::new()),
            invalid("BIRTH_DATE_MISSING", "birth_date"),
        ),
        case(
            "drug period: from 2022-02-30",
            drugs_with(|r| r.period = period("2022-02-30", "")),
            invalid("PERIOD_INVALID", "period.from"),
        ),
        case(
            "drug period: to in month 13",
            drugs_with(|r| r.period = period("", "2021-13-01")),
            invalid("PERIOD_INVALID", "period.to"),
        ),
        case(
            "drug period: from after to",
            drugs_with(|r| r.period = period("2022-03-02", "2022-03-01")),
            invalid("PERIOD_INVALID", "period.from")
                .with_metadata("from", "2022-03-02")
                .with_metadata("to", "2022-03-01"),
        ),
        case(
            "check-up period: from after to",
            checkups_with(|r| r.period = period("2022-01-02", "2022-01-01")),
            invalid("PERIOD_INVALID", "period.from"),
        ),
        case(
            "check-up period: full-width dates are folded",
            checkups_with(|r| {
                r.period = period(&full_width("2020-01-01"), &full_width("2022-03-20"));
            }),
            served(vec![]),
        ),
        // --- names and free text
        case(
            "name: empty",
            search_with(|r| r.name = String::new()),
            invalid("NAME_MISSING", "name"),
        ),
        case(
            "name: only spaces",
            search_with(|r| r.name = " \u{3000} ".into()),
            invalid("NAME_MISSING", "name"),
        ),
        case(
            "name: 51 characters",
            search_with(|r| r.name = "山".repeat(51)),
            invalid("NAME_INVALID", "name")
                .with_metadata("rule", "length")
                .with_metadata("max_chars", "50"),
        ),
        case(
            "name: 50 characters is allowed",
            search_with(|r| r.name = "山".repeat(50)),
            served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
        ),
        // Within the message limit but far over the name limit: refused by the rule,
        // with an access record (compare the oversized message below).
        case(
            "name: 20,000 characters",
            search_with(|r| r.name = "山".repeat(20_000)),
            invalid("NAME_INVALID", "name").with_metadata("rule", "length"),
        ),
        case(
            "name: a NUL",
            search_with(|r| r.name = "山田\u{0}太郎".into()),
            invalid("NAME_INVALID", "name").with_metadata("rule", "character"),
        ),
        case(
            "name: a line break inside",
            search_with(|r| r.name = "山田\n太郎".into()),
            invalid("NAME_INVALID", "name").with_metadata("rule", "character"),
        ),
        case(
            "name: an ANSI escape",
            search_with(|r| r.name = "\u{1b}[2J山田".into()),
            invalid("NAME_INVALID", "name").with_metadata("rule", "character"),
        ),
        case(
            "name: right-to-left override",
            search_with(|r| r.name = "山田\u{202E}太郎".into()),
            invalid("NAME_INVALID", "name").with_metadata("rule", "character"),
        ),
        case(
            "name: zero-width space",
            search_with(|r| r.name = "山田\u{200B}太郎".into()),
            invalid("NAME_INVALID", "name").with_metadata("rule", "character"),
        ),
        case(
            "name: private-use character (外字)",
            search_with(|r| r.name = "山\u{E000}太郎".into()),
            invalid("NAME_INVALID", "name").with_metadata("rule", "character"),
        ),
        // Leading and trailing line breaks are trimmed before the character check.
        case(
            "name: a trailing line break is trimmed",
            search_with(|r| r.name = "山田 太郎\r\n".into()),
            served(vec![Check::Outcome(SearchOutcome::SingleMatch)]),
        ),
        // Mixed scripts are valid text, compared whole with the kanji name or the kana
        // name: a mix matches neither, so the search is served and finds nobody.
        case(
            "name: Latin + kanji is searched as typed",
            search_with(|r| r.name = "Yamada 太郎".into()),
            served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
        ),
        case(
            "name: kanji + hiragana is searched as typed",
            search_with(|r| r.name = "山田 たろう".into()),
            served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
        ),
        case(
            "name: Latin + Cyrillic + kanji is searched as typed",
            search_with(|r| r.name = "Yаmаdа 太郎".into()),
            served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
        ),
        // Whereas one script in any width or kana kind finds the patient.
        case(
            "name: half-width katakana finds the patient",
            search_with(|r| r.name = "ﾔﾏﾀﾞ ﾀﾛｳ".into()),
            served(vec![Check::Outcome(SearchOutcome::SingleMatch)]),
        ),
        case(
            "name: hiragana finds the patient",
            search_with(|r| r.name = "やまだ　たろう".into()),
            served(vec![Check::Outcome(SearchOutcome::SingleMatch)]),
        ),
        case(
            "insurer name and address both empty",
            search_with(|r| {
                r.insurer_name = String::new();
                r.address_fragment = " ".into();
            }),
            invalid("INSURER_OR_ADDRESS_MISSING", "insurer_name").also("address_fragment"),
        ),
        case(
            "insurer name: 101 characters",
            search_with(|r| r.insurer_name = "協".repeat(101)),
            invalid("INSURER_NAME_INVALID", "insurer_name").with_metadata("max_chars", "100"),
        ),
        case(
            "insurer name: a line break inside",
            search_with(|r| r.insurer_name = "全国健康保険協会\n宮城支部".into()),
            invalid("INSURER_NAME_INVALID", "insurer_name"),
        ),
        case(
            "address fragment: 101 characters",
            search_with(|r| r.address_fragment = "石".repeat(101)),
            invalid("ADDRESS_FRAGMENT_INVALID", "address_fragment"),
        ),
        case(
            "address fragment: a BOM",
            search_with(|r| r.address_fragment = "\u{FEFF}石巻".into()),
            invalid("ADDRESS_FRAGMENT_INVALID", "address_fragment"),
        ),
        // --- staff
        case(
            "staff id: empty",
            lookup_with(|r| staff_mut(&mut r.access).staff_id = String::new()),
            invalid("STAFF_ID_MISSING", "access.staff.staff_id"),
        ),
        case(
            "staff id: 65 characters",
            lookup_with(|r| staff_mut(&mut r.access).staff_id = "d".repeat(65)),
            invalid("STAFF_ID_INVALID", "access.staff.staff_id"),
        ),
        case(
            "staff id: 64 characters is allowed",
            lookup_with(|r| staff_mut(&mut r.access).staff_id = "d".repeat(64)),
            served(vec![Check::StaffId("d".repeat(64))]),
        ),
        case(
            "staff id: a BEL",
            lookup_with(|r| staff_mut(&mut r.access).staff_id = "dr\u{7}0001".into()),
            invalid("STAFF_ID_INVALID", "access.staff.staff_id"),
        ),
        case(
            "staff id: full-width is folded",
            lookup_with(|r| staff_mut(&mut r.access).staff_id = full_width("dr-0001")),
            served(vec![Check::StaffId("dr-0001".into())]),
        ),
        case(
            "staff: absent",
            lookup_with(|r| access_mut(&mut r.access).staff = None),
            invalid("STAFF_ID_MISSING", "access.staff.staff_id").also("access.staff.role"),
        ),
        case(
            "access context: absent",
            lookup_with(|r| r.access = None),
            invalid("ACCESS_CONTEXT_MISSING", "access"),
        ),
        // --- unknown enum values
        case(
            "staff role 99",
            lookup_with(|r| staff_mut(&mut r.access).role = 99),
            invalid("STAFF_ROLE_UNKNOWN", "access.staff.role").with_metadata("value", "99"),
        ),
        case(
            "staff role -1",
            lookup_with(|r| staff_mut(&mut r.access).role = -1),
            invalid("STAFF_ROLE_UNKNOWN", "access.staff.role"),
        ),
        case(
            "staff role unspecified",
            lookup_with(|r| staff_mut(&mut r.access).role = 0),
            invalid("STAFF_ROLE_MISSING", "access.staff.role"),
        ),
        case(
            "consent basis 99",
            lookup_with(|r| consent_mut(&mut r.access).basis = 99),
            invalid("CONSENT_BASIS_UNKNOWN", "access.consent.basis").with_metadata("value", "99"),
        ),
        case(
            "consent: absent",
            lookup_with(|r| access_mut(&mut r.access).consent = None),
            invalid("CONSENT_BASIS_MISSING", "access.consent.basis"),
        ),
        case(
            "exemption identification 99",
            lookup_with(|r| {
                exemption(&mut r.access, "意識不明で搬送");
                consent_mut(&mut r.access).exemption_identification = 99;
            }),
            invalid(
                "EXEMPTION_IDENTIFICATION_MISSING",
                "access.consent.exemption_identification",
            ),
        ),
        case(
            "exemption reason: empty",
            lookup_with(|r| exemption(&mut r.access, "")),
            invalid(
                "EXEMPTION_REASON_MISSING",
                "access.consent.exemption_reason",
            ),
        ),
        case(
            "exemption reason: 501 characters",
            lookup_with(|r| exemption(&mut r.access, &"意".repeat(501))),
            invalid(
                "EXEMPTION_REASON_INVALID",
                "access.consent.exemption_reason",
            ),
        ),
        case(
            "exemption reason: an ANSI escape",
            lookup_with(|r| exemption(&mut r.access, "意識\u{1b}[2J不明")),
            invalid(
                "EXEMPTION_REASON_INVALID",
                "access.consent.exemption_reason",
            ),
        ),
        case(
            "sex 99",
            search_with(|r| r.sex = 99),
            invalid("SEX_MISSING", "sex"),
        ),
        case(
            "sex unspecified",
            search_with(|r| r.sex = 0),
            invalid("SEX_MISSING", "sex"),
        ),
        case(
            "purpose 99",
            lookup_with(|r| access_mut(&mut r.access).purpose = 99),
            denied(
                Code::PermissionDenied,
                "PURPOSE_NOT_PERMITTED",
                "access.purpose",
            )
            .with_metadata("value", "99"),
        ),
        case(
            "purpose unspecified",
            lookup_with(|r| access_mut(&mut r.access).purpose = 0),
            invalid("PURPOSE_MISSING", "access.purpose"),
        ),
        case(
            "identification method 99",
            lookup_with(|r| {
                access_mut(&mut r.access).identification = Some(Identification {
                    method: 99,
                    search_id: String::new(),
                });
            }),
            invalid("IDENTIFICATION_MISSING", "access.identification.method"),
        ),
        case(
            "identification: absent",
            lookup_with(|r| access_mut(&mut r.access).identification = None),
            invalid("IDENTIFICATION_MISSING", "access.identification.method"),
        ),
        // --- search ids
        case(
            "search id: own, recent search",
            lookup_with(|r| access_mut(&mut r.access).identification = by_search(&ids.search_id)),
            served(vec![Check::Status(QualificationStatus::Valid)]),
        ),
        case(
            "search id: empty",
            lookup_with(|r| access_mut(&mut r.access).identification = by_search(" ")),
            invalid("SEARCH_ID_MISSING", "access.identification.search_id"),
        ),
        case(
            "search id: does not exist",
            lookup_with(|r| {
                access_mut(&mut r.access).identification =
                    by_search("0190a0f1-0000-7000-8000-000000000000");
            }),
            denied(
                Code::NotFound,
                "SEARCH_NOT_FOUND",
                "access.identification.search_id",
            ),
        ),
        case(
            "search id: 5,000 characters",
            lookup_with(|r| {
                access_mut(&mut r.access).identification = by_search(&"x".repeat(5000));
            }),
            denied(
                Code::NotFound,
                "SEARCH_NOT_FOUND",
                "access.identification.search_id",
            ),
        ),
        case(
            "search id: one nanosecond before it expires",
            lookup_with(|r| access_mut(&mut r.access).identification = by_search(&ids.search_id)),
            served(vec![Check::Status(QualificationStatus::Valid)]),
        )
        .at(base() + ttl() - ns(1)),
        case(
            "search id: expired at its lifetime",
            lookup_with(|r| access_mut(&mut r.access).identification = by_search(&ids.search_id)),
            denied(
                Code::FailedPrecondition,
                "SEARCH_EXPIRED",
                "access.identification.search_id",
            ),
        )
        .at(base() + ttl()),
        case(
            "search id: expired a day later",
            lookup_with(|r| access_mut(&mut r.access).identification = by_search(&ids.search_id)),
            denied(
                Code::FailedPrecondition,
                "SEARCH_EXPIRED",
                "access.identification.search_id",
            ),
        )
        .at(base() + ChronoDuration::days(1)),
        case(
            "search id: made by another facility",
            lookup_with(|r| access_mut(&mut r.access).identification = by_search(&ids.search_id)),
            denied(
                Code::PermissionDenied,
                "SEARCH_FACILITY_MISMATCH",
                "access.identification.search_id",
            ),
        )
        .from(Caller::Header(fukushima_pharmacy().to_string())),
        case(
            "search id: the patient was not among its candidates",
            lookup_with(|r| {
                r.insured = Some(DEMO_SPOUSE.insured());
                access_mut(&mut r.access).identification = by_search(&ids.search_id);
            }),
            denied(Code::PermissionDenied, "PATIENT_NOT_IN_SEARCH", "insured"),
        ),
        // --- the window
        case(
            "window: its last nanosecond",
            Call::Lookup(demo_lookup()),
            served(vec![Check::Status(QualificationStatus::Valid)]),
        )
        .at(window_end() - ns(1)),
        case(
            "window: ended at this instant",
            Call::Lookup(demo_lookup()),
            denied(Code::PermissionDenied, "AREA_NOT_ACTIVATED", ""),
        )
        .at(window_end()),
        case(
            "window: ended a nanosecond ago",
            Call::Lookup(demo_lookup()),
            denied(Code::PermissionDenied, "AREA_NOT_ACTIVATED", "")
                .with_metadata("prefecture", "04")
                .with_metadata("last_window_end", "2022-03-24T00:00:00+09:00"),
        )
        .at(window_end() + ns(1)),
        case(
            "window: a prefecture never activated",
            Call::Lookup(demo_lookup()),
            denied(Code::PermissionDenied, "AREA_NOT_ACTIVATED", ""),
        )
        .from(Caller::Header(tokyo_clinic().to_string())),
    ];
    cases.extend(sql_cases());
    cases
}

/// The body (without check digit) with its OQS check digit appended: insurer
/// numbers and facility codes share the rule.
fn with_check(body: &str) -> String {
    onshi_gateway::domain::insurer::make_insurer_number(body)
}

/// Each SQL string in every text field a terminal sends: refused by validation where
/// the field has a format, served as plain text where it is free text.
fn sql_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for sql in SQL {
        let s = sql.to_string();
        let name = |field: &str| format!("SQL {sql:?} in {field}");
        cases.extend([
            case(
                name("the facility header"),
                Call::Lookup(demo_lookup()),
                unauthenticated("FACILITY_CODE_FORMAT"),
            )
            .from(Caller::Header(s.clone())),
            case(
                name("insured.insurer_number"),
                insured_with(|i| i.insurer_number = s.clone()),
                invalid("INSURER_NUMBER_FORMAT", "insured.insurer_number"),
            ),
            case(
                name("insured.symbol"),
                insured_with(|i| i.symbol = s.clone()),
                invalid("SYMBOL_INVALID", "insured.symbol"),
            ),
            case(
                name("insured.number"),
                insured_with(|i| i.number = s.clone()),
                invalid("NUMBER_INVALID", "insured.number"),
            ),
            case(
                name("insured.branch"),
                insured_with(|i| i.branch = s.clone()),
                invalid("BRANCH_INVALID", "insured.branch"),
            ),
            case(
                name("the lookup's birth_date"),
                lookup_with(|r| r.birth_date = s.clone()),
                invalid("BIRTH_DATE_INVALID", "birth_date"),
            ),
            case(
                name("access.staff.staff_id"),
                lookup_with(|r| staff_mut(&mut r.access).staff_id = s.clone()),
                served(vec![
                    Check::Status(QualificationStatus::Valid),
                    Check::StaffId(s.clone()),
                ]),
            ),
            case(
                name("access.consent.exemption_reason"),
                lookup_with(|r| exemption(&mut r.access, &s)),
                served(vec![
                    Check::Status(QualificationStatus::Valid),
                    Check::ExemptionReason(s.clone()),
                ]),
            ),
            case(
                name("access.identification.search_id"),
                lookup_with(|r| access_mut(&mut r.access).identification = by_search(&s)),
                denied(
                    Code::NotFound,
                    "SEARCH_NOT_FOUND",
                    "access.identification.search_id",
                ),
            ),
            case(
                name("name"),
                search_with(|r| r.name = s.clone()),
                served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
            ),
            case(
                name("the search's birth_date"),
                search_with(|r| r.birth_date = s.clone()),
                invalid("BIRTH_DATE_INVALID", "birth_date"),
            ),
            case(
                name("insurer_name"),
                search_with(|r| {
                    r.insurer_name = s.clone();
                    r.address_fragment = String::new();
                }),
                served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
            ),
            case(
                name("address_fragment"),
                search_with(|r| r.address_fragment = s.clone()),
                served(vec![Check::Outcome(SearchOutcome::NoMatch)]),
            ),
            case(
                name("period.from"),
                drugs_with(|r| r.period = period(&s, "")),
                invalid("PERIOD_INVALID", "period.from"),
            ),
            case(
                name("period.to"),
                checkups_with(|r| r.period = period("", &s)),
                invalid("PERIOD_INVALID", "period.to"),
            ),
        ]);
        // The search still finds the patient with the SQL string as the staff id.
        cases.push(case(
            name("the searching staff id"),
            search_with(|r| staff_mut(&mut r.access).staff_id = s.clone()),
            served(vec![
                Check::Outcome(SearchOutcome::SingleMatch),
                Check::StaffId(s.clone()),
            ]),
        ));
    }
    cases
}

// ---------------------------------------------------------------------------------
// Running a case.

/// Every field a refusal's `BadRequest` names, in order.
fn bad_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

enum Reply {
    Lookup(Box<LookupQualificationResponse>),
    Search(Box<SearchPatientsResponse>),
    /// Medical information: being served is what is checked.
    Medical,
}

fn request<T>(caller: &Caller, message: T) -> Request<T> {
    let mut req = Request::new(message);
    let value = match caller {
        Caller::Header(s) => Some(AsciiMetadataValue::try_from(s.as_str()).expect("header")),
        Caller::HeaderBytes(b) => Some(AsciiMetadataValue::try_from(b.as_slice()).expect("header")),
        Caller::Anonymous => None,
    };
    if let Some(value) = value {
        req.metadata_mut().insert(DEV_FACILITY_HEADER, value);
    }
    req
}

async fn send(
    h: &mut Harness,
    caller: &Caller,
    call: Call,
) -> Result<(MetadataMap, Reply), Status> {
    fn split<T>(r: tonic::Response<T>, f: fn(T) -> Reply) -> (MetadataMap, Reply) {
        let (metadata, body, _) = r.into_parts();
        (metadata, f(body))
    }
    Ok(match call {
        Call::Lookup(m) => split(
            h.qualification
                .lookup_qualification(request(caller, m))
                .await?,
            |r| Reply::Lookup(Box::new(r)),
        ),
        Call::Search(m) => split(
            h.qualification.search_patients(request(caller, m)).await?,
            |r| Reply::Search(Box::new(r)),
        ),
        Call::Drugs(m) => split(
            h.medical.get_drug_history(request(caller, m)).await?,
            |_| Reply::Medical,
        ),
        Call::Checkups(m) => split(
            h.medical.get_health_checkups(request(caller, m)).await?,
            |_| Reply::Medical,
        ),
    })
}

fn record_id(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get(ACCESS_RECORD_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A refusal the corpus saw: which case, its access record, its reason.
struct Refused {
    case: String,
    record_id: String,
    reason: &'static str,
}

async fn run(h: &mut Harness, case: Case, refused: &mut Vec<Refused>) {
    let name = case.name;
    h.clock.set(case.at.unwrap_or_else(base));
    let result = send(h, &case.caller, case.call).await;
    h.clock.set(base());
    match (case.expect, result) {
        (
            Expect::Denied {
                code,
                reason,
                field,
                metadata,
                also,
            },
            Err(status),
        ) => {
            let info = status
                .get_details_error_info()
                .unwrap_or_else(|| panic!("{name}: no ErrorInfo in {status:?}"));
            assert_eq!(
                (status.code(), info.reason.as_str()),
                (code, reason),
                "{name}: {}",
                status.message()
            );
            assert_eq!(info.domain, "onshi.gateway", "{name}");
            assert!(
                !status.message().is_empty(),
                "{name}: a sentence for the user"
            );
            assert_eq!(bad_field(&status), field, "{name}: BadRequest field");
            let mut fields = vec![field.as_str()];
            fields.extend(also);
            fields.retain(|f| !f.is_empty());
            assert_eq!(bad_fields(&status), fields, "{name}: every field at fault");
            assert!(
                !info.metadata.contains_key("expected_check_digit"),
                "{name}: the right check digit is never told"
            );
            if field.is_empty() {
                assert!(
                    status.get_details_bad_request().is_none(),
                    "{name}: no field is at fault, so no BadRequest"
                );
            } else {
                assert_eq!(
                    info.metadata.get("field"),
                    Some(&field),
                    "{name}: ErrorInfo names the field too"
                );
            }
            for (key, value) in metadata {
                assert_eq!(
                    info.metadata.get(key),
                    Some(&value),
                    "{name}: ErrorInfo metadata {key} in {:?}",
                    info.metadata
                );
            }
            let id = record_id(status.metadata())
                .unwrap_or_else(|| panic!("{name}: the refusal names no access record"));
            refused.push(Refused {
                case: name,
                record_id: id,
                reason,
            });
        }
        (Expect::Denied { reason, .. }, Ok(_)) => {
            panic!("{name}: expected {reason}, but the call was served")
        }
        (Expect::Served(checks), Ok((metadata, reply))) => {
            let id = record_id(&metadata)
                .unwrap_or_else(|| panic!("{name}: the response names no access record"));
            let record = h.last_record().await;
            assert_eq!(record.id, id, "{name}: the newest record is this call's");
            assert_eq!(record.decision, Decision::Allowed, "{name}");
            assert_eq!(record.reason, None, "{name}");
            for check in checks {
                match (&check, &reply) {
                    (Check::Status(s), Reply::Lookup(r)) => {
                        assert_eq!(r.status, *s as i32, "{name}: status");
                    }
                    (Check::Outcome(o), Reply::Search(r)) => {
                        assert_eq!(r.outcome, *o as i32, "{name}: {}", r.explanation);
                    }
                    (Check::StaffId(s), _) => {
                        assert_eq!(record.staff_id.as_deref(), Some(s.as_str()), "{name}");
                    }
                    (Check::ExemptionReason(s), _) => {
                        assert_eq!(
                            record.exemption_reason.as_deref(),
                            Some(s.as_str()),
                            "{name}"
                        );
                        assert!(record.needs_review, "{name}: flagged for review");
                    }
                    (Check::PatientKey(k), _) => {
                        assert_eq!(record.patient_key.as_deref(), Some(k.as_str()), "{name}");
                    }
                    (check, _) => panic!("{name}: {check:?} does not apply to this call"),
                }
            }
        }
        (Expect::Served(_), Err(status)) => {
            panic!("{name}: expected to be served, got {status:?}")
        }
    }
}

// ---------------------------------------------------------------------------------
// Bytes that are not a request: hand-framed gRPC over a tonic channel.

const LOOKUP_PATH: &str = "/onshi.v1.QualificationService/LookupQualification";

async fn raw_lookup(h: &Harness, caller: &Caller, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let channel = Channel::from_shared(format!("http://{}", h.gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(
        request(caller, body),
        http::uri::PathAndQuery::from_static(LOOKUP_PATH),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// The gateway still answers: health SERVING and the demo lookup served.
async fn still_up(h: &mut Harness, after: &str) {
    assert_eq!(
        h.health("onshi.v1.QualificationService").await,
        tonic_health::pb::health_check_response::ServingStatus::Serving,
        "after {after}"
    );
    let reply = h
        .qualification
        .lookup_qualification(as_facility(&miyagi_clinic(), demo_lookup()))
        .await
        .unwrap_or_else(|e| panic!("after {after}: {e:?}"))
        .into_inner();
    assert_eq!(
        reply.status,
        QualificationStatus::Valid as i32,
        "after {after}"
    );
}

/// Refused by the transport before any rule: the code, and no access record.
async fn transport_refusal(
    h: &mut Harness,
    name: &str,
    result: Result<impl std::fmt::Debug, Status>,
    code: Code,
    records_before: usize,
) {
    let status = match result {
        Ok(r) => panic!("{name}: expected {code:?}, got {r:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{name}: {}", status.message());
    assert!(
        status.get_details_error_info().is_none(),
        "{name}: the rules never saw it"
    );
    assert_eq!(
        h.records(None).await.len(),
        records_before,
        "{name}: no access record"
    );
    still_up(h, name).await;
}

// ---------------------------------------------------------------------------------
// Municipality codes: only the operators' service takes them.

async fn admin(h: &Harness) -> ActivationAdminServiceClient<Channel> {
    let addr = h.gateway.admin_addr.expect("admin listener");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the admin listener");
    ActivationAdminServiceClient::new(channel)
}

fn preview(code: &str) -> PreviewAreasRequest {
    PreviewAreasRequest {
        areas: Some(Areas {
            municipalities: vec![code.to_string()],
            ..Areas::default()
        }),
    }
}

/// Municipality codes in an areas preview (which changes nothing): `None` expects
/// the preview, `Some(reason)` an INVALID_ARGUMENT naming the code's field.
fn municipality_corpus() -> Vec<(&'static str, String, Option<&'static str>)> {
    let mut cases = vec![
        ("5 digits", "17201".to_string(), None),
        ("6 digits with its check digit", "172014".to_string(), None),
        (
            "6 digits, wrong check digit",
            "172015".to_string(),
            Some("MUNICIPALITY_CODE_CHECK_DIGIT"),
        ),
        (
            "Wajima, wrong check digit",
            "172040".to_string(),
            Some("MUNICIPALITY_CODE_CHECK_DIGIT"),
        ),
        // Full-width digits are folded here too.
        ("5 full-width digits", full_width("17204"), None),
        (
            "6 full-width digits, wrong check digit",
            full_width("172048"),
            Some("MUNICIPALITY_CODE_CHECK_DIGIT"),
        ),
        (
            "4 digits",
            "1720".to_string(),
            Some("MUNICIPALITY_CODE_FORMAT"),
        ),
        (
            "7 digits",
            "1720144".to_string(),
            Some("MUNICIPALITY_CODE_FORMAT"),
        ),
        (
            "a letter",
            "1720l".to_string(),
            Some("MUNICIPALITY_CODE_FORMAT"),
        ),
        (
            "prefecture 48",
            "48201".to_string(),
            Some("MUNICIPALITY_CODE_FORMAT"),
        ),
        ("empty", String::new(), Some("MUNICIPALITY_CODE_FORMAT")),
        (
            "well formed, not in the master",
            "17999".to_string(),
            Some("MUNICIPALITY_UNKNOWN"),
        ),
    ];
    for sql in SQL {
        cases.push(("SQL", sql.to_string(), Some("MUNICIPALITY_CODE_FORMAT")));
    }
    cases
}

// ---------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_corpus_is_refused_precisely_and_audited() {
    let mut h = Harness::start_with(Options {
        now: base(),
        search_ttl: SEARCH_TTL,
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let (search_id, insured) = h.search_demo_patient(&miyagi_clinic()).await;
    assert_eq!(insured, DEMO_PATIENT.insured());
    let ids = Ids { search_id };

    // The terminals' corpus.
    let mut refused = Vec::new();
    let mut calls = h.records(None).await.len();
    let cases = corpus(&ids);
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.clone()),
            "case named twice: {}",
            case.name
        );
    }
    for case in cases {
        run(&mut h, case, &mut refused).await;
        calls += 1;
    }

    // Bytes that are not a request, and a request over the size limit.
    let clinic = Caller::Header(miyagi_clinic().to_string());
    let malformed: [(&str, Vec<u8>); 5] = [
        ("bytes 0xFF (wire type 7)", vec![0xFF; 16]),
        ("field number 0", vec![0x00, 0x00]),
        (
            "access: length past the end of the message",
            vec![0x0A, 0x7F, 0x01],
        ),
        ("access sent as a varint", vec![0x08, 0x01]),
        ("birth_date not UTF-8", vec![0x1A, 0x02, 0xC3, 0x28]),
    ];
    for (name, body) in malformed {
        let before = h.records(None).await.len();
        let result = raw_lookup(&h, &clinic, body).await;
        transport_refusal(&mut h, name, result, Code::Internal, before).await;
        calls += 1; // still_up's lookup
    }
    // Bytes that decode (protobuf ignores unknown fields; empty is the default
    // message) reach the rules, which refuse them and record it.
    for (name, body) in [
        ("an empty message", Vec::new()),
        (
            "only an unknown field",
            vec![0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 0x01],
        ),
    ] {
        let status = raw_lookup(&h, &clinic, body)
            .await
            .expect_err("refused by the rules");
        let status =
            assert_denied::<()>(Err(status), Code::InvalidArgument, "ACCESS_CONTEXT_MISSING");
        assert_eq!(bad_field(&status), "access", "{name}");
        refused.push(Refused {
            case: name.to_string(),
            record_id: record_id(status.metadata()).expect("record id"),
            reason: "ACCESS_CONTEXT_MISSING",
        });
        calls += 1;
    }
    // The valid request, hand-encoded, is served through the same raw path.
    let reply = raw_lookup(&h, &clinic, demo_lookup().encode_to_vec())
        .await
        .expect("served");
    let reply = LookupQualificationResponse::decode(reply.as_slice()).expect("a response");
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    calls += 1;

    // Over max_message_bytes (64 KiB): tonic's decoder refuses it with OUT_OF_RANGE
    // before any rule runs.
    let limit = onshi_gateway::config::GatewayConfig::default().max_message_bytes;
    let mut huge = demo_search();
    huge.name = "山".repeat(limit / 3 + 1);
    assert!(huge.encoded_len() > limit);
    let before = h.records(None).await.len();
    let result = h
        .qualification
        .search_patients(as_facility(&miyagi_clinic(), huge))
        .await;
    transport_refusal(
        &mut h,
        "oversized message",
        result,
        Code::OutOfRange,
        before,
    )
    .await;
    calls += 1;
    let before = h.records(None).await.len();
    let mut huge = demo_lookup();
    huge.insured.as_mut().expect("insured").number = "1".repeat(limit + 1);
    let result = raw_lookup(&h, &clinic, huge.encode_to_vec()).await;
    transport_refusal(
        &mut h,
        "oversized raw message",
        result,
        Code::OutOfRange,
        before,
    )
    .await;
    calls += 1;

    // Municipality codes, through the operators' preview (not a terminal call: the
    // operators' service is not in the terminals' access log).
    let mut operators = admin(&h).await;
    for (name, code, expected) in municipality_corpus() {
        let result = operators.preview_areas(preview(&code)).await;
        match expected {
            None => {
                let p = result
                    .unwrap_or_else(|e| panic!("municipality {name} ({code:?}): {e:?}"))
                    .into_inner();
                assert_eq!(p.prefectures.len(), 1, "municipality {name}");
                assert_eq!(p.prefectures[0].code, "17", "municipality {name}");
            }
            Some(reason) => {
                let status = match result {
                    Ok(p) => panic!("municipality {name} ({code:?}): expected {reason}, got {p:?}"),
                    Err(s) => s,
                };
                let info = status
                    .get_details_error_info()
                    .unwrap_or_else(|| panic!("municipality {name}: no ErrorInfo"));
                assert_eq!(
                    (status.code(), info.reason.as_str()),
                    (Code::InvalidArgument, reason),
                    "municipality {name} ({code:?}): {}",
                    status.message()
                );
                assert_eq!(
                    bad_field(&status),
                    "areas.municipalities[0]",
                    "municipality {name}"
                );
            }
        }
    }

    // The log: every chain intact, one record per terminal call, and each refusal's
    // record denied with its reason.
    let reports = verify_store(h.gateway.store.as_ref(), &[])
        .await
        .expect("the store is readable");
    assert!(!reports.is_empty(), "at least the gateway's chain");
    for report in &reports {
        assert!(
            report.is_intact(),
            "chain {} breaks: {:?}",
            report.chain_id,
            report.first_break
        );
    }
    let records = h.records(None).await;
    assert_eq!(records.len(), calls, "one access record per terminal call");
    let verified: u64 = reports.iter().map(|r| r.records_verified).sum();
    assert_eq!(verified, calls as u64, "every record verified");
    let by_id: HashMap<&str, &AccessRecord> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    assert!(refused.len() > 100, "the corpus refuses: {}", refused.len());
    for r in &refused {
        let record = by_id.get(r.record_id.as_str()).unwrap_or_else(|| {
            panic!(
                "{}: access record {} is not in the log",
                r.case, r.record_id
            )
        });
        assert_eq!(record.decision, Decision::Denied, "{}", r.case);
        assert_eq!(record.reason.as_deref(), Some(r.reason), "{}", r.case);
        assert_eq!(
            record.upstream_result, None,
            "{}: nothing forwarded",
            r.case
        );
    }
    // The SQL did nothing: the log still takes records.
    still_up(&mut h, "the whole corpus").await;
}

// ---------------------------------------------------------------------------------
// Bugs found by the corpus, kept ignored until src/ is fixed; each says what is wrong.

fn search_named(name: &str) -> SearchPatientsRequest {
    let mut r = demo_search();
    r.name = name.into();
    r
}

fn lookup_by_search_id(search_id: &str) -> LookupQualificationRequest {
    let mut r = demo_lookup();
    access_mut(&mut r.access).identification = by_search(search_id);
    r
}

/// src/pipeline/rules/identification.rs `check_attributes`: NAME_MISSING is decided on the
/// validated text, but the search compares `normalize_name`, which drops middle dots
/// (and whitespace). A name of only middle dots passes the gateway, the upstream
/// refuses it as having no name, and the terminal gets UPSTREAM_ERROR (INTERNAL,
/// recorded as `failed`) instead of NAME_MISSING on `name`.
#[tokio::test]
async fn a_name_of_only_middle_dots_is_missing() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    for name in ["・", "･", "·", " ・ ・ "] {
        let status = denied!(
            h,
            h.qualification
                .search_patients(as_facility(&miyagi_clinic(), search_named(name)))
                .await,
            Code::InvalidArgument,
            "NAME_MISSING",
        );
        assert_eq!(bad_field(&status), "name", "{name:?}");
    }
}

/// Control characters in a search id must not reach the access record: every other
/// text the record holds (staff id, exemption reason) is validated first. The rule
/// notes `identification.search_id.trim()` only when it is an id the gateway could
/// have issued (src/pipeline/rules/identification.rs, `IdentificationRule::check`,
/// the `n.search_id = is_search_id(id).then(...)` line).
#[tokio::test]
async fn a_search_id_is_not_written_raw_to_the_access_log() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let long = "x".repeat(5000);
    for search_id in ["a\u{0}b", "\u{1b}[2J", "x\u{202E}y", long.as_str()] {
        denied!(
            h,
            h.qualification
                .lookup_qualification(as_facility(
                    &miyagi_clinic(),
                    lookup_by_search_id(search_id)
                ))
                .await,
            Code::NotFound,
            "SEARCH_NOT_FOUND",
        );
        let kept = h.last_record().await.search_id;
        assert!(
            kept.as_deref().is_none_or(|s| s.chars().count() <= 64
                && !s
                    .chars()
                    .any(|c| c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c))),
            "{:?} kept as {kept:?}",
            &search_id[..search_id.len().min(20)]
        );
    }
}

/// The same unvalidated search id on PostgreSQL, where TEXT cannot hold NUL: the
/// ledger read fails (SEARCH_LEDGER_UNAVAILABLE), then the access record cannot be
/// committed, so the caller gets AUDIT_UNAVAILABLE with no record of the refusal,
/// the writer is marked unhealthy (terminal services NOT_SERVING) and every other
/// facility's call committed in the same batch fails with AUDIT_UNAVAILABLE too.
/// Needs the test PostgreSQL (tests/common/databases.rs).
#[tokio::test]
async fn a_nul_in_the_search_id_is_not_found_on_postgresql() {
    let db = databases::fresh_postgres().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = onshi_gateway::config::GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: None,
        metrics_listen: None,
        data_dir: dir.path().to_path_buf(),
        database_url: Some(db.url.clone()),
        upstream: onshi_gateway::config::UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity: onshi_gateway::tls::identity::IdentitySource::DevelopmentMetadata,
        audit: common::test_audit_batch(),
        ..onshi_gateway::config::GatewayConfig::default()
    };
    let clock = onshi_gateway::clock::ManualClock::new(base());
    let gateway = onshi_gateway::server::start(config, clock)
        .await
        .expect("gateway on PostgreSQL starts");
    let window =
        onshi_gateway::activation::seed::window_from("2022-03-17", None, Some("2022-03-23"), false)
            .expect("window");
    let activation = onshi_gateway::activation::seed::new_activation(
        "令和4年福島沖地震",
        "令和4年3月17日付事務連絡",
        &["04".into()],
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
    let channel = Channel::from_shared(format!("http://{}", gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client =
        onshi_gateway::proto::qualification_service_client::QualificationServiceClient::new(
            channel.clone(),
        );

    let status = assert_denied(
        client
            .lookup_qualification(as_facility(
                &miyagi_clinic(),
                lookup_by_search_id("a\u{0}b"),
            ))
            .await,
        Code::NotFound,
        "SEARCH_NOT_FOUND",
    );
    let id = record_id(status.metadata()).expect("the refusal names its access record");
    let records = gateway
        .store
        .chain_records(&gateway.chain_id, 0, 1000)
        .await
        .expect("audit readable");
    assert!(
        records.iter().any(|r| r.record.id == id),
        "the refusal is recorded"
    );
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "onshi.v1.QualificationService".into(),
        })
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    drop(client);
    gateway.shutdown().await.expect("clean shutdown");
    db.drop_schema().await;
}

// ---------------------------------------------------------------------------------
// Several faults in one request: one refusal, with the first fault's reason and a
// `BadRequest` that names every field at fault, so one correction fixes them all.

struct MultiFault {
    name: &'static str,
    call: Call,
    reason: &'static str,
    fields: &'static [&'static str],
}

fn multi_fault_corpus() -> Vec<MultiFault> {
    vec![
        MultiFault {
            name: "search: neither insurer name nor address fragment",
            call: search_with(|r| r.address_fragment = String::new()),
            reason: "INSURER_OR_ADDRESS_MISSING",
            fields: &["insurer_name", "address_fragment"],
        },
        MultiFault {
            name: "search: a birth date that does not exist, and no sex",
            call: search_with(|r| {
                r.birth_date = "1958-02-30".into();
                r.sex = 0;
            }),
            reason: "BIRTH_DATE_INVALID",
            fields: &["birth_date", "sex"],
        },
        MultiFault {
            name: "search: nothing but the access context",
            call: search_with(|r| {
                r.name = String::new();
                r.birth_date = String::new();
                r.sex = 0;
                r.address_fragment = String::new();
            }),
            reason: "NAME_MISSING",
            fields: &[
                "name",
                "birth_date",
                "sex",
                "insurer_name",
                "address_fragment",
            ],
        },
        MultiFault {
            name: "search: a name with a NUL and an insurer name too long",
            call: search_with(|r| {
                r.name = "山田\u{0}".into();
                r.insurer_name = "協".repeat(101);
            }),
            reason: "NAME_INVALID",
            fields: &["name", "insurer_name"],
        },
        MultiFault {
            name: "lookup: a wrong insurer check digit and a malformed branch",
            call: insured_with(|i| {
                i.insurer_number = "01234567".into();
                i.branch = "1a".into();
            }),
            reason: "INSURER_NUMBER_CHECK_DIGIT",
            fields: &["insured.insurer_number", "insured.branch"],
        },
        MultiFault {
            name: "lookup: every part of the card wrong, and the birth date",
            call: lookup_with(|r| {
                r.birth_date = "2023-02-30".into();
                let i = r.insured.as_mut().expect("insured");
                i.insurer_number = "0104001".into();
                i.symbol = "記号 1".into();
                i.number = String::new();
                i.branch = "000".into();
            }),
            reason: "INSURER_NUMBER_FORMAT",
            fields: &[
                "insured.insurer_number",
                "insured.symbol",
                "insured.number",
                "insured.branch",
                "birth_date",
            ],
        },
        MultiFault {
            name: "lookup: a bad insurer number and no identification method",
            call: lookup_with(|r| {
                r.insured.as_mut().expect("insured").insurer_number = "O1040013".into();
                access_mut(&mut r.access).identification = None;
            }),
            reason: "INSURER_NUMBER_FORMAT",
            fields: &["insured.insurer_number", "access.identification.method"],
        },
        MultiFault {
            name: "drug history: no number and neither end of the period a date",
            call: drugs_with(|r| {
                r.insured.as_mut().expect("insured").number = String::new();
                r.period = period("2022-02-30", "2021-13-01");
            }),
            reason: "NUMBER_MISSING",
            fields: &["insured.number", "period.from", "period.to"],
        },
        MultiFault {
            name: "lookup by search: no search id and a bad branch",
            call: lookup_with(|r| {
                r.insured.as_mut().expect("insured").branch = String::new();
                access_mut(&mut r.access).identification = by_search(" ");
            }),
            reason: "BRANCH_INVALID",
            fields: &["insured.branch", "access.identification.search_id"],
        },
        MultiFault {
            name: "staff: no id and an unknown role",
            call: lookup_with(|r| {
                let staff = staff_mut(&mut r.access);
                staff.staff_id = String::new();
                staff.role = 99;
            }),
            reason: "STAFF_ID_MISSING",
            fields: &["access.staff.staff_id", "access.staff.role"],
        },
        MultiFault {
            name: "consent: the exemption with neither reason nor identification, and no purpose",
            call: lookup_with(|r| {
                exemption(&mut r.access, "");
                consent_mut(&mut r.access).exemption_identification = 0;
                access_mut(&mut r.access).purpose = 0;
            }),
            reason: "EXEMPTION_REASON_MISSING",
            fields: &[
                "access.consent.exemption_reason",
                "access.consent.exemption_identification",
                "access.purpose",
            ],
        },
        MultiFault {
            name: "consent: no basis and a purpose other than care",
            call: lookup_with(|r| {
                consent_mut(&mut r.access).basis = 0;
                access_mut(&mut r.access).purpose = 2;
            }),
            reason: "CONSENT_BASIS_MISSING",
            fields: &["access.consent.basis", "access.purpose"],
        },
    ]
}

#[tokio::test]
async fn several_faults_are_refused_once_naming_every_field() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = Caller::Header(miyagi_clinic().to_string());
    for case in multi_fault_corpus() {
        let name = case.name;
        let before = h.records(None).await.len();
        let Err(status) = send(&mut h, &clinic, case.call).await else {
            panic!("{name}: served");
        };
        let info = status
            .get_details_error_info()
            .unwrap_or_else(|| panic!("{name}: no ErrorInfo in {status:?}"));
        assert_eq!(info.reason, case.reason, "{name}: {}", status.message());
        assert_eq!(status.code(), Code::InvalidArgument, "{name}");
        assert_eq!(bad_fields(&status), case.fields, "{name}");
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some(case.fields[0]),
            "{name}: ErrorInfo names the first field"
        );
        let bad = status.get_details_bad_request().expect("BadRequest");
        for v in &bad.field_violations {
            assert!(!v.description.is_empty(), "{name}: {} explained", v.field);
            assert!(
                status.message().contains(&v.description),
                "{name}: the message holds {:?}",
                v.description
            );
        }
        // One call, one refusal, one access record with the first fault's reason.
        let records = h.records(None).await;
        assert_eq!(records.len(), before + 1, "{name}");
        let record = records.last().expect("a record");
        assert_eq!(record.decision, Decision::Denied, "{name}");
        assert_eq!(record.reason.as_deref(), Some(case.reason), "{name}");
        assert_eq!(
            record_id(status.metadata()),
            Some(record.id.clone()),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Check digits: a wrong one is refused without telling the digit that would pass,
// which would turn a mistyped number into another valid one.

/// The refusal says the check digit does not match, names the field, and holds the
/// right digit nowhere: not in its message, not in any description or metadata.
#[track_caller]
fn no_right_digit(status: &Status, reason: &str, field: &str, right: u8) {
    let right = char::from(b'0' + right);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason, "{status:?}");
    assert!(
        status.message().contains("does not match its check digit"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains(right), "{}", status.message());
    for (key, value) in &info.metadata {
        assert!(
            !key.contains("expected") && !value.contains(right),
            "{reason}: metadata {key}={value}"
        );
    }
    if field.is_empty() {
        assert!(status.get_details_bad_request().is_none());
    } else {
        assert_eq!(bad_fields(status), [field]);
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert!(!bad.field_violations[0].description.contains(right));
    }
}

#[tokio::test]
async fn a_wrong_check_digit_is_refused_without_telling_the_right_one() {
    use onshi_gateway::domain::check_digit::oqs_check_digit;
    use onshi_gateway::domain::municipality::municipality_check_digit;

    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = Caller::Header(miyagi_clinic().to_string());

    // The insurer number 01234567 of the public samples: 6 would be right.
    let right = oqs_check_digit("0123456").expect("digits");
    assert_eq!(right, 6);
    for last in (0..=9).filter(|d| *d != right) {
        let call = insured_with(|i| i.insurer_number = format!("0123456{last}"));
        let Err(status) = send(&mut h, &clinic, call).await else {
            panic!("0123456{last} served");
        };
        no_right_digit(
            &status,
            "INSURER_NUMBER_CHECK_DIGIT",
            "insured.insurer_number",
            right,
        );
    }

    // The facility code of the caller (from the connection: no request field).
    let code = miyagi_clinic().to_string();
    let facility_right = oqs_check_digit(&code[..9]).expect("digits");
    let Err(status) = send(
        &mut h,
        &Caller::Header(wrong_check_digit(&code)),
        Call::Lookup(demo_lookup()),
    )
    .await
    else {
        panic!("a wrong facility check digit served");
    };
    assert_eq!(status.code(), Code::Unauthenticated);
    no_right_digit(&status, "FACILITY_CODE_CHECK_DIGIT", "", facility_right);

    // A 6-digit municipality code, through the operators' preview: 17201 has 4.
    let right = municipality_check_digit("17201").expect("digits");
    assert_eq!(right, 4);
    let mut operators = admin(&h).await;
    for last in (0..=9).filter(|d| *d != right) {
        let status = operators
            .preview_areas(preview(&format!("17201{last}")))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        no_right_digit(
            &status,
            "MUNICIPALITY_CODE_CHECK_DIGIT",
            "areas.municipalities[0]",
            right,
        );
    }
    // Nor the facility code an operator types, where it is bad input.
    let status = operators
        .check_facility(CheckFacilityRequest {
            facility_code: wrong_check_digit(&code),
            ..CheckFacilityRequest::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    no_right_digit(
        &status,
        "FACILITY_CODE_CHECK_DIGIT",
        "facility_code",
        facility_right,
    );
}

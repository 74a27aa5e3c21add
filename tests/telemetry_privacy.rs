//! Logs and traces hold no patient identifiers: every patient-data call, allowed
//! and denied, is made with everything at TRACE (the gateway's spans and events and
//! every dependency's, `log` records included), and the output is searched for the
//! demo patient's name, birth date, insured number, address and an exemption reason.
//! Its own test binary: the subscriber is global.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use tonic::Code;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Everything written, shared by the layers and the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;

    fn make_writer(&'a self) -> CapturedWriter {
        CapturedWriter(self.0.clone())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

/// Installs, for the whole process, JSON and plain output of every span (opened,
/// entered, exited, closed, with its fields) and every event at TRACE.
fn capture() -> Captured {
    let captured = Captured::default();
    tracing_subscriber::registry()
        .with(EnvFilter::new("trace"))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_span_events(FmtSpan::FULL)
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(captured.clone()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_span_events(FmtSpan::FULL)
                .with_writer(captured.clone()),
        )
        .try_init()
        .expect("the only subscriber of this test binary");
    captured
}

/// Ways a text may be written out: as is, as JSON `\u` escapes, as Rust byte
/// escapes (Debug of bytes), percent-encoded.
fn encodings(text: &str) -> Vec<String> {
    let mut forms = vec![text.to_string()];
    if !text.is_ascii() {
        let utf16: Vec<u16> = text.encode_utf16().collect();
        forms.push(utf16.iter().map(|u| format!("\\u{u:04x}")).collect());
        forms.push(utf16.iter().map(|u| format!("\\u{u:04X}")).collect());
        forms.push(
            text.chars()
                .map(|c| format!("\\u{{{:x}}}", c as u32))
                .collect(),
        );
        forms.push(text.bytes().map(|b| format!("\\x{b:02x}")).collect());
        forms.push(text.bytes().map(|b| format!("%{b:02X}")).collect());
        forms.push(text.bytes().map(|b| format!("%{b:02x}")).collect());
        // Debug of a byte slice: decimal numbers.
        forms.push(
            text.bytes()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    forms
}

/// Where `needle` occurs in `haystack`; a digit string only where it is not part of
/// a longer number (a timestamp, a duration, a fraction), so that it is not found by
/// chance.
fn occurrences(haystack: &str, needle: &str) -> Vec<usize> {
    let digits = needle.bytes().all(|b| b.is_ascii_digit());
    haystack
        .match_indices(needle)
        .map(|(at, _)| at)
        .filter(|&at| {
            if !digits {
                return true;
            }
            let mut before = haystack[..at].bytes().rev();
            let in_number_before = match before.next() {
                Some(b) if b.is_ascii_digit() => true,
                Some(b'.') => before.next().is_some_and(|b| b.is_ascii_digit()),
                _ => false,
            };
            let in_number_after = haystack[at + needle.len()..]
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit());
            !in_number_before && !in_number_after
        })
        .collect()
}

/// The line of `text` around byte offset `at`.
fn line_at(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[start..end]
}

fn with_exemption(
    mut req: GetDrugHistoryRequest,
    identification: ExemptionIdentification,
) -> GetDrugHistoryRequest {
    if let Some(a) = req.access.as_mut() {
        a.consent = Some(Consent {
            basis: ConsentBasis::LifeOrBodyExemption as i32,
            exemption_reason: "意識不明で搬送".into(),
            exemption_identification: identification as i32,
            // As a client from before the reason category.
            ..Consent::default()
        });
    }
    req
}

fn checkups(
    insured: InsuredNumber,
    identification: Option<Identification>,
) -> GetHealthCheckupsRequest {
    GetHealthCheckupsRequest {
        access: access(identification),
        insured: Some(insured),
        period: Some(Period {
            from: "2017-01-01".into(),
            to: "2022-03-20".into(),
        }),
    }
}

/// Clinical information, e-prescriptions and the emergency summary: allowed, refused
/// for a kind of information outside the consent, and refused as emergency viewing
/// from a clinic without an emergency department. Returns the number of calls.
async fn clinical_traffic(h: &mut Harness, search_id: &str, insured: &InsuredNumber) -> usize {
    let clinic = miyagi_clinic();
    h.medical
        .get_clinical_information(as_facility(
            &clinic,
            GetClinicalInformationRequest {
                access: access(by_search(search_id)),
                insured: Some(insured.clone()),
                ..Default::default()
            },
        ))
        .await
        .expect("clinical information allowed");
    h.medical
        .get_prescriptions(as_facility(
            &clinic,
            GetPrescriptionsRequest {
                access: access(by_search(search_id)),
                insured: Some(insured.clone()),
                ..Default::default()
            },
        ))
        .await
        .expect("prescriptions allowed");
    let exempt = with_exemption(
        drugs(insured.clone(), known()),
        ExemptionIdentification::IdDocument,
    );
    let summary = |access| GetEmergencySummaryRequest {
        access,
        insured: Some(insured.clone()),
    };
    h.medical
        .get_emergency_summary(as_facility(&clinic, summary(exempt.access.clone())))
        .await
        .expect("summary allowed under the exemption");
    let mut drugs_only = access(by_search(search_id));
    if let Some(c) = drugs_only.as_mut().and_then(|a| a.consent.as_mut()) {
        c.kinds = vec![ConsentKind::Drugs as i32];
    }
    assert_denied(
        h.medical
            .get_clinical_information(as_facility(
                &clinic,
                GetClinicalInformationRequest {
                    access: drugs_only,
                    insured: Some(insured.clone()),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        "CONSENT_KIND_NOT_GIVEN",
    );
    let mut viewing = exempt.access;
    if let Some(a) = viewing.as_mut() {
        a.mode = AccessMode::EmergencyViewing as i32;
    }
    assert_denied(
        h.medical
            .get_emergency_summary(as_facility(&tokyo_clinic(), summary(viewing)))
            .await,
        Code::PermissionDenied,
        "EMERGENCY_VIEWING_FACILITY_NOT_ELIGIBLE",
    );
    5
}

/// Every patient-data RPC, allowed and denied, naming the demo patient.
async fn traffic(h: &mut Harness) -> usize {
    let clinic = miyagi_clinic();
    let tokyo = tokyo_clinic();
    let mut calls = 0;

    // Search by attributes: allowed (name, birth date, address), allowed by insurer
    // name, refused outside the activation, refused for a malformed birth date, from
    // an unknown facility code.
    let (search_id, insured) = h.search_demo_patient(&clinic).await;
    calls += 1;
    assert_eq!(insured, DEMO_PATIENT.insured());
    let reply = h
        .qualification
        .search_patients(as_facility(
            &clinic,
            search_request(
                "ヤマダ タロウ",
                "1958-04-12",
                Sex::Male,
                DEMO_PATIENT.insurer_name,
                "宮城県石巻市中央",
            ),
        ))
        .await;
    calls += 1;
    assert!(reply.is_ok(), "{reply:?}");
    assert_denied(
        h.qualification
            .search_patients(as_facility(
                &tokyo,
                search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻"),
            ))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    calls += 1;
    assert_denied(
        h.qualification
            .search_patients(as_facility(
                &clinic,
                search_request("やまだ たろう", "19580412", Sex::Male, "", "石巻"),
            ))
            .await,
        Code::InvalidArgument,
        "BIRTH_DATE_INVALID",
    );
    calls += 1;

    // Lookup: allowed, with the birth date to match, outside the activation, with a
    // wrong facility check digit, with a wrong insurer check digit, without consent.
    h.qualification
        .lookup_qualification(as_facility(&clinic, lookup(insured.clone())))
        .await
        .expect("lookup allowed");
    calls += 1;
    let reply = h
        .qualification
        .lookup_qualification(as_facility(
            &clinic,
            LookupQualificationRequest {
                birth_date: "1958-04-12".into(),
                ..lookup(insured.clone())
            },
        ))
        .await;
    calls += 1;
    assert!(reply.is_ok(), "{reply:?}");
    assert_denied(
        h.qualification
            .lookup_qualification(as_facility(&tokyo, lookup(insured.clone())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    calls += 1;
    let good = clinic.to_string();
    let wrong = format!("{}{}", &good[..9], (good.as_bytes()[9] - b'0' + 1) % 10);
    assert_denied(
        h.qualification
            .lookup_qualification(as_raw_facility(&wrong, lookup(insured.clone())))
            .await,
        Code::Unauthenticated,
        "FACILITY_CODE_CHECK_DIGIT",
    );
    calls += 1;
    let last = DEMO_PATIENT.insurer_number.as_bytes()[7] - b'0';
    let wrong_insurer = format!("{}{}", &DEMO_PATIENT.insurer_number[..7], (last + 1) % 10);
    assert_denied(
        h.qualification
            .lookup_qualification(as_facility(
                &clinic,
                lookup(InsuredNumber {
                    insurer_number: wrong_insurer,
                    ..insured.clone()
                }),
            ))
            .await,
        Code::InvalidArgument,
        "INSURER_NUMBER_CHECK_DIGIT",
    );
    calls += 1;
    let mut no_consent = lookup(insured.clone());
    if let Some(a) = no_consent.access.as_mut() {
        a.consent = None;
    }
    assert_denied(
        h.qualification
            .lookup_qualification(as_facility(&clinic, no_consent))
            .await,
        Code::InvalidArgument,
        "CONSENT_BASIS_MISSING",
    );
    calls += 1;

    // Drug history: by search, under the exemption (with its reason), the exemption
    // without identification, another facility's search, outside the activation.
    let reply = h
        .medical
        .get_drug_history(as_facility(
            &clinic,
            drugs(insured.clone(), by_search(&search_id)),
        ))
        .await;
    calls += 1;
    assert!(reply.is_ok_and(|r| !r.get_ref().dispensings.is_empty()));
    h.medical
        .get_drug_history(as_facility(
            &clinic,
            with_exemption(
                drugs(insured.clone(), known()),
                ExemptionIdentification::FamilyInformation,
            ),
        ))
        .await
        .expect("exemption allowed");
    calls += 1;
    assert_denied(
        h.medical
            .get_drug_history(as_facility(
                &clinic,
                with_exemption(
                    drugs(insured.clone(), known()),
                    ExemptionIdentification::Unspecified,
                ),
            ))
            .await,
        Code::InvalidArgument,
        "EXEMPTION_IDENTIFICATION_MISSING",
    );
    calls += 1;
    assert_denied(
        h.medical
            .get_drug_history(as_facility(
                &fukushima_pharmacy(),
                drugs(insured.clone(), by_search(&search_id)),
            ))
            .await,
        Code::PermissionDenied,
        "SEARCH_FACILITY_MISMATCH",
    );
    calls += 1;
    assert_denied(
        h.medical
            .get_drug_history(as_facility(&tokyo, drugs(insured.clone(), known())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    calls += 1;

    // Health check-ups: by search, under the exemption, outside the activation.
    let reply = h
        .medical
        .get_health_checkups(as_facility(
            &clinic,
            checkups(insured.clone(), by_search(&search_id)),
        ))
        .await;
    calls += 1;
    assert!(reply.is_ok_and(|r| !r.get_ref().checkups.is_empty()));
    let mut exempt = checkups(insured.clone(), known());
    exempt.access = with_exemption(
        drugs(insured.clone(), known()),
        ExemptionIdentification::IdDocument,
    )
    .access;
    h.medical
        .get_health_checkups(as_facility(&clinic, exempt))
        .await
        .expect("exemption allowed");
    calls += 1;
    assert_denied(
        h.medical
            .get_health_checkups(as_facility(&tokyo, checkups(insured.clone(), known())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    calls += 1;

    calls += clinical_traffic(h, &search_id, &insured).await;

    // A patient the upstream does not know.
    let unknown = InsuredNumber {
        symbol: "9999".into(),
        number: "999999".into(),
        ..insured.clone()
    };
    let reply = h
        .qualification
        .lookup_qualification(as_facility(&clinic, lookup(unknown.clone())))
        .await
        .expect("lookup answers");
    calls += 1;
    assert_eq!(reply.get_ref().status, QualificationStatus::NotFound as i32);
    assert_denied(
        h.medical
            .get_drug_history(as_facility(&clinic, drugs(unknown, known())))
            .await,
        Code::NotFound,
        "PATIENT_NOT_FOUND",
    );
    calls += 1;
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_traces_hold_no_patient_identifiers() {
    let captured = capture();
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let calls = traffic(&mut h).await;
    // Every call was recorded, so every one went through the audited pipeline.
    assert_eq!(h.records(None).await.len(), calls);
    h.gateway.shutdown().await.expect("clean shutdown");

    let text = captured.text();
    assert!(!text.is_empty(), "nothing was captured");
    // The capture sees the gateway's own spans and events, not only its dependencies'.
    for expected in [
        "\"access\"",
        "audit.commit",
        "\"rule\"",
        "LookupQualification",
        "GetHealthCheckups",
        "GetClinicalInformation",
        "GetPrescriptions",
        "GetEmergencySummary",
        "AREA_NOT_ACTIVATED",
        "CONSENT_KIND_NOT_GIVEN",
    ] {
        assert!(text.contains(expected), "{expected} was not logged");
    }
    assert!(
        text.lines().count() > calls * 10,
        "too little was captured for TRACE: {} lines",
        text.lines().count()
    );

    let p = DEMO_PATIENT;
    let key = format!(
        "{}|{}|{}|{}",
        p.insurer_number, p.symbol, p.number, p.branch
    );
    let forbidden: Vec<(&str, String)> = vec![
        ("name", "山田".into()),
        ("name", "太郎".into()),
        ("name", "ヤマダ".into()),
        ("name", "タロウ".into()),
        ("name", "やまだ".into()),
        ("name", "たろう".into()),
        ("birth date", "1958-04-12".into()),
        ("birth date", "19580412".into()),
        ("insured symbol", p.symbol.into()),
        ("patient key", key),
        ("address", "石巻".into()),
        ("postcode", p.postcode.into()),
        ("exemption reason", "意識不明".into()),
    ];
    let mut leaks = Vec::new();
    for (what, value) in &forbidden {
        for form in encodings(value) {
            for at in occurrences(&text, &form) {
                leaks.push(format!("{what} {form:?}: {}", line_at(&text, at)));
            }
        }
    }
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "{} patient identifiers in logs or traces:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[test]
fn the_search_finds_written_forms_and_not_longer_numbers() {
    let name = "山田";
    let written = [
        format!("name={name}"),
        format!("{:?}", serde_json::json!({ "name": name }).to_string()),
        r#"{"name":"\u5c71\u7530"}"#.to_string(),
        format!("{:?}", name.as_bytes()),
        r#"b"\xe5\xb1\xb1\xe7\x94\xb0""#.to_string(),
        "q=%E5%B1%B1%E7%94%B0".to_string(),
    ];
    for w in &written {
        assert!(
            encodings(name)
                .iter()
                .any(|f| !occurrences(w, f).is_empty()),
            "not found in {w}"
        );
    }
    assert_eq!(occurrences("symbol=40250311,", "40250311"), vec![7]);
    assert!(occurrences("elapsed_ms=1.402503112", "40250311").is_empty());
    assert!(occurrences("elapsed_ms=1.40250311", "40250311").is_empty());
    assert_eq!(occurrences("symbol 40250311.", "40250311"), vec![7]);
    assert!(occurrences("t=9402503110", "40250311").is_empty());
}

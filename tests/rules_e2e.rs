//! Every rule, allowed and denied at its edges, over a real socket; each denial is
//! checked for its code, its reason and its access record.

mod common;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use common::*;
use onshi_gateway::proto::*;
use onshi_gateway::store::Decision;
use onshi_gateway::tls::identity::IdentitySource;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn lookup_by_insured_number_is_allowed_and_audited() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    let reply = h
        .qualification
        .lookup_qualification(as_facility(&clinic, lookup(insured.clone())))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    let q = reply.qualification.expect("qualification");
    assert_eq!(q.name, "山田 太郎");
    assert_eq!(q.birth_date, "1958-04-12");

    let r = h.last_record().await;
    assert_eq!(r.method, "LookupQualification");
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(r.facility.as_deref(), Some(clinic.to_string().as_str()));
    assert_eq!(r.staff_id.as_deref(), Some("dr-0001"));
    assert_eq!(r.staff_role.as_deref(), Some("doctor"));
    assert_eq!(r.consent_basis.as_deref(), Some("patient_consent"));
    assert_eq!(r.identification.as_deref(), Some("insured_number_known"));
    assert!(
        r.patient_key
            .as_deref()
            .unwrap_or("")
            .starts_with(&insured.insurer_number)
    );
    assert!(r.activation_id.is_some());
    assert_eq!(r.upstream_result.as_deref(), Some("OK status=VALID"));
    assert!(!r.needs_review);
}

#[tokio::test]
async fn window_edges_first_instant_last_nanosecond_and_end() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    let start = jst_at(2022, 3, 17, 0, 0);
    let end = jst_at(2022, 3, 24, 0, 0);

    for (at, allowed) in [
        (start - ChronoDuration::nanoseconds(1), false),
        (start, true),
        (end - ChronoDuration::nanoseconds(1), true),
        (end, false),
        (end + ChronoDuration::nanoseconds(1), false),
    ] {
        h.clock.set(at);
        let result = h
            .qualification
            .lookup_qualification(as_facility(&clinic, lookup(insured.clone())))
            .await;
        if allowed {
            let response = result.unwrap_or_else(|e| panic!("at {at}: {e:?}"));
            let record = h.last_record().await;
            assert_eq!(record.decision, Decision::Allowed);
            assert_eq!(
                response
                    .metadata()
                    .get(onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER)
                    .and_then(|v| v.to_str().ok()),
                Some(record.id.as_str()),
                "the response names its access record"
            );
        } else {
            let status = denied!(h, result, Code::PermissionDenied, "AREA_NOT_ACTIVATED");
            let r = h.last_record().await;
            assert_eq!(r.decision, Decision::Denied);
            assert_eq!(r.reason.as_deref(), Some("AREA_NOT_ACTIVATED"));
            assert!(status.message().contains("宮城県"), "{}", status.message());
        }
    }
}

#[tokio::test]
async fn ended_window_is_explained() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    h.clock.set(jst_at(2022, 3, 24, 0, 0));
    let status = denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&clinic, lookup(insured)))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
    assert_eq!(
        info.metadata.get("last_window_end").map(String::as_str),
        Some("2022-03-24T00:00:00+09:00")
    );
    assert_eq!(
        info.metadata.get("prefecture").map(String::as_str),
        Some("04")
    );
}

#[tokio::test]
async fn prefecture_outside_the_activation_is_denied() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let (_, insured) = h.search_demo_patient(&miyagi_clinic()).await;
    let tokyo = tokyo_clinic();
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&tokyo, lookup(insured)))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    let r = h.records(Some(&tokyo)).await.pop().expect("record");
    assert_eq!(r.decision, Decision::Denied);
    assert_eq!(r.upstream_result, None, "nothing was forwarded");
    // Fukushima, the other activated prefecture, is allowed.
    let (_, insured) = h.search_demo_patient(&fukushima_pharmacy()).await;
    assert!(
        h.qualification
            .lookup_qualification(as_facility(&fukushima_pharmacy(), lookup(insured)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn facility_code_with_wrong_check_digit_or_missing_is_unauthenticated() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let (_, insured) = h.search_demo_patient(&miyagi_clinic()).await;
    let good = miyagi_clinic().to_string();
    let last = good.as_bytes()[9] - b'0';
    let wrong = format!("{}{}", &good[..9], (last + 1) % 10);
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_raw_facility(&wrong, lookup(insured.clone())))
            .await,
        Code::Unauthenticated,
        "FACILITY_CODE_CHECK_DIGIT",
    );
    assert_eq!(
        h.last_record().await.reason.as_deref(),
        Some("FACILITY_CODE_CHECK_DIGIT")
    );
    denied!(
        h,
        h.qualification
            .lookup_qualification(tonic::Request::new(lookup(insured)))
            .await,
        Code::Unauthenticated,
        "FACILITY_UNIDENTIFIED",
    );
    let r = h.last_record().await;
    assert_eq!(r.facility, None);
    assert_eq!(r.decision, Decision::Denied);
}

#[tokio::test]
async fn without_an_identity_source_everything_is_refused() {
    let mut h = Harness::start_with(Options {
        identity: IdentitySource::Unconfigured,
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let insured = InsuredNumber {
        insurer_number: "33120015".into(),
        symbol: "1".into(),
        number: "1".into(),
        branch: "00".into(),
    };
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&miyagi_clinic(), lookup(insured)))
            .await,
        Code::Unauthenticated,
        "FACILITY_UNIDENTIFIED",
    );
}

#[tokio::test]
async fn insurer_number_check_digit_and_format() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    let status = denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(
                &clinic,
                lookup(InsuredNumber {
                    insurer_number: "01234567".into(),
                    ..insured.clone()
                }),
            ))
            .await,
        Code::InvalidArgument,
        "INSURER_NUMBER_CHECK_DIGIT",
    );
    assert_eq!(bad_field(&status), "insured.insurer_number");
    assert_eq!(
        h.last_record().await.reason.as_deref(),
        Some("INSURER_NUMBER_CHECK_DIGIT")
    );
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(
                &clinic,
                lookup(InsuredNumber {
                    insurer_number: "0123456".into(),
                    ..insured.clone()
                }),
            ))
            .await,
        Code::InvalidArgument,
        "INSURER_NUMBER_FORMAT",
    );
    let status = denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(
                &clinic,
                lookup(InsuredNumber {
                    branch: "1".into(),
                    ..insured.clone()
                }),
            ))
            .await,
        Code::InvalidArgument,
        "BRANCH_INVALID",
    );
    assert_eq!(bad_field(&status), "insured.branch");
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(
                &clinic,
                LookupQualificationRequest {
                    insured: None,
                    ..lookup(insured.clone())
                },
            ))
            .await,
        Code::InvalidArgument,
        "INSURED_NUMBER_MISSING",
    );
    // Full-width digits, as typed on a Japanese keyboard, are folded and allowed.
    let wide: String = insured
        .insurer_number
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c))
        .collect();
    let reply = h
        .qualification
        .lookup_qualification(as_facility(
            &clinic,
            lookup(InsuredNumber {
                insurer_number: wide,
                ..insured
            }),
        ))
        .await
        .expect("full-width digits are normalised")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
}

#[tokio::test]
async fn each_missing_search_attribute_is_named() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let cases = [
        (
            search_request("", "1958-04-12", Sex::Male, "", "石巻"),
            "NAME_MISSING",
            "name",
        ),
        (
            search_request("山田太郎", "", Sex::Male, "", "石巻"),
            "BIRTH_DATE_MISSING",
            "birth_date",
        ),
        (
            search_request("山田太郎", "1958-02-30", Sex::Male, "", "石巻"),
            "BIRTH_DATE_INVALID",
            "birth_date",
        ),
        (
            search_request("山田太郎", "1958-04-12", Sex::Unspecified, "", "石巻"),
            "SEX_MISSING",
            "sex",
        ),
        (
            search_request("山田太郎", "1958-04-12", Sex::Male, "", ""),
            "INSURER_OR_ADDRESS_MISSING",
            "insurer_name",
        ),
        (
            search_request("山田\u{7}太郎", "1958-04-12", Sex::Male, "", "石巻"),
            "NAME_INVALID",
            "name",
        ),
    ];
    for (request, reason, field) in cases {
        let status = denied!(
            h,
            h.qualification
                .search_patients(as_facility(&clinic, request))
                .await,
            Code::InvalidArgument,
            reason,
        );
        assert_eq!(bad_field(&status), field, "{reason}");
        let r = h.last_record().await;
        assert_eq!(r.reason.as_deref(), Some(reason));
        assert_eq!(r.method, "SearchPatients");
    }
}

#[tokio::test]
async fn search_outcomes_single_none_and_normalised_names() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    for name in [
        "山田 太郎",
        "山田　太郎",
        "やまだ たろう",
        "ﾔﾏﾀﾞ ﾀﾛｳ",
        "ヤマダタロウ",
    ] {
        let reply = h
            .qualification
            .search_patients(as_facility(
                &clinic,
                search_request(name, "1958-04-12", Sex::Male, "", "石巻"),
            ))
            .await
            .expect("allowed")
            .into_inner();
        assert_eq!(
            reply.outcome,
            SearchOutcome::SingleMatch as i32,
            "{name}: {reply:?}"
        );
        assert!(!reply.search_id.is_empty());
        assert_eq!(reply.candidates[0].name, "山田 太郎");
    }
    let none = h
        .qualification
        .search_patients(as_facility(
            &clinic,
            search_request("山田太郎", "1958-04-13", Sex::Male, "", "石巻"),
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(none.outcome, SearchOutcome::NoMatch as i32);
    assert!(none.candidates.is_empty());
    assert!(!none.explanation.is_empty());
    let r = h.last_record().await;
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(
        r.upstream_result.as_deref(),
        Some("OK outcome=NO_MATCH candidates=0")
    );
}

#[tokio::test]
async fn drug_history_by_search_and_check_ups() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (search_id, insured) = h.search_demo_patient(&clinic).await;
    let drugs = h
        .medical
        .get_drug_history(as_facility(
            &clinic,
            drugs(insured.clone(), by_search(&search_id)),
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(!drugs.dispensings.is_empty());
    let first = &drugs.dispensings[0];
    assert!(!first.drug_name.is_empty() && !first.drug_code.is_empty() && first.days > 0);
    let r = h.last_record().await;
    assert_eq!(r.items, "drug_history");
    assert_eq!(r.identification.as_deref(), Some("attribute_search"));
    assert_eq!(r.search_id.as_deref(), Some(search_id.as_str()));

    let checkups = h
        .medical
        .get_health_checkups(as_facility(
            &clinic,
            GetHealthCheckupsRequest {
                access: access(by_search(&search_id)),
                insured: Some(insured),
                period: Some(Period {
                    from: "2017-01-01".into(),
                    to: "2022-03-20".into(),
                }),
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(!checkups.checkups.is_empty());
    assert!(
        checkups
            .checkups
            .iter()
            .all(|c| c.checkup_date.as_str() <= "2022-03-20")
    );
}

#[tokio::test]
async fn search_id_rules_other_facility_unknown_expired_and_wrong_patient() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (search_id, insured) = h.search_demo_patient(&clinic).await;

    // Another facility (also in an activated area) cannot reuse it.
    let pharmacy = fukushima_pharmacy();
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &pharmacy,
                drugs(insured.clone(), by_search(&search_id)),
            ))
            .await,
        Code::PermissionDenied,
        "SEARCH_FACILITY_MISMATCH",
    );
    assert_eq!(
        h.records(Some(&pharmacy))
            .await
            .pop()
            .expect("record")
            .reason
            .as_deref(),
        Some("SEARCH_FACILITY_MISMATCH")
    );

    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &clinic,
                drugs(insured.clone(), by_search("no-such-search")),
            ))
            .await,
        Code::NotFound,
        "SEARCH_NOT_FOUND",
    );
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(&clinic, drugs(insured.clone(), by_search(""))))
            .await,
        Code::InvalidArgument,
        "SEARCH_ID_MISSING",
    );
    // A patient who was not among the search's candidates.
    let other = InsuredNumber {
        branch: if insured.branch == "00" {
            "01".into()
        } else {
            "00".into()
        },
        ..insured.clone()
    };
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(&clinic, drugs(other, by_search(&search_id))))
            .await,
        Code::PermissionDenied,
        "PATIENT_NOT_IN_SEARCH",
    );
    // Identification not stated at all.
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(&clinic, drugs(insured.clone(), None)))
            .await,
        Code::InvalidArgument,
        "IDENTIFICATION_MISSING",
    );
    // Valid until the last instant of its lifetime, expired from then on.
    let made = h
        .records(Some(&clinic))
        .await
        .into_iter()
        .find(|r| r.search_id.as_deref() == Some(&search_id))
        .expect("search record")
        .at;
    h.clock
        .set(made + ChronoDuration::seconds(1800) - ChronoDuration::nanoseconds(1));
    assert!(
        h.medical
            .get_drug_history(as_facility(
                &clinic,
                drugs(insured.clone(), by_search(&search_id))
            ))
            .await
            .is_ok()
    );
    h.clock.set(made + ChronoDuration::seconds(1800));
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(&clinic, drugs(insured, by_search(&search_id))))
            .await,
        Code::FailedPrecondition,
        "SEARCH_EXPIRED",
    );
}

#[tokio::test]
async fn consent_exemption_needs_reason_and_identification_and_is_flagged() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    let exemption = |reason: &str, identification: ExemptionIdentification| {
        let mut req = drugs(insured.clone(), known());
        if let Some(a) = req.access.as_mut() {
            a.consent = Some(Consent {
                basis: ConsentBasis::LifeOrBodyExemption as i32,
                exemption_reason: reason.into(),
                exemption_identification: identification as i32,
                // As a client from before the reason category.
                ..Consent::default()
            });
        }
        req
    };
    let status = denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &clinic,
                exemption("", ExemptionIdentification::IdDocument),
            ))
            .await,
        Code::InvalidArgument,
        "EXEMPTION_REASON_MISSING",
    );
    assert_eq!(bad_field(&status), "access.consent.exemption_reason");
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &clinic,
                exemption("   ", ExemptionIdentification::IdDocument),
            ))
            .await,
        Code::InvalidArgument,
        "EXEMPTION_REASON_MISSING",
    );
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &clinic,
                exemption("意識不明", ExemptionIdentification::Unspecified),
            ))
            .await,
        Code::InvalidArgument,
        "EXEMPTION_IDENTIFICATION_MISSING",
    );
    h.medical
        .get_drug_history(as_facility(
            &clinic,
            exemption("意識不明で搬送", ExemptionIdentification::FamilyInformation),
        ))
        .await
        .expect("the exemption with reason and identification is allowed");
    let r = h.last_record().await;
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(r.consent_basis.as_deref(), Some("life_or_body_exemption"));
    assert_eq!(r.exemption_reason.as_deref(), Some("意識不明で搬送"));
    assert_eq!(
        r.exemption_identification.as_deref(),
        Some("family_information")
    );
    assert!(r.needs_review);

    let mut no_basis = drugs(insured.clone(), known());
    if let Some(a) = no_basis.access.as_mut() {
        a.consent = None;
    }
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(&clinic, no_basis))
            .await,
        Code::InvalidArgument,
        "CONSENT_BASIS_MISSING",
    );
}

#[tokio::test]
async fn purpose_other_than_care_and_missing_staff_are_refused() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    for (purpose, reason) in [(0, "PURPOSE_MISSING"), (7, "PURPOSE_NOT_PERMITTED")] {
        let mut req = lookup(insured.clone());
        if let Some(a) = req.access.as_mut() {
            a.purpose = purpose;
        }
        let code = if purpose == 0 {
            Code::InvalidArgument
        } else {
            Code::PermissionDenied
        };
        denied!(
            h,
            h.qualification
                .lookup_qualification(as_facility(&clinic, req))
                .await,
            code,
            reason,
        );
        assert_eq!(h.last_record().await.reason.as_deref(), Some(reason));
    }
    let mut req = lookup(insured.clone());
    if let Some(a) = req.access.as_mut() {
        a.staff = None;
    }
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&clinic, req))
            .await,
        Code::InvalidArgument,
        "STAFF_ID_MISSING",
    );
    let mut req = lookup(insured);
    req.access = None;
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&clinic, req))
            .await,
        Code::InvalidArgument,
        "ACCESS_CONTEXT_MISSING",
    );
}

#[tokio::test]
async fn upstream_down_is_unavailable_promptly_and_audited_as_failed() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let mut h = Harness::start_with(Options {
        upstream: Some(format!("http://{closed}")),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let clinic = miyagi_clinic();
    let insured = InsuredNumber {
        insurer_number: "33120015".into(),
        symbol: "1".into(),
        number: "1".into(),
        branch: "00".into(),
    };
    let started = std::time::Instant::now();
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&clinic, lookup(insured)))
            .await,
        Code::Unavailable,
        "UPSTREAM_UNAVAILABLE",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let r = h.last_record().await;
    assert_eq!(r.decision, Decision::Failed);
    assert_eq!(r.reason.as_deref(), Some("UPSTREAM_UNAVAILABLE"));
}

#[tokio::test]
async fn unknown_patient_is_not_found_for_medical_information() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    let insured = InsuredNumber {
        insurer_number: "33120015".into(),
        symbol: "9999".into(),
        number: "999999".into(),
        branch: "00".into(),
    };
    let reply = h
        .qualification
        .lookup_qualification(as_facility(&clinic, lookup(insured.clone())))
        .await
        .expect("lookup answers")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::NotFound as i32);
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(&clinic, drugs(insured, known())))
            .await,
        Code::NotFound,
        "PATIENT_NOT_FOUND",
    );
    assert_eq!(h.last_record().await.decision, Decision::Failed);
}

#[tokio::test]
async fn audit_store_failure_refuses_patient_data() {
    // A long refresh keeps the activation in cache, so only the audit store is down.
    let mut h = Harness::start_with(Options {
        activation_refresh: Duration::from_secs(600),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let clinic = miyagi_clinic();
    let (_, insured) = h.search_demo_patient(&clinic).await;
    let service = "onshi.v1.QualificationService";
    assert_eq!(h.health(service).await, ServingStatus::Serving);
    let before = h.scrape_metrics().await;
    assert!(before.contains("onshi_audit_writer_healthy 1"), "{before}");
    assert!(
        before.contains("onshi_audit_commit_failures_total 0"),
        "{before}"
    );
    // The search's record.
    assert!(
        before.contains("onshi_audit_records_committed_total 1"),
        "{before}"
    );
    h.gateway.store.close().await;
    assert_denied(
        h.qualification
            .lookup_qualification(as_facility(&clinic, lookup(insured)))
            .await,
        Code::Unavailable,
        "AUDIT_UNAVAILABLE",
    );
    // Health says so too, for load balancers to route elsewhere.
    let mut status = h.health(service).await;
    for _ in 0..50 {
        if status == ServingStatus::NotServing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = h.health(service).await;
    }
    assert_eq!(status, ServingStatus::NotServing);
    // And so do the metrics.
    let after = h.scrape_metrics().await;
    assert!(after.contains("onshi_audit_writer_healthy 0"), "{after}");
    assert!(
        after.contains("onshi_audit_commit_failures_total 1"),
        "{after}"
    );
}

#[tokio::test]
async fn several_and_too_many_matches_are_distinct_outcomes() {
    use onshi_gateway::simulator::fixtures::{
        CROWD_ADDRESS_FRAGMENT, CROWD_NAME, CROWD_WARD, SAME_NAME_FUKUSHIMA, SAME_NAME_TOKYO,
    };
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    // Two 佐藤 花子 born the same day under different insurers: both shown, none picked.
    let birth = SAME_NAME_FUKUSHIMA
        .birth_date
        .format("%Y-%m-%d")
        .to_string();
    let several = h
        .qualification
        .search_patients(as_facility(
            &clinic,
            search_request("さとう はなこ", &birth, Sex::Female, "", "郡山"),
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(
        several.outcome,
        SearchOutcome::SingleMatch as i32,
        "{several:?}"
    );
    let both = h
        .qualification
        .search_patients(as_facility(
            &clinic,
            search_request("佐藤花子", &birth, Sex::Female, "", "丁目"),
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(
        both.outcome,
        SearchOutcome::MultipleMatches as i32,
        "{both:?}"
    );
    let insurers: Vec<String> = both
        .candidates
        .iter()
        .map(|c| c.insurer_name.clone())
        .collect();
    assert!(
        insurers.contains(&SAME_NAME_FUKUSHIMA.insurer_name.to_string()),
        "{insurers:?}"
    );
    assert!(
        insurers.contains(&SAME_NAME_TOKYO.insurer_name.to_string()),
        "{insurers:?}"
    );

    // The crowd: too many to list, no candidate returned, and narrowing works.
    let crowd = h
        .qualification
        .search_patients(as_facility(
            &clinic,
            search_request(
                CROWD_NAME,
                "1980-01-01",
                Sex::Male,
                "",
                CROWD_ADDRESS_FRAGMENT,
            ),
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(crowd.outcome, SearchOutcome::TooManyMatches as i32);
    assert!(crowd.candidates.is_empty());
    assert!(!crowd.explanation.is_empty());
    let narrowed = h
        .qualification
        .search_patients(as_facility(
            &clinic,
            search_request(CROWD_NAME, "1980-01-01", Sex::Male, "", CROWD_WARD),
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(narrowed.outcome, SearchOutcome::MultipleMatches as i32);
    assert_eq!(narrowed.candidates.len(), 3);
}

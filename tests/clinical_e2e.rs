//! Clinical information, e-prescriptions, the emergency summary, consent per kind
//! and emergency viewing, over a real socket: each call allowed and denied at its
//! edges, each denial checked for its code, its reason and its access record.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use common::*;
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::domain::facility::{FacilityCode, FacilityKind};
use onshi_gateway::proto::audit_service_client::AuditServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::simulator::{Part, Population, Simulator};
use onshi_gateway::store::Decision;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// 2025-06-10 10:00 JST: after emergency viewing began, and e-prescriptions.
fn now() -> DateTime<Utc> {
    jst_at(2025, 6, 10, 10, 0)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 10).expect("date")
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("YYYY-MM-DD")
}

/// The demo clinic in 石巻市: a medical facility without an emergency department.
fn clinic() -> FacilityCode {
    miyagi_clinic()
}

/// 石巻みなと総合病院: a hospital with an emergency department, in 石巻市.
fn hospital() -> FacilityCode {
    facility(4, FacilityKind::Medical, 1002)
}

/// 輪島みなと総合病院 (Ishikawa), for the Noto replay.
fn noto_hospital() -> FacilityCode {
    facility(17, FacilityKind::Medical, 1002)
}

async fn start() -> Harness {
    Harness::start_with(Options {
        now: now(),
        ..Options::default()
    })
    .await
}

/// A disaster activation of Miyagi around `now()`.
async fn with_miyagi(h: Harness) -> Harness {
    let window = window_from("2025-06-09", None, Some("2025-06-15"), false).expect("window");
    let new = new_activation("訓練", "事務連絡", &["04".into()], &[], window, "test")
        .expect("activation");
    h.gateway.store.add_activation(&new).await.expect("stored");
    h.gateway.activations.invalidate();
    h
}

fn ctx(consent: Consent, mode: AccessMode) -> Option<AccessContext> {
    Some(AccessContext {
        mode: mode as i32,
        ..AccessContext::for_care("dr-0001", StaffRole::Doctor, consent, known())
    })
}

fn consent_to(kinds: &[ConsentKind]) -> Consent {
    Consent {
        kinds: kinds.iter().map(|k| *k as i32).collect(),
        ..Consent::patient()
    }
}

fn exemption() -> Consent {
    Consent {
        basis: ConsentBasis::LifeOrBodyExemption as i32,
        exemption_reason: "意識不明で救急搬送".into(),
        exemption_identification: ExemptionIdentification::IdDocument as i32,
        ..Consent::default()
    }
}

fn clinical(access: Option<AccessContext>) -> GetClinicalInformationRequest {
    GetClinicalInformationRequest {
        access,
        insured: Some(DEMO_PATIENT.insured()),
        ..Default::default()
    }
}

fn summary(access: Option<AccessContext>) -> GetEmergencySummaryRequest {
    GetEmergencySummaryRequest {
        access,
        insured: Some(DEMO_PATIENT.insured()),
    }
}

fn item_date(item: &ClinicalItem) -> &str {
    match item.item.as_ref().expect("an item") {
        clinical_item::Item::Procedure(p) => &p.date,
        clinical_item::Item::Operation(o) => &o.date,
        clinical_item::Item::Visit(v) => &v.date,
    }
}

#[tokio::test]
async fn clinical_information_newest_first_in_pages_over_five_years() {
    let mut h = with_miyagi(start().await).await;
    let consent = consent_to(&[ConsentKind::All]);
    let mut pages = 0;
    let mut items = Vec::new();
    let mut token = String::new();
    let total = loop {
        let reply = h
            .medical
            .get_clinical_information(as_facility(
                &clinic(),
                GetClinicalInformationRequest {
                    page_size: 7,
                    page_token: token.clone(),
                    ..clinical(ctx(consent.clone(), AccessMode::Unspecified))
                },
            ))
            .await
            .expect("allowed")
            .into_inner();
        pages += 1;
        assert!(reply.items.len() <= 7);
        items.extend(reply.items);
        if reply.next_page_token.is_empty() {
            break reply.total_items;
        }
        token = reply.next_page_token;
    };
    assert_eq!(items.len(), total as usize);
    assert!(pages > 1, "the demo patient's history spans several pages");
    let dates: Vec<NaiveDate> = items.iter().map(|i| day(item_date(i))).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let five_years = today().checked_sub_months(Months::new(60)).expect("date");
    assert!(dates.iter().all(|d| (five_years..=today()).contains(d)));
    let r = h.last_record().await;
    assert_eq!(r.method, "GetClinicalInformation");
    assert_eq!(r.items, "clinical_information");
    assert_eq!(r.decision, Decision::Allowed);
    let stamp = r.clinical.expect("consent kinds recorded");
    assert_eq!(stamp.consent_kinds.as_deref(), Some("all"));
    assert_eq!(stamp.access_mode, None);

    // A one-day period: only that day's items.
    let one = dates[dates.len() / 2].to_string();
    let reply = h
        .medical
        .get_clinical_information(as_facility(
            &clinic(),
            GetClinicalInformationRequest {
                period: Some(Period {
                    from: one.clone(),
                    to: one.clone(),
                }),
                ..clinical(ctx(consent, AccessMode::Disaster))
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(!reply.items.is_empty());
    assert!(reply.items.iter().all(|i| item_date(i) == one));
    let dialysis = reply.dialysis.expect("the dialysis category is asked for");
    assert!(dialysis.on_dialysis, "the demo patient is on dialysis");
}

#[tokio::test]
async fn bad_clinical_options_are_refused_before_any_data() {
    let mut h = with_miyagi(start().await).await;
    let access = || ctx(Consent::patient(), AccessMode::Unspecified);
    for (request, reason, field) in [
        (
            GetClinicalInformationRequest {
                page_size: 501,
                ..clinical(access())
            },
            "PAGE_SIZE_INVALID",
            "page_size",
        ),
        (
            GetClinicalInformationRequest {
                page_token: "p-1".into(),
                ..clinical(access())
            },
            "PAGE_TOKEN_INVALID",
            "page_token",
        ),
        (
            GetClinicalInformationRequest {
                categories: vec![9],
                ..clinical(access())
            },
            "CLINICAL_CATEGORY_UNKNOWN",
            "categories",
        ),
    ] {
        let status = denied!(
            h,
            h.medical
                .get_clinical_information(as_facility(&clinic(), request))
                .await,
            Code::InvalidArgument,
            reason
        );
        assert_eq!(bad_field(&status), field);
    }
    // The largest page is allowed.
    h.medical
        .get_clinical_information(as_facility(
            &clinic(),
            GetClinicalInformationRequest {
                page_size: 500,
                ..clinical(access())
            },
        ))
        .await
        .expect("500 is allowed");
}

#[tokio::test]
async fn each_call_needs_the_consent_to_its_kinds() {
    use ClinicalCategory::{Dialysis, Operations, Procedures, Visits};
    let mut h = with_miyagi(start().await).await;
    let only_clinical = ctx(
        consent_to(&[ConsentKind::ClinicalInformation]),
        AccessMode::Unspecified,
    );
    // All categories include operations, which need their own consent.
    let status = denied!(
        h,
        h.medical
            .get_clinical_information(as_facility(&clinic(), clinical(only_clinical.clone())))
            .await,
        Code::PermissionDenied,
        "CONSENT_KIND_NOT_GIVEN"
    );
    assert_eq!(bad_field(&status), "access.consent.kinds");
    let r = h.last_record().await;
    let kinds = r.clinical.and_then(|c| c.consent_kinds);
    assert_eq!(kinds.as_deref(), Some("clinical_information"));
    // Without operations, the same consent is enough.
    let reply = h
        .medical
        .get_clinical_information(as_facility(
            &clinic(),
            GetClinicalInformationRequest {
                categories: vec![Procedures as i32, Dialysis as i32, Visits as i32],
                ..clinical(only_clinical.clone())
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(
        reply
            .items
            .iter()
            .all(|i| !matches!(i.item, Some(clinical_item::Item::Operation(_))))
    );
    // Operations alone need OPERATIONS.
    let operations_only = GetClinicalInformationRequest {
        categories: vec![Operations as i32],
        ..clinical(ctx(
            consent_to(&[ConsentKind::Operations]),
            AccessMode::Unspecified,
        ))
    };
    let reply = h
        .medical
        .get_clinical_information(as_facility(&clinic(), operations_only))
        .await
        .expect("allowed")
        .into_inner();
    assert!(reply.dialysis.is_none(), "dialysis was not asked for");
    // Drugs and e-prescriptions need DRUGS; check-ups need CHECKUPS.
    let checkups_only = ctx(
        consent_to(&[ConsentKind::Checkups]),
        AccessMode::Unspecified,
    );
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &clinic(),
                GetDrugHistoryRequest {
                    access: checkups_only.clone(),
                    ..drugs(DEMO_PATIENT.insured(), known())
                }
            ))
            .await,
        Code::PermissionDenied,
        "CONSENT_KIND_NOT_GIVEN"
    );
    denied!(
        h,
        h.medical
            .get_prescriptions(as_facility(
                &clinic(),
                GetPrescriptionsRequest {
                    access: checkups_only.clone(),
                    insured: Some(DEMO_PATIENT.insured()),
                    ..Default::default()
                }
            ))
            .await,
        Code::PermissionDenied,
        "CONSENT_KIND_NOT_GIVEN"
    );
    h.medical
        .get_health_checkups(as_facility(
            &clinic(),
            GetHealthCheckupsRequest {
                access: checkups_only,
                insured: Some(DEMO_PATIENT.insured()),
                period: None,
            },
        ))
        .await
        .expect("check-ups are consented to");
    // The summary shows every kind.
    denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(&hospital(), summary(only_clinical)))
            .await,
        Code::PermissionDenied,
        "CONSENT_KIND_NOT_GIVEN"
    );
    // The exemption covers every kind, whatever kinds the request names.
    let exempt = Consent {
        kinds: vec![ConsentKind::Checkups as i32],
        ..exemption()
    };
    h.medical
        .get_drug_history(as_facility(
            &clinic(),
            GetDrugHistoryRequest {
                access: ctx(exempt, AccessMode::Unspecified),
                ..drugs(DEMO_PATIENT.insured(), known())
            },
        ))
        .await
        .expect("the exemption covers drugs");
    let r = h.last_record().await;
    assert_eq!(
        r.clinical.and_then(|c| c.consent_kinds).as_deref(),
        Some("all")
    );
    // Unknown kinds are named.
    let status = denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &clinic(),
                GetDrugHistoryRequest {
                    access: ctx(
                        Consent {
                            kinds: vec![2, 9],
                            ..Consent::patient()
                        },
                        AccessMode::Unspecified
                    ),
                    ..drugs(DEMO_PATIENT.insured(), known())
                }
            ))
            .await,
        Code::InvalidArgument,
        "CONSENT_KIND_UNKNOWN"
    );
    assert_eq!(bad_field(&status), "access.consent.kinds");
}

#[tokio::test]
async fn prescriptions_open_ones_and_ingredient_groups() {
    let mut h = with_miyagi(start().await).await;
    let access = ctx(consent_to(&[ConsentKind::Drugs]), AccessMode::Unspecified);
    let all = h
        .medical
        .get_prescriptions(as_facility(
            &clinic(),
            GetPrescriptionsRequest {
                access: access.clone(),
                insured: Some(DEMO_PATIENT.insured()),
                group_by_ingredient: true,
                ..Default::default()
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(!all.prescriptions.is_empty());
    let issued: Vec<&str> = all
        .prescriptions
        .iter()
        .map(|p| p.issued_date.as_str())
        .collect();
    assert!(issued.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let mut item_groups = BTreeSet::new();
    for p in &all.prescriptions {
        let dispensed = !p.dispensed_date.is_empty();
        let state = PrescriptionState::try_from(p.state).expect("known state");
        assert_eq!(
            dispensed,
            matches!(
                state,
                PrescriptionState::Dispensed | PrescriptionState::PartlyDispensed
            ),
            "{p:?}"
        );
        for i in &p.items {
            assert_eq!(i.ingredient_group, i.drug_code[..9], "{i:?}");
            assert!(!i.generic_name.is_empty(), "{i:?}");
            item_groups.insert(i.ingredient_group.clone());
        }
    }
    let groups: BTreeSet<String> = all
        .groups
        .iter()
        .map(|g| g.ingredient_group.clone())
        .collect();
    assert_eq!(groups, item_groups, "one group per ingredient group");
    for g in &all.groups {
        let names: BTreeSet<&str> = all
            .prescriptions
            .iter()
            .flat_map(|p| &p.items)
            .filter(|i| i.ingredient_group == g.ingredient_group)
            .map(|i| i.drug_name.as_str())
            .collect();
        let listed: BTreeSet<&str> = g.drug_names.iter().map(String::as_str).collect();
        assert_eq!(
            names, listed,
            "every product of {} listed once",
            g.generic_name
        );
    }
    assert_eq!(h.last_record().await.items, "prescriptions");

    let open = h
        .medical
        .get_prescriptions(as_facility(
            &clinic(),
            GetPrescriptionsRequest {
                access,
                insured: Some(DEMO_PATIENT.insured()),
                open_only: true,
                ..Default::default()
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(open.groups.is_empty(), "not asked to group");
    assert!(open.prescriptions.iter().all(|p| matches!(
        PrescriptionState::try_from(p.state),
        Ok(PrescriptionState::Issued | PrescriptionState::PartlyDispensed)
    )));
    let expected = all
        .prescriptions
        .iter()
        .filter(|p| {
            p.state == PrescriptionState::Issued as i32
                || p.state == PrescriptionState::PartlyDispensed as i32
        })
        .count();
    assert_eq!(open.prescriptions.len(), expected);
}

#[tokio::test]
async fn drug_history_groups_by_ingredient() {
    let mut h = with_miyagi(start().await).await;
    let reply = h
        .medical
        .get_drug_history(as_facility(
            &clinic(),
            GetDrugHistoryRequest {
                group_by_ingredient: true,
                ..drugs(DEMO_PATIENT.insured(), known())
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    assert!(!reply.dispensings.is_empty());
    for d in &reply.dispensings {
        assert_eq!(d.ingredient_group, d.drug_code[..9]);
        let group = reply
            .groups
            .iter()
            .find(|g| g.ingredient_group == d.ingredient_group)
            .expect("its group");
        assert!(group.drug_names.contains(&d.drug_name));
        assert!(group.latest_date >= d.dispensing_date);
    }
    let latest: Vec<&str> = reply
        .groups
        .iter()
        .map(|g| g.latest_date.as_str())
        .collect();
    assert!(latest.windows(2).all(|w| w[0] >= w[1]));
}

/// The summary at a hospital in the disaster mode: each section in its window,
/// the same items the item calls give over that window, boundaries included.
#[tokio::test]
async fn summary_sections_hold_exactly_their_windows() {
    let mut h = with_miyagi(start().await).await;
    let access = ctx(Consent::patient(), AccessMode::Disaster);
    let s = h
        .medical
        .get_emergency_summary(as_facility(&hospital(), summary(access.clone())))
        .await
        .expect("allowed")
        .into_inner();
    let window_of = |info: &Option<SectionInfo>| {
        let w = info
            .as_ref()
            .and_then(|i| i.window.clone())
            .expect("window");
        (day(&w.from), day(&w.to))
    };
    let three_months = today().checked_sub_months(Months::new(3)).expect("date");
    let five_years = today().checked_sub_months(Months::new(60)).expect("date");
    let days_45 = today() - TimeDelta::days(45);
    assert_eq!(window_of(&s.visits_section), (three_months, today()));
    assert_eq!(window_of(&s.procedures_section), (three_months, today()));
    assert_eq!(window_of(&s.dialysis_section), (three_months, today()));
    assert_eq!(window_of(&s.dispensings_section), (three_months, today()));
    assert_eq!(window_of(&s.prescriptions_section), (days_45, today()));
    assert_eq!(window_of(&s.operations_section), (five_years, today()));
    let status = |info: &Option<SectionInfo>| info.as_ref().map_or(0, |i| i.status);
    assert_eq!(
        status(&s.qualification_section),
        SectionStatus::Complete as i32
    );
    assert_eq!(status(&s.dialysis_section), SectionStatus::Complete as i32);
    assert!(s.dialysis.as_ref().is_some_and(|d| d.on_dialysis));
    let q = s
        .qualification
        .as_ref()
        .and_then(|q| q.qualification.as_ref());
    assert_eq!(q.map(|q| q.name.as_str()), Some("山田 太郎"));

    // The same items as the item calls over a wider period, cut at the window.
    let wide = h
        .medical
        .get_clinical_information(as_facility(
            &hospital(),
            GetClinicalInformationRequest {
                page_size: 500,
                ..clinical(access.clone())
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    let dates_of =
        |items: &[ClinicalItem], want: fn(&clinical_item::Item) -> bool, from: NaiveDate| {
            items
                .iter()
                .filter(|i| i.item.as_ref().is_some_and(want))
                .map(|i| day(item_date(i)))
                .filter(|d| *d >= from)
                .collect::<Vec<_>>()
        };
    let visits = dates_of(
        &wide.items,
        |i| matches!(i, clinical_item::Item::Visit(_)),
        three_months,
    );
    let summary_visits: Vec<NaiveDate> = s.visits.iter().map(|v| day(&v.date)).collect();
    assert_eq!(summary_visits, visits);
    let procedures = dates_of(
        &wide.items,
        |i| matches!(i, clinical_item::Item::Procedure(_)),
        three_months,
    );
    let summary_procedures: Vec<NaiveDate> = s.procedures.iter().map(|p| day(&p.date)).collect();
    assert_eq!(summary_procedures, procedures);
    let operations = dates_of(
        &wide.items,
        |i| matches!(i, clinical_item::Item::Operation(_)),
        five_years,
    );
    let summary_operations: Vec<NaiveDate> = s.operations.iter().map(|o| day(&o.date)).collect();
    assert_eq!(summary_operations, operations);

    let rx = h
        .medical
        .get_prescriptions(as_facility(
            &hospital(),
            GetPrescriptionsRequest {
                access: access.clone(),
                insured: Some(DEMO_PATIENT.insured()),
                ..Default::default()
            },
        ))
        .await
        .expect("allowed")
        .into_inner();
    let recent_rx: Vec<&str> = rx
        .prescriptions
        .iter()
        .filter(|p| day(&p.issued_date) >= days_45)
        .map(|p| p.prescription_id.as_str())
        .collect();
    let summary_rx: Vec<&str> = s
        .prescriptions
        .iter()
        .map(|p| p.prescription_id.as_str())
        .collect();
    assert_eq!(summary_rx, recent_rx);
    let expected_status = if recent_rx.is_empty() {
        SectionStatus::Empty
    } else {
        SectionStatus::Complete
    };
    assert_eq!(status(&s.prescriptions_section), expected_status as i32);

    let drugs_reply = h
        .medical
        .get_drug_history(as_facility(
            &hospital(),
            drugs(DEMO_PATIENT.insured(), known()),
        ))
        .await
        .expect("allowed")
        .into_inner();
    let recent_drugs = drugs_reply
        .dispensings
        .iter()
        .filter(|d| day(&d.dispensing_date) >= three_months)
        .count();
    assert_eq!(s.dispensings.len(), recent_drugs);
    if let Some(c) = &s.latest_checkup {
        assert!(!c.key_items.is_empty() && c.key_items.len() <= 5);
    }

    // Audited as one view of the summary.
    h.medical
        .get_emergency_summary(as_facility(&hospital(), summary(access)))
        .await
        .expect("allowed");
    let r = h.last_record().await;
    assert_eq!(
        (r.method.as_str(), r.items.as_str()),
        ("GetEmergencySummary", "emergency_summary")
    );
    assert_eq!(r.decision, Decision::Allowed);
    assert!(
        r.activation_id.is_some(),
        "the disaster mode: under the activation"
    );
    let result = r.upstream_result.unwrap_or_default();
    assert!(result.starts_with("OK qualification=1 "), "{result}");
    assert!(result.contains("dialysis=1"), "{result}");
    assert_eq!(
        r.clinical.and_then(|c| c.access_mode).as_deref(),
        Some("disaster")
    );
}

/// A simulator with `failing` parts switched off, as the test's upstream.
async fn upstream_failing(failing: &[Part]) -> String {
    let population = Population::generate_at(7, POPULATION, today());
    let simulator = Simulator::new(Arc::new(population)).with_failing(failing);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(onshi_gateway::simulator::serve(
        listener,
        simulator,
        std::future::pending(),
    ));
    url
}

#[tokio::test]
async fn a_failed_part_makes_its_sections_unavailable_never_silently_empty() {
    let url = upstream_failing(&[Part::Prescriptions, Part::ClinicalInformation]).await;
    let mut h = with_miyagi(
        Harness::start_with(Options {
            now: now(),
            upstream: Some(url),
            ..Options::default()
        })
        .await,
    )
    .await;
    let s = h
        .medical
        .get_emergency_summary(as_facility(
            &hospital(),
            summary(ctx(Consent::patient(), AccessMode::Unspecified)),
        ))
        .await
        .expect("a partial summary is still an answer")
        .into_inner();
    for (name, info) in [
        ("prescriptions", &s.prescriptions_section),
        ("visits", &s.visits_section),
        ("procedures", &s.procedures_section),
        ("operations", &s.operations_section),
        ("dialysis", &s.dialysis_section),
    ] {
        let info = info.as_ref().expect(name);
        assert_eq!(info.status, SectionStatus::Unavailable as i32, "{name}");
        assert_eq!(info.unavailable_reason, "UPSTREAM_UNAVAILABLE", "{name}");
    }
    assert!(s.prescriptions.is_empty() && s.visits.is_empty() && s.dialysis.is_none());
    let ok = |info: &Option<SectionInfo>| info.as_ref().map(|i| i.status);
    assert_eq!(
        ok(&s.qualification_section),
        Some(SectionStatus::Complete as i32)
    );
    assert_ne!(
        ok(&s.dispensings_section),
        Some(SectionStatus::Unavailable as i32)
    );
    assert_ne!(
        ok(&s.checkup_section),
        Some(SectionStatus::Unavailable as i32)
    );
    let r = h.last_record().await;
    assert_eq!(r.decision, Decision::Allowed);
    let result = r.upstream_result.unwrap_or_default();
    assert!(result.contains("prescriptions=unavailable"), "{result}");
    assert!(result.contains("visits=unavailable"), "{result}");
}

#[tokio::test]
async fn a_summary_with_no_part_at_all_fails() {
    let url = upstream_failing(&[
        Part::Qualification,
        Part::DrugHistory,
        Part::Checkups,
        Part::ClinicalInformation,
        Part::Prescriptions,
    ])
    .await;
    let mut h = with_miyagi(
        Harness::start_with(Options {
            now: now(),
            upstream: Some(url),
            ..Options::default()
        })
        .await,
    )
    .await;
    denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(
                &hospital(),
                summary(ctx(Consent::patient(), AccessMode::Unspecified)),
            ))
            .await,
        Code::Unavailable,
        "UPSTREAM_UNAVAILABLE"
    );
    assert_eq!(h.last_record().await.decision, Decision::Failed);
}

#[tokio::test]
async fn an_unknown_patient_has_no_summary() {
    let mut h = with_miyagi(start().await).await;
    let request = GetEmergencySummaryRequest {
        insured: Some(InsuredNumber {
            number: "99999999".into(),
            ..DEMO_PATIENT.insured()
        }),
        ..summary(ctx(Consent::patient(), AccessMode::Unspecified))
    };
    denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(&hospital(), request))
            .await,
        Code::NotFound,
        "PATIENT_NOT_FOUND"
    );
}

/// Emergency viewing outside any activation: only registry-marked emergency
/// hospitals, only the summary, only under the exemption; flagged and marked.
#[tokio::test]
async fn emergency_viewing_at_its_edges() {
    let mut h = start().await;
    let viewing = || ctx(exemption(), AccessMode::EmergencyViewing);
    for hospital in [hospital(), noto_hospital()] {
        let s = h
            .medical
            .get_emergency_summary(as_facility(&hospital, summary(viewing())))
            .await
            .unwrap_or_else(|e| panic!("{hospital}: {e:?}"))
            .into_inner();
        assert!(s.dialysis.is_some_and(|d| d.on_dialysis));
        let r = h.last_record().await;
        assert_eq!(r.decision, Decision::Allowed);
        assert!(r.needs_review, "every emergency view is reviewed");
        assert_eq!(r.activation_id, None, "no activation is involved");
        assert!(r.is_emergency_viewing());
        assert_eq!(r.consent_basis.as_deref(), Some("life_or_body_exemption"));
    }
    // Facilities that are not emergency hospitals: a clinic, a pharmacy, one not in
    // the registry, an activated area changing nothing.
    for facility in [
        clinic(),
        fukushima_pharmacy(),
        facility(13, FacilityKind::Medical, 1099),
    ] {
        denied!(
            h,
            h.medical
                .get_emergency_summary(as_facility(&facility, summary(viewing())))
                .await,
            Code::PermissionDenied,
            "EMERGENCY_VIEWING_FACILITY_NOT_ELIGIBLE"
        );
        let r = h.last_record().await;
        assert!(r.is_emergency_viewing(), "the attempt is marked");
    }
    // Only the summary.
    denied!(
        h,
        h.medical
            .get_drug_history(as_facility(
                &hospital(),
                GetDrugHistoryRequest {
                    access: viewing(),
                    ..drugs(DEMO_PATIENT.insured(), known())
                }
            ))
            .await,
        Code::PermissionDenied,
        "EMERGENCY_VIEWING_SUMMARY_ONLY"
    );
    denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(
                &hospital(),
                LookupQualificationRequest {
                    access: viewing(),
                    ..lookup(DEMO_PATIENT.insured())
                }
            ))
            .await,
        Code::PermissionDenied,
        "EMERGENCY_VIEWING_SUMMARY_ONLY"
    );
    // Only under the exemption.
    let status = denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(
                &hospital(),
                summary(ctx(Consent::patient(), AccessMode::EmergencyViewing))
            ))
            .await,
        Code::PermissionDenied,
        "EMERGENCY_VIEWING_REQUIRES_EXEMPTION"
    );
    assert_eq!(bad_field(&status), "access.consent.basis");
    // The exemption's own requirements still hold.
    denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(
                &hospital(),
                summary(ctx(
                    Consent {
                        exemption_reason: String::new(),
                        ..exemption()
                    },
                    AccessMode::EmergencyViewing
                ))
            ))
            .await,
        Code::InvalidArgument,
        "EXEMPTION_REASON_MISSING"
    );
    // Outside the mode, the activation rules are as before: no activation, no view.
    denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(
                &hospital(),
                summary(ctx(exemption(), AccessMode::Disaster))
            ))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED"
    );
    let status = denied!(
        h,
        h.medical
            .get_emergency_summary(as_facility(
                &hospital(),
                summary(ctx(exemption(), AccessMode::Unspecified).map(|mut a| {
                    a.mode = 7;
                    a
                }))
            ))
            .await,
        Code::InvalidArgument,
        "ACCESS_MODE_UNKNOWN"
    );
    assert_eq!(bad_field(&status), "access.mode");
}

#[tokio::test]
async fn the_patient_sees_the_new_items_in_their_access_history() {
    let mut h = with_miyagi(start().await).await;
    let access = ctx(Consent::patient(), AccessMode::Unspecified);
    h.medical
        .get_clinical_information(as_facility(&clinic(), clinical(access.clone())))
        .await
        .expect("allowed");
    h.medical
        .get_emergency_summary(as_facility(
            &hospital(),
            summary(ctx(exemption(), AccessMode::EmergencyViewing)),
        ))
        .await
        .expect("allowed");
    let request = Request::new(QueryPatientAccessesRequest {
        patient: Some(DEMO_PATIENT.insured()),
        ..Default::default()
    });
    let mut pages = audit_client(&h)
        .await
        .query_patient_accesses(request)
        .await
        .expect("the history is readable")
        .into_inner();
    let mut accesses = Vec::new();
    while let Some(page) = pages.message().await.expect("page") {
        accesses.extend(page.accesses);
    }
    let items: Vec<(&str, bool)> = accesses
        .iter()
        .map(|a| (a.items.as_str(), a.emergency_viewing))
        .collect();
    assert!(
        items.contains(&("clinical_information", false)),
        "{items:?}"
    );
    assert!(items.contains(&("emergency_summary", true)), "{items:?}");
}

async fn audit_client(h: &Harness) -> AuditServiceClient<Channel> {
    let admin = h.gateway.admin_addr.expect("admin listener");
    let channel = Channel::from_shared(format!("http://{admin}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    AuditServiceClient::new(channel)
}

#[tokio::test]
async fn the_qualification_carries_the_oqs_vocabulary_typed() {
    use onshi_gateway::simulator::fixtures::DEMO_SPOUSE;
    let mut h = with_miyagi(start().await).await;
    let reply = h
        .qualification
        .lookup_qualification(as_facility(&clinic(), lookup(DEMO_PATIENT.insured())))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    let q = reply.qualification.expect("qualification");
    assert_eq!(q.personal_family, PersonalFamily::Personal as i32);
    assert!(!q.dependant);
    // On dialysis: the specified-disease certificate, typed and named.
    assert_eq!(q.specified_diseases.len(), 1);
    assert_eq!(
        q.specified_diseases[0].disease,
        SpecifiedDisease::ChronicRenalFailureDialysis as i32
    );
    assert!(q.certificates.iter().any(|c| c == "特定疾病療養受療証"));
    assert_eq!(
        q.public_expenses.first().map(|p| p.law_code.as_str()),
        Some("15")
    );
    let spouse = h
        .qualification
        .lookup_qualification(as_facility(&clinic(), lookup(DEMO_SPOUSE.insured())))
        .await
        .expect("allowed")
        .into_inner()
        .qualification
        .expect("qualification");
    assert_eq!(spouse.personal_family, PersonalFamily::Family as i32);
    assert!(spouse.dependant);
    // The summary's qualification is the same typed answer.
    let s = h
        .medical
        .get_emergency_summary(as_facility(
            &hospital(),
            summary(ctx(Consent::patient(), AccessMode::Unspecified)),
        ))
        .await
        .expect("allowed")
        .into_inner();
    let typed = s
        .qualification
        .and_then(|q| q.qualification)
        .expect("qualification");
    assert_eq!(typed.specified_diseases, q.specified_diseases);
}

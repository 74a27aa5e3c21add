//! The audit service as operators, a facility's administrator and a patient use it:
//! each view's filters, its limits, paging, and refused queries.

mod common;

use common::*;
use onshi_gateway::proto::audit_service_client::AuditServiceClient;
use onshi_gateway::proto::*;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

struct Scenario {
    h: Harness,
    audit: AuditServiceClient<Channel>,
    insured: InsuredNumber,
}

fn ts(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn exemption_drugs(insured: InsuredNumber) -> GetDrugHistoryRequest {
    let mut r = drugs(insured, known());
    if let Some(a) = r.access.as_mut() {
        a.consent = Some(Consent {
            basis: ConsentBasis::LifeOrBodyExemption as i32,
            exemption_reason: "意識不明で搬送".into(),
            exemption_identification: ExemptionIdentification::IdDocument as i32,
            // As a client from before the reason category.
            ..Consent::default()
        });
    }
    r
}

/// Five calls a minute apart from 10:00 JST on 2022-03-20: a Miyagi search (allowed),
/// a Miyagi lookup (allowed), a Tokyo lookup (AREA_NOT_ACTIVATED), a Miyagi drug
/// history under the exemption (allowed, for review), a Fukushima lookup without
/// consent (CONSENT_BASIS_MISSING).
async fn scenario() -> Scenario {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let miyagi = miyagi_clinic();
    h.clock.set(jst_at(2022, 3, 20, 10, 0));
    let (_, insured) = h.search_demo_patient(&miyagi).await;
    h.clock.set(jst_at(2022, 3, 20, 10, 1));
    h.qualification
        .lookup_qualification(as_facility(&miyagi, lookup(insured.clone())))
        .await
        .expect("allowed");
    h.clock.set(jst_at(2022, 3, 20, 10, 2));
    h.qualification
        .lookup_qualification(as_facility(&tokyo_clinic(), lookup(insured.clone())))
        .await
        .expect_err("Tokyo is not activated");
    h.clock.set(jst_at(2022, 3, 20, 10, 3));
    h.medical
        .get_drug_history(as_facility(&miyagi, exemption_drugs(insured.clone())))
        .await
        .expect("exemption allowed");
    h.clock.set(jst_at(2022, 3, 20, 10, 4));
    let mut no_consent = lookup(insured.clone());
    if let Some(a) = no_consent.access.as_mut() {
        a.consent = None;
    }
    h.qualification
        .lookup_qualification(as_facility(&fukushima_pharmacy(), no_consent))
        .await
        .expect_err("no consent");
    let admin = h.gateway.admin_addr.expect("admin listener");
    let channel = Channel::from_shared(format!("http://{admin}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    Scenario {
        h,
        audit: AuditServiceClient::new(channel),
        insured,
    }
}

async fn pages<T>(
    call: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> Result<Vec<T>, tonic::Status> {
    let mut stream = call?.into_inner();
    let mut out = Vec::new();
    while let Some(page) = stream.next().await {
        out.push(page?);
    }
    Ok(out)
}

async fn entries(s: &mut Scenario, request: QueryAccessLogRequest) -> Vec<AccessLogEntry> {
    pages(s.audit.query_access_log(request).await)
        .await
        .expect("query answered")
        .into_iter()
        .flat_map(|p| p.entries)
        .collect()
}

fn methods(entries: &[AccessLogEntry]) -> Vec<(&str, &str)> {
    entries
        .iter()
        .map(|e| (e.method.as_str(), e.facility_code.as_str()))
        .collect()
}

#[tokio::test]
async fn operators_filter_by_facility_decision_reason_consent_and_review() {
    let mut s = scenario().await;
    let miyagi = miyagi_clinic().to_string();
    let all = entries(&mut s, QueryAccessLogRequest::default()).await;
    assert_eq!(all.len(), 5);
    // Oldest first, each with its place in the chain.
    let seconds = |e: &AccessLogEntry| e.at.as_ref().map(|t| t.seconds);
    assert!(all.windows(2).all(|w| seconds(&w[0]) < seconds(&w[1])));
    assert!(all.iter().all(|e| e.hash.len() == 64 && e.seq >= 1));

    let by_facility = entries(
        &mut s,
        QueryAccessLogRequest {
            facility_code: miyagi.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        methods(&by_facility),
        vec![
            ("SearchPatients", miyagi.as_str()),
            ("LookupQualification", miyagi.as_str()),
            ("GetDrugHistory", miyagi.as_str())
        ]
    );

    let denied = entries(
        &mut s,
        QueryAccessLogRequest {
            decision: AccessDecision::Denied as i32,
            ..Default::default()
        },
    )
    .await;
    let reasons: Vec<&str> = denied.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, vec!["AREA_NOT_ACTIVATED", "CONSENT_BASIS_MISSING"]);

    let by_reason = entries(
        &mut s,
        QueryAccessLogRequest {
            reason: "CONSENT_BASIS_MISSING".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_reason.len(), 1);
    assert_eq!(by_reason[0].facility_code, fukushima_pharmacy().to_string());

    let exempted = entries(
        &mut s,
        QueryAccessLogRequest {
            consent_basis: ConsentBasis::LifeOrBodyExemption as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        methods(&exempted),
        vec![("GetDrugHistory", miyagi.as_str())]
    );
    assert_eq!(exempted[0].exemption_reason, "意識不明で搬送");
    assert_eq!(
        exempted[0].exemption_identification,
        ExemptionIdentification::IdDocument as i32
    );

    let queue = pages(
        s.audit
            .list_exemption_reviews(ListExemptionReviewsRequest::default())
            .await,
    )
    .await
    .expect("review queue");
    let queue: Vec<AccessLogEntry> = queue.into_iter().flat_map(|p| p.entries).collect();
    assert_eq!(queue.len(), 1);
    assert!(queue[0].needs_review);
    assert_eq!(queue[0].staff_id, exempted[0].staff_id);

    let patient = Some(s.insured.clone());
    let by_patient = entries(
        &mut s,
        QueryAccessLogRequest {
            patient,
            ..Default::default()
        },
    )
    .await;
    // The search named no patient but listed him among its candidates. The Tokyo
    // call was refused before the patient was identified (activation comes first),
    // so it is keyed to no one; the Fukushima call was refused after, and is his.
    let miyagi_ref = miyagi.as_str();
    let fukushima = fukushima_pharmacy().to_string();
    assert_eq!(
        methods(&by_patient),
        vec![
            ("SearchPatients", miyagi_ref),
            ("LookupQualification", miyagi_ref),
            ("GetDrugHistory", miyagi_ref),
            ("LookupQualification", fukushima.as_str())
        ]
    );

    let activation = by_facility[1].activation_id.clone();
    assert!(!activation.is_empty());
    let by_activation = entries(
        &mut s,
        QueryAccessLogRequest {
            activation_id: activation,
            ..Default::default()
        },
    )
    .await;
    assert!(
        by_activation
            .iter()
            .all(|e| e.facility_code != tokyo_clinic().to_string())
    );
    assert!(by_activation.len() >= 3);
}

#[tokio::test]
async fn the_time_range_includes_its_first_instant_and_excludes_its_end() {
    let mut s = scenario().await;
    let range = |from, until| QueryAccessLogRequest {
        time: Some(TimeRange {
            from: Some(ts(from)),
            until: Some(ts(until)),
        }),
        ..Default::default()
    };
    let got = entries(
        &mut s,
        range(jst_at(2022, 3, 20, 10, 1), jst_at(2022, 3, 20, 10, 3)),
    )
    .await;
    let minutes: Vec<i64> = got
        .iter()
        .map(|e| e.at.as_ref().expect("at").seconds)
        .collect();
    assert_eq!(
        minutes,
        vec![
            jst_at(2022, 3, 20, 10, 1).timestamp(),
            jst_at(2022, 3, 20, 10, 2).timestamp()
        ]
    );
    let status = s
        .audit
        .query_access_log(range(
            jst_at(2022, 3, 20, 10, 3),
            jst_at(2022, 3, 20, 10, 3),
        ))
        .await
        .expect_err("empty range refused");
    assert_denied::<()>(
        Err(status.clone()),
        Code::InvalidArgument,
        "QUERY_TIME_RANGE_INVALID",
    );
    assert_eq!(bad_field(&status), "time.until");
}

#[tokio::test]
async fn a_facility_administrator_sees_only_their_facility() {
    let mut s = scenario().await;
    let tokyo = tokyo_clinic().to_string();
    let got = pages(
        s.audit
            .query_facility_access_log(QueryFacilityAccessLogRequest {
                facility_code: tokyo.clone(),
                ..Default::default()
            })
            .await,
    )
    .await
    .expect("answered");
    let got: Vec<AccessLogEntry> = got.into_iter().flat_map(|p| p.entries).collect();
    assert_eq!(got.len(), 1);
    assert!(got.iter().all(|e| e.facility_code == tokyo));
    assert_eq!(got[0].reason, "AREA_NOT_ACTIVATED");

    let status = s
        .audit
        .query_facility_access_log(QueryFacilityAccessLogRequest::default())
        .await
        .expect_err("the facility is required");
    assert_denied::<()>(
        Err(status.clone()),
        Code::InvalidArgument,
        "QUERY_FILTER_INVALID",
    );
    assert_eq!(bad_field(&status), "facility_code");
}

/// Calls that showed the scenario's patient nothing: a search that found no one,
/// and a lookup of their number whose birth date did not match.
async fn disclosing_nothing(s: &mut Scenario) {
    let miyagi = miyagi_clinic();
    s.h.clock.set(jst_at(2022, 3, 20, 10, 5));
    let none =
        s.h.qualification
            .search_patients(as_facility(
                &miyagi,
                search_request("存在 しない", "1901-01-01", Sex::Female, "", "石巻"),
            ))
            .await
            .expect("search allowed")
            .into_inner();
    assert!(none.candidates.is_empty(), "{none:?}");
    s.h.clock.set(jst_at(2022, 3, 20, 10, 6));
    let mut mismatch = lookup(s.insured.clone());
    mismatch.birth_date = "1901-01-01".into();
    let reply =
        s.h.qualification
            .lookup_qualification(as_facility(&miyagi, mismatch))
            .await
            .expect("allowed")
            .into_inner();
    assert_eq!(reply.status, QualificationStatus::NotFound as i32);
}

#[tokio::test]
async fn a_patient_sees_which_facilities_viewed_what_and_on_which_basis() {
    let mut s = scenario().await;
    disclosing_nothing(&mut s).await;
    let got = pages(
        s.audit
            .query_patient_accesses(QueryPatientAccessesRequest {
                patient: Some(s.insured.clone()),
                ..Default::default()
            })
            .await,
    )
    .await
    .expect("answered");
    let got: Vec<PatientAccess> = got.into_iter().flat_map(|p| p.accesses).collect();
    // Only the views that showed their data: the search that listed them among its
    // candidates, the lookup by their number and the drug history. The Tokyo and
    // Fukushima denials, the search that found no one and the lookup that did not
    // match showed nothing.
    let seen: Vec<(&str, &str, i32)> = got
        .iter()
        .map(|a| (a.facility_code.as_str(), a.items.as_str(), a.consent_basis))
        .collect();
    let miyagi = miyagi_clinic().to_string();
    assert_eq!(
        seen,
        vec![
            (
                miyagi.as_str(),
                "candidates",
                ConsentBasis::PatientConsent as i32
            ),
            (
                miyagi.as_str(),
                "qualification",
                ConsentBasis::PatientConsent as i32
            ),
            (
                miyagi.as_str(),
                "drug_history",
                ConsentBasis::LifeOrBodyExemption as i32
            ),
        ]
    );
    // Each access names its record, which the operators' view knows.
    let all = entries(&mut s, QueryAccessLogRequest::default()).await;
    for a in &got {
        assert!(all.iter().any(|e| e.record_id == a.record_id));
    }

    // Another patient of the same card (the spouse, branch 01) sees nothing of his.
    let mut spouse = s.insured.clone();
    spouse.branch = "01".into();
    let none = pages(
        s.audit
            .query_patient_accesses(QueryPatientAccessesRequest {
                patient: Some(spouse),
                ..Default::default()
            })
            .await,
    )
    .await
    .expect("answered");
    assert!(none.iter().all(|p| p.accesses.is_empty()));

    let mut wrong = s.insured.clone();
    let last = wrong.insurer_number.pop().expect("digit");
    wrong
        .insurer_number
        .push(if last == '0' { '1' } else { '0' });
    let status = s
        .audit
        .query_patient_accesses(QueryPatientAccessesRequest {
            patient: Some(wrong),
            ..Default::default()
        })
        .await
        .expect_err("a wrong check digit is refused");
    assert_denied::<()>(
        Err(status.clone()),
        Code::InvalidArgument,
        "INSURER_NUMBER_CHECK_DIGIT",
    );
    assert_eq!(bad_field(&status), "patient.insurer_number");
    let status = s
        .audit
        .query_patient_accesses(QueryPatientAccessesRequest::default())
        .await
        .expect_err("the patient is required");
    assert_denied::<()>(Err(status), Code::InvalidArgument, "QUERY_FILTER_INVALID");
}

#[tokio::test]
async fn results_stream_in_bounded_pages_and_resume_from_the_token() {
    let mut s = scenario().await;
    let paged = |page_size, max_records, page_token: &str| QueryAccessLogRequest {
        paging: Some(Paging {
            page_size,
            max_records,
            page_token: page_token.into(),
        }),
        ..Default::default()
    };
    let first = pages(s.audit.query_access_log(paged(2, 3, "")).await)
        .await
        .expect("answered");
    let sizes: Vec<usize> = first.iter().map(|p| p.entries.len()).collect();
    assert_eq!(sizes, vec![2, 1]);
    assert!(first[0].next_page_token.is_empty());
    let token = first[1].next_page_token.clone();
    assert!(
        !token.is_empty(),
        "more remain: the last page says where to resume"
    );

    let rest = pages(s.audit.query_access_log(paged(2, 3, &token)).await)
        .await
        .expect("answered");
    let rest_entries: Vec<&AccessLogEntry> = rest.iter().flat_map(|p| &p.entries).collect();
    // The two accesses left, then the record of the first read (every read of the
    // log by an operator is logged).
    assert_eq!(rest_entries.len(), 3);
    assert_eq!(rest_entries[2].kind, "audit_read");
    assert_eq!(rest_entries[2].result_count, 3);
    assert!(rest.last().expect("page").next_page_token.is_empty());
    // Together, every record exactly once, in order; then the second read's record.
    let all = entries(&mut s, QueryAccessLogRequest::default()).await;
    let joined: Vec<&str> = first
        .iter()
        .flat_map(|p| &p.entries)
        .chain(rest_entries)
        .map(|e| e.record_id.as_str())
        .collect();
    let expected: Vec<&str> = all.iter().map(|e| e.record_id.as_str()).collect();
    assert_eq!(joined, expected[..joined.len()]);
    assert_eq!(all.len(), joined.len() + 1);
    assert_eq!(all[joined.len()].kind, "audit_read");

    for (request, reason, field) in [
        (paged(1001, 0, ""), "PAGE_SIZE_INVALID", "paging.page_size"),
        (
            paged(0, 10_001, ""),
            "PAGE_SIZE_INVALID",
            "paging.max_records",
        ),
        (
            paged(0, 0, "not-a-token"),
            "PAGE_TOKEN_INVALID",
            "paging.page_token",
        ),
    ] {
        let status = s
            .audit
            .query_access_log(request)
            .await
            .expect_err("refused");
        assert_denied::<()>(Err(status.clone()), Code::InvalidArgument, reason);
        assert_eq!(bad_field(&status), field);
    }
    // Just the bounds are accepted.
    pages(s.audit.query_access_log(paged(1000, 10_000, "")).await)
        .await
        .expect("the largest page and call are allowed");
    let _ = &s.h;
}

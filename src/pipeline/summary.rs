//! The emergency summary's endpoint: one call composed of the item calls, each over
//! the window 救急時医療情報閲覧 uses (visits, procedures, dialysis and drugs 3
//! months; e-prescriptions 45 days; operations 5 years; the latest check-up), sent
//! upstream together. A part that fails makes its sections UNAVAILABLE, named with
//! the reason, never silently missing; the call fails only when every part does,
//! or when the upstream does not know the patient.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{Months, NaiveDate, TimeDelta};
use tonic::{Request, Response, Status};
use tower::Service;

use crate::clock::SharedClock;
use crate::domain::jst::today_jst;
use crate::domain::{Reason, Violation};
use crate::pipeline::Note;
use crate::pipeline::deadline::WorkDeadline;
use crate::pipeline::forward::{Forward, Forwardable};
use crate::proto::{
    AccessContext, ClinicalCategory, Dialysis, GetClinicalInformationRequest,
    GetClinicalInformationResponse, GetDrugHistoryRequest, GetDrugHistoryResponse,
    GetEmergencySummaryRequest, GetEmergencySummaryResponse, GetHealthCheckupsRequest,
    GetHealthCheckupsResponse, GetPrescriptionsRequest, GetPrescriptionsResponse, InsuredNumber,
    LatestCheckup, LookupQualificationRequest, LookupQualificationResponse, Period, SectionInfo,
    SectionStatus, clinical_item::Item,
};
use crate::status::status_of;

/// The windows of 救急時医療情報閲覧, each `[today − span, today]`, both ends
/// inclusive, as the default periods of the item calls are.
pub const RECENT_MONTHS: u32 = 3;
pub const PRESCRIPTION_DAYS: i64 = 45;
pub const OPERATION_YEARS: u32 = 5;
/// The latest check-up is looked for over the check-ups' normal look-back.
pub const CHECKUP_YEARS: u32 = 5;
/// Items per section at most: far above three months of anyone's claims.
pub const SECTION_ITEMS: i32 = 500;

/// Key values of a specific health check-up (JLAC10): BMI, blood pressure, HbA1c, LDL.
pub const KEY_CHECKUP_CODES: [&str; 5] = [
    "9N011000000000001",
    "9A755000000000001",
    "9A765000000000001",
    "3D046000001906202",
    "3F077000002327101",
];

#[derive(Clone)]
pub struct Summary {
    forward: Forward,
    clock: SharedClock,
}

impl Summary {
    pub fn new(forward: Forward, clock: SharedClock) -> Self {
        Summary { forward, clock }
    }
}

/// The window of `months` (or `days`) up to `today`.
pub fn window(today: NaiveDate, months: u32, days: i64) -> Period {
    let from = today
        .checked_sub_months(Months::new(months))
        .and_then(|d| d.checked_sub_signed(TimeDelta::days(days)))
        .unwrap_or(NaiveDate::MIN);
    Period {
        from: from.to_string(),
        to: today.to_string(),
    }
}

type Reply = Response<GetEmergencySummaryResponse>;

impl Service<Request<GetEmergencySummaryRequest>> for Summary {
    type Response = Reply;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Status>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<GetEmergencySummaryRequest>) -> Self::Future {
        let note = Note::of(&mut req);
        let parts = Parts {
            forward: self.forward.clone(),
            work: req.extensions().get::<WorkDeadline>().copied(),
            timeout: req.metadata().get("grpc-timeout").cloned(),
        };
        let today = today_jst(self.clock.now());
        Box::pin(compose(parts, note, req.into_inner(), today))
    }
}

/// What each part's request carries of the caller's: its deadline.
struct Parts {
    forward: Forward,
    work: Option<WorkDeadline>,
    timeout: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Parts {
    /// One part through the forwarder (circuit, retries, deadline), with a note of
    /// its own: its failure is the part's, not the call's.
    async fn get<M: Forwardable>(&self, message: M) -> Result<M::Reply, Reason> {
        let mut sub = Request::new(message);
        if let Some(work) = self.work {
            sub.extensions_mut().insert(work);
        }
        if let Some(t) = &self.timeout {
            sub.metadata_mut().insert("grpc-timeout", t.clone());
        }
        let note = Note::of(&mut sub);
        match self.forward.clone().call(sub).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(_) => Err(note.lock().reason.unwrap_or(Reason::UpstreamError)),
        }
    }
}

async fn compose(
    parts: Parts,
    note: Note,
    r: GetEmergencySummaryRequest,
    today: NaiveDate,
) -> Result<Reply, Status> {
    note.lock().forwarded = true;
    let fetched = fetch(&parts, r.access, r.insured, today).await;
    if let Some(refused) = refusal(&fetched.failures()) {
        let mut n = note.lock();
        n.reason = Some(refused.reason);
        n.upstream_result = Some(format!("{:?}", crate::status::code_of(refused.reason)));
        return Err(status_of(&refused));
    }
    let s = fetched.assemble(today);
    note.lock().upstream_result = Some(format!("OK {}", summary_of(&s)));
    Ok(Response::new(s))
}

/// Each part's answer, or the reason it failed.
struct Fetched {
    qualification: Result<LookupQualificationResponse, Reason>,
    /// Visits, procedures and dialysis over the recent window.
    near: Result<GetClinicalInformationResponse, Reason>,
    operations: Result<GetClinicalInformationResponse, Reason>,
    prescriptions: Result<GetPrescriptionsResponse, Reason>,
    drugs: Result<GetDrugHistoryResponse, Reason>,
    checkups: Result<GetHealthCheckupsResponse, Reason>,
}

/// Every part at once, each over its window.
async fn fetch(
    parts: &Parts,
    access: Option<AccessContext>,
    insured: Option<InsuredNumber>,
    today: NaiveDate,
) -> Fetched {
    let recent = window(today, RECENT_MONTHS, 0);
    let clinical =
        |period: Period, categories: Vec<ClinicalCategory>| GetClinicalInformationRequest {
            access: access.clone(),
            insured: insured.clone(),
            period: Some(period),
            categories: categories.into_iter().map(|c| c as i32).collect(),
            page_size: SECTION_ITEMS,
            page_token: String::new(),
        };
    use ClinicalCategory::{Dialysis as D, Operations, Procedures, Visits};
    let (qualification, near, operations, prescriptions, drugs, checkups) = tokio::join!(
        parts.get(LookupQualificationRequest {
            access: access.clone(),
            insured: insured.clone(),
            birth_date: String::new(),
        }),
        parts.get(clinical(recent.clone(), vec![Procedures, D, Visits])),
        parts.get(clinical(
            window(today, OPERATION_YEARS * 12, 0),
            vec![Operations]
        )),
        parts.get(GetPrescriptionsRequest {
            access: access.clone(),
            insured: insured.clone(),
            period: Some(window(today, 0, PRESCRIPTION_DAYS)),
            ..Default::default()
        }),
        parts.get(GetDrugHistoryRequest {
            access: access.clone(),
            insured: insured.clone(),
            period: Some(recent.clone()),
            ..Default::default()
        }),
        parts.get(GetHealthCheckupsRequest {
            access: access.clone(),
            insured: insured.clone(),
            period: Some(window(today, CHECKUP_YEARS * 12, 0)),
        }),
    );
    Fetched {
        qualification,
        near,
        operations,
        prescriptions,
        drugs,
        checkups,
    }
}

impl Fetched {
    fn failures(&self) -> [Option<&Reason>; 6] {
        [
            self.qualification.as_ref().err(),
            self.near.as_ref().err(),
            self.operations.as_ref().err(),
            self.prescriptions.as_ref().err(),
            self.drugs.as_ref().err(),
            self.checkups.as_ref().err(),
        ]
    }

    /// The summary: each section from its part, with its state and window.
    fn assemble(self, today: NaiveDate) -> GetEmergencySummaryResponse {
        let recent = window(today, RECENT_MONTHS, 0);
        let mut s = GetEmergencySummaryResponse::default();
        let q = self.qualification.map(|q| (q.qualification.is_some(), q));
        s.qualification_section = Some(section(&q, |(found, _)| *found, &Period::default()));
        s.qualification = q.ok().map(|(_, q)| q);
        fill_near(&mut s, self.near, &recent);
        let more_operations = has_more(&self.operations);
        let operations = self.operations.map(|o| {
            o.items
                .into_iter()
                .filter_map(|i| match i.item {
                    Some(Item::Operation(o)) => Some(o),
                    _ => None,
                })
                .collect::<Vec<_>>()
        });
        let ops_window = window(today, OPERATION_YEARS * 12, 0);
        s.operations_section = Some(partial_if(
            more_operations,
            section(&operations, |o| !o.is_empty(), &ops_window),
        ));
        s.operations = operations.unwrap_or_default();
        let rx = self.prescriptions.map(|p| p.prescriptions);
        let rx_window = window(today, 0, PRESCRIPTION_DAYS);
        s.prescriptions_section = Some(section(&rx, |p| !p.is_empty(), &rx_window));
        s.prescriptions = rx.unwrap_or_default();
        let drugs = self.drugs.map(|d| d.dispensings);
        s.dispensings_section = Some(section(&drugs, |d| !d.is_empty(), &recent));
        s.dispensings = drugs.unwrap_or_default();
        let checkup_window = window(today, CHECKUP_YEARS * 12, 0);
        let checkups = self.checkups;
        s.checkup_section = Some(section(
            &checkups,
            |c| !c.checkups.is_empty(),
            &checkup_window,
        ));
        s.latest_checkup = checkups.ok().and_then(latest_checkup);
        s
    }
}

/// The call's refusal: the upstream does not know the patient (a summary of
/// nothing would mislead), or no part could be fetched at all.
fn refusal(failures: &[Option<&Reason>]) -> Option<Violation> {
    if failures
        .iter()
        .any(|f| f == &Some(&Reason::PatientNotFound))
    {
        return Some(Violation::new(
            Reason::PatientNotFound,
            "",
            "the upstream OQS has no insured person with this number",
        ));
    }
    let all_failed = failures.iter().all(Option::is_some);
    let first = failures.iter().flatten().next()?;
    all_failed.then(|| {
        Violation::new(
            **first,
            "",
            "no part of the emergency summary could be fetched from the upstream OQS",
        )
    })
}

/// Visits, procedures and dialysis: one part over the recent window.
fn fill_near(
    s: &mut GetEmergencySummaryResponse,
    near: Result<GetClinicalInformationResponse, Reason>,
    recent: &Period,
) {
    let visits = near.as_ref().map_err(|r| *r).map(|n| {
        n.items
            .iter()
            .filter_map(|i| match &i.item {
                Some(Item::Visit(v)) => Some(v.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let procedures = near.as_ref().map_err(|r| *r).map(|n| {
        n.items
            .iter()
            .filter_map(|i| match &i.item {
                Some(Item::Procedure(p)) => Some(p.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let more = has_more(&near);
    let dialysis = near.map(|n| n.dialysis.unwrap_or_default());
    s.visits_section = Some(partial_if(
        more,
        section(&visits, |v: &Vec<_>| !v.is_empty(), recent),
    ));
    s.procedures_section = Some(partial_if(
        more,
        section(&procedures, |p: &Vec<_>| !p.is_empty(), recent),
    ));
    s.dialysis_section = Some(section(&dialysis, |d: &Dialysis| d.on_dialysis, recent));
    s.visits = visits.unwrap_or_default();
    s.procedures = procedures.unwrap_or_default();
    s.dialysis = dialysis.ok();
}

/// A section's state: COMPLETE with something in it, EMPTY without, UNAVAILABLE
/// with the reason its part failed.
fn section<T>(part: &Result<T, Reason>, has: impl Fn(&T) -> bool, window: &Period) -> SectionInfo {
    let (status, unavailable_reason) = match part {
        Ok(v) if has(v) => (SectionStatus::Complete, String::new()),
        Ok(_) => (SectionStatus::Empty, String::new()),
        Err(reason) => (SectionStatus::Unavailable, reason.as_str().to_string()),
    };
    SectionInfo {
        status: status as i32,
        window: (!window.to.is_empty()).then(|| window.clone()),
        unavailable_reason,
    }
}

/// Whether the upstream had more items than the one page a section takes.
fn has_more(part: &Result<GetClinicalInformationResponse, Reason>) -> bool {
    part.as_ref().is_ok_and(|p| !p.next_page_token.is_empty())
}

/// A section with items beyond its page is PARTIAL, never COMPLETE: a summary is
/// never silently partial.
fn partial_if(more: bool, mut info: SectionInfo) -> SectionInfo {
    if more && info.status == SectionStatus::Complete as i32 {
        info.status = SectionStatus::Partial as i32;
    }
    info
}

/// The newest check-up's date and key values.
fn latest_checkup(reply: GetHealthCheckupsResponse) -> Option<LatestCheckup> {
    let latest = reply
        .checkups
        .into_iter()
        .max_by(|a, b| a.checkup_date.cmp(&b.checkup_date))?;
    Some(LatestCheckup {
        checkup_date: latest.checkup_date,
        key_items: latest
            .items
            .into_iter()
            .filter(|i| KEY_CHECKUP_CODES.contains(&i.code.as_str()))
            .collect(),
    })
}

/// An identifier-free line for the access log: each section's count or state.
pub fn summary_of(s: &GetEmergencySummaryResponse) -> String {
    let state = |info: &Option<SectionInfo>, count: usize| {
        let status = info.as_ref().map_or(0, |i| i.status);
        if status == SectionStatus::Unavailable as i32 {
            "unavailable".to_string()
        } else {
            count.to_string()
        }
    };
    let on_dialysis = s.dialysis.as_ref().is_some_and(|d| d.on_dialysis);
    format!(
        "qualification={} visits={} prescriptions={} dispensings={} operations={} procedures={} dialysis={} checkup={}",
        state(
            &s.qualification_section,
            usize::from(
                s.qualification
                    .as_ref()
                    .is_some_and(|q| q.qualification.is_some())
            )
        ),
        state(&s.visits_section, s.visits.len()),
        state(&s.prescriptions_section, s.prescriptions.len()),
        state(&s.dispensings_section, s.dispensings.len()),
        state(&s.operations_section, s.operations.len()),
        state(&s.procedures_section, s.procedures.len()),
        state(&s.dialysis_section, usize::from(on_dialysis)),
        state(&s.checkup_section, usize::from(s.latest_checkup.is_some())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_end_today_and_reach_back_inclusively() {
        let today = NaiveDate::from_ymd_opt(2024, 5, 31).unwrap();
        let w = window(today, RECENT_MONTHS, 0);
        assert_eq!(
            (w.from.as_str(), w.to.as_str()),
            ("2024-02-29", "2024-05-31")
        );
        let w = window(today, 0, PRESCRIPTION_DAYS);
        assert_eq!(w.from, "2024-04-16");
        let w = window(today, OPERATION_YEARS * 12, 0);
        assert_eq!(w.from, "2019-05-31");
    }

    #[test]
    fn only_an_unknown_patient_or_a_total_failure_fails_the_call() {
        let down = Reason::UpstreamUnavailable;
        let unknown = Reason::PatientNotFound;
        assert_eq!(refusal(&[None, Some(&down), None]), None);
        assert_eq!(
            refusal(&[Some(&down), Some(&down)]).map(|v| v.reason),
            Some(down)
        );
        assert_eq!(
            refusal(&[None, Some(&unknown)]).map(|v| v.reason),
            Some(unknown)
        );
        assert_eq!(refusal(&[None, None]), None);
    }

    #[test]
    fn a_failed_part_is_unavailable_with_its_reason() {
        let w = window(NaiveDate::from_ymd_opt(2024, 1, 10).unwrap(), 3, 0);
        let failed: Result<Vec<u8>, Reason> = Err(Reason::UpstreamTimeout);
        let info = section(&failed, |v| !v.is_empty(), &w);
        assert_eq!(info.status, SectionStatus::Unavailable as i32);
        assert_eq!(info.unavailable_reason, "UPSTREAM_TIMEOUT");
        let empty: Result<Vec<u8>, Reason> = Ok(vec![]);
        assert_eq!(
            section(&empty, |v| !v.is_empty(), &w).status,
            SectionStatus::Empty as i32
        );
        let full: Result<Vec<u8>, Reason> = Ok(vec![1]);
        assert_eq!(
            section(&full, |v| !v.is_empty(), &w).status,
            SectionStatus::Complete as i32
        );
    }

    #[test]
    fn a_section_with_a_next_page_is_partial_never_complete() {
        let w = window(NaiveDate::from_ymd_opt(2024, 1, 10).unwrap(), 3, 0);
        let visit = |date: &str| crate::proto::ClinicalItem {
            item: Some(Item::Visit(crate::proto::Visit {
                date: date.into(),
                ..Default::default()
            })),
        };
        let page = |token: &str| GetClinicalInformationResponse {
            items: vec![visit("2024-01-02")],
            next_page_token: token.into(),
            ..Default::default()
        };
        let mut s = GetEmergencySummaryResponse::default();
        fill_near(&mut s, Ok(page("500")), &w);
        let status = |i: &Option<SectionInfo>| i.as_ref().map(|i| i.status);
        assert_eq!(
            status(&s.visits_section),
            Some(SectionStatus::Partial as i32)
        );
        // Nothing of that kind at all stays EMPTY, more pages or not.
        assert_eq!(
            status(&s.procedures_section),
            Some(SectionStatus::Empty as i32)
        );
        let mut s = GetEmergencySummaryResponse::default();
        fill_near(&mut s, Ok(page("")), &w);
        assert_eq!(
            status(&s.visits_section),
            Some(SectionStatus::Complete as i32)
        );
        assert!(!has_more(&Err(Reason::UpstreamTimeout)));
    }
}

//! The gRPC audit service: the access log read back by operators, a facility's
//! administrator and, through an operator portal, patients. Each view is a query on
//! the store streamed in bounded pages; the patient view strips what a patient is
//! not told (staff, other fields) before it leaves.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::domain::insured::parse_insured_number;
use crate::domain::{Reason, Violation};
use crate::proto::audit_service_server::AuditService;
use crate::proto::{
    AccessDecision, AccessLogEntry, AccessLogPage, ConsentBasis, ExemptionIdentification,
    InsuredNumber, ListExemptionReviewsRequest, Paging, PatientAccess, PatientAccessPage,
    QueryAccessLogRequest, QueryFacilityAccessLogRequest, QueryPatientAccessesRequest, TimeRange,
};
use crate::status::status_of;
use crate::store::{AccessQuery, AuditStore, Cursor, Decision, StoredRecord};

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_MAX_RECORDS: u32 = 1000;
pub const MAX_MAX_RECORDS: u32 = 10_000;

/// The upstream answers of a lookup that showed no one's data, as the pipeline
/// summarises them in `upstream_result` (`PatientRequest::summarize`).
const NO_ONE_FOUND: [&str; 2] = ["OK status=NOT_FOUND", "OK status=MULTIPLE_MATCHES"];

pub struct AuditQueryService {
    store: Arc<dyn AuditStore>,
}

impl AuditQueryService {
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        AuditQueryService { store }
    }
}

type PageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AuditService for AuditQueryService {
    type QueryAccessLogStream = PageStream<AccessLogPage>;
    type ListExemptionReviewsStream = PageStream<AccessLogPage>;
    type QueryFacilityAccessLogStream = PageStream<AccessLogPage>;
    type QueryPatientAccessesStream = PageStream<PatientAccessPage>;

    async fn query_access_log(
        &self,
        request: Request<QueryAccessLogRequest>,
    ) -> Result<Response<Self::QueryAccessLogStream>, Status> {
        let r = request.into_inner();
        let during = during(r.time.as_ref())?;
        let query = AccessQuery {
            facility: non_empty(r.facility_code),
            staff_id: non_empty(r.staff_id),
            patient_key: r.patient.as_ref().map(patient_key).transpose()?,
            activation_id: non_empty(r.activation_id),
            decision: decision_filter(r.decision)?,
            reason: non_empty(r.reason),
            consent_basis: consent_filter(r.consent_basis)?,
            needs_review: r.needs_review_only.then_some(true),
            ..during
        };
        self.stream(query, r.paging, entries_page)
    }

    async fn list_exemption_reviews(
        &self,
        request: Request<ListExemptionReviewsRequest>,
    ) -> Result<Response<Self::ListExemptionReviewsStream>, Status> {
        let r = request.into_inner();
        let query = AccessQuery {
            needs_review: Some(true),
            facility: non_empty(r.facility_code),
            ..during(r.time.as_ref())?
        };
        self.stream(query, r.paging, entries_page)
    }

    async fn query_facility_access_log(
        &self,
        request: Request<QueryFacilityAccessLogRequest>,
    ) -> Result<Response<Self::QueryFacilityAccessLogStream>, Status> {
        let r = request.into_inner();
        let Some(facility) = non_empty(r.facility_code) else {
            return Err(invalid(
                "facility_code",
                "the facility view needs the facility whose records are read",
            ));
        };
        let during = during(r.time.as_ref())?;
        let query = AccessQuery {
            facility: Some(facility),
            staff_id: non_empty(r.staff_id),
            decision: decision_filter(r.decision)?,
            ..during
        };
        self.stream(query, r.paging, entries_page)
    }

    async fn query_patient_accesses(
        &self,
        request: Request<QueryPatientAccessesRequest>,
    ) -> Result<Response<Self::QueryPatientAccessesStream>, Status> {
        let r = request.into_inner();
        let Some(patient) = r.patient.as_ref() else {
            return Err(invalid(
                "patient",
                "the patient view needs the patient's insured number",
            ));
        };
        let during = during(r.time.as_ref())?;
        let query = AccessQuery {
            patient_key: Some(patient_key(patient)?),
            // Only calls that showed the patient's data: a refused call, or a lookup
            // that found no one, showed nothing.
            decision: Some(Decision::Allowed),
            excluded_upstream_results: NO_ONE_FOUND.map(str::to_string).to_vec(),
            ..during
        };
        self.stream(query, r.paging, patient_page)
    }
}

impl AuditQueryService {
    /// Streams pages of `query` as `page` builds them, within the paging bounds.
    fn stream<T: Send + 'static>(
        &self,
        mut query: AccessQuery,
        paging: Option<Paging>,
        page: fn(&[StoredRecord], String) -> T,
    ) -> Result<Response<PageStream<T>>, Status> {
        let paging = paging.unwrap_or_default();
        let (page_size, max_records) = bounds(&paging)?;
        if !paging.page_token.is_empty() {
            query.after = Some(Cursor::from_token(&paging.page_token).ok_or_else(|| {
                status_of(&Violation::new(
                    Reason::PageTokenInvalid,
                    "paging.page_token",
                    "this page token was not issued by the gateway; start again without one",
                ))
            })?);
        }
        let store = self.store.clone();
        // Two pages in flight at most: a slow reader slows the query, not memory.
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            let mut remaining = max_records;
            loop {
                let n = page_size.min(remaining);
                let mut rows = match store.query(&query, n + 1).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(unavailable(&e))).await;
                        return;
                    }
                };
                let more = rows.len() > n as usize;
                rows.truncate(n as usize);
                remaining -= rows.len() as u32;
                if let Some(last) = rows.last() {
                    query.after = Some(Cursor {
                        at: last.record.at,
                        chain_id: last.chain_id.clone(),
                        seq: last.seq,
                    });
                }
                let done = !more || remaining == 0;
                let token = match (&query.after, more && remaining == 0) {
                    (Some(c), true) => c.to_token(),
                    _ => String::new(),
                };
                if tx.send(Ok(page(&rows, token))).await.is_err() || done {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn bounds(p: &Paging) -> Result<(u32, u32), Status> {
    Ok((
        bounded(
            p.page_size,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
            "paging.page_size",
        )?,
        bounded(
            p.max_records,
            DEFAULT_MAX_RECORDS,
            MAX_MAX_RECORDS,
            "paging.max_records",
        )?,
    ))
}

/// 0 asks for the default; above `max` is refused rather than quietly capped, so a
/// client never mistakes a short answer for the whole.
fn bounded(value: u32, default: u32, max: u32, field: &str) -> Result<u32, Status> {
    match value {
        0 => Ok(default),
        n if n <= max => Ok(n),
        n => Err(status_of(
            &Violation::new(
                Reason::PageSizeInvalid,
                field,
                format!("{field} {n} is over {max}; page on with the token"),
            )
            .with("max", max.to_string()),
        )),
    }
}

fn invalid(field: &str, description: &str) -> Status {
    status_of(&Violation::new(
        Reason::QueryFilterInvalid,
        field,
        description,
    ))
}

fn unavailable(e: &crate::store::StoreError) -> Status {
    status_of(&Violation::new(
        Reason::AuditUnavailable,
        "",
        format!("the access log cannot be read: {e}"),
    ))
}

fn non_empty(s: String) -> Option<String> {
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn instant(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Status> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| {
            status_of(&Violation::new(
                Reason::QueryTimeRangeInvalid,
                field,
                format!("{field} is not a valid instant"),
            ))
        })
}

/// The query of every record in the time range; the views add their filters.
fn during(t: Option<&TimeRange>) -> Result<AccessQuery, Status> {
    let Some(t) = t else {
        return Ok(AccessQuery::default());
    };
    let from = t
        .from
        .as_ref()
        .map(|f| instant("time.from", f))
        .transpose()?;
    let until = t
        .until
        .as_ref()
        .map(|u| instant("time.until", u))
        .transpose()?;
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        return Err(status_of(&Violation::new(
            Reason::QueryTimeRangeInvalid,
            "time.until",
            "time.until must be after time.from (the range is half-open)",
        )));
    }
    Ok(AccessQuery {
        from,
        until,
        ..AccessQuery::default()
    })
}

fn patient_key(p: &InsuredNumber) -> Result<String, Status> {
    parse_insured_number(
        "patient",
        &p.insurer_number,
        &p.symbol,
        &p.number,
        &p.branch,
    )
    .map(|n| n.key())
    .map_err(|v| status_of(&v))
}

fn decision_filter(value: i32) -> Result<Option<Decision>, Status> {
    match AccessDecision::try_from(value) {
        Ok(AccessDecision::Unspecified) => Ok(None),
        Ok(AccessDecision::Allowed) => Ok(Some(Decision::Allowed)),
        Ok(AccessDecision::Denied) => Ok(Some(Decision::Denied)),
        Ok(AccessDecision::Failed) => Ok(Some(Decision::Failed)),
        Err(_) => Err(invalid("decision", &format!("{value} is not a decision"))),
    }
}

fn consent_filter(value: i32) -> Result<Option<String>, Status> {
    match ConsentBasis::try_from(value) {
        Ok(ConsentBasis::Unspecified) => Ok(None),
        Ok(ConsentBasis::PatientConsent) => Ok(Some("patient_consent".into())),
        Ok(ConsentBasis::LifeOrBodyExemption) => Ok(Some("life_or_body_exemption".into())),
        Err(_) => Err(invalid(
            "consent_basis",
            &format!("{value} is not a consent basis"),
        )),
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn consent_of(stored: Option<&str>) -> ConsentBasis {
    match stored {
        Some("patient_consent") => ConsentBasis::PatientConsent,
        Some("life_or_body_exemption") => ConsentBasis::LifeOrBodyExemption,
        _ => ConsentBasis::Unspecified,
    }
}

fn entry(s: &StoredRecord) -> AccessLogEntry {
    let r = &s.record;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    AccessLogEntry {
        record_id: r.id.clone(),
        at: Some(timestamp(r.at)),
        method: r.method.clone(),
        items: r.items.clone(),
        decision: match r.decision {
            Decision::Allowed => AccessDecision::Allowed,
            Decision::Denied => AccessDecision::Denied,
            Decision::Failed => AccessDecision::Failed,
        } as i32,
        reason: text(&r.reason),
        grpc_code: r.grpc_code,
        facility_code: text(&r.facility),
        staff_id: text(&r.staff_id),
        staff_role: text(&r.staff_role),
        patient_key: text(&r.patient_key),
        identification: text(&r.identification),
        search_id: text(&r.search_id),
        consent_basis: consent_of(r.consent_basis.as_deref()) as i32,
        exemption_reason: text(&r.exemption_reason),
        exemption_identification: match r.exemption_identification.as_deref() {
            Some("id_document") => ExemptionIdentification::IdDocument,
            Some("family_information") => ExemptionIdentification::FamilyInformation,
            _ => ExemptionIdentification::Unspecified,
        } as i32,
        purpose: text(&r.purpose),
        activation_id: text(&r.activation_id),
        upstream_result: text(&r.upstream_result),
        needs_review: r.needs_review,
        chain_id: s.chain_id.clone(),
        seq: s.seq,
        hash: s.hash.clone(),
    }
}

fn entries_page(rows: &[StoredRecord], next_page_token: String) -> AccessLogPage {
    AccessLogPage {
        entries: rows.iter().map(entry).collect(),
        next_page_token,
    }
}

fn patient_page(rows: &[StoredRecord], next_page_token: String) -> PatientAccessPage {
    PatientAccessPage {
        accesses: rows
            .iter()
            .map(|s| PatientAccess {
                at: Some(timestamp(s.record.at)),
                facility_code: s.record.facility.clone().unwrap_or_default(),
                method: s.record.method.clone(),
                items: s.record.items.clone(),
                consent_basis: consent_of(s.record.consent_basis.as_deref()) as i32,
                record_id: s.record.id.clone(),
                chain_id: s.chain_id.clone(),
                seq: s.seq,
            })
            .collect(),
        next_page_token,
    }
}

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

use super::read_log::{AuditRead, LogWriter, describe, operator_of};
use super::review::{Outcome, outcome_record, review_input};
use crate::domain::insured::parse_insured_number;
use crate::domain::{Reason, Violation};
use crate::proto::audit_service_server::AuditService;
use crate::proto::{
    AccessDecision, AccessLogEntry, AccessLogPage, ConsentBasis, ExemptionIdentification,
    InsuredNumber, ListAuditReadsRequest, ListExemptionReviewsRequest, ListUnreviewedRequest,
    Paging, PatientAccess, PatientAccessPage, QueryAccessLogRequest, QueryFacilityAccessLogRequest,
    QueryPatientAccessesRequest, RecordReviewOutcomeRequest, RecordReviewOutcomeResponse,
    TimeRange,
};
use crate::status::status_of;
use crate::store::{AccessQuery, AuditStore, Cursor, Decision, KIND_AUDIT_READ, StoredRecord};

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_MAX_RECORDS: u32 = 1000;
pub const MAX_MAX_RECORDS: u32 = 10_000;

/// The upstream answers of a lookup that showed no one's data, as the pipeline
/// summarises them in `upstream_result` (`PatientRequest::summarize`).
const NO_ONE_FOUND: [&str; 2] = ["OK status=NOT_FOUND", "OK status=MULTIPLE_MATCHES"];

pub struct AuditQueryService {
    store: Arc<dyn AuditStore>,
    /// The operators' instance logs every read and takes review outcomes.
    log: Option<LogWriter>,
}

impl AuditQueryService {
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        AuditQueryService { store, log: None }
    }

    /// Appends a record of every read to the chain through `log`, and records review
    /// outcomes there.
    #[must_use]
    pub fn with_log(mut self, log: LogWriter) -> Self {
        self.log = Some(log);
        self
    }

    /// The read to log, on the operators' instance.
    fn read<T>(
        &self,
        request: &Request<T>,
        method: &'static str,
        filters: &[(&str, String)],
        patient_key: Option<String>,
    ) -> Option<AuditRead> {
        self.log.as_ref()?;
        Some(AuditRead {
            operator: operator_of(request),
            method,
            query: describe(method, filters),
            patient_key,
        })
    }
}

type PageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AuditService for AuditQueryService {
    type QueryAccessLogStream = PageStream<AccessLogPage>;
    type ListExemptionReviewsStream = PageStream<AccessLogPage>;
    type QueryFacilityAccessLogStream = PageStream<AccessLogPage>;
    type QueryPatientAccessesStream = PageStream<PatientAccessPage>;
    type ListUnreviewedStream = PageStream<AccessLogPage>;
    type ListAuditReadsStream = PageStream<AccessLogPage>;

    async fn query_access_log(
        &self,
        request: Request<QueryAccessLogRequest>,
    ) -> Result<Response<Self::QueryAccessLogStream>, Status> {
        let read = |r: &QueryAccessLogRequest, patient: Option<String>| {
            let filters = [
                ("time", time_text(r.time.as_ref())),
                ("facility", r.facility_code.clone()),
                ("staff_id", r.staff_id.clone()),
                (
                    "patient",
                    patient.as_ref().map(|_| "given".into()).unwrap_or_default(),
                ),
                ("activation", r.activation_id.clone()),
                ("decision", nonzero(r.decision)),
                ("reason", r.reason.clone()),
                ("consent_basis", nonzero(r.consent_basis)),
                ("needs_review_only", flag(r.needs_review_only)),
            ];
            self.read(&request, "QueryAccessLog", &filters, patient)
        };
        let patient = request
            .get_ref()
            .patient
            .as_ref()
            .map(patient_key)
            .transpose()?;
        let read = read(request.get_ref(), patient);
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
        self.stream(query, r.paging, read, entries_page)
    }

    async fn list_exemption_reviews(
        &self,
        request: Request<ListExemptionReviewsRequest>,
    ) -> Result<Response<Self::ListExemptionReviewsStream>, Status> {
        let filters = [
            ("time", time_text(request.get_ref().time.as_ref())),
            ("facility", request.get_ref().facility_code.clone()),
        ];
        let read = self.read(&request, "ListExemptionReviews", &filters, None);
        let r = request.into_inner();
        let query = AccessQuery {
            needs_review: Some(true),
            facility: non_empty(r.facility_code),
            ..during(r.time.as_ref())?
        };
        self.stream(query, r.paging, read, entries_page)
    }

    async fn query_facility_access_log(
        &self,
        request: Request<QueryFacilityAccessLogRequest>,
    ) -> Result<Response<Self::QueryFacilityAccessLogStream>, Status> {
        let described = Request::new(());
        let described = with_peer(described, &request);
        let r = request.into_inner();
        let facility_filter = r.facility_code.clone();
        let Some(facility) = non_empty(r.facility_code.clone()) else {
            return Err(invalid(
                "facility_code",
                "the facility view needs the facility whose records are read",
            ));
        };
        let during = during(r.time.as_ref())?;
        let query = AccessQuery {
            facility: Some(facility),
            staff_id: non_empty(r.staff_id.clone()),
            decision: decision_filter(r.decision)?,
            ..during
        };
        let filters = [
            ("facility", facility_filter.clone()),
            ("time", time_text(r.time.as_ref())),
            ("staff_id", r.staff_id.clone()),
            ("decision", nonzero(r.decision)),
        ];
        let read = self.read(&described, "QueryFacilityAccessLog", &filters, None);
        self.stream(query, r.paging, read, entries_page)
    }

    async fn query_patient_accesses(
        &self,
        request: Request<QueryPatientAccessesRequest>,
    ) -> Result<Response<Self::QueryPatientAccessesStream>, Status> {
        let Some(patient) = request.get_ref().patient.as_ref() else {
            return Err(invalid(
                "patient",
                "the patient view needs the patient's insured number",
            ));
        };
        let key = patient_key(patient)?;
        let filters = [
            ("patient", "given".to_string()),
            ("time", time_text(request.get_ref().time.as_ref())),
        ];
        let read = self.read(
            &request,
            "QueryPatientAccesses",
            &filters,
            Some(key.clone()),
        );
        let r = request.into_inner();
        let during = during(r.time.as_ref())?;
        let query = AccessQuery {
            patient_key: Some(key),
            // A patient's own look at their history is not shown back to them.
            hide_patient_view_reads: true,
            // Only calls that showed the patient's data: a refused call, or a lookup
            // that found no one, showed nothing.
            decision: Some(Decision::Allowed),
            excluded_upstream_results: NO_ONE_FOUND.map(str::to_string).to_vec(),
            ..during
        };
        self.stream(query, r.paging, read, patient_page)
    }

    async fn record_review_outcome(
        &self,
        request: Request<RecordReviewOutcomeRequest>,
    ) -> Result<Response<RecordReviewOutcomeResponse>, Status> {
        let Some(log) = &self.log else {
            return Err(unavailable_text(
                "review outcomes are recorded on the operators' listener",
            ));
        };
        let reviewer = operator_of(&request);
        let r = request.into_inner();
        let input = review_input(&r.record_id, r.outcome, &r.note).map_err(|v| status_of(&v))?;
        let subject = self
            .store
            .record_by_id(&input.record_id)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| {
                status_of(&Violation::new(
                    Reason::ReviewSubjectNotFound,
                    "record_id",
                    format!("no access record {} in the log", input.record_id),
                ))
            })?;
        let record =
            outcome_record(&subject, &input, &reviewer, log.now()).map_err(|v| status_of(&v))?;
        let outcome_record_id = record.id.clone();
        log.commit(record)
            .await
            .map_err(|e| unavailable_text(&e.to_string()))?;
        tracing::info!(outcome = input.outcome.as_str(), %reviewer, "review outcome recorded");
        Ok(Response::new(RecordReviewOutcomeResponse {
            outcome_record_id,
            reviewer,
        }))
    }

    async fn list_unreviewed(
        &self,
        request: Request<ListUnreviewedRequest>,
    ) -> Result<Response<Self::ListUnreviewedStream>, Status> {
        let filters = [("facility", request.get_ref().facility_code.clone())];
        let read = self.read(&request, "ListUnreviewed", &filters, None);
        let r = request.into_inner();
        let query = AccessQuery {
            facility: non_empty(r.facility_code),
            unreviewed_only: true,
            ..AccessQuery::default()
        };
        let now = self.log.as_ref().map_or_else(Utc::now, LogWriter::now);
        self.stream(query, r.paging, read, move |rows, token| {
            let mut page = entries_page(rows, token);
            for e in &mut page.entries {
                let at = e.at.as_ref().map_or(0, |t| t.seconds);
                e.age_seconds = u64::try_from(now.timestamp() - at).unwrap_or(0);
            }
            page
        })
    }

    async fn list_audit_reads(
        &self,
        request: Request<ListAuditReadsRequest>,
    ) -> Result<Response<Self::ListAuditReadsStream>, Status> {
        let filters = [
            ("time", time_text(request.get_ref().time.as_ref())),
            ("operator", request.get_ref().operator.clone()),
        ];
        let read = self.read(&request, "ListAuditReads", &filters, None);
        let r = request.into_inner();
        let query = AccessQuery {
            kind: Some(KIND_AUDIT_READ.into()),
            operator: non_empty(r.operator),
            ..during(r.time.as_ref())?
        };
        self.stream(query, r.paging, read, entries_page)
    }
}

/// An empty request carrying `from`'s certificates, to name its caller later.
fn with_peer<T>(mut to: Request<()>, from: &Request<T>) -> Request<()> {
    if let Some(info) = from
        .extensions()
        .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
    {
        to.extensions_mut().insert(info.clone());
    }
    to
}

fn nonzero(n: i32) -> String {
    if n == 0 { String::new() } else { n.to_string() }
}

fn flag(b: bool) -> String {
    if b { "true".into() } else { String::new() }
}

fn time_text(t: Option<&TimeRange>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let end =
        |ts: Option<&prost_types::Timestamp>| ts.map(|t| t.seconds.to_string()).unwrap_or_default();
    format!("{}..{}", end(t.from.as_ref()), end(t.until.as_ref()))
}

impl AuditQueryService {
    /// Streams pages of `query` as `page` builds them, within the paging bounds.
    /// With `read`, the read is appended to the chain, with the number of records
    /// returned, before its last page leaves (or when the reader goes away).
    fn stream<T: Send + 'static>(
        &self,
        mut query: AccessQuery,
        paging: Option<Paging>,
        read: Option<AuditRead>,
        page: impl Fn(&[StoredRecord], String) -> T + Send + 'static,
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
        let log = read.and_then(|read| Some((read, self.log.clone()?)));
        // Two pages in flight at most: a slow reader slows the query, not memory.
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            let mut remaining = max_records;
            let mut sent: u64 = 0;
            loop {
                let n = page_size.min(remaining);
                let mut rows = match store.query(&query, n + 1).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = log_read(log.as_ref(), sent).await;
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
                let count = rows.len() as u64;
                let page = page(&rows, token);
                if done {
                    let reply = log_read(log.as_ref(), sent + count).await.map(|()| page);
                    let _ = tx.send(reply).await;
                    return;
                }
                if tx.send(Ok(page)).await.is_err() {
                    let _ = log_read(log.as_ref(), sent).await;
                    return;
                }
                sent += count;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Appends the read's record, if it is logged: its last page is only sent once it is.
async fn log_read(log: Option<&(AuditRead, LogWriter)>, count: u64) -> Result<(), Status> {
    let Some((read, writer)) = log else {
        return Ok(());
    };
    writer
        .commit(read.record(count, writer.now()))
        .await
        .map_err(|e| {
            unavailable_text(&format!(
                "the read of the access log could not be recorded: {e}"
            ))
        })
}

fn unavailable_text(why: &str) -> Status {
    status_of(&Violation::new(Reason::AuditUnavailable, "", why))
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
        access_mode: r
            .clinical
            .as_ref()
            .and_then(|c| c.access_mode.clone())
            .unwrap_or_default(),
        consent_kinds: r
            .clinical
            .as_ref()
            .and_then(|c| c.consent_kinds.clone())
            .unwrap_or_default(),
        site_id: s.record.site.site_id.clone().unwrap_or_default(),
        site_kind: s.record.site.site_kind.clone().unwrap_or_default(),
        site_name: s.record.site.site_name.clone().unwrap_or_default(),
        site_sponsor: s.record.site.site_sponsor.clone().unwrap_or_default(),
        licence_number: s.record.site.licence_number.clone().unwrap_or_default(),
        ..accountability_entry(s)
    }
}

/// The entry's accountability fields (proto fields 50-59).
fn accountability_entry(s: &StoredRecord) -> AccessLogEntry {
    let Some(a) = &s.record.accountability else {
        return AccessLogEntry {
            kind: "access".into(),
            ..AccessLogEntry::default()
        };
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    AccessLogEntry {
        exemption_category: text(&a.exemption_category),
        kind: a.kind.clone().unwrap_or_else(|| "access".into()),
        subject_record_id: text(&a.subject_record),
        review_outcome: a
            .outcome
            .as_deref()
            .and_then(Outcome::parse)
            .map_or(0, Outcome::wire),
        review_note: text(&a.note),
        operator: text(&a.operator),
        audit_query: text(&a.audit_query),
        result_count: a
            .result_count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        patient_notified: a.patient_notice,
        ..AccessLogEntry::default()
    }
}

fn entries_page(rows: &[StoredRecord], next_page_token: String) -> AccessLogPage {
    AccessLogPage {
        entries: rows.iter().map(entry).collect(),
        next_page_token,
    }
}

/// Where an access was made, as the patient reads it: the facility, or the
/// temporary site with its sponsor ("輪島中学校 救護所 (sponsored by 1712345678)").
fn place_of(r: &crate::store::AccessRecord) -> String {
    let facility = r.facility.clone().unwrap_or_default();
    match &r.site.site_name {
        Some(name) => format!(
            "{name} (sponsored by {})",
            r.site.site_sponsor.as_deref().unwrap_or(&facility)
        ),
        None => facility,
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
                emergency_viewing: s.record.is_emergency_viewing(),
                place: place_of(&s.record),
                site_id: s.record.site.site_id.clone().unwrap_or_default(),
                kind: s
                    .record
                    .accountability
                    .as_ref()
                    .and_then(|a| a.kind.clone())
                    .unwrap_or_else(|| "access".into()),
                chain_id: s.chain_id.clone(),
                seq: s.seq,
            })
            .collect(),
        next_page_token,
    }
}

//! Wraps the rules and the upstream call: whatever happens inside, one access record
//! is written, and nothing reaches the caller before that record is committed.
//! If it cannot be committed the caller gets UNAVAILABLE, never unaudited data.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::audit::{AuditError, AuditWriter};
use crate::clock::SharedClock;
use crate::domain::{Reason, Violation};
use crate::pipeline::deadline::{Deadlines, WorkDeadline};
use crate::pipeline::rules::audit_ready::audit_unavailable;
use crate::pipeline::{AccessNote, Note, PatientRequest};
use crate::status::status_of;
use crate::store::{AccessRecord, Accountability, ClinicalStamp, Decision};
use crate::telemetry::metrics::RequestMetrics;
use crate::telemetry::metrics::requests::{CallLabels, MethodLabels};

/// Response (or error) metadata naming the committed access record of the call.
pub const ACCESS_RECORD_HEADER: &str = "x-onshi-access-record";

/// Which allowed calls queue a notice to their patient (docs/notices.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticePolicy {
    /// Notices are queued at all (a sink is configured).
    pub enabled: bool,
    /// Every allowed call naming a patient, not only those under the exemption.
    pub every_allowed_access: bool,
}

impl NoticePolicy {
    pub fn of(config: &crate::audit::notices::NoticesConfig) -> NoticePolicy {
        NoticePolicy {
            enabled: config.enabled(),
            every_allowed_access: config.every_allowed_access,
        }
    }
}

#[derive(Clone)]
pub struct AuditLayer {
    writer: AuditWriter,
    notices: NoticePolicy,
    clock: SharedClock,
    metrics: RequestMetrics,
    /// Every call running to its record, so that shutdown can wait for their records.
    calls: TaskTracker,
}

impl AuditLayer {
    pub fn new(
        writer: AuditWriter,
        clock: SharedClock,
        metrics: RequestMetrics,
        calls: TaskTracker,
    ) -> Self {
        AuditLayer {
            writer,
            notices: NoticePolicy::default(),
            clock,
            metrics,
            calls,
        }
    }
}

impl AuditLayer {
    /// Queues notices to patients as `policy` says.
    #[must_use]
    pub fn with_notices(mut self, policy: NoticePolicy) -> Self {
        self.notices = policy;
        self
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            parts: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct AuditService<S> {
    parts: AuditLayer,
    inner: S,
}

/// Text as every store can keep it: PostgreSQL refuses NUL in text, and one such
/// record would fail its whole batch. Validation refuses NUL in request fields; this
/// keeps the access log committable whatever slips through.
fn storable(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|t| t.replace('\u{0}', "\u{FFFD}"))
}

/// Builds the record of one call from what the rules noted and how it ended.
/// A notice for the patient is queued with the record of an allowed call that named
/// them, made under the exemption (or, with `every_allowed_access`, any such call).
pub fn record_of<M: PatientRequest>(
    id: String,
    note: &AccessNote,
    code: tonic::Code,
    at: chrono::DateTime<chrono::Utc>,
    notices: NoticePolicy,
) -> AccessRecord {
    let decision = match (code, note.forwarded) {
        (tonic::Code::Ok, _) => Decision::Allowed,
        (_, true) => Decision::Failed,
        (_, false) => Decision::Denied,
    };
    let record = AccessRecord {
        id,
        at,
        method: M::METHOD.to_string(),
        items: M::ITEMS.to_string(),
        facility: note.facility.as_ref().map(ToString::to_string),
        staff_id: storable(&note.staff_id),
        staff_role: note.staff_role.map(str::to_string),
        patient_key: note.patient_key.clone(),
        identification: note.identification.map(str::to_string),
        search_id: storable(&note.search_id),
        consent_basis: note.consent_basis.map(str::to_string),
        exemption_reason: storable(&note.exemption_reason),
        exemption_identification: note.exemption_identification.map(str::to_string),
        purpose: note.purpose.map(str::to_string),
        activation_id: note.activation_id.clone(),
        decision,
        reason: note.reason.map(|r| r.as_str().to_string()),
        grpc_code: code as i32,
        upstream_result: storable(&note.upstream_result),
        needs_review: note.needs_review,
        disclosed_patients: note.disclosed_patients.clone(),
        clinical: ClinicalStamp::of(
            note.emergency_viewing
                .then_some("emergency_viewing")
                .or(note.access_mode)
                .map(str::to_string),
            note.consent_kinds.clone(),
        ),
        site: note.site.clone(),
        accountability: None,
    };
    let patient_notice = decision == Decision::Allowed
        && note.patient_key.is_some()
        && (note.needs_review || notices.every_allowed_access);
    let accountability = Accountability {
        exemption_category: note.exemption_category.map(str::to_string),
        patient_notice: patient_notice && notices.enabled,
        ..Accountability::default()
    };
    AccessRecord {
        accountability: (!accountability.is_empty()).then_some(accountability),
        ..record
    }
}

impl<M, S> Service<Request<M>> for AuditService<S>
where
    M: PatientRequest,
    S: Service<Request<M>, Response = Response<M::Reply>, Error = Status> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<M::Reply>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Response<M::Reply>, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<M>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (answer, answered) = oneshot::channel();
        let deadlines = Deadlines::of(req.metadata());
        let record_id = AccessRecord::new_id();
        let note = Note::new(AccessNote::stated(req.get_ref().access()));
        req.extensions_mut().insert(note.clone());
        if let Some(work) = deadlines.work {
            req.extensions_mut().insert(WorkDeadline(work));
        }
        let call = Call {
            parts: self.parts.clone(),
            deadlines,
            record_id: record_id.clone(),
            started: Instant::now(),
            at: self.parts.clock.now(),
        };
        // The rules and the upstream call, boxed: a call waiting for its commit holds
        // none of their room once they are done.
        let work = Box::pin(inner.call(req));
        // The call runs to its record in a task of its own: a caller whose deadline
        // passes (or who cancels) drops only the wait below, never the record of what
        // the rules and the upstream did. Started here, so that the wait holds only
        // what it waits with (it held every part of the call, ~2.8 KiB).
        self.parts.calls.spawn(
            call.run::<M, _>(work, note, answer)
                .instrument(tracing::Span::current()),
        );
        Box::pin(async move {
            let waited = match deadlines.answer {
                Some(at) => tokio::time::timeout_at(at, answered).await,
                None => Ok(answered.await),
            };
            match waited {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => Err(Status::internal(
                    "the call ended without an answer; see its access record",
                )),
                Err(_) => Err(late(&record_id)),
            }
        })
    }
}

type Answer<M> = oneshot::Sender<Result<Response<<M as PatientRequest>::Reply>, Status>>;

/// The answer when the caller's deadline is due before the call's record is
/// committed: no data, and the id under which its record is being committed.
fn late(record_id: &str) -> Status {
    let violation = Violation::new(
        Reason::CallDeadlineExceeded,
        "",
        "the caller's deadline passed before the call's access record was committed; no data was sent",
    );
    with_record_id::<()>(Err(status_of(&violation)), record_id)
        .err()
        .unwrap_or_else(|| Status::deadline_exceeded("deadline exceeded"))
}

/// One call on its way to its record.
struct Call {
    parts: AuditLayer,
    deadlines: Deadlines,
    record_id: String,
    started: Instant,
    /// When the call arrived, as the access record says.
    at: chrono::DateTime<chrono::Utc>,
}

impl Call {
    /// Awaits the rules and the upstream call, commits the call's record, and only
    /// then answers: with the reply (or refusal) naming its record, or with
    /// AUDIT_UNAVAILABLE.
    async fn run<M, W>(self, work: Pin<Box<W>>, note: Note, answer: Answer<M>)
    where
        M: PatientRequest,
        W: Future<Output = Result<Response<M::Reply>, Status>>,
    {
        // Boxed, as the record below: a reply (up to ~1.4 KiB) held by pointer while
        // the call waits for its commit keeps ten thousand waiting calls small.
        let result = Box::new(self.within_deadline(work, &note).await);
        let code = match &*result {
            // The caller left before the answer: what was fetched was not delivered.
            Ok(_) if answer.is_closed() && self.deadlines.passed() => tonic::Code::DeadlineExceeded,
            Ok(_) if answer.is_closed() => tonic::Code::Cancelled,
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        if code == tonic::Code::DeadlineExceeded {
            // As the caller was told when its deadline came first.
            note.lock()
                .reason
                .get_or_insert(Reason::CallDeadlineExceeded);
        }
        // Boxed: the call waits for its commit holding a pointer, not the record.
        let record = Box::new(record_of::<M>(
            self.record_id.clone(),
            &note.lock(),
            code,
            self.at,
            self.parts.notices,
        ));
        let committed = self.commit::<M>(record, &note).await;
        // The slot (if any) is free once the record is committed, not before.
        note.release();
        let reply = match committed {
            Ok(()) => with_record_id((*result).map(compress_if_large), &self.record_id),
            Err(e) => Err(status_of(&audit_unavailable(&e.to_string()))),
        };
        // The caller may be gone; its record is committed all the same.
        let _ = answer.send(reply);
    }

    /// The rules and the upstream, cut off at the work deadline.
    async fn within_deadline<T>(
        &self,
        work: impl Future<Output = Result<T, Status>>,
        note: &Note,
    ) -> Result<T, Status> {
        let Some(deadline) = self.deadlines.work else {
            return work.await;
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                let violation = Violation::new(
                    Reason::CallDeadlineExceeded,
                    "",
                    "the caller's deadline passed before the gateway was done; no data was sent",
                );
                note.lock().reason.get_or_insert(violation.reason);
                Err(status_of(&violation))
            }
        }
    }

    async fn commit<M: PatientRequest>(
        &self,
        record: Box<AccessRecord>,
        note: &Note,
    ) -> Result<(), AuditError> {
        let started = self.started;
        // The call's server span carries its outcome.
        let call_span = tracing::Span::current();
        call_span.record("onshi.decision", record.decision.as_str());
        if let Some(reason) = &record.reason {
            call_span.record("onshi.reason", reason.as_str());
        }
        let decision = record.decision;
        let span = tracing::info_span!("audit.commit", otel.name = "audit.commit");
        let committed = self
            .parts
            .writer
            .commit_boxed(record)
            .instrument(span)
            .await;
        // A call whose record could not be committed was refused for that reason: the
        // log line and the metrics say what the caller got.
        let (decision, reason) = match &committed {
            Ok(()) => (
                decision.as_str(),
                note.lock().reason.map_or("", Reason::as_str),
            ),
            Err(_) => ("denied", Reason::AuditUnavailable.as_str()),
        };
        // At `debug`: a line per call at the default level cost more than the rules
        // (the access log and the metrics already hold every call).
        tracing::debug!(
            method = M::METHOD,
            decision,
            reason,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "access"
        );
        self.parts.count::<M>(decision, reason, started);
        committed
    }
}

impl AuditLayer {
    fn count<M: PatientRequest>(
        &self,
        decision: &'static str,
        reason: &'static str,
        started: Instant,
    ) {
        self.metrics
            .calls
            .get_or_create(&CallLabels {
                method: M::METHOD,
                decision,
                reason,
            })
            .inc();
        self.metrics
            .call_seconds
            .get_or_create(&MethodLabels { method: M::METHOD })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Replies smaller than this go uncompressed even to a caller that offers gzip:
/// compressing a lookup's few hundred bytes saves a few hundred bytes and cost
/// more CPU than the rules (a deflate state per reply); drug histories and
/// summaries, which compress well, are far larger.
pub const COMPRESS_ABOVE_BYTES: usize = 1024;

fn compress_if_large<R: prost::Message>(mut reply: Response<R>) -> Response<R> {
    if reply.get_ref().encoded_len() < COMPRESS_ABOVE_BYTES {
        reply
            .extensions_mut()
            .insert(tonic::codec::SingleMessageCompressionOverride::Disable);
    }
    reply
}

/// The terminal can cite its access record, e.g. to a patient or an auditor.
fn with_record_id<R>(
    result: Result<Response<R>, Status>,
    record_id: &str,
) -> Result<Response<R>, Status> {
    let Ok(id) = tonic::metadata::MetadataValue::try_from(record_id) else {
        return result;
    };
    match result {
        Ok(mut response) => {
            response.metadata_mut().insert(ACCESS_RECORD_HEADER, id);
            Ok(response)
        }
        Err(mut status) => {
            status.metadata_mut().insert(ACCESS_RECORD_HEADER, id);
            Err(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{COMPRESS_ABOVE_BYTES, compress_if_large, storable};
    use crate::proto::{Dispensing, GetDrugHistoryResponse, LookupQualificationResponse};
    use tonic::codec::SingleMessageCompressionOverride;

    #[test]
    fn only_replies_above_the_threshold_may_be_compressed() {
        let small = compress_if_large(tonic::Response::new(LookupQualificationResponse::default()));
        assert_eq!(
            small.extensions().get::<SingleMessageCompressionOverride>(),
            Some(&SingleMessageCompressionOverride::Disable)
        );
        let history = GetDrugHistoryResponse {
            dispensings: vec![Dispensing {
                drug_name: "アムロジピン錠5mg".repeat(COMPRESS_ABOVE_BYTES / 8),
                ..Dispensing::default()
            }],
            ..GetDrugHistoryResponse::default()
        };
        let large = compress_if_large(tonic::Response::new(history));
        assert!(prost::Message::encoded_len(large.get_ref()) >= COMPRESS_ABOVE_BYTES);
        assert_eq!(
            large.extensions().get::<SingleMessageCompressionOverride>(),
            None
        );
    }

    #[test]
    fn text_with_nul_is_kept_storable() {
        assert_eq!(
            storable(&Some("dr\u{0}-1".into())),
            Some("dr\u{FFFD}-1".to_string())
        );
        assert_eq!(storable(&Some("dr-1".into())), Some("dr-1".to_string()));
        assert_eq!(storable(&None), None);
    }
}

//! The innermost service: sends an allowed request upstream with the caller's
//! remaining deadline (capped), through the circuit breaker, sends it again after a
//! transport failure while the deadline allows, and turns upstream failures into
//! specific denials.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tower::Service;
use tracing::Instrument;

use crate::domain::{Reason, Violation};
use crate::pipeline::circuit::Refusal;
use crate::pipeline::deadline::WorkDeadline;
use crate::pipeline::fault::{Fault, classify, h2_cause};
use crate::pipeline::retry::pause_after;
use crate::pipeline::upstream::Upstream;
use crate::pipeline::{Note, PatientRequest};
use crate::proto::medical_information_service_client::MedicalInformationServiceClient as Medical;
use crate::proto::qualification_service_client::QualificationServiceClient as Qualification;
use crate::proto::{
    GetClinicalInformationRequest, GetDrugHistoryRequest, GetHealthCheckupsRequest,
    GetPrescriptionsRequest, LookupQualificationRequest, SearchPatientsRequest,
};
use crate::status::{RETRY_AFTER_MS, status_of};
use crate::telemetry::metrics::RequestMetrics;
use crate::telemetry::metrics::requests::{UpstreamLabels, code_name};

type Sent<R> = Pin<Box<dyn Future<Output = Result<Response<R>, Status>> + Send>>;

/// A request the upstream answers.
pub trait Forwardable: PatientRequest + Clone {
    /// The name of the span of the forwarded call, `upstream <Method>`.
    const SPAN: &'static str;

    fn send(upstream: &Upstream, req: Request<Self>) -> Sent<Self::Reply>;
}

/// Each request goes to its method on the upstream's qualification or medical client.
macro_rules! forwardable {
    ($($request:ty => $client:ident . $method:ident as $name:literal;)*) => {$(
        impl Forwardable for $request {
            const SPAN: &'static str = concat!("upstream ", $name);

            fn send(upstream: &Upstream, req: Request<Self>) -> Sent<Self::Reply> {
                let (transport, origin) = upstream.transport();
                let mut c = $client::with_origin(transport, origin);
                Box::pin(async move { c.$method(req).await })
            }
        }
    )*};
}

forwardable! {
    LookupQualificationRequest => Qualification.lookup_qualification as "LookupQualification";
    SearchPatientsRequest => Qualification.search_patients as "SearchPatients";
    GetDrugHistoryRequest => Medical.get_drug_history as "GetDrugHistory";
    GetHealthCheckupsRequest => Medical.get_health_checkups as "GetHealthCheckups";
    GetClinicalInformationRequest => Medical.get_clinical_information as "GetClinicalInformation";
    GetPrescriptionsRequest => Medical.get_prescriptions as "GetPrescriptions";
}

/// The time the caller still allows, from its `grpc-timeout` metadata.
pub fn caller_deadline(metadata: &MetadataMap) -> Option<Duration> {
    let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The instant the upstream call must end by: the audit layer's work deadline (a
/// little before the caller's, see `deadline`), or without it the caller's
/// `grpc-timeout`, capped by the upstream's own timeout. The work deadline is taken
/// as the very instant, not re-derived from a duration that time has since eaten
/// into: the two timers then fire in the same tick, this inner one is seen first,
/// and a slow upstream is reported (and counted by the circuit) as such.
fn deadline_of<M>(req: &Request<M>, ceiling: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let capped = now + ceiling;
    match req.extensions().get::<WorkDeadline>() {
        Some(WorkDeadline(at)) => (*at).min(capped),
        None => caller_deadline(req.metadata()).map_or(capped, |d| now + d.min(ceiling)),
    }
}

/// Why a forwarded call has no reply.
enum Failed {
    /// The upstream's status, or the one tonic made of a transport failure.
    Upstream(Status, Fault),
    /// The open circuit refused it without trying.
    Refused(Refusal),
}

impl Failed {
    /// The code the upstream's metrics and the access note name it by.
    fn code(&self) -> Code {
        match self {
            Failed::Upstream(_, Fault::Transport) | Failed::Refused(_) => Code::Unavailable,
            Failed::Upstream(_, Fault::Timeout) => Code::DeadlineExceeded,
            Failed::Upstream(status, Fault::Answer) => status.code(),
        }
    }

    fn violation(&self) -> Violation {
        let (reason, text) = match self {
            Failed::Refused(refusal) => return circuit_open(refusal),
            Failed::Upstream(_, Fault::Transport) => (
                Reason::UpstreamUnavailable,
                "the upstream OQS is unreachable; try again shortly",
            ),
            Failed::Upstream(_, Fault::Timeout) => (
                Reason::UpstreamTimeout,
                "the upstream OQS did not answer in time",
            ),
            Failed::Upstream(status, Fault::Answer) if status.code() == Code::NotFound => (
                Reason::PatientNotFound,
                "the upstream OQS has no insured person with this number",
            ),
            Failed::Upstream(_, Fault::Answer) => {
                (Reason::UpstreamError, "the upstream OQS returned an error")
            }
        };
        Violation::new(reason, "", text).with("upstream_code", format!("{:?}", self.code()))
    }
}

/// The open circuit's refusal, with the delay after which to try again.
fn circuit_open(refusal: &Refusal) -> Violation {
    let ms = refusal.retry_after.as_millis().max(1);
    Violation::new(
        Reason::UpstreamUnavailable,
        "",
        format!(
            "the upstream OQS is failing, so calls to it are refused for now ({}); try again in {ms} ms",
            refusal.why
        ),
    )
    .with("circuit", "open")
    .with(RETRY_AFTER_MS, ms.to_string())
}

#[derive(Clone)]
pub struct Forward {
    upstream: Upstream,
    metrics: RequestMetrics,
}

impl Forward {
    pub fn new(upstream: Upstream, metrics: RequestMetrics) -> Self {
        Forward { upstream, metrics }
    }
}

impl<M: Forwardable> Service<Request<M>> for Forward {
    type Response = Response<M::Reply>;
    type Error = Status;
    type Future = Sent<M::Reply>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<M>) -> Self::Future {
        let note = Note::of(&mut req);
        let deadline = deadline_of(&req, self.upstream.timeout);
        let span = tracing::info_span!(
            "upstream",
            otel.name = M::SPAN,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.method = M::METHOD,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let call = Call {
            upstream: self.upstream.clone(),
            metrics: self.metrics.clone(),
            span: span.clone(),
            deadline,
        };
        Box::pin(call.forward(note, req.into_inner()).instrument(span))
    }
}

/// One forwarded call, under its `upstream` span.
struct Call {
    upstream: Upstream,
    metrics: RequestMetrics,
    span: tracing::Span,
    deadline: tokio::time::Instant,
}

impl Call {
    async fn forward<M: Forwardable>(
        self,
        note: Note,
        message: M,
    ) -> Result<Response<M::Reply>, Status> {
        let started = std::time::Instant::now();
        note.lock().forwarded = true;
        let outcome = self.through_circuit(&message, self.deadline).await;
        let code = match &outcome {
            Ok(_) => Code::Ok,
            Err(failed) => failed.code(),
        };
        self.span.record("rpc.grpc.status_code", code as i32);
        if !matches!(outcome, Err(Failed::Refused(_))) {
            self.observe(M::METHOD, code, started.elapsed());
        }
        match outcome {
            Ok(response) => {
                let reply = response.into_inner();
                note.lock().upstream_result = Some(format!("OK {}", M::summarize(&reply)));
                Ok(Response::new(reply))
            }
            Err(failed) => {
                let v = failed.violation();
                let mut n = note.lock();
                n.upstream_result = Some(format!("{code:?}"));
                n.reason = Some(v.reason);
                Err(status_of(&v))
            }
        }
    }

    fn observe(&self, method: &'static str, code: Code, took: Duration) {
        let labels = UpstreamLabels {
            method,
            code: code_name(code),
        };
        self.metrics
            .upstream_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        // NOT_FOUND is the OQS's answer for an unknown number, not a failure.
        if !matches!(code, Code::Ok | Code::NotFound) {
            self.metrics.upstream_errors.get_or_create(&labels).inc();
        }
    }

    /// The call's attempts, if the circuit lets it through, within the deadline; the
    /// circuit is told how it went.
    async fn through_circuit<M: Forwardable>(
        &self,
        message: &M,
        deadline: tokio::time::Instant,
    ) -> Result<Response<M::Reply>, Failed> {
        let pass = self.upstream.circuit.admit().map_err(Failed::Refused)?;
        let result = tokio::time::timeout_at(deadline, self.attempts(message, deadline))
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("upstream deadline")));
        match result {
            Ok(response) => {
                pass.report(false);
                Ok(response)
            }
            Err(status) => {
                let fault = classify(&status);
                pass.report(fault.is_failure());
                Err(Failed::Upstream(status, fault))
            }
        }
    }

    /// Sends the call, and again after a transport failure while the deadline allows.
    async fn attempts<M: Forwardable>(
        &self,
        message: &M,
        deadline: tokio::time::Instant,
    ) -> Result<Response<M::Reply>, Status> {
        let mut made = 0;
        loop {
            let permit = self
                .upstream
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Status::unavailable("upstream client closed"))?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(Status::deadline_exceeded("no time left for the upstream"));
            }
            // Fresh metadata: nothing of the caller's (e.g. development identity) goes upstream…
            let mut out = Request::new(message.clone());
            // …but the trace context goes, so the OQS's spans join this trace.
            crate::telemetry::propagation::inject(&self.span, out.metadata_mut());
            // The upstream ends the call itself at this deadline.
            out.set_timeout(remaining);
            made += 1;
            let status = match detached::<M>(&self.upstream, out, permit, remaining).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(status)) => status,
                Err(_) => Status::internal("the upstream call's task failed"),
            };
            let fault = classify(&status);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(pause) = pause_after(fault, made, left) else {
                return Err(status);
            };
            tracing::debug!(
                %status,
                cause = h2_cause(&status).unwrap_or_default(),
                attempt = made,
                "upstream transport failure; sending again",
            );
            self.upstream.metrics.retries.inc();
            tokio::time::sleep(pause).await;
        }
    }
}

/// How long past its deadline an attempt is left for the upstream to end.
const LINGER: Duration = Duration::from_secs(2);

/// Sends one attempt on a task of its own, which holds `permit` until the upstream
/// has answered. The caller stops waiting at its deadline; the attempt goes on until
/// the upstream ends it at the same deadline (its `grpc-timeout`), then ends cleanly.
/// Dropping it instead would reset its stream, and an upstream that sees many resets
/// answers with GOAWAY, failing every call on the connection. One the upstream keeps
/// past the deadline and `LINGER` is dropped after all.
fn detached<M: Forwardable>(
    upstream: &Upstream,
    out: Request<M>,
    permit: tokio::sync::OwnedSemaphorePermit,
    budget: Duration,
) -> tokio::task::JoinHandle<Result<Response<M::Reply>, Status>> {
    let sent = M::send(upstream, out);
    tokio::spawn(async move {
        let answer = tokio::time::timeout(budget + LINGER, sent)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("the upstream kept the call")));
        drop(permit);
        answer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_the_callers_capped_by_the_upstreams() {
        let ceiling = Duration::from_secs(2);
        let now = tokio::time::Instant::now();
        let mut req = Request::new(());
        assert_eq!(deadline_of(&req, ceiling), now + ceiling);
        req.set_timeout(Duration::from_millis(300));
        assert_eq!(deadline_of(&req, ceiling), now + Duration::from_millis(300));
        req.set_timeout(Duration::from_secs(30));
        assert_eq!(deadline_of(&req, ceiling), now + ceiling);
        // The audit layer's work deadline wins over the caller's header, as the very
        // instant the audit layer cuts the call off, however late the call gets here.
        let at = now + Duration::from_millis(500);
        req.extensions_mut().insert(WorkDeadline(at));
        tokio::time::advance(Duration::from_millis(7)).await;
        assert_eq!(deadline_of(&req, ceiling), at);
        // …and the upstream's own cap wins over a later work deadline.
        req.extensions_mut()
            .insert(WorkDeadline(now + Duration::from_secs(60)));
        assert_eq!(
            deadline_of(&req, ceiling),
            tokio::time::Instant::now() + ceiling
        );
    }

    fn denial(failed: &Failed) -> (Code, String, Option<String>) {
        let status = status_of(&failed.violation());
        let info = status.get_details_error_info().expect("error info");
        let upstream_code = info.metadata.get("upstream_code").cloned();
        (status.code(), info.reason, upstream_code)
    }

    #[test]
    fn a_transport_failure_is_unavailable_whatever_code_tonic_gave_it() {
        let cut = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(cut.code(), Code::Unknown);
        let failed = Failed::Upstream(cut, Fault::Transport);
        assert_eq!(
            denial(&failed),
            (
                Code::Unavailable,
                "UPSTREAM_UNAVAILABLE".into(),
                Some("Unavailable".into())
            )
        );
    }

    #[test]
    fn answers_keep_their_meaning() {
        let internal = Failed::Upstream(Status::internal("the OQS failed"), Fault::Answer);
        assert_eq!(
            denial(&internal),
            (
                Code::Internal,
                "UPSTREAM_ERROR".into(),
                Some("Internal".into())
            )
        );
        let unknown = Failed::Upstream(Status::not_found("no such person"), Fault::Answer);
        assert_eq!(denial(&unknown).1, "PATIENT_NOT_FOUND");
        let late = Failed::Upstream(Status::deadline_exceeded("late"), Fault::Timeout);
        assert_eq!(denial(&late).1, "UPSTREAM_TIMEOUT");
    }

    #[test]
    fn the_open_circuit_refuses_with_its_reason_and_a_retry_delay() {
        let refused = Failed::Refused(Refusal {
            retry_after: Duration::from_millis(1234),
            why: "circuit open after 5 consecutive upstream failures".into(),
        });
        let status = status_of(&refused.violation());
        assert_eq!(status.code(), Code::Unavailable);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "UPSTREAM_UNAVAILABLE");
        assert!(
            status
                .message()
                .contains("circuit open after 5 consecutive upstream failures"),
            "{status:?}"
        );
        let delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
        assert_eq!(delay, Some(Duration::from_millis(1234)));
    }

    #[test]
    fn reads_grpc_timeout() {
        let mut m = MetadataMap::new();
        m.insert("grpc-timeout", "250m".parse().expect("ascii"));
        assert_eq!(caller_deadline(&m), Some(Duration::from_millis(250)));
        m.insert("grpc-timeout", "3S".parse().expect("ascii"));
        assert_eq!(caller_deadline(&m), Some(Duration::from_secs(3)));
        m.insert("grpc-timeout", "x".parse().expect("ascii"));
        assert_eq!(caller_deadline(&m), None);
        m.insert("grpc-timeout", "123456789S".parse().expect("ascii"));
        assert_eq!(caller_deadline(&m), None);
    }
}

#[cfg(test)]
mod span_names {
    use super::*;

    fn named<M: Forwardable>() {
        assert_eq!(M::SPAN, format!("upstream {}", M::METHOD));
    }

    #[test]
    fn each_forwarded_span_is_named_after_its_method() {
        named::<LookupQualificationRequest>();
        named::<SearchPatientsRequest>();
        named::<GetDrugHistoryRequest>();
        named::<GetHealthCheckupsRequest>();
    }
}

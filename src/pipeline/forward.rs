//! The innermost service: sends an allowed request upstream with the caller's
//! remaining deadline (capped), retries once where safe, and turns upstream
//! failures into specific denials.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tower::Service;
use tracing::Instrument;

use crate::domain::{Reason, Violation};
use crate::pipeline::upstream::Upstream;
use crate::pipeline::{Note, PatientRequest};
use crate::proto::{
    GetDrugHistoryRequest, GetHealthCheckupsRequest, LookupQualificationRequest,
    SearchPatientsRequest,
};
use crate::status::status_of;
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
                let mut c = upstream.$client.clone();
                Box::pin(async move { c.$method(req).await })
            }
        }
    )*};
}

forwardable! {
    LookupQualificationRequest => qualification.lookup_qualification as "LookupQualification";
    SearchPatientsRequest => qualification.search_patients as "SearchPatients";
    GetDrugHistoryRequest => medical.get_drug_history as "GetDrugHistory";
    GetHealthCheckupsRequest => medical.get_health_checkups as "GetHealthCheckups";
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

/// tonic's client reports the deadline it was given as CANCELLED, with its
/// `TimeoutExpired` among the causes.
fn timed_out(status: &Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn upstream_violation(status: &Status) -> Violation {
    let (reason, text) = match status.code() {
        Code::Unavailable => (
            Reason::UpstreamUnavailable,
            "the upstream OQS is unreachable; try again shortly",
        ),
        Code::DeadlineExceeded => (
            Reason::UpstreamTimeout,
            "the upstream OQS did not answer in time",
        ),
        Code::NotFound => (
            Reason::PatientNotFound,
            "the upstream OQS has no insured person with this number",
        ),
        _ => (Reason::UpstreamError, "the upstream OQS returned an error"),
    };
    Violation::new(reason, "", text).with("upstream_code", format!("{:?}", status.code()))
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
        let budget = caller_deadline(req.metadata())
            .map_or(self.upstream.timeout, |d| d.min(self.upstream.timeout));
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
            budget,
        };
        Box::pin(call.forward(note, req.into_inner()).instrument(span))
    }
}

/// One forwarded call, under its `upstream` span.
struct Call {
    upstream: Upstream,
    metrics: RequestMetrics,
    span: tracing::Span,
    budget: Duration,
}

impl Call {
    async fn forward<M: Forwardable>(
        self,
        note: Note,
        message: M,
    ) -> Result<Response<M::Reply>, Status> {
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + self.budget;
        note.lock().forwarded = true;
        let outcome = tokio::time::timeout_at(deadline, self.attempts(&message, deadline))
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("upstream deadline")))
            .map_err(|status| {
                if timed_out(&status) {
                    Status::deadline_exceeded("upstream deadline")
                } else {
                    status
                }
            });
        let code = match &outcome {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        self.span.record("rpc.grpc.status_code", code as i32);
        let labels = UpstreamLabels {
            method: M::METHOD,
            code: code_name(code),
        };
        self.metrics
            .upstream_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        // NOT_FOUND is the OQS's answer for an unknown number, not a failure.
        if !matches!(code, Code::Ok | Code::NotFound) {
            self.metrics.upstream_errors.get_or_create(&labels).inc();
        }
        match outcome {
            Ok(response) => {
                let reply = response.into_inner();
                note.lock().upstream_result = Some(format!("OK {}", M::summarize(&reply)));
                Ok(Response::new(reply))
            }
            Err(status) => {
                let v = upstream_violation(&status);
                let mut n = note.lock();
                n.upstream_result = Some(format!("{:?}", status.code()));
                n.reason = Some(v.reason);
                Err(status_of(&v))
            }
        }
    }

    async fn attempts<M: Forwardable>(
        &self,
        message: &M,
        deadline: tokio::time::Instant,
    ) -> Result<Response<M::Reply>, Status> {
        let _permit = self
            .upstream
            .permits
            .acquire()
            .await
            .map_err(|_| Status::unavailable("upstream client closed"))?;
        let mut attempt = 0;
        loop {
            // Fresh metadata: nothing of the caller's (e.g. development identity) goes upstream…
            let mut out = Request::new(message.clone());
            // …but the trace context goes, so the OQS's spans join this trace.
            crate::telemetry::propagation::inject(&self.span, out.metadata_mut());
            out.set_timeout(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match M::send(&self.upstream, out).await {
                // Every forwarded call is a read, so one retry on a connection failure is safe.
                Err(s) if s.code() == Code::Unavailable && attempt == 0 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_own_deadline_is_a_timeout_and_a_cancel_is_not() {
        let expired = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(
            expired.code(),
            Code::Cancelled,
            "as tonic's client reports it"
        );
        assert!(timed_out(&expired));
        assert!(!timed_out(&Status::cancelled("the caller went away")));
        assert!(!timed_out(&Status::unavailable("connection refused")));
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

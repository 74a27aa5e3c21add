//! The span of one incoming gRPC call, the root of the gateway's part of a trace.

use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::propagation;

/// A server span named after the RPC (`onshi.v1.QualificationService/LookupQualification`),
/// child of the caller's span when its metadata carries W3C trace context. The audit
/// layer records the call's decision and reason on it.
pub fn server_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc",
        otel.name = path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        onshi.decision = tracing::field::Empty,
        onshi.reason = tracing::field::Empty,
    );
    // Without an OpenTelemetry layer there is nothing to link; that is not an error.
    // A span nobody records (no traces exported, no span-level log) is not linked:
    // reading the caller's trace context is then wasted work on every call.
    if !span.is_disabled() {
        let _ = span.set_parent(propagation::extract(req.headers()));
    }
    span
}

//! Distributed tracing: spans exported over OTLP, and W3C trace context taken from
//! a terminal's call and handed on to the upstream, so one trace shows a lookup from
//! the terminal through every rule to the OQS.
//!
//! Spans carry the method, each rule's decision and the denial reason, never a
//! patient identifier (see `tests/otel_traces.rs`).

pub mod export;
pub mod grpc_span;
pub mod logging;
pub mod metrics;
pub mod propagation;

pub use export::{TelemetryConfig, TraceExport};

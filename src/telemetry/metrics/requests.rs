//! What the request path reports: calls by method, decision and reason, and where
//! their time goes (each rule, the upstream, the whole call).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: &'static str,
    /// allowed, denied or failed, as in the access log.
    pub decision: &'static str,
    /// The denial reason; empty for an allowed call.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The rule's span name, e.g. `rule.activation`.
    pub rule: &'static str,
    /// pass or deny.
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub method: &'static str,
    /// The gRPC code the upstream answered with (OK, Unavailable, …).
    pub code: &'static str,
}

type Seconds<L> = Family<L, Histogram, fn() -> Histogram>;

/// From 50 µs to about 13 s: a rule takes microseconds, the upstream milliseconds.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// The request path's metric families, shared by every layer of every call: one
/// `Arc` to clone per call, not one per family.
#[derive(Clone, Debug, Default)]
pub struct RequestMetrics(Arc<Families>);

#[derive(Debug)]
pub struct Families {
    pub calls: Family<CallLabels, Counter>,
    pub call_seconds: Seconds<MethodLabels>,
    pub rule_seconds: Seconds<RuleLabels>,
    pub upstream_seconds: Seconds<UpstreamLabels>,
    pub upstream_errors: Family<UpstreamLabels, Counter>,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(seconds),
            rule_seconds: Family::new_with_constructor(seconds),
            upstream_seconds: Family::new_with_constructor(seconds),
            upstream_errors: Family::default(),
        }
    }
}

impl std::ops::Deref for RequestMetrics {
    type Target = Families;

    fn deref(&self) -> &Families {
        &self.0
    }
}

/// One rule's two histograms (pass, deny), looked up in their family once.
#[derive(Clone, Debug)]
pub struct RuleTimer(Arc<[Histogram; 2]>);

impl RuleTimer {
    pub fn observe(&self, passed: bool, seconds: f64) {
        self.0[usize::from(!passed)].observe(seconds);
    }
}

impl RequestMetrics {
    pub fn rule_timer(&self, rule: &'static str) -> RuleTimer {
        let get = |decision| {
            self.rule_seconds
                .get_or_create(&RuleLabels { rule, decision })
                .clone()
        };
        RuleTimer(Arc::new([get("pass"), get("deny")]))
    }

    pub fn described(&self) -> Vec<super::Described> {
        described! {
            self.calls => "requests", "Patient-data calls by method, decision (allowed, denied, failed) and denial reason";
            self.call_seconds => "request_seconds", "Time from a call's arrival to its answer, access-log commit included";
            self.rule_seconds => "rule_seconds", "Time each rule layer took to decide, by its decision";
            self.upstream_seconds => "upstream_seconds", "Time of calls forwarded to the upstream OQS, by the code it answered";
            self.upstream_errors => "upstream_errors", "Forwarded calls the upstream OQS failed (unreachable, timed out or an error)";
        }
    }
}

/// The name of a gRPC code as a label value.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

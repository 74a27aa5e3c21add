//! What the upstream client reports besides each call's time and code: the state of
//! its circuit breaker, the attempts it made again, and the calls the open circuit
//! refused without trying.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// `onshi_upstream_circuit_state`: closed.
pub const CLOSED: i64 = 0;
/// Calls are refused at once.
pub const OPEN: i64 = 1;
/// One probe call is let through; the others are refused.
pub const HALF_OPEN: i64 = 2;

#[derive(Clone, Debug, Default)]
pub struct UpstreamMetrics {
    pub circuit_state: Gauge,
    pub retries: Counter,
    pub circuit_refused: Counter,
}

impl UpstreamMetrics {
    pub(super) fn described(&self) -> Vec<super::Described> {
        described! {
            self.circuit_state => "upstream_circuit_state", "The upstream circuit breaker: 0 closed, 1 open (calls refused at once), 2 half-open (one probe let through)";
            self.retries => "upstream_retries", "Forwarded calls sent again after a transport failure (connection cut, GOAWAY, refused stream)";
            self.circuit_refused => "upstream_circuit_refused", "Forwarded calls refused at once, without trying, because the upstream circuit was open";
        }
    }
}

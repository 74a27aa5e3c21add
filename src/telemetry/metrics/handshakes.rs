//! TLS handshakes the listeners refused, by listener and reason, so that a
//! terminal that cannot connect shows on `/metrics` with why. The labels are
//! small closed sets the acceptor names; no certificate's content is a label.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// terminal or operators.
    pub listener: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct HandshakeMetrics {
    pub refused: Family<RefusalLabels, Counter>,
}

impl HandshakeMetrics {
    pub fn refused(&self, listener: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusalLabels { listener, reason })
            .inc();
    }

    /// Shows the series at zero, so that a rate over it is defined before the first
    /// refusal.
    pub fn expect(&self, listener: &'static str, reason: &'static str) {
        let _ = self
            .refused
            .get_or_create(&RefusalLabels { listener, reason });
    }

    pub(super) fn described(&self) -> Vec<super::Described> {
        described! {
            self.refused => "tls_handshake_refused", "TLS handshakes that failed, by listener and reason: expired, unknown_ca, no_client_certificate, bad_identity (no facility or operator identity, or a facility code that fails its check digit), gateway_not_trusted (the client refused the gateway's certificate), not_tls (plaintext to a TLS port), other";
        }
    }
}

//! The client to the upstream OQS: a few lazily connecting HTTP/2 connections taken
//! in turn, a bound on calls in flight, and the circuit breaker whose state is the
//! upstream's health.
//!
//! The connections are hyper's, not a tonic `Channel`: a `Channel` arms its own
//! timer from the `grpc-timeout` it sends and resets the stream when it fires, just
//! before the upstream's timer (armed from the same value, a little later) would
//! have ended the call cleanly. Under a slow upstream every call that times out then
//! costs a reset, and an h2 upstream answers a run of them with GOAWAY
//! ENHANCE_YOUR_CALM, failing every call on the connection. Here the deadline is the
//! upstream's to enforce; the gateway stops waiting at it without resetting anything
//! (see `forward`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::Uri;
use http::uri::InvalidUri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Semaphore, watch};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::pipeline::circuit::{Circuit, CircuitPolicy};
use crate::pipeline::fault::classify;
use crate::telemetry::metrics::UpstreamMetrics;

/// HTTP/2 connections to the upstream, each call taking the next: a GOAWAY or a
/// broken connection fails only the calls on it, and their retries go out on
/// another; the upstream also reads each connection's frames on a task of its own.
pub const CONNECTIONS: usize = 4;

/// One HTTP/2 connection (reconnected when lost), as the generated clients use it:
/// plaintext (h2c) to an `http://` upstream, TLS to an `https://` one.
pub type Transport = Client<HttpsConnector<HttpConnector>, tonic::body::Body>;

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: String,
    /// The longest a forwarded call may take; a shorter caller deadline wins.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Calls in flight to the upstream at once; more wait (within their deadline).
    pub max_in_flight: usize,
    /// Where the circuit breaker and the retries are counted.
    pub metrics: UpstreamMetrics,
    /// TLS for an `https://` upstream (its CA, and the gateway's client certificate);
    /// one that trusts no CA where none is configured.
    pub tls: Arc<rustls::ClientConfig>,
}

#[derive(Clone)]
pub struct Upstream {
    connections: Connections,
    pub(crate) timeout: Duration,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) circuit: Arc<Circuit>,
    pub(crate) metrics: UpstreamMetrics,
}

/// The connections, taken in turn, and the upstream's address.
#[derive(Clone)]
struct Connections {
    transports: Arc<[Transport]>,
    next: Arc<AtomicUsize>,
    origin: Uri,
}

impl Connections {
    /// HTTP/2 in plaintext to an `http://` URL, over TLS with `config.tls` to an
    /// `https://` one.
    fn open(config: &UpstreamConfig) -> Result<Connections, InvalidUri> {
        let origin: Uri = config.url.parse()?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        // Lets the TLS connector take `https://` URIs; it passes `http://` ones through.
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config((*config.tls).clone())
            .https_or_http()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .clone();
        Ok(Connections {
            // A client pools one HTTP/2 connection per upstream: one client each.
            transports: (0..CONNECTIONS)
                .map(|_| client.build(connector.clone()))
                .collect(),
            next: Arc::default(),
            origin,
        })
    }

    fn next(&self) -> (Transport, Uri) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.transports.len();
        (self.transports[i].clone(), self.origin.clone())
    }
}

impl Upstream {
    /// Builds the client without connecting: an unreachable upstream shows up per call
    /// as UPSTREAM_UNAVAILABLE, not as a gateway that fails to start. Starts, on the
    /// current Tokio runtime, the task that probes the upstream while the circuit is
    /// open; it ends with the last clone of the client.
    pub fn connect_lazy(config: &UpstreamConfig) -> Result<Upstream, InvalidUri> {
        let connections = Connections::open(config)?;
        let circuit = Circuit::new(CircuitPolicy::default(), config.metrics.clone());
        tokio::spawn(probe_when_due(
            Arc::downgrade(&circuit),
            circuit.health(),
            connections.clone(),
            config.timeout,
        ));
        Ok(Upstream {
            connections,
            timeout: config.timeout,
            permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            circuit,
            metrics: config.metrics.clone(),
        })
    }

    /// The connection for the next call, and the upstream's address.
    pub(crate) fn transport(&self) -> (Transport, Uri) {
        self.connections.next()
    }

    /// The upstream as the gateway's calls find it: `Ok(())` while it is usable;
    /// `Err(why)` while its circuit breaker is open or probing, e.g. "circuit open
    /// after 5 consecutive upstream failures" or "circuit open after 12 consecutive
    /// upstream failures; 62% of the last 50 upstream calls failed" (then "; probing
    /// whether the upstream is back"). It turns Ok again once a probe succeeds, within about
    /// a second or two of the upstream's return, with or without traffic. A new
    /// client is Ok: nothing has failed yet (whether a connection opens at all is
    /// for a connection probe to say). Each change is sent, and sometimes an equal
    /// value again.
    pub fn health(&self) -> watch::Receiver<Result<(), String>> {
        self.circuit.health()
    }
}

/// Probes the upstream each time a cool-down is over and no call came to do it, so
/// that the circuit closes, and health recovers, without waiting for traffic (a
/// gateway taken out of service for its upstream gets none).
async fn probe_when_due(
    circuit: Weak<Circuit>,
    mut changes: watch::Receiver<Result<(), String>>,
    connections: Connections,
    timeout: Duration,
) {
    loop {
        let Some(due) = circuit.upgrade().map(|c| c.probe_due()) else {
            return;
        };
        if let Some(at) = due {
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                changed = changes.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return,
                },
            }
        } else if changes.changed().await.is_err() {
            return;
        } else {
            continue;
        }
        let Some(pass) = circuit.upgrade().and_then(|c| c.try_probe()) else {
            continue;
        };
        pass.report(!answers(connections.next(), timeout).await);
    }
}

/// Whether the upstream answers a health check in time. Any answer will do, even
/// UNIMPLEMENTED from an upstream without the health service: it is there.
async fn answers((transport, origin): (Transport, Uri), timeout: Duration) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(timeout);
    let mut client = HealthClient::with_origin(transport, origin);
    match tokio::time::timeout(timeout, client.check(request)).await {
        Ok(Ok(_)) => true,
        Ok(Err(status)) => {
            tracing::debug!(%status, "upstream probe failed");
            !classify(&status).is_failure()
        }
        Err(_) => false,
    }
}

//! Prometheus metrics, served as text on `/metrics` of their own listener. Each
//! gateway owns its registry (no global state), so several can share a process.
//! Labels and values carry no patient identifier.

/// `metric => "name", "help";` lines as a list of [`Described`], one metric a line.
macro_rules! described {
    ($($metric:expr => $name:literal, $help:literal;)*) => {
        vec![$(($name, $help, Box::new($metric.clone()) as Box<dyn prometheus_client::registry::Metric>)),*]
    };
}

pub mod handshakes;
pub mod index_age;
pub mod requests;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use handshakes::HandshakeMetrics;
pub use index_age::LoadedAt;
pub use requests::RequestMetrics;
pub use upstream::UpstreamMetrics;

/// A metric as registered: its name (after the `onshi_` prefix), its help text, and
/// the metric, sharing its values with the handle the gateway updates.
pub type Described = (&'static str, &'static str, Box<dyn Metric>);

/// Registers each metric under its name with its help text: every part of the
/// registry goes through here, so a part lists its metrics and nothing more.
fn register(registry: &mut Registry, metrics: Vec<Described>) {
    for (name, help, metric) in metrics {
        registry.register(name, help, Boxed(metric));
    }
}

/// A boxed metric is itself one (prometheus-client implements that only for
/// metrics that are neither `Send` nor `Sync`).
#[derive(Debug)]
struct Boxed(Box<dyn Metric>);

impl EncodeMetric for Boxed {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// What the access-log writer reports.
#[derive(Clone, Debug)]
pub struct AuditMetrics {
    /// 1 while commits succeed, 0 after a failed one (patient-data calls are refused).
    pub healthy: Gauge,
    pub committed: Counter,
    pub commit_failures: Counter,
    pub checkpoints: Counter,
    pub batch_records: Histogram,
    pub commit_seconds: Histogram,
    /// Records of refused calls waiting for the store to take writes again.
    pub pending: Gauge,
    /// Records of refused calls that did not fit in the backlog.
    pub lost: Counter,
    /// Flagged accesses unreviewed past the configured bound.
    pub reviews_overdue: Gauge,
    pub notices_delivered: Counter,
    pub notice_failures: Counter,
    /// Notices to patients not yet delivered.
    pub notices_pending: Gauge,
}

impl Default for AuditMetrics {
    fn default() -> Self {
        let healthy = Gauge::default();
        healthy.set(1);
        AuditMetrics {
            healthy,
            committed: Counter::default(),
            commit_failures: Counter::default(),
            checkpoints: Counter::default(),
            batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            pending: Gauge::default(),
            lost: Counter::default(),
            reviews_overdue: Gauge::default(),
            notices_delivered: Counter::default(),
            notice_failures: Counter::default(),
            notices_pending: Gauge::default(),
        }
    }
}

impl AuditMetrics {
    fn described(&self) -> Vec<Described> {
        described! {
            self.healthy => "audit_writer_healthy", "1 while access-log commits succeed; 0 after a failure, while patient-data calls are refused";
            self.committed => "audit_records_committed", "Access records committed";
            self.commit_failures => "audit_commit_failures", "Access-log commits that failed (their calls were refused)";
            self.checkpoints => "audit_checkpoints", "Signed access-log checkpoints committed";
            self.batch_records => "audit_batch_records", "Access records per group commit";
            self.commit_seconds => "audit_commit_seconds", "Time to commit one batch of access records";
            self.pending => "audit_records_pending", "Records of calls refused with AUDIT_UNAVAILABLE, kept until the store takes writes again";
            self.lost => "audit_records_lost", "Records of refused calls that did not fit in the backlog and were not committed";
            self.reviews_overdue => "audit_reviews_overdue", "Accesses under the exemption without a review outcome past the configured bound (review.overdue_days)";
            self.notices_delivered => "patient_notices_delivered", "Notices to patients delivered to the configured sink";
            self.notice_failures => "patient_notice_failures", "Failed attempts to deliver a notice to a patient (retried with back-off)";
            self.notices_pending => "patient_notices_pending", "Notices to patients in the outbox not yet delivered";
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// For the index: fresh (served from memory) or reloaded (loaded on the call's
    /// path); for the facility registry: hit or miss.
    pub result: &'static str,
}

/// What the activation registry's cache reports.
#[derive(Clone, Debug)]
pub struct ActivationMetrics {
    /// 1 while the store answers; 0 while decisions use the last known state.
    pub healthy: Gauge,
    pub reloads: Counter,
    pub reload_failures: Counter,
    pub loaded_at: LoadedAt,
    pub index_lookups: Family<LookupLabels, Counter>,
    pub registry_lookups: Family<LookupLabels, Counter>,
}

impl ActivationMetrics {
    pub fn index_lookup(&self, result: &'static str) {
        self.index_lookups
            .get_or_create(&LookupLabels { result })
            .inc();
    }

    pub fn registry_lookup(&self, result: &'static str) {
        self.registry_lookups
            .get_or_create(&LookupLabels { result })
            .inc();
    }

    fn described(&self) -> Vec<Described> {
        described! {
            self.healthy => "activation_store_healthy", "1 while the activation registry is readable; 0 while decisions use the last known state";
            self.reloads => "activation_reloads", "Reloads of the activation registry into memory";
            self.reload_failures => "activation_reload_failures", "Reloads of the activation registry that failed";
            self.index_lookups => "activation_index_lookups", "Decisions' reads of the activation index: fresh from memory, or reloaded on the call's path";
            self.registry_lookups => "facility_registry_lookups", "Facility registry reads by the activation rule: cache hit or miss";
        }
    }
}

impl Default for ActivationMetrics {
    fn default() -> Self {
        let healthy = Gauge::default();
        healthy.set(1);
        ActivationMetrics {
            healthy,
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            loaded_at: LoadedAt::default(),
            index_lookups: Family::default(),
            registry_lookups: Family::default(),
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub audit: AuditMetrics,
    pub activations: ActivationMetrics,
    pub requests: RequestMetrics,
    pub handshakes: HandshakeMetrics,
    pub upstream: UpstreamMetrics,
    /// 1 while a part the gateway needs is usable (see `crate::server::health`).
    pub components: ComponentGauges,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("onshi");
        let audit = AuditMetrics::default();
        let activations = ActivationMetrics::default();
        let requests = RequestMetrics::default();
        let handshakes = HandshakeMetrics::default();
        let upstream = UpstreamMetrics::default();
        let components = ComponentGauges::default();
        register(&mut registry, audit.described());
        register(&mut registry, activations.described());
        registry.register_collector(Box::new(index_age::IndexAge(activations.loaded_at.clone())));
        register(&mut registry, requests.described());
        register(&mut registry, handshakes.described());
        register(&mut registry, upstream.described());
        register(
            &mut registry,
            described! {
                components => "component_healthy", "1 while the part is usable (store, audit writer, upstream, activation registry); its health-service name says the same";
            },
        );
        Arc::new(Metrics {
            registry,
            audit,
            activations,
            requests,
            handshakes,
            upstream,
            components,
        })
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// Serves `/metrics`, and the routes of `beside` (other public documents), on
/// `listener` until `stop` resolves.
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    beside: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<std::io::Result<()>> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
        .merge(beside);
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub component: &'static str,
}

/// `onshi_component_healthy{component}`: 1 usable, 0 not.
pub type ComponentGauges = Family<ComponentLabels, Gauge>;

//! Prometheus metrics, served as text on `/metrics` of their own listener. Each
//! gateway owns its registry (no global state), so several can share a process.
//! Labels and values carry no patient identifier.

pub mod index_age;
pub mod requests;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use index_age::LoadedAt;
pub use requests::RequestMetrics;

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
    /// 1 while a part the gateway needs is usable (see `crate::server::health`).
    pub components: ComponentGauges,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("onshi");
        let audit = AuditMetrics::default();
        registry.register(
            "audit_writer_healthy",
            "1 while access-log commits succeed; 0 after a failure, while patient-data calls are refused",
            audit.healthy.clone(),
        );
        registry.register(
            "audit_records_committed",
            "Access records committed",
            audit.committed.clone(),
        );
        registry.register(
            "audit_commit_failures",
            "Access-log commits that failed (their calls were refused)",
            audit.commit_failures.clone(),
        );
        registry.register(
            "audit_checkpoints",
            "Signed access-log checkpoints committed",
            audit.checkpoints.clone(),
        );
        registry.register(
            "audit_batch_records",
            "Access records per group commit",
            audit.batch_records.clone(),
        );
        registry.register(
            "audit_commit_seconds",
            "Time to commit one batch of access records",
            audit.commit_seconds.clone(),
        );
        let activations = ActivationMetrics::default();
        registry.register(
            "activation_store_healthy",
            "1 while the activation registry is readable; 0 while decisions use the last known state",
            activations.healthy.clone(),
        );
        registry.register(
            "activation_reloads",
            "Reloads of the activation registry into memory",
            activations.reloads.clone(),
        );
        registry.register(
            "activation_reload_failures",
            "Reloads of the activation registry that failed",
            activations.reload_failures.clone(),
        );
        registry.register(
            "activation_index_lookups",
            "Decisions' reads of the activation index: fresh from memory, or reloaded on the call's path",
            activations.index_lookups.clone(),
        );
        registry.register(
            "facility_registry_lookups",
            "Facility registry reads by the activation rule: cache hit or miss",
            activations.registry_lookups.clone(),
        );
        registry.register_collector(Box::new(index_age::IndexAge(activations.loaded_at.clone())));
        let requests = RequestMetrics::default();
        requests.register(&mut registry);
        let components = ComponentGauges::default();
        registry.register(
            "component_healthy",
            "1 while the part is usable (store, audit writer, upstream, activation registry); its health-service name says the same",
            components.clone(),
        );
        Arc::new(Metrics {
            registry,
            audit,
            activations,
            requests,
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

/// Serves `/metrics` on `listener` until `stop` resolves.
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<std::io::Result<()>> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
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

//! What `grpc.health.v1` reports. The terminal services (and `""`) are SERVING only
//! while the three things a patient-data call needs are usable: the store (search
//! ledger, activations), the access-log writer, and the upstream OQS. Each is also
//! reported under its own service name, so a probe or an operator can tell which one
//! is not, and a change is logged with the reason and shown on `/metrics`.
//!
//! The activation registry is reported apart and does not take the gateway out of
//! service: while it cannot be read, decisions use the last known state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::Endpoint;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::proto::medical_information_service_server::MedicalInformationServiceServer;
use crate::proto::qualification_service_server::QualificationServiceServer;
use crate::server::terminal::{MedicalGateway, QualificationGateway};
use crate::store::Store;
use crate::telemetry::metrics::{ComponentGauges, ComponentLabels};

/// The health-service names of the parts, each SERVING or NOT_SERVING on its own.
pub const STORE: &str = "onshi.store";
pub const AUDIT_WRITER: &str = "onshi.audit_writer";
pub const UPSTREAM: &str = "onshi.upstream";
/// NOT_SERVING while decisions use the last known activation state.
pub const ACTIVATION_REGISTRY: &str = "onshi.activation_registry";
/// SERVING while the process runs and is not shutting down, whatever its parts: a
/// liveness probe that restarts nothing because the upstream is down.
pub const LIVENESS: &str = "onshi.liveness";

pub const TERMINAL_SERVICES: [&str; 2] = [
    <QualificationServiceServer<QualificationGateway> as NamedService>::NAME,
    <MedicalInformationServiceServer<MedicalGateway> as NamedService>::NAME,
];

/// The parts the terminal services need.
const REQUIRED: [&str; 3] = [STORE, AUDIT_WRITER, UPSTREAM];

/// What the health task watches and probes.
pub struct Sources {
    pub store: Arc<dyn Store>,
    pub upstream_url: String,
    pub upstream_tls: Option<tonic::transport::ClientTlsConfig>,
    pub audit_writer: watch::Receiver<Result<(), String>>,
    /// The upstream client's own view: its circuit and recent failure rate.
    pub upstream_calls: watch::Receiver<Result<(), String>>,
    pub activation_registry: watch::Receiver<bool>,
    /// How often the store and the upstream are probed.
    pub interval: Duration,
}

/// Each part: usable, or why not.
type Board = BTreeMap<&'static str, Result<(), String>>;

/// Probes once, publishes, then follows the watched parts and probes every interval.
/// Returns once the first statuses are published, so a gateway never answers health
/// before it knows.
pub async fn spawn(
    reporter: HealthReporter,
    gauges: ComponentGauges,
    mut sources: Sources,
) -> JoinHandle<()> {
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let mut board = Board::new();
    let mut connects = probe(&sources, &mut board).await;
    watched(&mut sources, &mut board, &connects);
    publish(&reporter, &gauges, &Board::new(), &board).await;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(sources.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            let before = board.clone();
            tokio::select! {
                _ = every.tick() => connects = probe(&sources, &mut board).await,
                changed = sources.audit_writer.changed() => if changed.is_err() { return },
                changed = sources.upstream_calls.changed() => if changed.is_err() { return },
                changed = sources.activation_registry.changed() => if changed.is_err() { return },
            }
            watched(&mut sources, &mut board, &connects);
            publish(&reporter, &gauges, &before, &board).await;
        }
    })
}

/// The watched parts; the upstream is usable while a connection opens (`connects`)
/// and its calls do not fail (its client's circuit is closed).
fn watched(sources: &mut Sources, board: &mut Board, connects: &Result<(), String>) {
    let audit = sources.audit_writer.borrow_and_update().clone();
    board.insert(AUDIT_WRITER, audit);
    let calls = sources.upstream_calls.borrow_and_update().clone();
    board.insert(UPSTREAM, calls.and(connects.clone()));
    let registry = *sources.activation_registry.borrow_and_update();
    board.insert(
        ACTIVATION_REGISTRY,
        if registry {
            Ok(())
        } else {
            Err("the activation registry cannot be read; deciding from the last known state".into())
        },
    );
}

/// Probes the store (on the board) and whether the upstream takes a connection (returned).
async fn probe(sources: &Sources, board: &mut Board) -> Result<(), String> {
    // A probe that hangs is a failed probe, and must not hold up the next one.
    let limit = sources
        .interval
        .clamp(Duration::from_millis(100), Duration::from_secs(2));
    let (store, upstream) = tokio::join!(
        tokio::time::timeout(limit, sources.store.ping()),
        tokio::time::timeout(
            limit,
            connect(&sources.upstream_url, sources.upstream_tls.as_ref(), limit)
        ),
    );
    board.insert(
        STORE,
        match store {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the store does not answer: {e}")),
            Err(_) => Err(format!("the store did not answer within {limit:?}")),
        },
    );
    match upstream {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the upstream OQS cannot be reached: {e}")),
        Err(_) => Err(format!(
            "the upstream OQS did not accept a connection within {limit:?}"
        )),
    }
}

/// A new connection to the upstream: reachable, and speaking HTTP/2.
async fn connect(
    url: &str,
    tls: Option<&tonic::transport::ClientTlsConfig>,
    timeout: Duration,
) -> Result<(), tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_string())?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.clone())?;
    }
    endpoint.connect_timeout(timeout).connect().await.map(drop)
}

fn status(ok: bool) -> ServingStatus {
    if ok {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Publishes what changed from `before` to `now`. Watchers are told of a change of
/// status only: not of every probe, nor of a new reason for the same status.
async fn publish(reporter: &HealthReporter, gauges: &ComponentGauges, before: &Board, now: &Board) {
    for (&name, state) in now {
        let was = before.get(name);
        if was == Some(state) {
            continue;
        }
        match state {
            Ok(()) if was.is_some() => tracing::info!(component = name, "usable again"),
            Ok(()) => {}
            Err(why) => tracing::warn!(component = name, why = %why, "not usable"),
        }
        if was.map(Result::is_ok) != Some(state.is_ok()) {
            reporter
                .set_service_status(name, status(state.is_ok()))
                .await;
            gauges
                .get_or_create(&ComponentLabels { component: name })
                .set(i64::from(state.is_ok()));
        }
    }
    let serving = |board: &Board| {
        REQUIRED
            .iter()
            .all(|name| board.get(name).is_some_and(std::result::Result::is_ok))
    };
    if before.is_empty() || serving(before) != serving(now) {
        for name in TERMINAL_SERVICES {
            reporter
                .set_service_status(name, status(serving(now)))
                .await;
        }
        reporter.set_service_status("", status(serving(now))).await;
    }
}

/// Everything NOT_SERVING: the gateway is draining and takes no new calls.
pub async fn shutting_down(reporter: &HealthReporter) {
    let names = [
        STORE,
        AUDIT_WRITER,
        UPSTREAM,
        ACTIVATION_REGISTRY,
        LIVENESS,
        "",
    ];
    for name in names.into_iter().chain(TERMINAL_SERVICES) {
        reporter
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
}

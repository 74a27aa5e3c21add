//! Starts the gateway: store, audit writer, upstream (built-in or remote), the
//! terminal services with health and reflection on one listener, and the
//! operators' services on another.

mod accountability;
pub mod crl;
pub mod health;
mod health_watch;
mod listeners;
mod reflection;
mod retention;
mod shutdown;
mod storage;
pub mod terminal;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::activation::admin::ActivationAdmin;
use crate::activation::cache::ActivationCache;
use crate::activation::site_admin::SiteAdmin;
use crate::audit::WriterTask;
use crate::audit::transparency::service::TransparencyServer;
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::pipeline::Deps;
use crate::server::health_watch::Health;
use crate::server::listeners::{start_admin, start_health, start_metrics, start_terminals};
use crate::server::retention::spawn_retention;
use crate::server::storage::Storage;
use crate::simulator::Population;
use crate::store::{AuditStore, Store};
use crate::telemetry::metrics::Metrics;
use crate::tls::acceptor::ReloadableTls;
use crate::tls::identity::IdentitySource;

pub use listeners::nodelay;
pub use upstream::spawn_simulator;

/// A started gateway. Dropping it without [`RunningGateway::shutdown`] aborts nothing:
/// call shutdown to stop and flush the access log.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// The operators' services, when configured.
    pub admin_addr: Option<SocketAddr>,
    /// The operators' console in the browser, when configured.
    pub console_addr: Option<SocketAddr>,
    /// Prometheus `/metrics`, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The plaintext health listener, when configured.
    pub health_addr: Option<SocketAddr>,
    health: Health,
    pub metrics: Arc<Metrics>,
    /// The certificates in use, when TLS is on: `reload_tls` re-reads them.
    tls: Option<ReloadableTls>,
    pub store: Arc<dyn Store>,
    /// This replica's access-log chain.
    pub chain_id: String,
    pub activations: ActivationCache,
    /// The built-in upstream's population, when it runs in-process.
    pub population: Option<Arc<Population>>,
    pub upstream_addr: Option<SocketAddr>,
    stop: Vec<oneshot::Sender<()>>,
    drain_timeout: Duration,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    admin_server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    health_server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    background_servers: Vec<JoinHandle<std::io::Result<()>>>,
    writer: WriterTask,
    /// The patient-data calls running to their records.
    calls: tokio_util::task::TaskTracker,
    background: Vec<JoinHandle<()>>,
}

pub async fn start(config: GatewayConfig, clock: SharedClock) -> anyhow::Result<RunningGateway> {
    start_with_audit(config, clock, None).await
}

/// The services of the operators' listener and what they read.
struct Operators {
    store: Arc<dyn Store>,
    log: crate::audit::read_log::LogWriter,
    admin: (ActivationAdmin, SiteAdmin),
    transparency: TransparencyServer,
    /// The console, over the same services, when configured.
    console: Option<crate::console::Console>,
}

impl Operators {
    fn new(
        config: &GatewayConfig,
        clock: &SharedClock,
        (store, activations): (&Arc<dyn Store>, &ActivationCache),
        audit: crate::audit::AuditWriter,
        transparency: TransparencyServer,
    ) -> anyhow::Result<Operators> {
        let admin = ActivationAdmin::new(store.clone(), activations.clone(), clock.clone());
        let sites = SiteAdmin::new(
            store.clone(),
            activations.clone(),
            clock.clone(),
            audit.clone(),
            site_ca(config)?,
        );
        // Every read of the log by an operator is itself logged.
        let log = crate::audit::read_log::LogWriter::new(audit, clock.clone());
        let console = match config.console_listen {
            Some(_) => Some(crate::console::Console::new(
                (
                    ActivationAdmin::new(store.clone(), activations.clone(), clock.clone()),
                    sites.clone(),
                ),
                store.clone(),
                log.clone(),
                clock.clone(),
                console_csrf_key(config)?,
            )),
            None => None,
        };
        Ok(Operators {
            store: store.clone(),
            log,
            admin: (admin, sites),
            transparency,
            console,
        })
    }
}

/// The console's CSRF key, from the server's private key: replicas behind one address
/// share it, so each accepts the forms the others served. Without TLS the console
/// does not start at all, so a key of its own is as good as any.
fn console_csrf_key(config: &GatewayConfig) -> anyhow::Result<crate::console::csrf::CsrfKey> {
    let Some(files) = &config.tls else {
        return Ok(crate::console::csrf::CsrfKey::generate());
    };
    let key = std::fs::read(&files.key)
        .with_context(|| format!("reading {} for the console", files.key.display()))?;
    Ok(crate::console::csrf::CsrfKey::derive(&key))
}

/// What the request path needs: the rules' state, the access log, the upstream.
fn request_deps(
    config: &GatewayConfig,
    clock: &SharedClock,
    (activations, store): (&ActivationCache, &Arc<dyn Store>),
    (audit, upstream): (
        crate::audit::AuditWriter,
        crate::pipeline::upstream::Upstream,
    ),
    metrics: &Metrics,
) -> Deps {
    Deps {
        clock: clock.clone(),
        identity: config.identity,
        activations: activations.clone(),
        ledger: store.clone(),
        search_ttl: config.search_ttl,
        limits: crate::pipeline::Limits::from_config(config),
        audit,
        upstream,
        metrics: metrics.requests.clone(),
        calls: tokio_util::task::TaskTracker::new(),
        notices: crate::pipeline::audit_layer::NoticePolicy::of(&config.notices),
    }
}

/// Starts the gateway with the access log written to `audit` instead of the store,
/// for measuring what the durable log costs. Not reachable from the command line.
pub async fn start_with_audit(
    config: GatewayConfig,
    clock: SharedClock,
    audit: Option<Arc<dyn AuditStore>>,
) -> anyhow::Result<RunningGateway> {
    announce_identity_source(&config)?;
    let metrics = Metrics::new();
    let storage = Storage::open(&config, &clock, audit, &metrics).await?;
    let chain_id = storage.audit.chain_id().to_string();
    let mut stop = Vec::new();
    let upstream = upstream::start(&config, &clock, metrics.upstream.clone(), &mut stop).await?;
    let activations = ActivationCache::new(
        storage.store.clone(),
        config.activation_refresh,
        metrics.activations.clone(),
    );
    let (health, background) =
        spawn_background(&config, &clock, &metrics, &storage, &upstream, &activations).await;
    let Storage {
        store,
        audit_store,
        audit,
        writer,
        signer,
    } = storage;
    let deps = request_deps(
        &config,
        &clock,
        (&activations, &store),
        (audit, upstream.client),
        &metrics,
    );
    let calls = deps.calls.clone();
    let operators = Operators::new(
        &config,
        &clock,
        (&store, &activations),
        deps.audit.clone(),
        TransparencyServer::new(audit_store, signer),
    )?;
    let tls = load_tls(&config, &metrics)?;
    let (addr, stop_terminals, server) =
        start_terminals(&config, deps, store.clone(), &health, tls.as_ref()).await?;
    stop.push(stop_terminals);
    let side = start_side_listeners(&config, &metrics, &health, operators, tls.as_ref()).await?;
    stop.extend(side.stop);
    Ok(RunningGateway {
        health_addr: side.health_addr,
        health,
        health_server: side.health_server,
        tls,
        addr,
        admin_addr: side.admin_addr,
        console_addr: side.console_addr,
        metrics_addr: side.metrics_addr,
        metrics,
        background_servers: side.background_servers,
        admin_server: side.admin_server,
        store,
        chain_id,
        activations,
        population: upstream.population,
        upstream_addr: upstream.addr,
        stop,
        drain_timeout: config.drain_timeout,
        server,
        writer,
        calls,
        background,
    })
}

/// The health reporter, and the tasks beside the listeners: health checks, following activation changes
/// made on other replicas, and retention.
async fn spawn_background(
    config: &GatewayConfig,
    clock: &SharedClock,
    metrics: &Metrics,
    storage: &Storage,
    upstream: &upstream::StartedUpstream,
    activations: &ActivationCache,
) -> (Health, Vec<JoinHandle<()>>) {
    let (health, _) = tonic_health::server::health_reporter();
    let health_task = crate::server::health::spawn(
        health.clone(),
        metrics.components.clone(),
        crate::server::health::Sources {
            store: storage.store.clone(),
            upstream_url: upstream.url.clone(),
            upstream_tls: upstream.probe_tls.clone(),
            audit_writer: storage.audit.health(),
            upstream_calls: upstream.client.health(),
            activation_registry: activations.health(),
            interval: config.health_check_interval,
        },
    )
    .await;
    let mut background = vec![
        health_task,
        activations.spawn_follower().await,
        spawn_retention(
            storage.store.clone(),
            storage.audit_store.clone(),
            config.audit_retention,
            config.search_ttl,
            clock.clone(),
        ),
        crate::server::accountability::spawn_overdue_reviews(
            storage.store.clone(),
            config.review_overdue,
            clock.clone(),
            metrics.audit.clone(),
        ),
    ];
    background.extend(crate::server::accountability::spawn_notices(
        &config.notices,
        storage.store.clone(),
        clock.clone(),
        metrics.audit.clone(),
    ));
    (Health::new(health), background)
}

/// The certificates, when TLS is configured.
fn load_tls(config: &GatewayConfig, metrics: &Metrics) -> anyhow::Result<Option<ReloadableTls>> {
    config
        .tls
        .as_ref()
        .map(|files| ReloadableTls::load(files, metrics.handshakes.clone()))
        .transpose()
        .context("loading the TLS certificates")
}

/// Refuses development identity with TLS, and says loudly when facilities are
/// identified by forgeable metadata or not at all.
fn announce_identity_source(config: &GatewayConfig) -> anyhow::Result<()> {
    if config.tls.is_some() && config.identity == IdentitySource::DevelopmentMetadata {
        anyhow::bail!(
            "--dev-identity-from-metadata is refused with TLS: facilities are identified by their certificates"
        );
    }
    if config.identity == IdentitySource::DevelopmentMetadata {
        tracing::warn!(
            "DEVELOPMENT IDENTITY MODE: the calling facility is taken from `x-onshi-dev-facility` metadata, \
             which any caller can forge. Never use this outside development."
        );
        eprintln!(
            "!!! DEVELOPMENT IDENTITY MODE: facility taken from request metadata; any caller can claim any facility. !!!"
        );
    }
    if config.identity == IdentitySource::Unconfigured {
        tracing::warn!(
            "no facility identity source configured: every patient-data call is refused (FACILITY_UNIDENTIFIED)"
        );
    }
    Ok(())
}

/// The optional listeners beside the terminals': metrics, plaintext health and the
/// operators' services.
#[derive(Default)]
struct SideListeners {
    metrics_addr: Option<SocketAddr>,
    health_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    console_addr: Option<SocketAddr>,
    health_server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    admin_server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    background_servers: Vec<JoinHandle<std::io::Result<()>>>,
    stop: Vec<oneshot::Sender<()>>,
}

async fn start_side_listeners(
    config: &GatewayConfig,
    metrics: &Arc<Metrics>,
    health: &Health,
    operators: Operators,
    tls: Option<&ReloadableTls>,
) -> anyhow::Result<SideListeners> {
    let mut side = SideListeners::default();
    if let Some(listen) = config.metrics_listen {
        let crl = crl::routes(operators.admin.1.clone());
        let (bound, stop, server) = start_metrics(listen, metrics.clone(), crl).await?;
        side.metrics_addr = Some(bound);
        side.stop.push(stop);
        side.background_servers.push(server);
    }
    if let Some(listen) = config.health_listen {
        let (bound, stop, server) = start_health(listen, health).await?;
        side.health_addr = Some(bound);
        side.stop.push(stop);
        side.health_server = Some(server);
    }
    let Operators {
        store,
        log,
        admin,
        transparency,
        console,
    } = operators;
    if let (Some(listen), Some(console)) = (config.console_listen, console) {
        let tls = tls.context(
            "the console needs TLS (--tls-dir): the operator's certificate is its only login",
        )?;
        let (bound, stop, server) = crate::console::start(listen, console, tls).await?;
        side.console_addr = Some(bound);
        side.stop.push(stop);
        side.background_servers.push(server);
    }
    if let Some(listen) = config.admin_listen {
        let (bound, stop, server) =
            start_admin(listen, store, log, admin, transparency, tls).await?;
        side.admin_addr = Some(bound);
        side.stop.push(stop);
        side.admin_server = Some(server);
    }
    Ok(side)
}

/// The site CA in the TLS directory, when there is one: without it temporary sites
/// can be registered but get no certificates.
fn site_ca(config: &GatewayConfig) -> anyhow::Result<Option<Arc<crate::tls::site_ca::SiteCa>>> {
    let Some(files) = &config.tls else {
        return Ok(None);
    };
    let Some(dir) = files.site_ca.parent() else {
        return Ok(None);
    };
    let ca = crate::tls::site_ca::SiteCa::from_dir(dir)
        .with_context(|| format!("the site CA in {}", dir.display()))?;
    if ca.is_none() {
        tracing::info!(dir = %dir.display(), "no site CA: temporary sites get no certificates");
    }
    Ok(ca.map(Arc::new))
}

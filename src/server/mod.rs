//! Starts the gateway: store, audit writer, upstream (built-in or remote), the
//! terminal services with health and reflection on one listener, and the
//! operators' services on another.

pub mod health;
pub mod terminal;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::activation::admin::ActivationAdmin;
use crate::activation::cache::ActivationCache;
use crate::audit::facility_view::FacilityAuditView;
use crate::audit::service::AuditQueryService;
use crate::audit::{AuditWriter, ChainSigner, WriterTask};
use crate::clock::SharedClock;
use crate::config::{GatewayConfig, UpstreamTarget};
use crate::pipeline::Deps;
use crate::pipeline::upstream::{Upstream, UpstreamConfig};
use crate::proto::activation_admin_service_server::ActivationAdminServiceServer;
use crate::proto::audit_service_server::AuditServiceServer;
use crate::proto::medical_information_service_server::MedicalInformationServiceServer;
use crate::proto::qualification_service_server::QualificationServiceServer;
use crate::server::terminal::{MedicalGateway, QualificationGateway};
use crate::simulator::{self, Population, Simulator};
use crate::store::{self, AuditStore, Store};
use crate::telemetry::metrics::Metrics;
use crate::tls::identity::IdentitySource;
use crate::tls::operator_auth::OperatorAuthLayer;
use crate::tls::{self, acceptor::ReloadableTls};

/// A started gateway. Dropping it without [`RunningGateway::shutdown`] aborts nothing:
/// call shutdown to stop and flush the access log.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// The operators' services, when configured.
    pub admin_addr: Option<SocketAddr>,
    /// Prometheus `/metrics`, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The plaintext health listener, when configured.
    pub health_addr: Option<SocketAddr>,
    health: tonic_health::server::HealthReporter,
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
    background: Vec<JoinHandle<()>>,
}

/// Accepted connections with Nagle's algorithm off: replies are small and must not
/// wait for an ACK (it cost ~40 ms at p99 otherwise).
pub fn nodelay(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Serves the built-in upstream simulator on `listener` until `stop` fires.
pub fn spawn_simulator(
    listener: TcpListener,
    population: Arc<Population>,
    stop: oneshot::Receiver<()>,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    tokio::spawn(simulator::serve(
        listener,
        Simulator::new(population),
        async {
            let _ = stop.await;
        },
    ))
}

pub async fn start(config: GatewayConfig, clock: SharedClock) -> anyhow::Result<RunningGateway> {
    start_with_audit(config, clock, None).await
}

/// Starts the gateway with the access log written to `audit` instead of the store,
/// for measuring what the durable log costs. Not reachable from the command line.
pub async fn start_with_audit(
    config: GatewayConfig,
    clock: SharedClock,
    audit: Option<Arc<dyn AuditStore>>,
) -> anyhow::Result<RunningGateway> {
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
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let location = config.store_location();
    let store = store::open(&location)
        .await
        .with_context(|| format!("opening the store {location}"))?;
    let registry = crate::activation::registry::seed_if_empty(store.as_ref())
        .await
        .context("seeding the facility registry")?;
    tracing::info!(
        municipalities = registry.municipalities,
        facilities = registry.facilities,
        "facility registry"
    );
    let signer = ChainSigner::load_or_generate(&config.audit_key_path())?;
    // Printed so that an operator can pin it (`audit verify --trusted-key`) from
    // outside the store, e.g. from the deployment's logs.
    let public_key = signer.public_key_hex();
    let audit_store: Arc<dyn AuditStore> = audit.unwrap_or_else(|| store.clone());
    let metrics = Metrics::new();
    let (audit, writer) = AuditWriter::start(
        audit_store.clone(),
        signer,
        config.audit,
        clock.clone(),
        metrics.audit.clone(),
    )
    .await
    .context("starting the access-log writer")?;
    let chain_id = audit.chain_id().to_string();
    let audit_health = audit.health();
    tracing::info!(store = %location, chain = %chain_id, %public_key, "access log ready");
    let mut stop = Vec::new();

    let (upstream_url, population, upstream_addr) = match &config.upstream {
        UpstreamTarget::Remote(url) => (url.clone(), None, None),
        UpstreamTarget::Builtin { seed, population } => {
            // The same clock as the rules: the synthetic histories end at the gateway's "today".
            let today = crate::domain::jst::today_jst(clock.now());
            let population = Arc::new(Population::generate_at(*seed, *population, today));
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (tx, rx) = oneshot::channel();
            stop.push(tx);
            spawn_simulator(listener, population.clone(), rx);
            (format!("http://{addr}"), Some(population), Some(addr))
        }
    };
    let upstream = Upstream::connect_lazy(&UpstreamConfig {
        url: upstream_url.clone(),
        timeout: config.upstream_timeout,
        connect_timeout: Duration::from_millis(500),
        max_in_flight: config.upstream_max_in_flight,
    })?;

    let activations = ActivationCache::new(
        store.clone(),
        config.activation_refresh,
        metrics.activations.clone(),
    );
    let deps = Deps {
        clock: clock.clone(),
        identity: config.identity,
        activations: activations.clone(),
        ledger: store.clone(),
        search_ttl: config.search_ttl,
        limits: crate::pipeline::Limits::from_config(&config),
        audit,
        upstream,
        metrics: metrics.requests.clone(),
    };

    let (health_reporter, health) = tonic_health::server::health_reporter();
    let health_task = crate::server::health::spawn(
        health_reporter.clone(),
        metrics.components.clone(),
        crate::server::health::Sources {
            store: store.clone(),
            upstream_url: upstream_url.clone(),
            audit_writer: audit_health,
            activation_registry: activations.health(),
            interval: config.health_check_interval,
        },
    )
    .await;
    let background = vec![
        health_task,
        activations.spawn_follower().await,
        spawn_retention(
            store.clone(),
            audit_store,
            config.audit_retention,
            config.search_ttl,
            clock.clone(),
        ),
    ];
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let limit = config.max_message_bytes;
    // gzip both ways when the caller offers it: drug histories compress well, and
    // shelters are often on thin links.
    let qualification = QualificationServiceServer::new(QualificationGateway::new(&deps))
        .max_decoding_message_size(limit)
        .accept_compressed(Gzip)
        .send_compressed(Gzip);
    let medical = MedicalInformationServiceServer::new(MedicalGateway::new(&deps))
        .max_decoding_message_size(limit)
        .accept_compressed(Gzip)
        .send_compressed(Gzip);
    drop(deps);

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    stop.push(tx);
    let tls = config
        .tls
        .as_ref()
        .map(|files| ReloadableTls::load(files, metrics.handshakes.clone()))
        .transpose()
        .context("loading the TLS certificates")?;
    let router = Server::builder()
        .trace_fn(crate::telemetry::grpc_span::server_span)
        .http2_max_pending_accept_reset_streams(Some(64))
        .max_concurrent_streams(Some(config.max_concurrent_streams))
        // Pings find terminals behind dead links, so their streams are freed.
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .tcp_keepalive(Some(config.keepalive_interval))
        .add_service(health)
        .add_service(reflection)
        .add_service(qualification)
        .add_service(medical)
        .add_service(
            AuditServiceServer::new(FacilityAuditView::new(
                AuditQueryService::new(store.clone()),
                config.identity,
            ))
            .accept_compressed(Gzip)
            .send_compressed(Gzip),
        );
    let stopped = async {
        let _ = rx.await;
    };
    let server = match &tls {
        Some(tls) => tokio::spawn(router.serve_with_incoming_shutdown(
            tls.incoming(listener, tls::acceptor::Listener::Terminal),
            stopped,
        )),
        None => tokio::spawn(router.serve_with_incoming_shutdown(nodelay(listener), stopped)),
    };
    tracing::info!(%addr, tls = tls.is_some(), "gateway listening");

    let mut metrics_addr = None;
    let mut background_servers = Vec::new();
    if let Some(listen) = config.metrics_listen {
        let (bound, stop_metrics, server) = start_metrics(listen, metrics.clone()).await?;
        metrics_addr = Some(bound);
        stop.push(stop_metrics);
        background_servers.push(server);
    }
    let mut health_addr = None;
    let mut health_server = None;
    if let Some(listen) = config.health_listen {
        let (bound, stop_health, server) = start_health(listen, &health_reporter).await?;
        health_addr = Some(bound);
        stop.push(stop_health);
        health_server = Some(server);
    }
    let mut admin_addr = None;
    let mut admin_server = None;
    if let Some(listen) = config.admin_listen {
        let admin = ActivationAdmin::new(store.clone(), activations.clone(), clock.clone());
        let (bound, stop_admin, server) =
            start_admin(listen, store.clone(), admin, tls.as_ref()).await?;
        admin_addr = Some(bound);
        stop.push(stop_admin);
        admin_server = Some(server);
    }
    Ok(RunningGateway {
        health_addr,
        health: health_reporter,
        health_server,
        tls,
        addr,
        admin_addr,
        metrics_addr,
        metrics,
        background_servers,
        admin_server,
        store,
        chain_id,
        activations,
        population,
        upstream_addr,
        stop,
        drain_timeout: config.drain_timeout,
        server,
        writer,
        background,
    })
}

type Serving<E> = (SocketAddr, oneshot::Sender<()>, JoinHandle<Result<(), E>>);

/// Prometheus `/metrics` on its own listener.
async fn start_metrics(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Serving<std::io::Error>> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics address {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let server = crate::telemetry::metrics::serve(listener, metrics, async {
        let _ = rx.await;
    });
    tracing::info!(%addr, "metrics on /metrics");
    Ok((addr, tx, server))
}

/// `grpc.health.v1` alone, in plaintext: it says whether this replica serves, and
/// nothing about any patient, so it needs no client certificate.
async fn start_health(
    listen: SocketAddr,
    reporter: &tonic_health::server::HealthReporter,
) -> anyhow::Result<Serving<tonic::transport::Error>> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the health address {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let service = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(reporter.clone()),
    );
    let server = tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(nodelay(listener), async {
                let _ = rx.await;
            }),
    );
    tracing::info!(%addr, "health listening (plaintext)");
    Ok((addr, tx, server))
}

/// The operators' services (activations and the audit log), apart from the terminals'.
async fn start_admin(
    listen: SocketAddr,
    store: Arc<dyn Store>,
    activations: ActivationAdmin,
    tls: Option<&ReloadableTls>,
) -> anyhow::Result<Serving<tonic::transport::Error>> {
    if !listen.ip().is_loopback() && tls.is_none() {
        tracing::warn!(%listen, "the operators' services listen beyond loopback and do not yet authenticate operators");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the admin address {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let router = Server::builder()
        .trace_fn(crate::telemetry::grpc_span::server_span)
        .layer(OperatorAuthLayer {
            enforce: tls.is_some(),
        })
        .add_service(reflection)
        .add_service(AuditServiceServer::new(AuditQueryService::new(store)))
        .add_service(ActivationAdminServiceServer::new(activations));
    let stopped = async {
        let _ = rx.await;
    };
    let server = match tls {
        Some(tls) => tokio::spawn(router.serve_with_incoming_shutdown(
            tls.incoming(listener, tls::acceptor::Listener::Operators),
            stopped,
        )),
        None => tokio::spawn(router.serve_with_incoming_shutdown(nodelay(listener), stopped)),
    };
    tracing::info!(%addr, "operators' services listening");
    Ok((addr, tx, server))
}

/// Hourly, from start: prunes access records past their retention, and forgets
/// searches past their lifetime (they can no longer be named).
fn spawn_retention(
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditStore>,
    retention: Duration,
    search_ttl: Duration,
    clock: SharedClock,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let now = clock.now();
            match crate::audit::retention::prune_expired(audit.as_ref(), now, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, ?retention, "pruned expired access records"),
                Err(e) => tracing::warn!(error = %e, "pruning expired access records failed"),
            }
            let Some(expired) = chrono::Duration::from_std(search_ttl)
                .ok()
                .and_then(|ttl| now.checked_sub_signed(ttl))
            else {
                continue;
            };
            match store.prune_searches(expired).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(searches = n, "forgot expired searches"),
                Err(e) => tracing::warn!(error = %e, "forgetting expired searches failed"),
            }
        }
    })
}

impl RunningGateway {
    /// Re-reads the certificate files (on SIGHUP): new connections use them, open
    /// ones keep theirs. A failure changes nothing and says why.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Stops accepting, lets in-flight calls finish for up to the drain timeout (idle
    /// client connections would otherwise hold it open forever), then flushes the
    /// access log.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let RunningGateway {
            stop,
            drain_timeout,
            mut server,
            writer,
            background,
            admin_server,
            health_server,
            background_servers,
            health,
            ..
        } = self;
        for task in background {
            task.abort();
        }
        // Readiness fails from now on, so balancers stop sending new calls here.
        crate::server::health::shutting_down(&health).await;
        for s in stop.into_iter().rev() {
            let _ = s.send(());
        }
        match tokio::time::timeout(drain_timeout, &mut server).await {
            Ok(result) => result??,
            Err(_) => {
                tracing::warn!(
                    ?drain_timeout,
                    "calls still open after the drain timeout: closing them"
                );
                server.abort();
                let _ = server.await;
            }
        }
        for server in background_servers {
            server.abort();
        }
        if let Some(health) = health_server {
            health.abort();
            let _ = health.await;
        }
        if let Some(admin) = admin_server {
            // Audit reads hold no access record open: no need to wait for them.
            admin.abort();
            let _ = admin.await;
        }
        // Connections that outlived the drain may still hold writer handles: close it
        // explicitly; it commits what is queued and refuses the rest.
        writer.close().await?;
        Ok(())
    }
}

//! The gateway's listeners: the terminals' services, the operators' services,
//! plaintext health and Prometheus metrics, each on its own address.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::server::health_watch::Health;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::activation::admin::ActivationAdmin;
use crate::activation::site_admin::SiteAdmin;
use crate::audit::facility_view::FacilityAuditView;
use crate::audit::service::AuditQueryService;
use crate::audit::transparency::service::TransparencyServer;
use crate::config::GatewayConfig;
use crate::pipeline::Deps;
use crate::proto::activation_admin_service_server::ActivationAdminServiceServer;
use crate::proto::audit_service_server::AuditServiceServer;
use crate::proto::medical_information_service_server::MedicalInformationServiceServer;
use crate::proto::qualification_service_server::QualificationServiceServer;
use crate::proto::site_admin_service_server::SiteAdminServiceServer;
use crate::proto::transparency_service_server::TransparencyServiceServer;
use crate::server::reflection::{OPERATORS, TERMINAL};
use crate::server::terminal::{MedicalGateway, QualificationGateway};
use crate::store::Store;
use crate::telemetry::metrics::Metrics;
use crate::tls::operator_auth::OperatorAuthLayer;
use crate::tls::{self, acceptor::ReloadableTls};

/// A listener started: its address, what stops it, and its task.
pub(super) type Serving<E> = (SocketAddr, oneshot::Sender<()>, JoinHandle<Result<(), E>>);

/// Accepted connections with Nagle's algorithm off: replies are small and must not
/// wait for an ACK (it cost ~40 ms at p99 otherwise).
pub fn nodelay(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The terminals' services (patient data, their facility's own access log), with
/// health and reflection, on `config.listen`. `deps` is dropped once the services
/// hold what they need, so that the access-log writer can later close.
pub(super) async fn start_terminals(
    config: &GatewayConfig,
    deps: Deps,
    store: Arc<dyn Store>,
    health: &Health,
    tls: Option<&ReloadableTls>,
) -> anyhow::Result<Serving<tonic::transport::Error>> {
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
    let own_log = AuditServiceServer::new(FacilityAuditView::new(
        AuditQueryService::new(store),
        config.identity,
    ))
    .accept_compressed(Gzip)
    .send_compressed(Gzip);
    drop(deps);

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let router = Server::builder()
        .trace_fn(crate::telemetry::grpc_span::server_span)
        .http2_max_pending_accept_reset_streams(Some(64))
        .max_concurrent_streams(Some(config.max_concurrent_streams))
        // Pings find terminals behind dead links, so their streams are freed.
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .tcp_keepalive(Some(config.keepalive_interval))
        // Keep reflection::TERMINAL in step with what is added here.
        .add_service(health.service())
        .add_service(TERMINAL.v1()?)
        .add_service(TERMINAL.v1alpha()?)
        .add_service(qualification)
        .add_service(medical)
        .add_service(own_log);
    let stopped = async {
        let _ = rx.await;
    };
    let server = match tls {
        Some(tls) => tokio::spawn(router.serve_with_incoming_shutdown(
            tls.incoming(listener, tls::acceptor::Listener::Terminal),
            stopped,
        )),
        None => tokio::spawn(router.serve_with_incoming_shutdown(nodelay(listener), stopped)),
    };
    tracing::info!(%addr, tls = tls.is_some(), "gateway listening");
    Ok((addr, tx, server))
}

/// Prometheus `/metrics` on its own listener, with the public documents of `beside`
/// (the site CRL).
pub(super) async fn start_metrics(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    beside: axum::Router,
) -> anyhow::Result<Serving<std::io::Error>> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics address {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let server = crate::telemetry::metrics::serve(listener, metrics, beside, async {
        let _ = rx.await;
    });
    tracing::info!(%addr, "metrics on /metrics, the site CRL on {}", super::crl::SITE_CRL_PATH);
    Ok((addr, tx, server))
}

/// `grpc.health.v1` alone, in plaintext: it says whether this replica serves, and
/// nothing about any patient, so it needs no client certificate.
pub(super) async fn start_health(
    listen: SocketAddr,
    health: &Health,
) -> anyhow::Result<Serving<tonic::transport::Error>> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the health address {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let service = health.service();
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

/// The operators' services (activations, the audit log and its Merkle tree), apart
/// from the terminals'.
pub(super) async fn start_admin(
    listen: SocketAddr,
    store: Arc<dyn Store>,
    log: crate::audit::read_log::LogWriter,
    (activations, sites): (ActivationAdmin, SiteAdmin),
    transparency: TransparencyServer,
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
    let router = Server::builder()
        .trace_fn(crate::telemetry::grpc_span::server_span)
        .layer(OperatorAuthLayer {
            enforce: tls.is_some(),
        })
        // Keep reflection::OPERATORS in step with what is added here.
        .add_service(OPERATORS.v1()?)
        .add_service(OPERATORS.v1alpha()?)
        // Every read of the log by an operator is itself logged.
        .add_service(AuditServiceServer::new(
            AuditQueryService::new(store).with_log(log),
        ))
        .add_service(ActivationAdminServiceServer::new(activations))
        .add_service(SiteAdminServiceServer::new(sites))
        .add_service(TransparencyServiceServer::new(transparency));
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

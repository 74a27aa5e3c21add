//! The console's own HTTPS listener: the operators' certificates and CA (a facility
//! or site certificate fails the handshake, as on the operators' gRPC listener), with
//! ALPN for browsers (HTTP/2 and HTTP/1.1). Each connection's verified certificate
//! becomes the `Caller` of every request on it.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::Connected;
use tower::ServiceExt;

use super::caller::Caller;
use crate::tls::acceptor::{Listener, ReloadableTls};

/// Serves `app` on `listen` until `stop` fires.
pub async fn serve(
    listen: SocketAddr,
    app: Router,
    tls: &ReloadableTls,
) -> anyhow::Result<(
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
)> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the console address {listen}"))?;
    let addr = listener.local_addr()?;
    let mut incoming = tls.incoming_for_browsers(listener, Listener::Operators);
    let (tx, mut rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                s = incoming.next() => s,
                _ = &mut rx => return Ok(()),
            };
            match stream {
                Some(Ok(stream)) => {
                    tokio::spawn(connection(stream, app.clone()));
                }
                Some(Err(e)) => tracing::debug!(error = %e, "console connection failed"),
                None => return Ok(()),
            }
        }
    });
    tracing::info!(%addr, "operators' console listening (https)");
    Ok((addr, tx, task))
}

async fn connection(stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, app: Router) {
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    let mut caller = Caller::from_certificate(certificate.as_deref());
    caller.tls = Some(stream.connect_info());
    let service =
        hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(caller.clone());
            app.clone().oneshot(request)
        });
    if let Err(e) = Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "console connection ended");
    }
}

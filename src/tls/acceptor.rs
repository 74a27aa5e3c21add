//! TLS acceptors whose certificates can be replaced while serving: `reload` re-reads
//! the files (on SIGHUP) and new connections use them; open connections keep theirs.
//! A reload that fails to read or parse anything changes nothing. A refused
//! handshake is logged with the peer and the reason, and counted by reason.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::TlsFiles;
use super::refusal::{Refusal, classify};
use super::verifier::{IdentityVerifier, Issuer};
use crate::telemetry::metrics::HandshakeMetrics;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Trusts the facility CA.
    Terminal,
    /// Trusts the operator CA.
    Operators,
}

impl Listener {
    /// The metrics' label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Terminal => "terminal",
            Listener::Operators => "operators",
        }
    }
}

#[derive(Clone)]
pub struct ReloadableTls {
    files: TlsFiles,
    terminal: Arc<RwLock<Arc<ServerConfig>>>,
    operators: Arc<RwLock<Arc<ServerConfig>>>,
    metrics: HandshakeMetrics,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(files: &TlsFiles, listener: Listener) -> anyhow::Result<Arc<ServerConfig>> {
    let (client_issuer, client_ca) = match listener {
        Listener::Terminal => (Issuer::Facilities, &files.facility_ca),
        Listener::Operators => (Issuer::Operators, &files.operator_ca),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading {}", files.key.display()))?;
    let mut trusted = vec![(client_issuer, client_ca)];
    // Temporary sites connect to the terminal listener with the site CA's
    // certificates, when the gateway has a site CA.
    if listener == Listener::Terminal && files.site_ca.exists() {
        trusted.push((Issuer::Sites, &files.site_ca));
    }
    let mut stores = Vec::new();
    for (issuer, client_ca) in trusted {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(client_ca)
            .with_context(|| format!("reading {}", client_ca.display()))?
        {
            roots
                .add(ca.with_context(|| format!("parsing {}", client_ca.display()))?)
                .with_context(|| format!("a CA certificate in {}", client_ca.display()))?;
        }
        // Each file must hold a CA: one that does not is broken, whatever the others hold.
        if roots.is_empty() {
            anyhow::bail!("{} holds no CA certificate", client_ca.display());
        }
        stores.push((issuer, roots));
    }
    let verifier = IdentityVerifier::new(stores, provider(), listener)
        .context("the client certificate verifier")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(certs, key)
        .context("the gateway's certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

impl ReloadableTls {
    /// The certificates in `files`; refused handshakes are counted in `metrics`.
    pub fn load(files: &TlsFiles, metrics: HandshakeMetrics) -> anyhow::Result<ReloadableTls> {
        for listener in [Listener::Terminal, Listener::Operators] {
            for refusal in Refusal::ALL {
                metrics.expect(listener.as_str(), refusal.as_str());
            }
        }
        Ok(ReloadableTls {
            terminal: Arc::new(RwLock::new(build(files, Listener::Terminal)?)),
            operators: Arc::new(RwLock::new(build(files, Listener::Operators)?)),
            files: files.clone(),
            metrics,
        })
    }

    /// Re-reads every file; new connections use them. On any error nothing changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        let terminal = build(&self.files, Listener::Terminal)?;
        let operators = build(&self.files, Listener::Operators)?;
        *self
            .terminal
            .write()
            .map_err(|_| anyhow::anyhow!("TLS state poisoned"))? = terminal;
        *self
            .operators
            .write()
            .map_err(|_| anyhow::anyhow!("TLS state poisoned"))? = operators;
        Ok(())
    }

    fn current(&self, which: Listener) -> Option<Arc<ServerConfig>> {
        let lock = match which {
            Listener::Terminal => &self.terminal,
            Listener::Operators => &self.operators,
        };
        lock.read().ok().map(|c| c.clone())
    }

    /// Accepted, handshaken connections. Handshakes run concurrently, so one slow
    /// client delays no other; a failed handshake is dropped (and logged).
    pub fn incoming(
        &self,
        listener: TcpListener,
        which: Listener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
        self.accept(listener, which, false)
    }

    /// As `incoming`, offering HTTP/1.1 beside HTTP/2: for the operators' console,
    /// which browsers open with the same certificates.
    pub fn incoming_for_browsers(
        &self,
        listener: TcpListener,
        which: Listener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
        self.accept(listener, which, true)
    }

    fn accept(
        &self,
        listener: TcpListener,
        which: Listener,
        browsers: bool,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
        let (tx, rx) = mpsc::channel(64);
        let tls = self.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let Some(config) = tls
                    .current(which)
                    .map(|c| if browsers { for_browsers(&c) } else { c })
                else {
                    continue;
                };
                let tx = tx.clone();
                let metrics = tls.metrics.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(config, tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err((e, hello))) => refused(&metrics, which, peer, &e, hello),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// The same certificates and client verification, with HTTP/1.1 offered too.
fn for_browsers(config: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(config);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The handshake, in two steps so that a failure tells whether the client had sent
/// its hello (a client that then hangs up refused the gateway's certificate; one
/// that never spoke TLS was a port probe).
async fn handshake(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, (io::Error, bool)> {
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
        .await
        .map_err(|e| (e, false))?;
    start.into_stream(config).await.map_err(|e| (e, true))
}

/// Logs and counts a failed handshake, unless the peer merely went away. The
/// detail names the certificate's problem (a facility code at most), never a patient.
fn refused(
    metrics: &HandshakeMetrics,
    listener: Listener,
    peer: SocketAddr,
    error: &io::Error,
    after_hello: bool,
) {
    let Some((refusal, detail)) = classify(error, after_hello) else {
        tracing::debug!(%peer, error = %error, "TLS handshake abandoned");
        return;
    };
    tracing::warn!(
        %peer,
        listener = listener.as_str(),
        reason = refusal.as_str(),
        %detail,
        "TLS handshake refused"
    );
    metrics.refused(listener.as_str(), refusal.as_str());
}

//! TLS acceptors whose certificates can be replaced while serving: `reload` re-reads
//! the files (on SIGHUP) and new connections use them; open connections keep theirs.
//! A reload that fails to read or parse anything changes nothing.

use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::TlsFiles;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub enum Listener {
    /// Trusts the facility CA.
    Terminal,
    /// Trusts the operator CA.
    Operators,
}

#[derive(Clone)]
pub struct ReloadableTls {
    files: TlsFiles,
    terminal: Arc<RwLock<Arc<ServerConfig>>>,
    operators: Arc<RwLock<Arc<ServerConfig>>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(files: &TlsFiles, client_ca: &std::path::Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading {}", files.key.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(client_ca)
        .with_context(|| format!("reading {}", client_ca.display()))?
    {
        roots
            .add(ca.with_context(|| format!("parsing {}", client_ca.display()))?)
            .with_context(|| format!("a CA certificate in {}", client_ca.display()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .context("the client certificate verifier")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("the gateway's certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

impl ReloadableTls {
    pub fn load(files: &TlsFiles) -> anyhow::Result<ReloadableTls> {
        Ok(ReloadableTls {
            terminal: Arc::new(RwLock::new(build(files, &files.facility_ca)?)),
            operators: Arc::new(RwLock::new(build(files, &files.operator_ca)?)),
            files: files.clone(),
        })
    }

    /// Re-reads every file; new connections use them. On any error nothing changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        let terminal = build(&self.files, &self.files.facility_ca)?;
        let operators = build(&self.files, &self.files.operator_ca)?;
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
                let Some(config) = tls.current(which) else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake = TlsAcceptor::from(config).accept(tcp);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

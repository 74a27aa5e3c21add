//! The sinks a notice is delivered to: an HTTP webhook (JSON POST with an
//! idempotency key header) or a JSONL spool file. Either may see a notice twice
//! (a crash between delivery and its acknowledgement): the key says so.

use std::path::PathBuf;
use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;

use crate::tls::client::{ClientTlsFiles, trusting_no_one};

use super::{NoticeSink, NoticesConfig, payload::NoticePayload};

/// The header carrying the notice's idempotency key (its `notice_id`).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The spool's file in its directory.
pub const SPOOL_FILE: &str = "patient-notices.jsonl";

/// HTTP/1.1, over TLS to an `https://` receiver.
type WebhookClient = Client<HttpsConnector<HttpConnector>, String>;

#[derive(Clone)]
pub enum Sink {
    Webhook {
        url: url::Url,
        timeout: Duration,
        client: Box<WebhookClient>,
    },
    Spool(PathBuf),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Webhook { url, timeout, .. } => f
                .debug_struct("Webhook")
                .field("url", &url.as_str())
                .field("timeout", timeout)
                .finish(),
            Sink::Spool(dir) => f.debug_tuple("Spool").field(dir).finish(),
        }
    }
}

impl Sink {
    /// The sink `config` names; `None` when notices are off. A webhook URL must be
    /// `http://` or `https://` with a host, and `https://` needs the CA to verify
    /// the receiver by (`webhook_ca`), read here so that a wrong file is named.
    pub fn of(config: &NoticesConfig) -> Result<Option<Sink>, String> {
        match &config.sink {
            NoticeSink::Off => Ok(None),
            NoticeSink::Spool(dir) => Ok(Some(Sink::Spool(dir.clone()))),
            NoticeSink::Webhook(url) => {
                let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
                let https = match parsed.scheme() {
                    _ if parsed.host_str().is_none() => None,
                    "http" => Some(false),
                    "https" => Some(true),
                    _ => None,
                };
                let Some(https) = https else {
                    return Err(format!(
                        "{url}: the webhook must be an http:// or https:// URL with a host"
                    ));
                };
                Ok(Some(Sink::Webhook {
                    url: parsed,
                    timeout: config.timeout,
                    client: Box::new(webhook_client(https, config.webhook_ca.as_ref())?),
                }))
            }
        }
    }

    /// Delivers one notice; an error says why it was not (it will be retried).
    pub async fn deliver(&self, notice: &NoticePayload) -> Result<(), String> {
        match self {
            Sink::Webhook {
                url,
                timeout,
                client,
            } => tokio::time::timeout(*timeout, post(client, url, notice))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?,
            Sink::Spool(dir) => append(dir, notice).await,
        }
    }
}

/// The webhook's client: TLS verified against `ca` for an `https://` receiver.
fn webhook_client(https: bool, ca: Option<&PathBuf>) -> Result<WebhookClient, String> {
    let tls = match (https, ca) {
        (true, None) => {
            return Err(
                "an https:// webhook needs the CA certificate of its receiver \
                 (notices.webhook_ca_file)"
                    .into(),
            );
        }
        (true, Some(ca)) => ClientTlsFiles {
            ca: ca.clone(),
            identity: None,
        }
        .client_config()
        .map_err(|e| e.to_string())?,
        (false, _) => trusting_no_one().map_err(|e| e.to_string())?,
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

async fn post(
    client: &WebhookClient,
    url: &url::Url,
    notice: &NoticePayload,
) -> Result<(), String> {
    let request = http::Request::post(url.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(IDEMPOTENCY_HEADER, notice.notice_id.as_str())
        .body(notice.to_json())
        .map_err(|e| format!("building the request: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("sending to {url}: {e:?}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

/// One line per notice, flushed to disk before it counts as delivered.
async fn append(dir: &std::path::Path, notice: &NoticePayload) -> Result<(), String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(SPOOL_FILE);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut line = notice.to_json();
    line.push('\n');
    file.write_all(line.as_bytes())
        .await
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    file.sync_data()
        .await
        .map_err(|e| format!("syncing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::tls::dev_ca::DevPki;

    fn webhook(url: &str, ca: Option<PathBuf>) -> Result<Option<Sink>, String> {
        Sink::of(&NoticesConfig {
            sink: NoticeSink::Webhook(url.into()),
            webhook_ca: ca,
            ..NoticesConfig::default()
        })
    }

    fn notice() -> NoticePayload {
        NoticePayload {
            schema: super::super::NOTICE_SCHEMA,
            notice_id: "r-42".into(),
            accessed_at: "2024-01-03T10:00:00+09:00".into(),
            patient_key: "k".into(),
            facility_code: "1719010033".into(),
            facility_name: None,
            items: "qualification".into(),
            method: "LookupQualification".into(),
            consent_basis: "life_or_body_exemption".into(),
            reason_category: None,
            chain_id: "c".into(),
            seq: 1,
        }
    }

    /// One HTTPS request received with the PKI's server certificate; returns its
    /// head and answers 200.
    async fn receiver(pki: &DevPki) -> (String, tokio::task::JoinHandle<String>) {
        let cert = rustls_pki_types::pem::PemObject::from_pem_slice(pki.server.cert_pem.as_bytes())
            .expect("cert");
        let key = rustls_pki_types::pem::PemObject::from_pem_slice(pki.server.key_pem.as_bytes())
            .expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut tls = acceptor.accept(tcp).await.expect("handshake");
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.expect("read");
                assert!(n > 0, "closed early");
                head.extend_from_slice(&buf[..n]);
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("answer");
            tls.shutdown().await.ok();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        (format!("https://localhost:{port}/notices"), task)
    }

    #[tokio::test]
    async fn an_https_receiver_gets_the_notice_verified_against_its_ca() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = DevPki::generate().expect("pki");
        let ca = dir.path().join("receiver-ca.pem");
        std::fs::write(&ca, &pki.server_ca.cert_pem).expect("written");
        let (url, received) = receiver(&pki).await;
        let sink = webhook(&url, Some(ca)).expect("usable").expect("a sink");
        sink.deliver(&notice()).await.expect("delivered");
        let head = received.await.expect("received");
        assert!(head.starts_with("post /notices http/1.1"), "{head}");
        assert!(head.contains("idempotency-key: r-42"), "{head}");
    }

    #[tokio::test]
    async fn a_receiver_the_ca_did_not_sign_gets_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = DevPki::generate().expect("pki");
        let other = dir.path().join("other-ca.pem");
        std::fs::write(&other, &pki.operator_ca.cert_pem).expect("written");
        let (url, _received) = receiver(&pki).await;
        let sink = webhook(&url, Some(other)).expect("usable").expect("a sink");
        let err = sink.deliver(&notice()).await.expect_err("not trusted");
        assert!(err.contains("sending to"), "{err}");
    }

    #[test]
    fn https_needs_a_readable_ca_and_other_schemes_are_refused() {
        let err = webhook("https://portal.example/notices", None).expect_err("no CA");
        assert!(err.contains("notices.webhook_ca_file"), "{err}");
        let err = webhook(
            "https://portal.example/notices",
            Some("/nonexistent/ca.pem".into()),
        )
        .expect_err("unreadable CA");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let err = webhook("ftp://portal.example/", None).expect_err("scheme");
        assert!(err.contains("http:// or https://"), "{err}");
        assert!(webhook("http://127.0.0.1:8080/notices", None).is_ok());
    }
}

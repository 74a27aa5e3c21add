//! The sinks a notice is delivered to: an HTTP webhook (JSON POST with an
//! idempotency key header) or a JSONL spool file. Either may see a notice twice
//! (a crash between delivery and its acknowledgement): the key says so.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::{NoticeSink, NoticesConfig, payload::NoticePayload};

/// The header carrying the notice's idempotency key (its `notice_id`).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The spool's file in its directory.
pub const SPOOL_FILE: &str = "patient-notices.jsonl";

#[derive(Debug, Clone)]
pub enum Sink {
    Webhook { url: url::Url, timeout: Duration },
    Spool(PathBuf),
}

impl Sink {
    /// The sink `config` names; `None` when notices are off. A webhook URL must be
    /// `http://` with a host.
    pub fn of(config: &NoticesConfig) -> Result<Option<Sink>, String> {
        match &config.sink {
            NoticeSink::Off => Ok(None),
            NoticeSink::Spool(dir) => Ok(Some(Sink::Spool(dir.clone()))),
            NoticeSink::Webhook(url) => {
                let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
                if parsed.scheme() != "http" || parsed.host_str().is_none() {
                    return Err(format!(
                        "{url}: the webhook must be an http:// URL with a host"
                    ));
                }
                Ok(Some(Sink::Webhook {
                    url: parsed,
                    timeout: config.timeout,
                }))
            }
        }
    }

    /// Delivers one notice; an error says why it was not (it will be retried).
    pub async fn deliver(&self, notice: &NoticePayload) -> Result<(), String> {
        match self {
            Sink::Webhook { url, timeout } => tokio::time::timeout(*timeout, post(url, notice))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?,
            Sink::Spool(dir) => append(dir, notice).await,
        }
    }
}

async fn post(url: &url::Url, notice: &NoticePayload) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let connection = tokio::spawn(connection);
    let request = http::Request::post(url.as_str())
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(IDEMPOTENCY_HEADER, notice.notice_id.as_str())
        .body(notice.to_json())
        .map_err(|e| format!("building the request: {e}"))?;
    let response = sender.send_request(request).await;
    connection.abort();
    let response = response.map_err(|e| format!("sending: {e}"))?;
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

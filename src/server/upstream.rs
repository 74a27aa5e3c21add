//! The upstream the gateway forwards to: a remote OQS, or the built-in simulator
//! started here on a loopback port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::config::{GatewayConfig, UpstreamTarget};
use crate::pipeline::upstream::{Upstream, UpstreamConfig};
use crate::simulator::{self, Population, Simulator};
use crate::telemetry::metrics::UpstreamMetrics;

pub(super) struct StartedUpstream {
    pub url: String,
    pub client: Upstream,
    /// The built-in upstream's population and address, when it runs in-process.
    pub population: Option<Arc<Population>>,
    pub addr: Option<SocketAddr>,
    /// TLS for the health service's connection probe, as the calls use it.
    pub probe_tls: Option<tonic::transport::ClientTlsConfig>,
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

/// Connects (lazily) to the configured upstream, first starting the built-in one
/// if so configured; its stop signal goes to `stop`.
pub(super) async fn start(
    config: &GatewayConfig,
    clock: &SharedClock,
    metrics: UpstreamMetrics,
    stop: &mut Vec<oneshot::Sender<()>>,
) -> anyhow::Result<StartedUpstream> {
    let (url, population, addr) = match &config.upstream {
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
    let client = Upstream::connect_lazy(&UpstreamConfig {
        url: url.clone(),
        timeout: config.upstream_timeout,
        connect_timeout: Duration::from_millis(500),
        max_in_flight: config.upstream_max_in_flight,
        metrics,
        tls: Arc::new(upstream_tls(config)?),
    })?;
    let probe_tls = probe_tls(config, &url)?;
    Ok(StartedUpstream {
        url,
        client,
        population,
        addr,
        probe_tls,
    })
}

fn probe_tls(
    config: &GatewayConfig,
    url: &str,
) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    let Some(tls) = &config.upstream_tls else {
        return Ok(None);
    };
    let uri: http::Uri = url.parse()?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let probe = crate::tls::client::client_tls(&tls.ca, tls.identity.as_ref(), host)
        .map_err(|e| anyhow::anyhow!("the upstream's TLS: {e}"))?;
    Ok(Some(probe))
}

/// The upstream's TLS from the configured files, read now so that a wrong file
/// stops the start with its name.
fn upstream_tls(config: &GatewayConfig) -> anyhow::Result<rustls::ClientConfig> {
    Ok(match &config.upstream_tls {
        Some(tls) => tls
            .client_config()
            .map_err(|e| anyhow::anyhow!("the upstream's TLS: {e}"))?,
        None => crate::tls::client::trusting_no_one()?,
    })
}

//! Every setting of `serve`, as the configuration file spells it (`onshi-gateway.toml`),
//! with the documented defaults. The effective settings are these defaults, overlaid
//! by the file ([`load`]), then by environment variables and flags (`cli`), then
//! checked ([`check`]) and turned into a [`GatewayConfig`].

pub mod check;
pub mod gateway;
pub mod load;
pub mod mask;
pub mod problem;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::BatchConfig;
use crate::telemetry::TelemetryConfig;
use crate::telemetry::logging::LogFormat;
use crate::tls::TlsFiles;
use crate::tls::identity::IdentitySource;

pub use gateway::*;
pub use problem::{Problem, Problems};

/// The whole file. A section or key left out takes its default; one the gateway
/// does not know is an error.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub listen: Listen,
    pub store: Store,
    pub upstream: Upstream,
    pub tls: Tls,
    pub limits: Limits,
    pub audit: Audit,
    pub activations: Activations,
    pub search: Search,
    pub grpc: Grpc,
    pub health: Health,
    pub telemetry: Telemetry,
    pub log: Log,
    pub notices: Notices,
    pub review: Review,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub terminals: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    /// `grpc.health.v1` alone, in plaintext, for probes that cannot present a client
    /// certificate (the kubelet's); none by default.
    #[serde(with = "empty_or_addr")]
    pub health: Option<SocketAddr>,
    /// The operators' console in the browser (HTTPS with the operators'
    /// certificates, docs/console.md); none by default.
    #[serde(with = "empty_or_addr")]
    pub console: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    pub data_dir: PathBuf,
    #[serde(with = "empty_is_none")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upstream {
    /// None: the built-in simulator, with `seed` and `population`.
    #[serde(with = "empty_is_none")]
    pub url: Option<String>,
    pub seed: u64,
    pub population: usize,
    pub timeout_ms: u64,
    pub max_in_flight: usize,
    /// An `https://` upstream's CA certificate(s), PEM.
    #[serde(with = "empty_is_none")]
    pub ca_file: Option<PathBuf>,
    /// The gateway's client certificate and key for the upstream, PEM, where it
    /// asks for one.
    #[serde(with = "empty_is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(with = "empty_is_none")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    #[serde(with = "empty_is_none")]
    pub dir: Option<PathBuf>,
    pub dev_identity_from_metadata: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub facility_rate_per_sec: u32,
    pub facility_burst: u32,
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    #[serde(with = "empty_is_none")]
    pub key: Option<PathBuf>,
    pub max_batch: usize,
    pub linger_ms: u64,
    pub commit_timeout_ms: u64,
    pub backlog_records: usize,
    pub checkpoint_records: u64,
    pub checkpoint_secs: u64,
    pub retention_days: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Activations {
    pub refresh_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Search {
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grpc {
    pub max_message_bytes: usize,
    pub keepalive_interval_secs: u64,
    pub keepalive_timeout_secs: u64,
    pub max_concurrent_streams: u32,
    pub drain_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    pub check_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    #[serde(with = "empty_is_none")]
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    pub sample_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// tracing EnvFilter syntax.
    pub level: String,
    pub format: LogFormat,
}

/// Notices to patients of accesses made without their consent (docs/notices.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notices {
    /// POST each notice here (http:// or https://); "" for none.
    #[serde(with = "empty_is_none")]
    pub webhook_url: Option<String>,
    /// An https:// webhook's CA certificate(s), PEM; "" for none.
    #[serde(with = "empty_is_none")]
    pub webhook_ca_file: Option<String>,
    /// Or append them as JSON lines to a file in this directory; "" for none.
    #[serde(with = "empty_is_none")]
    pub spool_dir: Option<String>,
    pub every_allowed_access: bool,
    pub lease_secs: u64,
    pub retry_max_secs: u64,
}

/// The review of accesses made under the exemption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Review {
    /// An access unreviewed for longer counts as overdue (metric audit_reviews_overdue).
    pub overdue_days: u64,
}

impl Default for Notices {
    fn default() -> Self {
        let n = crate::audit::notices::NoticesConfig::default();
        Notices {
            webhook_url: None,
            webhook_ca_file: None,
            spool_dir: None,
            every_allowed_access: n.every_allowed_access,
            lease_secs: n.lease.as_secs(),
            retry_max_secs: n.retry_max.as_secs(),
        }
    }
}

impl Default for Review {
    fn default() -> Self {
        Review {
            overdue_days: GatewayConfig::default().review_overdue.as_secs() / 86_400,
        }
    }
}

impl Notices {
    fn config(&self) -> crate::audit::notices::NoticesConfig {
        use crate::audit::notices::{NoticeSink, NoticesConfig};
        let sink = match (&self.webhook_url, &self.spool_dir) {
            (Some(url), _) => NoticeSink::Webhook(url.clone()),
            (None, Some(dir)) => NoticeSink::Spool(PathBuf::from(dir)),
            (None, None) => NoticeSink::Off,
        };
        NoticesConfig {
            sink,
            webhook_ca: self.webhook_ca_file.as_ref().map(PathBuf::from),
            every_allowed_access: self.every_allowed_access,
            lease: Duration::from_secs(self.lease_secs.max(1)),
            retry_max: Duration::from_secs(self.retry_max_secs.max(1)),
            ..NoticesConfig::default()
        }
    }
}

// The defaults are `GatewayConfig::default()`'s, except where `serve` has always
// differed from the embedded configuration tests use: both listeners for operators
// and metrics are on, and each facility is rate limited.

fn parsed(addr: &str) -> SocketAddr {
    addr.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            terminals: GatewayConfig::default().listen,
            admin: parsed(DEFAULT_ADMIN_LISTEN),
            metrics: parsed(DEFAULT_METRICS_LISTEN),
            health: None,
            console: None,
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        let g = GatewayConfig::default();
        Store {
            data_dir: g.data_dir,
            database_url: g.database_url,
        }
    }
}

impl Upstream {
    /// TLS to the upstream when a CA is configured (the check refuses a client
    /// certificate without its key, and either without a CA).
    pub fn tls(&self) -> Option<crate::tls::client::ClientTlsFiles> {
        let ca = self.ca_file.clone()?;
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(crate::tls::client::ClientIdentity {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Some(crate::tls::client::ClientTlsFiles { ca, identity })
    }
}

impl Default for Upstream {
    fn default() -> Self {
        let g = GatewayConfig::default();
        let (url, seed, population) = match g.upstream {
            UpstreamTarget::Builtin { seed, population } => (None, seed, population),
            UpstreamTarget::Remote(url) => (Some(url), 2022_0317, 100_000),
        };
        Upstream {
            url,
            seed,
            population,
            timeout_ms: millis(g.upstream_timeout),
            max_in_flight: g.upstream_max_in_flight,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            facility_rate_per_sec: DEFAULT_FACILITY_RATE_PER_SEC,
            facility_burst: DEFAULT_FACILITY_BURST,
            max_in_flight: GatewayConfig::default().max_in_flight,
        }
    }
}

impl Default for Audit {
    fn default() -> Self {
        let g = GatewayConfig::default();
        Audit {
            key: g.audit_key,
            max_batch: g.audit.max_batch,
            linger_ms: millis(g.audit.linger),
            commit_timeout_ms: millis(g.audit.commit_timeout),
            backlog_records: g.audit.backlog,
            checkpoint_records: g.audit.checkpoint_records,
            checkpoint_secs: g.audit.checkpoint_interval.as_secs(),
            retention_days: g.audit_retention.as_secs() / 86_400,
        }
    }
}

impl Default for Activations {
    fn default() -> Self {
        Activations {
            refresh_ms: millis(GatewayConfig::default().activation_refresh),
        }
    }
}

impl Default for Search {
    fn default() -> Self {
        Search {
            ttl_secs: GatewayConfig::default().search_ttl.as_secs(),
        }
    }
}

impl Default for Grpc {
    fn default() -> Self {
        let g = GatewayConfig::default();
        Grpc {
            max_message_bytes: g.max_message_bytes,
            keepalive_interval_secs: g.keepalive_interval.as_secs(),
            keepalive_timeout_secs: g.keepalive_timeout.as_secs(),
            max_concurrent_streams: g.max_concurrent_streams,
            drain_timeout_secs: g.drain_timeout.as_secs(),
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Health {
            check_interval_ms: millis(GatewayConfig::default().health_check_interval),
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        let t = TelemetryConfig::default();
        Telemetry {
            otlp_endpoint: t.otlp_endpoint,
            service_name: t.service_name,
            sample_ratio: t.sample_ratio,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Settings {
    /// The gateway these settings describe. Every field is named, so that a new
    /// `GatewayConfig` field cannot be added without a setting for it.
    pub fn gateway_config(&self) -> GatewayConfig {
        let Settings {
            listen,
            store,
            upstream,
            tls,
            limits,
            audit,
            activations,
            search,
            grpc,
            health,
            telemetry,
            log: _,
            notices,
            review,
        } = self;
        GatewayConfig {
            listen: listen.terminals,
            admin_listen: Some(listen.admin),
            metrics_listen: Some(listen.metrics),
            health_listen: listen.health,
            console_listen: listen.console,
            data_dir: store.data_dir.clone(),
            database_url: store.database_url.clone(),
            audit_key: audit.key.clone(),
            audit_retention: Duration::from_secs(audit.retention_days.saturating_mul(86_400)),
            upstream: match &upstream.url {
                Some(url) => UpstreamTarget::Remote(url.clone()),
                None => UpstreamTarget::Builtin {
                    seed: upstream.seed,
                    population: upstream.population,
                },
            },
            identity: match (&tls.dir, tls.dev_identity_from_metadata) {
                (_, true) => IdentitySource::DevelopmentMetadata,
                (Some(_), false) => IdentitySource::Certificate,
                (None, false) => IdentitySource::Unconfigured,
            },
            tls: tls.dir.as_deref().map(TlsFiles::in_dir),
            upstream_timeout: Duration::from_millis(upstream.timeout_ms),
            upstream_max_in_flight: upstream.max_in_flight,
            upstream_tls: upstream.tls(),
            facility_rate_per_sec: limits.facility_rate_per_sec,
            facility_burst: limits.facility_burst,
            max_in_flight: limits.max_in_flight,
            search_ttl: Duration::from_secs(search.ttl_secs),
            activation_refresh: Duration::from_millis(activations.refresh_ms),
            audit: BatchConfig {
                max_batch: audit.max_batch,
                linger: Duration::from_millis(audit.linger_ms),
                // The writer's queue is sized for the writer, not for deployments.
                queue: BatchConfig::default().queue,
                checkpoint_records: audit.checkpoint_records.max(1),
                checkpoint_interval: Duration::from_secs(audit.checkpoint_secs.max(1)),
                commit_timeout: Duration::from_millis(audit.commit_timeout_ms.max(1)),
                backlog: audit.backlog_records.max(1),
            },
            max_message_bytes: grpc.max_message_bytes,
            drain_timeout: Duration::from_secs(grpc.drain_timeout_secs),
            keepalive_interval: Duration::from_secs(grpc.keepalive_interval_secs),
            keepalive_timeout: Duration::from_secs(grpc.keepalive_timeout_secs),
            max_concurrent_streams: grpc.max_concurrent_streams,
            health_check_interval: Duration::from_millis(health.check_interval_ms),
            telemetry: TelemetryConfig {
                otlp_endpoint: telemetry.otlp_endpoint.clone(),
                service_name: telemetry.service_name.clone(),
                sample_ratio: telemetry.sample_ratio,
            },
            notices: notices.config(),
            review_overdue: Duration::from_secs(review.overdue_days.saturating_mul(86_400)),
        }
    }

    /// The settings as TOML, in the file's layout.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string(self)?)
    }
}

/// An optional text setting: an empty string in the file (or an empty environment
/// variable) means "not set", since TOML has no null and every key is written out.
mod empty_is_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => v.serialize(s),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, T: From<String>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let text = String::deserialize(d)?;
        Ok((!text.is_empty()).then(|| T::from(text)))
    }
}

/// An address, or "" for none.
mod empty_or_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is not an address (IP:port), nor \"\" for none"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_embedded_ones_but_for_what_serve_turns_on() {
        let expected = GatewayConfig {
            admin_listen: Some(parsed(DEFAULT_ADMIN_LISTEN)),
            metrics_listen: Some(parsed(DEFAULT_METRICS_LISTEN)),
            facility_rate_per_sec: DEFAULT_FACILITY_RATE_PER_SEC,
            ..GatewayConfig::default()
        };
        // GatewayConfig has no PartialEq (it holds durations, paths and enums of
        // other modules); its Debug form names every field and value.
        assert_eq!(
            format!("{:?}", Settings::default().gateway_config()),
            format!("{expected:?}")
        );
    }

    #[test]
    fn serve_limits_each_facility_to_20_a_second_in_bursts_of_40() {
        let d = Settings::default();
        assert_eq!(d.limits.facility_rate_per_sec, 20);
        assert_eq!(d.limits.facility_burst, 40);
        assert_eq!(d.listen.admin.to_string(), "127.0.0.1:50061");
        assert_eq!(d.listen.metrics.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn the_defaults_survive_a_round_trip_through_toml() {
        let text = Settings::default().to_toml().expect("serializes");
        let back: Settings = toml::from_str(&text).expect("parses");
        assert_eq!(back, Settings::default());
    }
}

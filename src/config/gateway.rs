//! The gateway's settings, with the embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::audit::BatchConfig;
use crate::store::StoreLocation;
use crate::telemetry::TelemetryConfig;
use crate::tls::TlsFiles;
use crate::tls::identity::IdentitySource;

/// Access records are kept five years by default, as long as the medical records
/// they concern (医師法 第24条); see docs/audit.md.
/// Flagged accesses unreviewed for longer are overdue: two weeks.
pub const DEFAULT_REVIEW_OVERDUE: Duration = Duration::from_secs(14 * 24 * 3600);
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(5 * 366 * 24 * 3600);

/// The documented default port for operators' services, loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:50061";

/// The documented default address of `/metrics`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// The documented default port for terminals.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// `serve`'s per-facility rate (calls a second) and burst; see `facility_rate_per_sec`.
pub const DEFAULT_FACILITY_RATE_PER_SEC: u32 = 20;
pub const DEFAULT_FACILITY_BURST: u32 = 40;

/// The documented default bound on patient-data calls in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;

#[derive(Debug, Clone)]
pub enum UpstreamTarget {
    /// The built-in simulator, served in-process on a loopback port.
    Builtin { seed: u64, population: usize },
    /// A real (or separately run) OQS endpoint, e.g. `http://10.0.0.5:50052`.
    Remote(String),
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Where the operators' services (activation admin and audit) listen; none if
    /// unset. Loopback by default: without TLS operators are not authenticated, so
    /// only someone on the host may reach them.
    pub admin_listen: Option<SocketAddr>,
    /// The operators' console in the browser (HTTPS, the operators' certificates);
    /// none if unset. Needs TLS: the certificate is the console's only login.
    pub console_listen: Option<SocketAddr>,
    /// Where Prometheus scrapes `/metrics`; none if unset.
    pub metrics_listen: Option<SocketAddr>,
    /// `grpc.health.v1` alone, without TLS, for probes that cannot present a client
    /// certificate; none if unset.
    pub health_listen: Option<SocketAddr>,
    /// Holds `onshi.db` (activations, searches, access log) unless `database_url` is
    /// set, and the audit signing key unless `audit_key` is set.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL shared by several replicas; by default SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The Ed25519 seed signing this replica's access-log checkpoints (hex); generated
    /// on first start if absent. Every replica needs its own.
    pub audit_key: Option<PathBuf>,
    /// Access records older than this are pruned (at checkpoint boundaries).
    pub audit_retention: Duration,
    pub upstream: UpstreamTarget,
    pub identity: IdentitySource,
    /// Mutual TLS on both listeners; with it, facilities are identified by their
    /// certificates and the development identity mode is refused.
    pub tls: Option<TlsFiles>,
    pub upstream_timeout: Duration,
    pub upstream_max_in_flight: usize,
    /// TLS to an `https://` upstream: its CA and the gateway's client certificate.
    pub upstream_tls: Option<crate::tls::client::ClientTlsFiles>,
    /// Patient-data calls a second each facility may make (its token bucket's refill);
    /// beyond, RATE_LIMITED. 0: no per-facility limit, which is this embedded default
    /// (tests and the benchmark call from one facility far faster); `serve` sets
    /// `DEFAULT_FACILITY_RATE_PER_SEC`.
    pub facility_rate_per_sec: u32,
    /// Calls a facility may make at once above its rate (its bucket's size, at least 1).
    pub facility_burst: u32,
    /// Patient-data calls in flight over the whole gateway; more are refused at once
    /// with OVERLOADED rather than queued. 0: no bound.
    pub max_in_flight: usize,
    /// How long a search may be named by later requests.
    pub search_ttl: Duration,
    /// Bound on how long a change made outside this process takes to be seen.
    pub activation_refresh: Duration,
    pub audit: BatchConfig,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// On shutdown, how long in-flight calls may take before connections are closed.
    pub drain_timeout: Duration,
    /// HTTP/2 pings to idle terminals: how often, and how long to wait for the answer
    /// before the connection is dropped (a terminal behind a dead NAT frees its streams).
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Concurrent calls one connection may carry.
    pub max_concurrent_streams: u32,
    /// How often the store and the upstream are probed for the health service.
    pub health_check_interval: Duration,
    pub telemetry: TelemetryConfig,
    /// Notices to patients: the sink and which accesses (docs/notices.md).
    pub notices: crate::audit::notices::NoticesConfig,
    /// A flagged access unreviewed for longer counts as overdue.
    pub review_overdue: Duration,
}

impl GatewayConfig {
    pub fn store_location(&self) -> StoreLocation {
        match &self.database_url {
            Some(url) => StoreLocation::Postgres(url.clone()),
            None => StoreLocation::Sqlite(self.data_dir.join("onshi.db")),
        }
    }

    pub fn audit_key_path(&self) -> PathBuf {
        self.audit_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-signing.key"))
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 50051))),
            admin_listen: None,
            console_listen: None,
            metrics_listen: None,
            health_listen: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            audit_key: None,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            upstream: UpstreamTarget::Builtin {
                seed: 2022_0317,
                population: 100_000,
            },
            identity: IdentitySource::Unconfigured,
            tls: None,
            upstream_timeout: Duration::from_secs(5),
            upstream_max_in_flight: 256,
            upstream_tls: None,
            facility_rate_per_sec: 0,
            facility_burst: DEFAULT_FACILITY_BURST,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            search_ttl: Duration::from_secs(30 * 60),
            activation_refresh: Duration::from_secs(1),
            audit: BatchConfig::default(),
            max_message_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_concurrent_streams: 256,
            health_check_interval: Duration::from_secs(5),
            telemetry: TelemetryConfig::default(),
            notices: crate::audit::notices::NoticesConfig::default(),
            review_overdue: DEFAULT_REVIEW_OVERDUE,
        }
    }
}

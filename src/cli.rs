//! Command-line interface: `serve`, `demo`, `upstream`, `activation`, `audit`,
//! `registry`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::activation_cli::ActivationCommand;
use crate::audit::BatchConfig;
use crate::config::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN, GatewayConfig, UpstreamTarget,
};
use crate::rules::identity::IdentitySource;
use crate::store::StoreLocation;
use crate::tls::TlsFiles;

/// Input a command refuses (a flag, a file's rows, or the service's INVALID_ARGUMENT):
/// printed with what is at fault, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct InvalidInput {
    pub flag: String,
    pub message: String,
}

#[derive(Debug, Parser)]
#[command(
    name = "onshi-gateway",
    version,
    about = "Emergency-access gateway for the online qualification confirmation system (OQS)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, global = true, env = "ONSHI_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (embedded defaults: SQLite in ./data, built-in upstream simulator).
    Serve(ServeArgs),
    /// Run the gateway in development identity mode, play a short scenario against it
    /// and print what a terminal sees; then keep serving until Ctrl-C.
    Demo(DemoArgs),
    /// Run only the upstream OQS simulator.
    Upstream(UpstreamArgs),
    /// Create, widen, extend, end, inspect and preview activations (through a running
    /// gateway's operators' service, `--admin`).
    #[command(subcommand)]
    Activation(ActivationCommand),
    /// Read the access log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Certificates for mutual TLS.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Load and inspect the facility registry: which municipality each facility is in.
    #[command(subcommand)]
    Registry(RegistryCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for terminals.
    #[arg(long, env = "ONSHI_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address for operators' services (the audit service). Keep it on loopback
    /// until operators authenticate by certificate.
    #[arg(long, env = "ONSHI_ADMIN_LISTEN", default_value = DEFAULT_ADMIN_LISTEN)]
    pub admin_listen: SocketAddr,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, env = "ONSHI_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,
    #[command(flatten)]
    pub data: DataArgs,
    /// Upstream OQS URL (e.g. http://127.0.0.1:50052); by default the built-in simulator.
    #[arg(long, env = "ONSHI_UPSTREAM")]
    pub upstream: Option<String>,
    #[command(flatten)]
    pub population: PopulationArgs,
    /// Mutual TLS: a directory with server.pem, server.key, facility-ca.pem and
    /// operator-ca.pem (as `certs dev` writes). Facilities are then identified by
    /// their certificates.
    #[arg(long, env = "ONSHI_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// DEVELOPMENT ONLY: take the calling facility from `x-onshi-dev-facility` metadata.
    #[arg(long, env = "ONSHI_DEV_IDENTITY_FROM_METADATA")]
    pub dev_identity_from_metadata: bool,
    /// Longest time a forwarded call may take (ms); a shorter caller deadline wins.
    #[arg(long, env = "ONSHI_UPSTREAM_TIMEOUT_MS", default_value_t = 5000)]
    pub upstream_timeout_ms: u64,
    /// Calls in flight to the upstream at once.
    #[arg(long, env = "ONSHI_UPSTREAM_MAX_IN_FLIGHT", default_value_t = 256)]
    pub upstream_max_in_flight: usize,
    /// Patient-data calls a second per facility; beyond, RATE_LIMITED (0: no limit).
    #[arg(long, env = "ONSHI_FACILITY_RATE_PER_SEC", default_value_t = crate::config::DEFAULT_FACILITY_RATE_PER_SEC)]
    pub facility_rate_per_sec: u32,
    /// Calls a facility may make at once above its rate.
    #[arg(long, env = "ONSHI_FACILITY_BURST", default_value_t = crate::config::DEFAULT_FACILITY_BURST)]
    pub facility_burst: u32,
    /// Patient-data calls in flight over the whole gateway; more are refused at once
    /// with OVERLOADED (0: no bound).
    #[arg(long, env = "ONSHI_MAX_IN_FLIGHT", default_value_t = crate::config::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// How long a search may be named by later requests (seconds).
    #[arg(long, env = "ONSHI_SEARCH_TTL_SECS", default_value_t = 1800)]
    pub search_ttl_secs: u64,
    /// Bound on how long an activation change made elsewhere takes to be seen (ms).
    #[arg(long, env = "ONSHI_ACTIVATION_REFRESH_MS", default_value_t = 1000)]
    pub activation_refresh_ms: u64,
    /// Most access records committed in one transaction.
    #[arg(long, env = "ONSHI_AUDIT_MAX_BATCH", default_value_t = 256)]
    pub audit_max_batch: usize,
    /// How long the access-log writer may wait for more records before committing a
    /// batch (ms); 0 commits whatever queued during the previous commit.
    #[arg(long, env = "ONSHI_AUDIT_LINGER_MS", default_value_t = 0)]
    pub audit_linger_ms: u64,
    /// Largest request message accepted (bytes).
    #[arg(long, env = "ONSHI_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,
    /// On SIGTERM or Ctrl-C, how long in-flight calls may take before connections are closed (seconds).
    #[arg(long, env = "ONSHI_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
    pub drain_timeout_secs: u64,
    /// This replica's access-log signing key (hex Ed25519 seed); default
    /// <data-dir>/audit-signing.key, generated if absent. Each replica needs its own.
    #[arg(long, env = "ONSHI_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// Sign an access-log checkpoint at least every this many records…
    #[arg(long, env = "ONSHI_AUDIT_CHECKPOINT_RECORDS", default_value_t = 1000)]
    pub audit_checkpoint_records: u64,
    /// …and at least every this many seconds while records arrive.
    #[arg(long, env = "ONSHI_AUDIT_CHECKPOINT_SECS", default_value_t = 10)]
    pub audit_checkpoint_secs: u64,
    /// Days access records are kept (default: five years).
    #[arg(long, env = "ONSHI_AUDIT_RETENTION_DAYS", default_value_t = 1830)]
    pub audit_retention_days: u64,
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Directory of the embedded store (`onshi.db`) and of the audit signing key.
    #[arg(long, env = "ONSHI_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// PostgreSQL shared by several replicas (postgres://user@host:5432/db) instead
    /// of the embedded SQLite store.
    #[arg(long, env = "ONSHI_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DataArgs {
    pub fn location(&self) -> StoreLocation {
        match &self.database_url {
            Some(url) => StoreLocation::Postgres(url.clone()),
            None => StoreLocation::Sqlite(self.data_dir.join("onshi.db")),
        }
    }
}

#[derive(Debug, Args)]
pub struct PopulationArgs {
    /// Insured persons in the built-in simulator.
    #[arg(long, env = "ONSHI_POPULATION", default_value_t = 100_000)]
    pub population: usize,
    /// Seed of the synthetic population (same seed, same people).
    #[arg(long, env = "ONSHI_SEED", default_value_t = 2022_0317)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Stop after the scenario instead of serving on.
    #[arg(long)]
    pub exit: bool,
}

#[derive(Debug, Args)]
pub struct UpstreamArgs {
    #[arg(long, env = "ONSHI_UPSTREAM_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub population: PopulationArgs,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a DEVELOPMENT PKI in a directory: CAs for the gateway, facilities and
    /// operators, the gateway's certificate, facility and operator certificates.
    /// Serve with it: `serve --tls-dir DIR`.
    Dev(CertsDevArgs),
}

#[derive(Debug, Args)]
pub struct CertsDevArgs {
    #[arg(long, default_value = "certs")]
    pub dir: PathBuf,
    /// Facility codes to issue certificates for (default: the demo's facilities).
    #[arg(long, value_delimiter = ',')]
    pub facility: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print access records, oldest first.
    List(AuditListArgs),
    /// Write access records as JSON lines or CSV.
    Export(AuditExportArgs),
    /// Check every chain of the access log: hashes, links and signed checkpoints.
    /// Exits 0 if all are intact, 3 if any is broken.
    Verify(AuditVerifyArgs),
}

/// Which records: every filter given must hold.
#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// First instant included (RFC 3339, YYYY-MM-DD or YYYY-MM-DDTHH:MM in JST).
    #[arg(long)]
    pub from: Option<String>,
    /// First instant excluded, same forms.
    #[arg(long)]
    pub until: Option<String>,
    /// Facility code (10 digits).
    #[arg(long)]
    pub facility: Option<String>,
    /// Staff id as the terminal sent it.
    #[arg(long)]
    pub staff: Option<String>,
    /// The patient's insured number: INSURER|SYMBOL|NUMBER|BRANCH, e.g. "01040013|40250311|152|00".
    #[arg(long)]
    pub patient: Option<String>,
    #[arg(long)]
    pub activation: Option<String>,
    /// allowed, denied or failed.
    #[arg(long)]
    pub decision: Option<String>,
    /// A denial reason, e.g. CONSENT_MISSING.
    #[arg(long)]
    pub reason: Option<String>,
    /// patient_consent or life_or_body_exemption.
    #[arg(long)]
    pub consent: Option<String>,
    /// Only the life-or-body exemption accesses awaiting review.
    #[arg(long)]
    pub needs_review: bool,
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub filter: AuditFilterArgs,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub filter: AuditFilterArgs,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Accept only chains signed by these public keys (hex, repeatable). Without
    /// them the keys registered in the store itself are used.
    #[arg(long = "trusted-key")]
    pub trusted_keys: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Add or replace facilities and municipalities from CSV files (UTF-8, with a
    /// header). Any bad row is reported with its line and nothing is loaded (exit 2).
    ///
    /// Facilities: code,name,kind,prefecture,municipality — kind is medical, dental,
    /// pharmacy or visiting_nursing; municipality a JIS X 0402 code (5 digits, or 6
    /// with the check digit). Municipalities: code,name.
    Load(RegistryLoadArgs),
    /// Show a registered facility and its municipality.
    Show(RegistryShowArgs),
}

#[derive(Debug, Args)]
pub struct RegistryLoadArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// CSV of facilities: code,name,kind,prefecture,municipality.
    #[arg(long, required_unless_present = "municipalities")]
    pub facilities: Option<PathBuf>,
    /// CSV of municipalities: code,name. Loaded with the facilities, in one transaction.
    #[arg(long)]
    pub municipalities: Option<PathBuf>,
    /// Replace the whole registry (e.g. the synthetic seed) instead of adding to it.
    #[arg(long, requires = "municipalities")]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct RegistryShowArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Facility code (10 digits).
    pub facility: String,
}

impl ServeArgs {
    pub fn to_config(&self) -> GatewayConfig {
        GatewayConfig {
            listen: self.listen,
            admin_listen: Some(self.admin_listen),
            metrics_listen: Some(self.metrics_listen),
            data_dir: self.data.data_dir.clone(),
            database_url: self.data.database_url.clone(),
            audit_key: self.audit_key.clone(),
            audit_retention: Duration::from_secs(self.audit_retention_days.saturating_mul(86_400)),
            upstream: match &self.upstream {
                Some(url) => UpstreamTarget::Remote(url.clone()),
                None => UpstreamTarget::Builtin {
                    seed: self.population.seed,
                    population: self.population.population,
                },
            },
            identity: match (&self.tls_dir, self.dev_identity_from_metadata) {
                (_, true) => IdentitySource::DevelopmentMetadata,
                (Some(_), false) => IdentitySource::Certificate,
                (None, false) => IdentitySource::Unconfigured,
            },
            tls: self.tls_dir.as_deref().map(TlsFiles::in_dir),
            upstream_timeout: Duration::from_millis(self.upstream_timeout_ms),
            upstream_max_in_flight: self.upstream_max_in_flight,
            facility_rate_per_sec: self.facility_rate_per_sec,
            facility_burst: self.facility_burst,
            max_in_flight: self.max_in_flight,
            search_ttl: Duration::from_secs(self.search_ttl_secs),
            activation_refresh: Duration::from_millis(self.activation_refresh_ms),
            audit: BatchConfig {
                max_batch: self.audit_max_batch,
                linger: Duration::from_millis(self.audit_linger_ms),
                checkpoint_records: self.audit_checkpoint_records.max(1),
                checkpoint_interval: Duration::from_secs(self.audit_checkpoint_secs.max(1)),
                ..BatchConfig::default()
            },
            max_message_bytes: self.max_message_bytes,
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
            ..GatewayConfig::default()
        }
    }
}

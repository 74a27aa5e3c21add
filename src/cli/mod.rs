//! Command-line interface: `serve`, `demo`, `upstream`, `activation`, `audit`,
//! `registry`, `certs`, `config`.

pub mod activation;
pub mod admin_connection;
pub mod audit;
pub mod commands;
pub mod config;
pub mod registry;
pub mod review;
pub mod site;
pub mod witness;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cli::activation::ActivationCommand;
use crate::config::{Problems, Settings};
use crate::store::StoreLocation;
use crate::telemetry::logging::LogFormat;

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
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter, tracing EnvFilter syntax (default: info). [file: log.level]
    #[arg(long, global = true, env = "ONSHI_LOG")]
    pub log: Option<String>,
    /// Log lines as text, or as one JSON object per line (default: text), on
    /// standard error. [file: log.format]
    #[arg(long, global = true, env = "ONSHI_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (embedded defaults: SQLite in ./data, built-in upstream simulator).
    Serve(ServeArgs),
    /// Run the gateway with mutual TLS and a development PKI, play a short scenario
    /// against it and print what a terminal sees; then keep serving until Ctrl-C.
    Demo(DemoArgs),
    /// Run only the upstream OQS simulator.
    Upstream(UpstreamArgs),
    /// Create, widen, extend, end, inspect and preview activations (through a running
    /// gateway's operators' service, `--admin`; over mutual TLS with `--ca`, `--cert`
    /// and `--key` when the gateway serves with TLS).
    #[command(
        subcommand,
        after_help = "A gateway serving with TLS (`serve --tls-dir certs`) is reached at https:// with its CA \
                      and an operator's certificate, whose role decides what it may do \
                      (activation-manager: change and read; auditor: read):\n  \
                      onshi-gateway activation list --admin https://127.0.0.1:50061 --ca certs/server-ca.pem \\\n    \
                      --cert certs/operator-activation-manager.pem --key certs/operator-activation-manager.key\n\
                      The same from the environment: ONSHI_ADMIN, ONSHI_ADMIN_CA, ONSHI_OPERATOR_CERT, \
                      ONSHI_OPERATOR_KEY, ONSHI_ADMIN_TLS_DOMAIN."
    )]
    Activation(ActivationCommand),
    /// Register, renew, close and inspect temporary sites (first-aid posts, mobile
    /// clinics, mobile pharmacies, relief teams) and sign their certificates, through
    /// a running gateway's operators' service (`--admin`, as `activation`).
    #[command(subcommand)]
    Site(crate::cli::site::SiteCommand),
    /// Read the access log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Certificates for mutual TLS.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Load and inspect the facility registry: which municipality each facility is in.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Check or show the configuration: the file (`--config`), environment variables
    /// and flags over the defaults, as `serve` would use them.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the effective configuration: the file's syntax, keys and types, then
    /// the values (addresses, URLs, ranges, TLS files, audit key). Prints every
    /// problem and exits 2, or prints a one-line summary and exits 0.
    Check(ServeArgs),
    /// Print the effective configuration as TOML, with passwords and other
    /// credentials masked. Exits 2 after printing if `config check` would fail.
    Print(ServeArgs),
}

/// The `serve` settings as flags and environment variables. A flag wins over its
/// variable, either over the configuration file (`--config`), and that over the
/// defaults; `config print` shows the outcome. `[file: section.key]` names each
/// one's key in the file.
#[derive(Debug, Args)]
#[command(
    after_help = "Every setting can also be given in a configuration file (--config, see onshi-gateway.toml); \
                  `onshi-gateway config print` shows the effective values and their defaults."
)]
pub struct ServeArgs {
    /// Address for terminals. [file: listen.terminals]
    #[arg(long, env = "ONSHI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address for operators' services (activation admin and audit). Keep it on
    /// loopback unless --tls-dir is set, where operators authenticate by certificate
    /// and role. [file: listen.admin]
    #[arg(long, env = "ONSHI_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Address of the Prometheus `/metrics` endpoint. [file: listen.metrics]
    #[arg(long, env = "ONSHI_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address of a plaintext listener serving only `grpc.health.v1`, for probes
    /// that cannot present a client certificate. [file: listen.health]
    #[arg(long, env = "ONSHI_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Address of the operators' console in the browser (HTTPS, needs --tls-dir;
    /// docs/console.md). [file: listen.console]
    #[arg(long, env = "ONSHI_CONSOLE_LISTEN")]
    pub console_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Upstream OQS URL (e.g. http://127.0.0.1:50052); by default, or if empty, the
    /// built-in simulator. [file: upstream.url]
    #[arg(long, env = "ONSHI_UPSTREAM")]
    pub upstream: Option<String>,
    /// An https:// upstream's CA certificate(s), PEM. [file: upstream.ca_file]
    #[arg(long, env = "ONSHI_UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,
    /// The gateway's client certificate for the upstream, PEM. [file: upstream.cert_file]
    #[arg(long, env = "ONSHI_UPSTREAM_CERT")]
    pub upstream_cert: Option<PathBuf>,
    /// Its private key, PEM. [file: upstream.key_file]
    #[arg(long, env = "ONSHI_UPSTREAM_KEY")]
    pub upstream_key: Option<PathBuf>,
    #[command(flatten)]
    pub population: PopulationArgs,
    /// Mutual TLS: a directory with server.pem, server.key, facility-ca.pem and
    /// operator-ca.pem (as `certs dev` writes). Facilities are then identified by
    /// their certificates. [file: tls.dir]
    #[arg(long, env = "ONSHI_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// DEVELOPMENT ONLY: take the calling facility from `x-onshi-dev-facility` metadata.
    /// [file: tls.dev_identity_from_metadata]
    #[arg(
        long,
        env = "ONSHI_DEV_IDENTITY_FROM_METADATA",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub dev_identity_from_metadata: Option<bool>,
    /// Longest time a forwarded call may take (ms); a shorter caller deadline wins.
    /// [file: upstream.timeout_ms]
    #[arg(long, env = "ONSHI_UPSTREAM_TIMEOUT_MS")]
    pub upstream_timeout_ms: Option<u64>,
    /// Calls in flight to the upstream at once. [file: upstream.max_in_flight]
    #[arg(long, env = "ONSHI_UPSTREAM_MAX_IN_FLIGHT")]
    pub upstream_max_in_flight: Option<usize>,
    /// Patient-data calls a second per facility; beyond, RATE_LIMITED (0: no limit).
    /// [file: limits.facility_rate_per_sec]
    #[arg(long, env = "ONSHI_FACILITY_RATE_PER_SEC")]
    pub facility_rate_per_sec: Option<u32>,
    /// Calls a facility may make at once above its rate. [file: limits.facility_burst]
    #[arg(long, env = "ONSHI_FACILITY_BURST")]
    pub facility_burst: Option<u32>,
    /// Patient-data calls in flight over the whole gateway; more are refused at once
    /// with OVERLOADED (0: no bound). [file: limits.max_in_flight]
    #[arg(long, env = "ONSHI_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// How long a search may be named by later requests (seconds). [file: search.ttl_secs]
    #[arg(long, env = "ONSHI_SEARCH_TTL_SECS")]
    pub search_ttl_secs: Option<u64>,
    /// Bound on how long an activation change made elsewhere takes to be seen (ms).
    /// [file: activations.refresh_ms]
    #[arg(long, env = "ONSHI_ACTIVATION_REFRESH_MS")]
    pub activation_refresh_ms: Option<u64>,
    /// Most access records committed in one transaction. [file: audit.max_batch]
    #[arg(long, env = "ONSHI_AUDIT_MAX_BATCH")]
    pub audit_max_batch: Option<usize>,
    /// How long the access-log writer may wait for more records before committing a
    /// batch (ms); 0 commits whatever queued during the previous commit.
    /// [file: audit.linger_ms]
    #[arg(long, env = "ONSHI_AUDIT_LINGER_MS")]
    pub audit_linger_ms: Option<u64>,
    /// A commit of access records taking longer has failed (ms): calls are refused
    /// with AUDIT_UNAVAILABLE in bounded time when the store hangs.
    /// [file: audit.commit_timeout_ms]
    #[arg(long, env = "ONSHI_AUDIT_COMMIT_TIMEOUT_MS")]
    pub audit_commit_timeout_ms: Option<u64>,
    /// Records of calls refused while the access log could not be written, kept in
    /// memory until the store takes writes again. [file: audit.backlog_records]
    #[arg(long, env = "ONSHI_AUDIT_BACKLOG_RECORDS")]
    pub audit_backlog_records: Option<usize>,
    /// Largest request message accepted (bytes). [file: grpc.max_message_bytes]
    #[arg(long, env = "ONSHI_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long in-flight calls may take before connections are
    /// closed (seconds). [file: grpc.drain_timeout_secs]
    #[arg(long, env = "ONSHI_DRAIN_TIMEOUT_SECS")]
    pub drain_timeout_secs: Option<u64>,
    /// How often an idle connection is pinged (HTTP/2 keepalive, seconds).
    /// [file: grpc.keepalive_interval_secs]
    #[arg(long, env = "ONSHI_KEEPALIVE_INTERVAL_SECS")]
    pub keepalive_interval_secs: Option<u64>,
    /// How long a keepalive ping may go unanswered before the connection is dropped
    /// (seconds). [file: grpc.keepalive_timeout_secs]
    #[arg(long, env = "ONSHI_KEEPALIVE_TIMEOUT_SECS")]
    pub keepalive_timeout_secs: Option<u64>,
    /// Concurrent calls one connection may carry. [file: grpc.max_concurrent_streams]
    #[arg(long, env = "ONSHI_MAX_CONCURRENT_STREAMS")]
    pub max_concurrent_streams: Option<u32>,
    /// How often the store and the upstream are probed for the health service (ms).
    /// [file: health.check_interval_ms]
    #[arg(long, env = "ONSHI_HEALTH_CHECK_INTERVAL_MS")]
    pub health_check_interval_ms: Option<u64>,
    /// OTLP/gRPC collector traces are exported to, e.g. http://127.0.0.1:4317; empty:
    /// no export. [file: telemetry.otlp_endpoint]
    #[arg(long, env = "ONSHI_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces. [file: telemetry.service_name]
    #[arg(long, env = "ONSHI_SERVICE_NAME")]
    pub service_name: Option<String>,
    /// Share of new traces sampled, 0.0 to 1.0. [file: telemetry.sample_ratio]
    #[arg(long, env = "ONSHI_TRACE_SAMPLE_RATIO")]
    pub trace_sample_ratio: Option<f64>,
    /// This replica's access-log signing key (hex Ed25519 seed); default
    /// <data-dir>/audit-signing.key, generated if absent. Each replica needs its own.
    /// [file: audit.key]
    #[arg(long, env = "ONSHI_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// Sign an access-log checkpoint at least every this many records…
    /// [file: audit.checkpoint_records]
    #[arg(long, env = "ONSHI_AUDIT_CHECKPOINT_RECORDS")]
    pub audit_checkpoint_records: Option<u64>,
    /// …and at least every this many seconds while records arrive.
    /// [file: audit.checkpoint_secs]
    #[arg(long, env = "ONSHI_AUDIT_CHECKPOINT_SECS")]
    pub audit_checkpoint_secs: Option<u64>,
    /// Days access records are kept (default: five years). [file: audit.retention_days]
    #[arg(long, env = "ONSHI_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// POST a notice of each access without consent to this http:// URL ("" for none).
    /// [file: notices.webhook_url]
    #[arg(long, env = "ONSHI_NOTICE_WEBHOOK_URL")]
    pub notice_webhook_url: Option<String>,
    /// An https:// webhook's CA certificate(s), PEM ("" for none).
    /// [file: notices.webhook_ca_file]
    #[arg(long, env = "ONSHI_NOTICE_WEBHOOK_CA")]
    pub notice_webhook_ca: Option<String>,
    /// Or append the notices as JSON lines in this directory ("" for none).
    /// [file: notices.spool_dir]
    #[arg(long, env = "ONSHI_NOTICE_SPOOL_DIR")]
    pub notice_spool_dir: Option<String>,
    /// Notify every allowed access naming a patient, not only those under the exemption.
    /// [file: notices.every_allowed_access]
    #[arg(
        long,
        env = "ONSHI_NOTICE_EVERY_ALLOWED_ACCESS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub notice_every_allowed_access: Option<bool>,
    /// Seconds a replica holds a notice it is delivering before another may take it.
    /// [file: notices.lease_secs]
    #[arg(long, env = "ONSHI_NOTICE_LEASE_SECS")]
    pub notice_lease_secs: Option<u64>,
    /// Longest wait between two attempts at a notice, in seconds. [file: notices.retry_max_secs]
    #[arg(long, env = "ONSHI_NOTICE_RETRY_MAX_SECS")]
    pub notice_retry_max_secs: Option<u64>,
    /// Days after which an unreviewed access under the exemption counts as overdue.
    /// [file: review.overdue_days]
    #[arg(long, env = "ONSHI_REVIEW_OVERDUE_DAYS")]
    pub review_overdue_days: Option<u64>,
}

/// Where the store is, and the configuration file the other settings come from.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Configuration file (TOML, e.g. onshi-gateway.toml). Settings not given by a
    /// flag or environment variable are read from it, the rest take their defaults.
    #[arg(long, env = "ONSHI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store (`onshi.db`) and of the audit signing key
    /// (default: data). [file: store.data_dir]
    #[arg(long, env = "ONSHI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL shared by several replicas (postgres://user@host:5432/db) instead
    /// of the embedded SQLite store; empty: SQLite. [file: store.database_url]
    #[arg(long, env = "ONSHI_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DataArgs {
    /// The configuration file's settings (or the defaults), with these flags over
    /// them, and the file's problems (its bad keys left at their defaults).
    pub fn settings(&self) -> (Settings, Problems) {
        let (mut s, problems) = match &self.config {
            Some(path) => crate::config::load::read(path),
            None => (Settings::default(), Vec::new()),
        };
        set(&mut s.store.data_dir, &self.data_dir);
        set_optional(&mut s.store.database_url, &self.database_url);
        let problems = Problems {
            file: self.config_name(),
            problems,
        };
        (s, problems)
    }

    /// The settings, if the configuration file has no problem.
    pub fn usable_settings(&self) -> Result<Settings, Problems> {
        match self.settings() {
            (s, problems) if problems.problems.is_empty() => Ok(s),
            (_, problems) => Err(problems),
        }
    }

    pub fn location(&self) -> Result<StoreLocation, Problems> {
        Ok(self.usable_settings()?.gateway_config().store_location())
    }

    /// The file named by `--config`, for messages.
    pub fn config_name(&self) -> Option<String> {
        self.config.as_ref().map(|p| p.display().to_string())
    }
}

#[derive(Debug, Args)]
pub struct PopulationArgs {
    /// Insured persons in the built-in simulator (default: 100000). [file: upstream.population]
    #[arg(long, env = "ONSHI_POPULATION")]
    pub population: Option<usize>,
    /// Seed of the synthetic population (same seed, same people; default: 20220317).
    /// [file: upstream.seed]
    #[arg(long, env = "ONSHI_SEED")]
    pub seed: Option<u64>,
}

impl PopulationArgs {
    pub fn overlay(&self, upstream: &mut crate::config::Upstream) {
        set(&mut upstream.population, &self.population);
        set(&mut upstream.seed, &self.seed);
    }
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
    /// The facility and operator CA keys are kept there (readable by you only) for
    /// `certs issue`. Serve with it: `serve --tls-dir DIR`.
    Dev(CertsDevArgs),
    /// Issue one more facility or operator certificate from the CA in a directory
    /// `certs dev` wrote, and write it there: facility-CODE.pem/.key or
    /// operator-ROLE.pem/.key.
    Issue(CertsIssueArgs),
}

#[derive(Debug, Args)]
pub struct CertsDevArgs {
    #[arg(long, default_value = "certs")]
    pub dir: PathBuf,
    /// Facility codes to issue certificates for (default: the demo's facilities).
    #[arg(long, value_delimiter = ',')]
    pub facility: Vec<String>,
    /// More names the gateway's certificate is valid for, beside localhost and
    /// 127.0.0.1: host names or IP addresses (e.g. a Service's DNS name).
    #[arg(long, value_delimiter = ',')]
    pub name: Vec<String>,
    /// Replace a PKI the directory already holds: new CAs, and every certificate
    /// and key of the old one removed (clients holding them are refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["facility", "operator"])))]
pub struct CertsIssueArgs {
    /// The directory `certs dev` wrote: its facility or operator CA signs, and the
    /// certificate and key are written there.
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// A facility code (10 digits, with its check digit).
    #[arg(long)]
    pub facility: Option<String>,
    /// An operator as ROLE:ID, role activation-manager, auditor or witness (e.g. auditor:alice).
    #[arg(long)]
    pub operator: Option<String>,
    /// Days the certificate is valid, from now.
    #[arg(
        long,
        default_value_t = crate::tls::issue::DEFAULT_DAYS,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(crate::tls::issue::MAX_DAYS)),
    )]
    pub days: u16,
    /// Replace the certificate and key if they exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print access records, oldest first.
    List(AuditListArgs),
    /// Write access records as JSON lines or CSV.
    Export(AuditExportArgs),
    /// Check every chain of the access log: hashes, links and signed checkpoints,
    /// and with --checkpoint that the log extends a checkpoint saved earlier.
    /// Exits 0 if all are intact, 3 if any is broken.
    Verify(AuditVerifyArgs),
    /// The review of accesses under the exemption, at a gateway's operators' listener.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Witness a replica's chain from another organisation: fetch its newest
    /// checkpoint with a consistency proof from the last one kept, verify, cosign
    /// and keep it. Exits 3 if the log no longer extends what was seen.
    Witness(witness::AuditWitnessArgs),
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
    /// FHIR R4 AuditEvent resources, one per line (NDJSON).
    Fhir,
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
    /// Also prove today's log consistent with this checkpoint saved earlier (a C2SP
    /// signed note, e.g. one a witness kept; repeatable). Exits 3 if it is not.
    #[arg(long = "checkpoint")]
    pub checkpoints: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Add or replace facilities and municipalities from CSV files (UTF-8, with a
    /// header). Any bad row is reported with its line and nothing is loaded (exit 2).
    ///
    /// Facilities: code,name,kind,prefecture,municipality — kind is medical, dental,
    /// pharmacy or visiting_nursing; municipality a JIS X 0402 code (5 digits, or 6
    /// with the check digit); an optional emergency_hospital column (true/false) marks
    /// hospitals with an emergency department. Municipalities: code,name.
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
    /// The effective settings: defaults, the file, then environment and flags (as
    /// clap merged them), then the global log flags; and the file's problems. The
    /// values are not yet checked (`crate::config::check`).
    pub fn settings(&self, log: &LogArgs) -> (Settings, Problems) {
        let (mut s, problems) = self.data.settings();
        self.overlay(&mut s);
        log.overlay(&mut s);
        (s, problems)
    }

    fn overlay(&self, s: &mut Settings) {
        set(&mut s.listen.terminals, &self.listen);
        set(&mut s.listen.admin, &self.admin_listen);
        set(&mut s.listen.metrics, &self.metrics_listen);
        if let Some(addr) = self.health_listen {
            s.listen.health = Some(addr);
        }
        if let Some(addr) = self.console_listen {
            s.listen.console = Some(addr);
        }
        set_optional(&mut s.upstream.url, &self.upstream);
        set_optional_path(&mut s.upstream.ca_file, &self.upstream_ca);
        set_optional_path(&mut s.upstream.cert_file, &self.upstream_cert);
        set_optional_path(&mut s.upstream.key_file, &self.upstream_key);
        self.population.overlay(&mut s.upstream);
        set(&mut s.upstream.timeout_ms, &self.upstream_timeout_ms);
        set(&mut s.upstream.max_in_flight, &self.upstream_max_in_flight);
        set_optional_path(&mut s.tls.dir, &self.tls_dir);
        set(
            &mut s.tls.dev_identity_from_metadata,
            &self.dev_identity_from_metadata,
        );
        set(
            &mut s.limits.facility_rate_per_sec,
            &self.facility_rate_per_sec,
        );
        set(&mut s.limits.facility_burst, &self.facility_burst);
        set(&mut s.limits.max_in_flight, &self.max_in_flight);
        if let Some(key) = &self.audit_key {
            s.audit.key = (!key.as_os_str().is_empty()).then(|| key.clone());
        }
        set(&mut s.audit.max_batch, &self.audit_max_batch);
        set(&mut s.audit.linger_ms, &self.audit_linger_ms);
        set(
            &mut s.audit.commit_timeout_ms,
            &self.audit_commit_timeout_ms,
        );
        set(&mut s.audit.backlog_records, &self.audit_backlog_records);
        set(
            &mut s.audit.checkpoint_records,
            &self.audit_checkpoint_records,
        );
        set(&mut s.audit.checkpoint_secs, &self.audit_checkpoint_secs);
        set(&mut s.audit.retention_days, &self.audit_retention_days);
        set(&mut s.activations.refresh_ms, &self.activation_refresh_ms);
        set(&mut s.search.ttl_secs, &self.search_ttl_secs);
        set(&mut s.grpc.max_message_bytes, &self.max_message_bytes);
        set(&mut s.grpc.drain_timeout_secs, &self.drain_timeout_secs);
        set(
            &mut s.grpc.keepalive_interval_secs,
            &self.keepalive_interval_secs,
        );
        set(
            &mut s.grpc.keepalive_timeout_secs,
            &self.keepalive_timeout_secs,
        );
        set(
            &mut s.grpc.max_concurrent_streams,
            &self.max_concurrent_streams,
        );
        set(
            &mut s.health.check_interval_ms,
            &self.health_check_interval_ms,
        );
        set_optional(&mut s.telemetry.otlp_endpoint, &self.otlp_endpoint);
        set(&mut s.telemetry.service_name, &self.service_name);
        set(&mut s.telemetry.sample_ratio, &self.trace_sample_ratio);
        set_optional(&mut s.notices.webhook_url, &self.notice_webhook_url);
        set_optional(&mut s.notices.webhook_ca_file, &self.notice_webhook_ca);
        set_optional(&mut s.notices.spool_dir, &self.notice_spool_dir);
        set(
            &mut s.notices.every_allowed_access,
            &self.notice_every_allowed_access,
        );
        set(&mut s.notices.lease_secs, &self.notice_lease_secs);
        set(&mut s.notices.retry_max_secs, &self.notice_retry_max_secs);
        set(&mut s.review.overdue_days, &self.review_overdue_days);
    }
}

impl LogArgs {
    pub fn overlay(&self, s: &mut Settings) {
        set(&mut s.log.level, &self.log);
        set(&mut s.log.format, &self.log_format);
    }
}

impl Command {
    /// The effective settings of this command: those of `serve` for the commands that
    /// run or describe a gateway, the store's for those that open it, the defaults
    /// otherwise; the log flags over all of them. With the file's problems.
    pub fn settings(&self, log: &LogArgs) -> (Settings, Problems) {
        let data = match self {
            Command::Serve(args)
            | Command::Demo(DemoArgs { serve: args, .. })
            | Command::Config(ConfigCommand::Check(args) | ConfigCommand::Print(args)) => {
                return args.settings(log);
            }
            Command::Audit(AuditCommand::List(a)) => &a.data,
            Command::Audit(AuditCommand::Export(a)) => &a.data,
            Command::Audit(AuditCommand::Verify(a)) => &a.data,
            Command::Registry(RegistryCommand::Load(a)) => &a.data,
            Command::Registry(RegistryCommand::Show(a)) => &a.data,
            Command::Upstream(_)
            | Command::Activation(_)
            | Command::Site(_)
            | Command::Certs(_)
            | Command::Audit(AuditCommand::Review(_) | AuditCommand::Witness(_)) => {
                let mut s = Settings::default();
                log.overlay(&mut s);
                let none = Problems {
                    file: None,
                    problems: Vec::new(),
                };
                return (s, none);
            }
        };
        let (mut s, problems) = data.settings();
        log.overlay(&mut s);
        (s, problems)
    }
}

/// A setting given by flag or environment replaces the file's.
fn set<T: Clone>(slot: &mut T, given: &Option<T>) {
    if let Some(value) = given {
        *slot = value.clone();
    }
}

/// Likewise for an optional text setting, where an empty value unsets it.
/// A path given, empty meaning none, replaces the file's.
fn set_optional_path(slot: &mut Option<PathBuf>, given: &Option<PathBuf>) {
    if let Some(path) = given {
        *slot = (!path.as_os_str().is_empty()).then(|| path.clone());
    }
}

fn set_optional(slot: &mut Option<String>, given: &Option<String>) {
    if let Some(value) = given {
        *slot = (!value.is_empty()).then(|| value.clone());
    }
}

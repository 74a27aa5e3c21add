//! Command-line interface: `serve`, `demo`, `upstream`, `activation`, `audit`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::audit::BatchConfig;
use crate::config::{DEFAULT_LISTEN, GatewayConfig, UpstreamTarget};
use crate::rules::identity::IdentitySource;

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
    /// Add and list activations of the emergency function.
    #[command(subcommand)]
    Activation(ActivationCommand),
    /// Read the access log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for terminals.
    #[arg(long, env = "ONSHI_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataArgs,
    /// Upstream OQS URL (e.g. http://127.0.0.1:50052); by default the built-in simulator.
    #[arg(long, env = "ONSHI_UPSTREAM")]
    pub upstream: Option<String>,
    #[command(flatten)]
    pub population: PopulationArgs,
    /// DEVELOPMENT ONLY: take the calling facility from `x-onshi-dev-facility` metadata.
    #[arg(long, env = "ONSHI_DEV_IDENTITY_FROM_METADATA")]
    pub dev_identity_from_metadata: bool,
    /// Longest time a forwarded call may take (ms); a shorter caller deadline wins.
    #[arg(long, env = "ONSHI_UPSTREAM_TIMEOUT_MS", default_value_t = 5000)]
    pub upstream_timeout_ms: u64,
    /// Calls in flight to the upstream at once.
    #[arg(long, env = "ONSHI_UPSTREAM_MAX_IN_FLIGHT", default_value_t = 256)]
    pub upstream_max_in_flight: usize,
    /// How long a search may be named by later requests (seconds).
    #[arg(long, env = "ONSHI_SEARCH_TTL_SECS", default_value_t = 1800)]
    pub search_ttl_secs: u64,
    /// Bound on how long an activation change made elsewhere takes to be seen (ms).
    #[arg(long, env = "ONSHI_ACTIVATION_REFRESH_MS", default_value_t = 1000)]
    pub activation_refresh_ms: u64,
    /// Most access records committed in one transaction.
    #[arg(long, env = "ONSHI_AUDIT_MAX_BATCH", default_value_t = 256)]
    pub audit_max_batch: usize,
    /// Largest request message accepted (bytes).
    #[arg(long, env = "ONSHI_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,
    /// On SIGTERM or Ctrl-C, how long in-flight calls may take before connections are closed (seconds).
    #[arg(long, env = "ONSHI_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
    pub drain_timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Directory of the embedded store (`onshi.db`).
    #[arg(long, env = "ONSHI_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
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
pub enum ActivationCommand {
    /// Activate the emergency function for areas and a window (Japan time, half-open).
    ///
    /// Fukushima-oki 2022: --event 令和4年福島沖地震 --prefecture 04,07 --from 2022-03-17 --last-day 2022-03-23
    Add(ActivationAddArgs),
    /// List activations.
    List(DataArgs),
}

#[derive(Debug, Args)]
pub struct ActivationAddArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Name of the event, e.g. 令和4年福島沖地震.
    #[arg(long)]
    pub event: String,
    /// The notice this activation follows (e.g. 令和4年3月17日付事務連絡).
    #[arg(long, default_value = "")]
    pub notice: String,
    /// Prefecture codes (JIS X 0401), comma-separated: 04,07.
    #[arg(long, value_delimiter = ',')]
    pub prefecture: Vec<String>,
    /// Single facility codes (10 digits), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub facility: Vec<String>,
    /// First instant: YYYY-MM-DD (00:00 JST), YYYY-MM-DDTHH:MM (JST) or RFC 3339.
    #[arg(long)]
    pub from: String,
    /// First instant no longer covered (exclusive), same forms; "2022-03-23 24:00" is allowed.
    #[arg(long, conflicts_with_all = ["last_day", "one_week"])]
    pub until: Option<String>,
    /// Last day covered, inclusive, to its 24:00 JST.
    #[arg(long, conflicts_with = "one_week")]
    pub last_day: Option<String>,
    /// One week from --from (a date): the notice's default window.
    #[arg(long)]
    pub one_week: bool,
    /// Who makes the change (recorded).
    #[arg(long, default_value = "cli")]
    pub by: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print access records, oldest first.
    List(AuditListArgs),
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Only this facility's records.
    #[arg(long)]
    pub facility: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

impl ServeArgs {
    pub fn to_config(&self) -> GatewayConfig {
        GatewayConfig {
            listen: self.listen,
            data_dir: self.data.data_dir.clone(),
            upstream: match &self.upstream {
                Some(url) => UpstreamTarget::Remote(url.clone()),
                None => UpstreamTarget::Builtin {
                    seed: self.population.seed,
                    population: self.population.population,
                },
            },
            identity: if self.dev_identity_from_metadata {
                IdentitySource::DevelopmentMetadata
            } else {
                IdentitySource::Unconfigured
            },
            upstream_timeout: Duration::from_millis(self.upstream_timeout_ms),
            upstream_max_in_flight: self.upstream_max_in_flight,
            search_ttl: Duration::from_secs(self.search_ttl_secs),
            activation_refresh: Duration::from_millis(self.activation_refresh_ms),
            audit: BatchConfig {
                max_batch: self.audit_max_batch,
                ..BatchConfig::default()
            },
            max_message_bytes: self.max_message_bytes,
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
        }
    }
}

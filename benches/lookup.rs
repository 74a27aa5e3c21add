//! Qualification lookups at a fixed concurrency, directly against the upstream
//! simulator and through three gateways that differ only in where the access log
//! goes: the durable hash-chained log in SQLite (the default), the same log in
//! PostgreSQL (`database_url` set), and a no-op log that acknowledges every append
//! and keeps nothing. Every rule runs and every call waits for its access record in
//! all three, so the gateways' differences are the cost of the durable log.
//! Prints throughput and p50/p99 latency per target and the ratios.
//!
//! The targets are measured in interleaved rounds (the order rotating each round),
//! so drift on the machine falls on all of them alike; each gets the same
//! concurrency, request count, activation and patients.
//!
//! `cargo bench --bench lookup` runs the full measurement; under `cargo test` the same
//! code runs with a few hundred requests per target as a smoke test, which fails if
//! any request fails or an audited gateway did not log every call.
//! Knobs: ONSHI_BENCH_CONCURRENCY (32), ONSHI_BENCH_REQUESTS (per target, 20000),
//! ONSHI_BENCH_ROUNDS (4), ONSHI_BENCH_POPULATION (20000), ONSHI_BENCH_DATABASE_URL
//! (postgres://postgres@127.0.0.1:5432/test; the bench works in a schema of its own,
//! dropped at the end). Without PostgreSQL the full run skips that gateway; the smoke
//! run fails.
//!
//! With ONSHI_BENCH_TARGET set, the same lookups go to a gateway already running
//! elsewhere instead (see `external` and deploy/load-test.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use onshi_gateway::activation::seed::new_activation;
use onshi_gateway::clock::SystemClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::jst::{Window, today_jst};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::store::{
    AccessQuery, AuditStore, ChainHead, ChainInfo, Checkpoint, StoreError, StoredRecord,
};
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, IdentitySource};
use sqlx::Connection;
use tonic::transport::Channel;

#[path = "lookup/external.rs"]
mod external;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An access log that acknowledges every append at once and keeps nothing: the
/// gateway still builds, links and signs its records, but nothing is stored.
struct NoopAuditStore;

#[async_trait]
impl AuditStore for NoopAuditStore {
    async fn register_chain(&self, _chain: &ChainInfo) -> Result<(), StoreError> {
        Ok(())
    }
    async fn chains(&self) -> Result<Vec<ChainInfo>, StoreError> {
        Ok(Vec::new())
    }
    async fn logged_chain_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn chain_head(&self, _chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
        Ok(None)
    }
    async fn append(
        &self,
        _records: &[StoredRecord],
        _checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn chain_records(
        &self,
        _chain_id: &str,
        _after: u64,
        _limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn checkpoints(&self, _chain_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(Vec::new())
    }
    async fn query(
        &self,
        _query: &AccessQuery,
        _limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn prune(&self, _chain_id: &str, _through_seq: u64) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// Where a gateway's access log goes.
#[derive(Clone)]
enum AuditBackend {
    /// The whole store, access log included, in SQLite in the data directory.
    Sqlite,
    /// The whole store, access log included, in PostgreSQL at this URL.
    Postgres(String),
    /// Activations and searches in SQLite, the access log nowhere.
    Noop,
}

/// A schema of the bench's own in the PostgreSQL database, selected through the URL.
struct BenchSchema {
    base: String,
    schema: String,
    url: String,
}

impl BenchSchema {
    async fn create(base: &str) -> Result<BenchSchema, String> {
        let mut conn =
            tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(base))
                .await
                .map_err(|_| "connecting timed out".to_string())?
                .map_err(|e| e.to_string())?;
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("creating schema {schema}: {e}"))?;
        let _ = conn.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        Ok(BenchSchema {
            url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
            base: base.to_string(),
            schema,
        })
    }

    /// Best effort: a schema left behind costs little.
    async fn drop_schema(&self) {
        let drop = async {
            let mut conn = sqlx::PgConnection::connect(&self.base).await.ok()?;
            let result = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
            result.ok()
        };
        if !matches!(
            tokio::time::timeout(Duration::from_secs(10), drop).await,
            Ok(Some(_))
        ) {
            eprintln!("could not drop the bench schema {}", self.schema);
        }
    }
}

struct Settings {
    full: bool,
    concurrency: usize,
    requests: usize,
    rounds: usize,
    population: usize,
}

/// One measured target: the upstream directly or one gateway.
struct Target {
    name: &'static str,
    channel: Channel,
    /// The calling facility, sent as development metadata to a gateway.
    facility: Option<String>,
    /// A gateway: each reply must carry its access record's id.
    audited: bool,
    gateway: Option<RunningGateway>,
    /// Whether the gateway's access log is durable and can be counted.
    durable: bool,
    _dir: Option<tempfile::TempDir>,
    /// Calls sent, warm-up included.
    sent: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Target {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

struct Drive {
    elapsed: Duration,
    latencies: Vec<Duration>,
    failures: usize,
    first_failure: Option<String>,
}

/// `requests` lookups over `concurrency` workers, patient `start + k` for the k-th.
async fn drive(
    target: &Target,
    patients: &Arc<Vec<InsuredNumber>>,
    concurrency: usize,
    requests: usize,
    start: usize,
) -> Drive {
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let count = requests / concurrency + usize::from(w < requests % concurrency);
        let mut client = QualificationServiceClient::new(target.channel.clone());
        let patients = patients.clone();
        let facility = target.facility.clone();
        let audited = target.audited;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let mut failures = 0;
            let mut first_failure = None;
            for i in 0..count {
                let insured = patients[(start + w + i * concurrency) % patients.len()].clone();
                let mut req = tonic::Request::new(LookupQualificationRequest {
                    access: Some(AccessContext::for_care(
                        "bench",
                        StaffRole::Doctor,
                        Consent::patient(),
                        Some(Identification::insured_number_known()),
                    )),
                    insured: Some(insured),
                    birth_date: String::new(),
                });
                if let Some(f) = &facility {
                    req.metadata_mut()
                        .insert(DEV_FACILITY_HEADER, f.parse().expect("ascii"));
                }
                let t = Instant::now();
                let reply = client.lookup_qualification(req).await;
                latencies.push(t.elapsed());
                let problem = match reply {
                    Err(status) => Some(format!("{:?}: {}", status.code(), status.message())),
                    Ok(r) if r.get_ref().status != QualificationStatus::Valid as i32 => {
                        Some(format!("status {} instead of VALID", r.get_ref().status))
                    }
                    Ok(r) if audited && r.metadata().get(ACCESS_RECORD_HEADER).is_none() => {
                        Some(format!("no {ACCESS_RECORD_HEADER} in the response"))
                    }
                    Ok(_) => None,
                };
                if let Some(problem) = problem {
                    failures += 1;
                    first_failure.get_or_insert(problem);
                }
            }
            (latencies, failures, first_failure)
        }));
    }
    let mut out = Drive {
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(requests),
        failures: 0,
        first_failure: None,
    };
    for w in workers {
        let (latencies, failures, first) = w.await.expect("worker");
        out.latencies.extend(latencies);
        out.failures += failures;
        if out.first_failure.is_none() {
            out.first_failure = first;
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// Runs a load on `target` and fails the bench if any call failed.
async fn run(
    target: &mut Target,
    patients: &Arc<Vec<InsuredNumber>>,
    concurrency: usize,
    requests: usize,
    start: usize,
) -> Drive {
    let d = drive(target, patients, concurrency, requests, start).await;
    target.sent += requests;
    if d.failures > 0 {
        panic!(
            "{}: {} of {requests} lookups failed; the first: {}",
            target.name,
            d.failures,
            d.first_failure.as_deref().unwrap_or("?")
        );
    }
    d
}

async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Starts a gateway logging to `audit`, with the bench's activation in place.
async fn start_gateway(
    name: &'static str,
    audit: AuditBackend,
    settings: &Settings,
    facility: &str,
) -> Target {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        database_url: match &audit {
            AuditBackend::Postgres(url) => Some(url.clone()),
            AuditBackend::Sqlite | AuditBackend::Noop => None,
        },
        upstream: UpstreamTarget::Builtin {
            seed: 1,
            population: settings.population,
        },
        identity: IdentitySource::DevelopmentMetadata,
        ..GatewayConfig::default()
    };
    let durable = !matches!(audit, AuditBackend::Noop);
    let log: Option<Arc<dyn AuditStore>> = match audit {
        AuditBackend::Noop => Some(Arc::new(NoopAuditStore)),
        AuditBackend::Sqlite | AuditBackend::Postgres(_) => None,
    };
    let gateway = server::start_with_audit(config, Arc::new(SystemClock), log)
        .await
        .unwrap_or_else(|e| panic!("starting the gateway ({name}): {e:#}"));
    let activation = new_activation(
        "bench",
        "",
        &["04".into()],
        &[],
        Window::one_week_from(today_jst(Utc::now())),
        "bench",
    )
    .expect("activation");
    gateway
        .store
        .add_activation(&activation)
        .await
        .expect("stored");
    gateway.activations.invalidate();
    Target {
        name,
        channel: connect(gateway.addr).await,
        facility: Some(facility.to_string()),
        audited: true,
        gateway: Some(gateway),
        durable,
        _dir: Some(dir),
        sent: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    }
}

/// Valid patients of a gateway's built-in population, the same for every gateway.
fn patients_of(gateway: &RunningGateway) -> Vec<InsuredNumber> {
    gateway
        .population
        .as_ref()
        .expect("built-in population")
        .persons()
        .iter()
        .filter(|p| p.status == QualificationStatus::Valid as i32)
        .map(onshi_gateway::simulator::Person::insured_number)
        .take(5_000)
        .collect()
}

async fn measure(settings: Settings, postgres: Result<String, String>) {
    let Settings {
        full,
        concurrency,
        requests,
        rounds,
        population,
    } = settings;
    let facility = onshi_gateway::demo::facility(
        4,
        onshi_gateway::domain::facility::FacilityKind::Medical,
        1001,
    )
    .to_string();

    let sqlite = start_gateway(
        "gateway, SQLite audit",
        AuditBackend::Sqlite,
        &settings,
        &facility,
    )
    .await;
    let patients = Arc::new(patients_of(sqlite.gateway.as_ref().expect("gateway")));
    let upstream_addr = sqlite
        .gateway
        .as_ref()
        .and_then(|g| g.upstream_addr)
        .expect("in-process upstream");
    let upstream = Target {
        name: "upstream (direct)",
        channel: connect(upstream_addr).await,
        facility: None,
        audited: false,
        gateway: None,
        durable: false,
        _dir: None,
        sent: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    let noop = start_gateway(
        "gateway, no-op audit",
        AuditBackend::Noop,
        &settings,
        &facility,
    )
    .await;
    let mut targets = vec![upstream, noop, sqlite];
    let skipped = match postgres {
        Ok(url) => {
            targets.push(
                start_gateway(
                    "gateway, PG audit",
                    AuditBackend::Postgres(url),
                    &settings,
                    &facility,
                )
                .await,
            );
            None
        }
        Err(why) => Some(why),
    };
    for t in &targets {
        if let Some(g) = &t.gateway {
            assert!(
                patients_of(g) == *patients,
                "{}: the built-in population differs between gateways",
                t.name
            );
        }
    }

    // Warm every path (connections, caches, pools) before measuring.
    for t in &mut targets {
        run(t, &patients, concurrency, concurrency * 8, 0).await;
    }
    let per_round = requests.div_ceil(rounds);
    for round in 0..rounds {
        let n = targets.len();
        for k in 0..n {
            let t = &mut targets[(round + k) % n];
            let d = run(t, &patients, concurrency, per_round, round * per_round).await;
            t.elapsed += d.elapsed;
            t.latencies.extend(d.latencies);
        }
    }

    // Every call through a durable log left exactly one record in its chain.
    for t in &targets {
        let Some(g) = t.gateway.as_ref().filter(|_| t.durable) else {
            continue;
        };
        let logged = g
            .store
            .chain_head(&g.chain_id)
            .await
            .expect("chain head")
            .map_or(0, |h| h.seq);
        assert_eq!(
            logged, t.sent as u64,
            "{}: access records in the chain vs calls made",
            t.name
        );
    }

    for t in &mut targets {
        t.latencies.sort();
        if let Some(g) = t.gateway.take() {
            let store = g.store.clone();
            g.shutdown().await.expect("clean shutdown");
            store.close().await;
        }
    }

    let [upstream, noop, sqlite, postgres @ ..] = &targets[..] else {
        unreachable!("the upstream and at least three gateways")
    };
    println!(
        "lookup benchmark: concurrency {concurrency}, {} requests per target in {rounds} interleaved round(s), population {population}{}",
        upstream.latencies.len(),
        if full { "" } else { " (smoke run)" }
    );
    print_table(&targets);
    if let Some(why) = &skipped {
        println!("{:<26} skipped: {why}", "gateway, PG audit");
    }
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9}",
        "ratio", "", "req/s", "p50", "p99"
    );
    let mut ratios = vec![("SQLite audit / no-op", sqlite, noop)];
    ratios.extend(postgres.first().map(|pg| ("PG audit / no-op", pg, noop)));
    ratios.push(("SQLite gateway / upstream", sqlite, upstream));
    for (label, a, b) in ratios {
        println!(
            "{:<26} {:>9} {:>8.2}x {:>8.2}x {:>8.2}x",
            label,
            "",
            a.throughput() / b.throughput(),
            ms(a.percentile(0.50)) / ms(b.percentile(0.50)),
            ms(a.percentile(0.99)) / ms(b.percentile(0.99)),
        );
    }
}

/// Each target's requests, throughput, p50 and p99, one line each under a header.
fn print_table(targets: &[Target]) {
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9}",
        "target", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for t in targets {
        println!(
            "{:<26} {:>9} {:>9.0} {:>9.3} {:>9.3}",
            t.name,
            t.latencies.len(),
            t.throughput(),
            ms(t.percentile(0.50)),
            ms(t.percentile(0.99))
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let settings = Settings {
        full,
        concurrency: env("ONSHI_BENCH_CONCURRENCY", if full { 32 } else { 4 }).max(1),
        requests: env("ONSHI_BENCH_REQUESTS", if full { 20_000 } else { 300 }).max(1),
        rounds: env("ONSHI_BENCH_ROUNDS", if full { 4 } else { 2 }).max(1),
        population: env("ONSHI_BENCH_POPULATION", if full { 20_000 } else { 2_000 }),
    };

    match external::External::from_env() {
        Ok(Some(target)) => return external::measure(settings, target).await,
        Ok(None) => {}
        Err(e) => panic!("{e}"),
    }

    let base = std::env::var("ONSHI_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
    let schema = match BenchSchema::create(&base).await {
        Ok(schema) => Ok(schema),
        Err(e) if full => Err(format!("PostgreSQL unreachable ({e})")),
        Err(e) => panic!(
            "the lookup smoke test needs PostgreSQL and it is unreachable at {base}: {e}\n\
             Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) \
             or set ONSHI_BENCH_DATABASE_URL to a database this user may create schemas in."
        ),
    };

    // Measured in a task of its own, so that the schema is dropped even if it panics.
    let outcome = tokio::spawn(measure(
        settings,
        schema.as_ref().map(|s| s.url.clone()).map_err(Clone::clone),
    ))
    .await;
    if let Ok(schema) = &schema {
        schema.drop_schema().await;
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the measurement did not finish: {e}"),
        }
    }
}

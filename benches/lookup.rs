//! Qualification lookups at a fixed concurrency, through the gateway (every rule and a
//! durable access record per call) and directly against the upstream simulator, in
//! one run. Prints throughput and p50/p99 latency for both and their ratios.
//!
//! `cargo bench --bench lookup` runs the full measurement; under `cargo test` the same
//! code runs with a handful of requests, as a smoke test.
//! Knobs: ONSHI_BENCH_CONCURRENCY (32), ONSHI_BENCH_REQUESTS (per target, 20000),
//! ONSHI_BENCH_POPULATION (20000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use onshi_gateway::admin::new_activation;
use onshi_gateway::clock::SystemClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::jst::{Window, today_jst};
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::rules::identity::{DEV_FACILITY_HEADER, IdentitySource};
use onshi_gateway::server;
use tonic::transport::Channel;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    target: &'static str,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

async fn drive(
    target: &'static str,
    channel: Channel,
    facility: Option<String>,
    patients: Arc<Vec<InsuredNumber>>,
    concurrency: usize,
    requests: usize,
) -> Run {
    let per_worker = requests.div_ceil(concurrency);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let mut client = QualificationServiceClient::new(channel.clone());
        let patients = patients.clone();
        let facility = facility.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let insured = patients[(w * per_worker + i) % patients.len()].clone();
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
                let reply = client
                    .lookup_qualification(req)
                    .await
                    .expect("lookup allowed");
                latencies.push(t.elapsed());
                assert_eq!(reply.get_ref().status, QualificationStatus::Valid as i32);
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(per_worker * concurrency);
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Run {
        target,
        elapsed,
        latencies,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let concurrency = env("ONSHI_BENCH_CONCURRENCY", if full { 32 } else { 4 });
    let requests = env("ONSHI_BENCH_REQUESTS", if full { 20_000 } else { 40 });
    let population = env("ONSHI_BENCH_POPULATION", if full { 20_000 } else { 2_000 });

    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Builtin {
            seed: 1,
            population,
        },
        identity: IdentitySource::DevelopmentMetadata,
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, Arc::new(SystemClock))
        .await
        .expect("gateway");
    let now = Utc::now();
    let activation = new_activation(
        "bench",
        "",
        &["04".into()],
        &[],
        Window::one_week_from(today_jst(now)),
        "bench",
    )
    .expect("activation");
    gateway
        .store
        .add_activation(&activation)
        .await
        .expect("stored");
    gateway.activations.invalidate();

    let people = gateway.population.clone().expect("built-in population");
    let patients: Arc<Vec<InsuredNumber>> = Arc::new(
        people
            .persons()
            .iter()
            .filter(|p| p.status == QualificationStatus::Valid as i32)
            .map(|p| p.insured_number())
            .take(5_000)
            .collect(),
    );
    let facility = onshi_gateway::demo::facility(
        4,
        onshi_gateway::domain::facility::FacilityKind::Medical,
        1001,
    )
    .to_string();
    let connect = |addr: std::net::SocketAddr| async move {
        Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    };
    let via_gateway = connect(gateway.addr).await;
    let direct = connect(gateway.upstream_addr.expect("in-process upstream")).await;

    // Warm both paths (connections, caches) before measuring.
    drive(
        "warm-up",
        via_gateway.clone(),
        Some(facility.clone()),
        patients.clone(),
        concurrency,
        concurrency * 4,
    )
    .await;
    drive(
        "warm-up",
        direct.clone(),
        None,
        patients.clone(),
        concurrency,
        concurrency * 4,
    )
    .await;

    let upstream = drive(
        "upstream",
        direct,
        None,
        patients.clone(),
        concurrency,
        requests,
    )
    .await;
    let gateway_run = drive(
        "gateway",
        via_gateway,
        Some(facility),
        patients,
        concurrency,
        requests,
    )
    .await;

    println!(
        "lookup benchmark: concurrency {concurrency}, {requests} requests per target, population {population}{}",
        if full { "" } else { " (smoke run)" }
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "target", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for r in [&upstream, &gateway_run] {
        println!(
            "{:<10} {:>10} {:>10.0} {:>10.3} {:>10.3}",
            r.target,
            r.latencies.len(),
            r.throughput(),
            ms(r.percentile(0.50)),
            ms(r.percentile(0.99))
        );
    }
    println!(
        "gateway/upstream: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
        gateway_run.throughput() / upstream.throughput(),
        ms(gateway_run.percentile(0.50)) / ms(upstream.percentile(0.50)),
        ms(gateway_run.percentile(0.99)) / ms(upstream.percentile(0.99)),
    );
    gateway.shutdown().await.expect("clean shutdown");
}

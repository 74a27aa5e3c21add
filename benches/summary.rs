//! The emergency summary against the single drug-history call, through one gateway
//! (SQLite access log, built-in upstream): the summary sends six upstream calls at
//! once (qualification, two of clinical information, e-prescriptions, drugs,
//! check-ups) and writes one access record, so its cost over drug history is the
//! cost of the fan-out. Both are measured in interleaved rounds at a fixed
//! concurrency, in the disaster mode at an activated clinic, and the summary also
//! in the emergency-viewing mode at a hospital with an emergency department.
//! Prints throughput and p50/p99 latency per call.
//!
//! `cargo bench --bench summary` runs the full measurement; under `cargo test` the
//! same code runs with a few dozen requests per call as a smoke test, which fails if
//! any request fails or a section is UNAVAILABLE.
//! Knobs: ONSHI_BENCH_CONCURRENCY (16), ONSHI_BENCH_REQUESTS (per call, 4000),
//! ONSHI_BENCH_ROUNDS (3), ONSHI_BENCH_POPULATION (20000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use onshi_gateway::activation::seed::new_activation;
use onshi_gateway::clock::SystemClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::{Window, today_jst};
use onshi_gateway::proto::medical_information_service_client::MedicalInformationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::server;
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, IdentitySource};
use tonic::transport::Channel;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    DrugHistory,
    Summary,
    EmergencyViewing,
}

impl Call {
    const ALL: [Call; 3] = [Call::DrugHistory, Call::Summary, Call::EmergencyViewing];

    fn name(self) -> &'static str {
        match self {
            Call::DrugHistory => "GetDrugHistory",
            Call::Summary => "GetEmergencySummary",
            Call::EmergencyViewing => "summary, emergency viewing",
        }
    }

    fn facility(self) -> String {
        let number = if self == Call::EmergencyViewing {
            1002
        } else {
            1001
        };
        onshi_gateway::demo::facility(4, FacilityKind::Medical, number).to_string()
    }

    fn access(self) -> Option<AccessContext> {
        let identification = Some(Identification::insured_number_known());
        if self != Call::EmergencyViewing {
            return Some(AccessContext::for_care(
                "bench",
                StaffRole::Doctor,
                Consent::patient(),
                identification,
            ));
        }
        let consent = Consent {
            basis: ConsentBasis::LifeOrBodyExemption as i32,
            exemption_reason: "意識不明で救急搬送".into(),
            exemption_identification: ExemptionIdentification::IdDocument as i32,
            ..Consent::default()
        };
        Some(AccessContext {
            mode: AccessMode::EmergencyViewing as i32,
            ..AccessContext::for_care("bench", StaffRole::Doctor, consent, identification)
        })
    }
}

/// `message` as sent by `facility` (the development identity's metadata).
fn from<T>(facility: &str, message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert(DEV_FACILITY_HEADER, facility.parse().expect("ascii"));
    req
}

/// One call of `kind` for `insured`: its latency, or what went wrong.
async fn one(
    client: &mut MedicalInformationServiceClient<Channel>,
    kind: Call,
    insured: InsuredNumber,
) -> Result<Duration, String> {
    let started = Instant::now();
    let facility = kind.facility();
    if kind == Call::DrugHistory {
        let req = GetDrugHistoryRequest {
            access: kind.access(),
            insured: Some(insured),
            ..Default::default()
        };
        client
            .get_drug_history(from(&facility, req))
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        return Ok(started.elapsed());
    }
    let req = GetEmergencySummaryRequest {
        access: kind.access(),
        insured: Some(insured),
    };
    let s = client
        .get_emergency_summary(from(&facility, req))
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    let unavailable = SectionStatus::Unavailable as i32;
    if [
        &s.visits_section,
        &s.prescriptions_section,
        &s.dispensings_section,
    ]
    .iter()
    .any(|i| i.as_ref().is_some_and(|i| i.status == unavailable))
    {
        return Err("a section is UNAVAILABLE".into());
    }
    Ok(started.elapsed())
}

/// `requests` calls of `kind` over `concurrency` workers; panics if any failed.
async fn drive(
    channel: &Channel,
    patients: &Arc<Vec<InsuredNumber>>,
    kind: Call,
    concurrency: usize,
    requests: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let count = requests / concurrency + usize::from(w < requests % concurrency);
        let mut client = MedicalInformationServiceClient::new(channel.clone());
        let patients = patients.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for i in 0..count {
                let insured = patients[(w + i * concurrency) % patients.len()].clone();
                match one(&mut client, kind, insured).await {
                    Ok(took) => latencies.push(took),
                    Err(e) => panic!("{}: {e}", kind.name()),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    (started.elapsed(), latencies)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let concurrency = env("ONSHI_BENCH_CONCURRENCY", if full { 16 } else { 2 }).max(1);
    let requests = env("ONSHI_BENCH_REQUESTS", if full { 4000 } else { 40 }).max(1);
    let rounds = env("ONSHI_BENCH_ROUNDS", if full { 3 } else { 1 }).max(1);
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
    let gateway = server::start_with_audit(config, Arc::new(SystemClock), None)
        .await
        .expect("the gateway starts");
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
    let patients: Arc<Vec<InsuredNumber>> = Arc::new(
        gateway
            .population
            .as_ref()
            .expect("built-in population")
            .persons()
            .iter()
            .filter(|p| p.status == QualificationStatus::Valid as i32)
            .map(onshi_gateway::simulator::Person::insured_number)
            .take(5_000)
            .collect(),
    );
    let channel = Channel::from_shared(format!("http://{}", gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    let mut results: Vec<(Call, Duration, Vec<Duration>)> = Call::ALL
        .iter()
        .map(|c| (*c, Duration::ZERO, Vec::new()))
        .collect();
    for round in 0..rounds {
        for k in 0..Call::ALL.len() {
            let (kind, elapsed, latencies) = &mut results[(round + k) % Call::ALL.len()];
            let (took, measured) =
                drive(&channel, &patients, *kind, concurrency, requests / rounds).await;
            *elapsed += took;
            latencies.extend(measured);
        }
    }
    println!(
        "summary benchmark: concurrency {concurrency}, {requests} requests per call in {rounds} interleaved round(s), population {population}{}",
        if full { "" } else { " (smoke run)" }
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "call", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for (kind, elapsed, mut latencies) in results {
        latencies.sort();
        let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "{:<28} {:>9} {:>9.0} {:>9.2} {:>9.2}",
            kind.name(),
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(at(0.50)),
            ms(at(0.99)),
        );
    }
}

//! Load limits end to end: a facility over its rate is refused with RATE_LIMITED and
//! told when to come back (and is served then), its flood leaves other facilities
//! served, and beyond the gateway's bound on calls in flight calls are shed at once
//! with OVERLOADED instead of queueing. Every refusal is in the access log.
//!
//! The per-facility buckets run on the gateway's clock, here a manual one, so the
//! counts and delays below are exact rather than timing-dependent.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use onshi_gateway::clock::{Clock, ManualClock};
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::facility::{FacilityCode, FacilityKind};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::qualification_service_server::{
    QualificationService, QualificationServiceServer,
};
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::{AccessRecord, Decision};
use onshi_gateway::tls::identity::IdentitySource;
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};
use tonic_types::StatusExt;

/// Long enough for any call on a loaded CI machine; reaching it fails the test
/// instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);

struct Limits {
    rate_per_sec: u32,
    burst: u32,
    max_in_flight: usize,
    upstream: Option<String>,
}

struct Gateway {
    running: RunningGateway,
    clock: Arc<ManualClock>,
    client: QualificationServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// A gateway with these limits, inside the 2022 Fukushima-oki activation (Miyagi
    /// and Fukushima).
    async fn start(limits: Limits) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(jst_at(2022, 3, 20, 10, 0));
        let config = GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin_listen: None,
            metrics_listen: None,
            data_dir: dir.path().to_path_buf(),
            upstream: match limits.upstream {
                Some(url) => UpstreamTarget::Remote(url),
                None => UpstreamTarget::Builtin {
                    seed: 7,
                    population: POPULATION,
                },
            },
            identity: IdentitySource::DevelopmentMetadata,
            upstream_timeout: PATIENCE,
            facility_rate_per_sec: limits.rate_per_sec,
            facility_burst: limits.burst,
            max_in_flight: limits.max_in_flight,
            drain_timeout: Duration::from_secs(2),
            audit: common::test_audit_batch(),
            ..GatewayConfig::default()
        };
        let running = server::start(config, clock.clone())
            .await
            .expect("gateway starts");
        let window = onshi_gateway::activation::seed::window_from(
            "2022-03-17",
            None,
            Some("2022-03-23"),
            false,
        )
        .expect("window");
        let activation = onshi_gateway::activation::seed::new_activation(
            "令和4年福島沖地震",
            "令和4年3月17日付事務連絡",
            &["04".into(), "07".into()],
            &[],
            window,
            "test",
        )
        .expect("activation");
        running
            .store
            .add_activation(&activation)
            .await
            .expect("stored");
        running.activations.invalidate();
        let channel = Channel::from_shared(format!("http://{}", running.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Gateway {
            running,
            clock,
            client: QualificationServiceClient::new(channel),
            _dir: dir,
        }
    }

    fn advance(&self, by: Duration) {
        self.clock
            .set(self.clock.now() + chrono::Duration::from_std(by).expect("short"));
    }

    /// One lookup of the demo patient from `facility`, bounded by PATIENCE.
    async fn lookup(
        &self,
        facility: &FacilityCode,
    ) -> Result<Response<LookupQualificationResponse>, Status> {
        let mut client = self.client.clone();
        tokio::time::timeout(
            PATIENCE,
            client.lookup_qualification(as_facility(facility, lookup(DEMO_PATIENT.insured()))),
        )
        .await
        .expect("the gateway answers in time")
    }

    /// The access records of `facility`, in the order written.
    async fn records(&self, facility: &FacilityCode) -> Vec<AccessRecord> {
        let facility = facility.to_string();
        self.running
            .store
            .chain_records(&self.running.chain_id, 0, 100_000)
            .await
            .expect("audit readable")
            .into_iter()
            .map(|s| s.record)
            .filter(|r| r.facility.as_deref() == Some(facility.as_str()))
            .collect()
    }

    async fn shutdown(self) {
        let Gateway {
            running, client, ..
        } = self;
        drop(client);
        running.shutdown().await.expect("clean shutdown");
    }
}

fn other_miyagi_clinic() -> FacilityCode {
    facility(4, FacilityKind::Medical, 1002)
}

/// The `RetryInfo` delay of a refusal.
#[track_caller]
fn retry_delay(status: &Status) -> Duration {
    status
        .get_details_retry_info()
        .unwrap_or_else(|| panic!("no RetryInfo in {status:?}"))
        .retry_delay
        .unwrap_or_else(|| panic!("RetryInfo without a delay in {status:?}"))
}

#[track_caller]
fn metadata(status: &Status, key: &str) -> String {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get(key).cloned())
        .unwrap_or_else(|| panic!("no ErrorInfo metadata {key} in {status:?}"))
}

fn record_id(status: &Status) -> String {
    status
        .metadata()
        .get(ACCESS_RECORD_HEADER)
        .and_then(|v| v.to_str().ok())
        .expect("the refusal names its access record")
        .to_string()
}

#[tokio::test]
async fn a_facility_over_its_burst_is_told_when_to_come_back_and_is_served_then() {
    // 10 a second in bursts of 5: a token every 100 ms.
    let mut gw = Gateway::start(Limits {
        rate_per_sec: 10,
        burst: 5,
        max_in_flight: 512,
        upstream: None,
    })
    .await;
    let clinic = miyagi_clinic();

    // The clock stands still: the burst is served, then every call is refused and
    // told the next token is 100 ms away.
    for _ in 0..5 {
        gw.lookup(&clinic).await.expect("within the burst");
    }
    let mut refused = Vec::new();
    for _ in 0..3 {
        let status = assert_denied(
            gw.lookup(&clinic).await,
            Code::ResourceExhausted,
            "RATE_LIMITED",
        );
        assert_eq!(retry_delay(&status), Duration::from_millis(100));
        assert_eq!(metadata(&status, "retry_after_ms"), "100");
        assert_eq!(metadata(&status, "facility"), clinic.to_string());
        assert_eq!(metadata(&status, "rate_per_sec"), "10");
        assert_eq!(metadata(&status, "burst"), "5");
        refused.push(record_id(&status));
    }
    // The bucket is the facility's, whatever the method.
    let status = assert_denied(
        gw.client
            .search_patients(as_facility(
                &clinic,
                search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻"),
            ))
            .await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    refused.push(record_id(&status));
    // Another facility has its own bucket.
    gw.lookup(&other_miyagi_clinic())
        .await
        .expect("another facility is served");

    // Every refusal is an access record, denied with its reason.
    let records = gw.records(&clinic).await;
    assert_eq!(records.len(), 9);
    assert!(
        records[..5]
            .iter()
            .all(|r| r.decision == Decision::Allowed && r.reason.is_none())
    );
    for (record, id) in records[5..].iter().zip(&refused) {
        assert_eq!(&record.id, id);
        assert_eq!(record.decision, Decision::Denied);
        assert_eq!(record.reason.as_deref(), Some("RATE_LIMITED"));
        assert_eq!(record.grpc_code, Code::ResourceExhausted as i32);
        assert_eq!(record.staff_id.as_deref(), Some("dr-0001"));
    }

    // 99 ms later there is still no token; waiting the delay brings one back.
    gw.advance(Duration::from_millis(99));
    let status = assert_denied(
        gw.lookup(&clinic).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    assert_eq!(retry_delay(&status), Duration::from_millis(1));
    gw.advance(retry_delay(&status));
    gw.lookup(&clinic).await.expect("served after the delay");
    assert_denied(
        gw.lookup(&clinic).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    // Idle long enough, the whole burst is back (and no more).
    gw.advance(Duration::from_secs(60));
    for _ in 0..5 {
        gw.lookup(&clinic).await.expect("a full bucket again");
    }
    assert_denied(
        gw.lookup(&clinic).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_facility_does_not_starve_the_others() {
    // The `serve` defaults: 20 a second, bursts of 40.
    let gw = Arc::new(
        Gateway::start(Limits {
            rate_per_sec: 20,
            burst: 40,
            max_in_flight: 512,
            upstream: None,
        })
        .await,
    );
    let flooder = miyagi_clinic();
    let neighbour = fukushima_pharmacy();

    // The flood: 16 callers from one facility, calling as fast as answers come.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..16 {
        let (gw, stop, served, limited) =
            (gw.clone(), stop.clone(), served.clone(), limited.clone());
        let flooder = flooder.clone();
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match gw.lookup(&flooder).await {
                    Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        let status = assert_denied(
                            Err::<Response<()>, _>(status),
                            Code::ResourceExhausted,
                            "RATE_LIMITED",
                        );
                        // One token's interval (50 ms), plus the test clock's 100 ms step
                        // when this call read "now" just before the neighbour moved it.
                        assert!(retry_delay(&status) <= Duration::from_millis(150));
                        limited.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    // The flood has spent its burst before the neighbour starts.
    tokio::time::timeout(PATIENCE, async {
        while limited.load(Ordering::Relaxed) < 16 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the flood is refused");

    // The neighbour calls at half its rate, twice its burst's worth: all served. The
    // clock moves 100 ms per call, for the flooder as much as for the neighbour.
    let calls = 80;
    let mut slowest = Duration::ZERO;
    for i in 0..calls {
        gw.advance(Duration::from_millis(100));
        let started = std::time::Instant::now();
        if let Err(status) = gw.lookup(&neighbour).await {
            panic!("the neighbour's call {i} was refused: {status:?}");
        }
        slowest = slowest.max(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.expect("flooder joined");
    }
    let (served, limited) = (
        served.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
    );
    println!(
        "flooder: {served} served, {limited} limited; neighbour: {calls} served, slowest {slowest:?}"
    );

    // The flooder had its burst and its rate over the 8 s the clock moved, no more.
    assert!(served >= 40, "{served}");
    assert!(served <= 40 + 20 * 8, "{served}");
    assert!(limited > 0);
    let neighbour_records = gw.records(&neighbour).await;
    assert_eq!(neighbour_records.len(), calls);
    assert!(
        neighbour_records
            .iter()
            .all(|r| r.decision == Decision::Allowed)
    );
    let flooder_records = gw.records(&flooder).await;
    assert_eq!(flooder_records.len(), served + limited);
    assert_eq!(
        flooder_records
            .iter()
            .filter(
                |r| r.decision == Decision::Denied && r.reason.as_deref() == Some("RATE_LIMITED")
            )
            .count(),
        limited
    );

    let gw = Arc::into_inner(gw).expect("every flooder is done");
    gw.shutdown().await;
}

/// An upstream that holds every lookup until the gate opens, counting arrivals.
#[derive(Clone)]
struct HeldUpstream {
    arrived: Arc<AtomicUsize>,
    gate: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl QualificationService for HeldUpstream {
    async fn lookup_qualification(
        &self,
        _request: tonic::Request<LookupQualificationRequest>,
    ) -> Result<Response<LookupQualificationResponse>, Status> {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
        Ok(Response::new(LookupQualificationResponse {
            status: QualificationStatus::Valid as i32,
            qualification: None,
        }))
    }

    async fn search_patients(
        &self,
        _request: tonic::Request<SearchPatientsRequest>,
    ) -> Result<Response<SearchPatientsResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_bound_on_calls_in_flight_calls_are_shed_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream_addr = listener.local_addr().expect("addr");
    let (open, gate) = watch::channel(false);
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = HeldUpstream {
        arrived: arrived.clone(),
        gate,
    };
    let (stop_upstream, stopped) = tokio::sync::oneshot::channel::<()>();
    let upstream_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(QualificationServiceServer::new(upstream))
            .serve_with_incoming_shutdown(server::nodelay(listener), async {
                let _ = stopped.await;
            }),
    );

    let gw = Arc::new(
        Gateway::start(Limits {
            rate_per_sec: 0,
            burst: 40,
            max_in_flight: 2,
            upstream: Some(format!("http://{upstream_addr}")),
        })
        .await,
    );
    let clinic = miyagi_clinic();
    let pharmacy = fukushima_pharmacy();

    // Two calls take the two slots and wait in the upstream.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (gw, clinic) = (gw.clone(), clinic.clone());
        held.push(tokio::spawn(async move { gw.lookup(&clinic).await }));
    }
    tokio::time::timeout(PATIENCE, async {
        while arrived.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("both calls reach the upstream");

    // While they are held, every further call is refused without waiting, from any
    // facility, and never reaches the upstream.
    let mut shed = Vec::new();
    for i in 0..6 {
        let facility = if i % 2 == 0 { &clinic } else { &pharmacy };
        let status = assert_denied(
            gw.lookup(facility).await,
            Code::ResourceExhausted,
            "OVERLOADED",
        );
        let delay = retry_delay(&status);
        assert!(
            delay >= Duration::from_millis(200) && delay < Duration::from_millis(400),
            "{delay:?}"
        );
        assert_eq!(metadata(&status, "max_in_flight"), "2");
        shed.push((facility.clone(), record_id(&status)));
    }
    assert_eq!(arrived.load(Ordering::SeqCst), 2);
    assert!(held.iter().all(|h| !h.is_finished()));

    // The shed calls are in the access log, denied, with their facility.
    for (facility, id) in &shed {
        let records = gw.records(facility).await;
        let record = records
            .iter()
            .find(|r| &r.id == id)
            .expect("the shed call's record");
        assert_eq!(record.decision, Decision::Denied);
        assert_eq!(record.reason.as_deref(), Some("OVERLOADED"));
        assert_eq!(record.grpc_code, Code::ResourceExhausted as i32);
    }

    // Once the upstream answers, the held calls are served and the slots come back.
    open.send(true).expect("upstream listening");
    for h in held {
        let reply = h.await.expect("joined").expect("held call served");
        assert_eq!(reply.get_ref().status, QualificationStatus::Valid as i32);
    }
    for _ in 0..3 {
        gw.lookup(&pharmacy).await.expect("served again");
    }
    assert_eq!(arrived.load(Ordering::SeqCst), 5);

    let gw = Arc::into_inner(gw).expect("no call left");
    gw.shutdown().await;
    let _ = stop_upstream.send(());
    upstream_server
        .await
        .expect("joined")
        .expect("stand-in upstream stops");
}

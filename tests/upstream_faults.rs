//! The gateway under upstream faults, through a TCP proxy in front of the upstream
//! that can cut every connection, refuse new ones, and hold the upstream's answers
//! back: a connection cut mid-call is UNAVAILABLE or retried, never an upstream
//! error; with the upstream gone calls fail within their deadline and the circuit
//! opens; once it is back, calls succeed again within seconds.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// What the proxy does to the connections through it.
#[derive(Default)]
struct Faults {
    /// New connections are accepted and closed at once: the upstream is gone.
    refuse: AtomicBool,
    /// Each chunk of the upstream's answers waits this long (ms).
    delay_ms: AtomicU64,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
}

struct FaultProxy {
    url: String,
    faults: Arc<Faults>,
}

impl FaultProxy {
    async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let faults = Arc::new(Faults::default());
        tokio::spawn(accept(listener, upstream, faults.clone()));
        FaultProxy { url, faults }
    }

    fn cut_all(&self) {
        self.faults.cut.send_modify(|n| *n += 1);
    }

    fn refuse(&self, refuse: bool) {
        self.faults.refuse.store(refuse, Ordering::SeqCst);
    }

    fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).expect("a short delay");
        self.faults.delay_ms.store(ms, Ordering::SeqCst);
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, faults: Arc<Faults>) {
    while let Ok((client, _)) = listener.accept().await {
        if faults.refuse.load(Ordering::SeqCst) {
            continue;
        }
        let faults = faults.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut cut = faults.cut.subscribe();
            let (from_client, to_client) = client.into_split();
            let (from_server, to_server) = server.into_split();
            // Either direction ending, or a cut, drops both sockets.
            tokio::select! {
                _ = pipe(from_client, to_server, None) => {}
                _ = pipe(from_server, to_client, Some(&faults)) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// Copies `from` to `to`, each chunk after the faults' delay if given.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delayed: Option<&Faults>) {
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        if let Some(faults) = delayed {
            let ms = faults.delay_ms.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// The simulator behind the proxy, and a gateway in front of it in the 2022
/// Fukushima-oki activation (the upstream's own timeout is 2 s).
async fn gateway_behind_proxy() -> (Harness, FaultProxy) {
    let upstream = own_upstream(200, jst_at(2022, 3, 20, 10, 0)).await;
    let addr: SocketAddr = upstream
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(upstream.qualification)
            .add_service(upstream.medical)
            .serve_with_incoming(upstream.incoming),
    );
    let proxy = FaultProxy::start(addr).await;
    let h = Harness::start_with(Options {
        upstream: Some(proxy.url.clone()),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    (h, proxy)
}

/// The demo patient's qualification, as the Miyagi clinic asks for it with `deadline`.
fn demo_lookup(deadline: Duration) -> Request<onshi_gateway::proto::LookupQualificationRequest> {
    let mut request = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    request.set_timeout(deadline);
    request
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The value of an unlabelled series in the `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_call_is_unavailable_or_retried_never_an_upstream_error() {
    let (h, proxy) = gateway_behind_proxy().await;
    h.qualification
        .clone()
        .lookup_qualification(demo_lookup(Duration::from_secs(2)))
        .await
        .expect("the upstream answers");

    // Answers take 300 ms to come back; every connection is cut while calls wait.
    proxy.delay(Duration::from_millis(300));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut client = h.qualification.clone();
            tokio::spawn(async move {
                client
                    .lookup_qualification(demo_lookup(Duration::from_secs(2)))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.cut_all();

    let mut answered = 0;
    for call in calls {
        match call.await.expect("joined") {
            Ok(_) => answered += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert_eq!(reason(&status), "UPSTREAM_UNAVAILABLE", "{status:?}");
            }
        }
    }
    // Every call was an idempotent read in flight on a cut connection: sent again.
    let text = h.scrape_metrics().await;
    let retries = metric(&text, "onshi_upstream_retries_total").expect("retries counted");
    assert!(retries >= 1.0, "{text}");
    assert!(
        answered >= 1,
        "retried calls are answered on a new connection"
    );
    let records = h.records(None).await;
    assert!(
        records
            .iter()
            .all(|r| r.reason.as_deref() != Some("UPSTREAM_ERROR")),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_upstream_gone_calls_fail_in_time_the_circuit_opens_and_traffic_returns() {
    let (h, proxy) = gateway_behind_proxy().await;
    let mut client = h.qualification.clone();
    client
        .lookup_qualification(demo_lookup(Duration::from_secs(2)))
        .await
        .expect("the upstream answers");

    proxy.refuse(true);
    proxy.cut_all();
    let deadline = Duration::from_secs(1);
    let mut refusal = None;
    for _ in 0..10 {
        let started = Instant::now();
        let status = client
            .lookup_qualification(demo_lookup(deadline))
            .await
            .expect_err("the upstream is gone");
        assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(reason(&status), "UPSTREAM_UNAVAILABLE", "{status:?}");
        if status.message().contains("circuit open") {
            refusal = Some((status, started.elapsed()));
            break;
        }
    }
    let (status, took) = refusal.expect("the circuit opens after a run of failures");
    assert!(
        status
            .message()
            .contains("after 5 consecutive upstream failures"),
        "{status:?}"
    );
    assert!(
        took < Duration::from_millis(100),
        "refused at once: {took:?}"
    );
    let delay = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a retry delay");
    assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_secs(2));
    let text = h.scrape_metrics().await;
    assert_eq!(metric(&text, "onshi_upstream_circuit_state"), Some(1.0));
    let refused = metric(&text, "onshi_upstream_circuit_refused_total").expect("counted");
    assert!(refused >= 1.0, "{text}");

    // The upstream is back: calls succeed again within seconds, without a restart.
    proxy.refuse(false);
    let back = Instant::now();
    loop {
        match client
            .lookup_qualification(demo_lookup(Duration::from_secs(2)))
            .await
        {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(reason(&status), "UPSTREAM_UNAVAILABLE", "{status:?}");
                assert!(back.elapsed() < Duration::from_secs(4), "still {status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let text = h.scrape_metrics().await;
    assert_eq!(metric(&text, "onshi_upstream_circuit_state"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_like_not_found_keep_the_circuit_closed() {
    let (h, _proxy) = gateway_behind_proxy().await;
    let unknown = onshi_gateway::proto::InsuredNumber {
        insurer_number: "33120015".into(),
        symbol: "9999".into(),
        number: "999999".into(),
        branch: "00".into(),
    };
    let mut medical = h.medical.clone();
    for _ in 0..8 {
        let status = medical
            .get_drug_history(as_facility(
                &miyagi_clinic(),
                drugs(unknown.clone(), known()),
            ))
            .await
            .expect_err("no such patient");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(reason(&status), "PATIENT_NOT_FOUND");
    }
    let text = h.scrape_metrics().await;
    assert_eq!(metric(&text, "onshi_upstream_circuit_state"), Some(0.0));
    h.qualification
        .clone()
        .lookup_qualification(demo_lookup(Duration::from_secs(2)))
        .await
        .expect("still let through");
}

//! SIGTERM under load: the gateway stops taking calls, lets every call in flight
//! finish (the upstream is slow, so many are), commits their access records, sends
//! its last spans to the collector and exits 0, and every answer a terminal received
//! names a record in the log.

mod common;
#[path = "common/otlp.rs"]
mod otlp;
#[path = "common/process.rs"]
mod process;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{as_facility, lookup, miyagi_clinic};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::{self, StoreLocation};
use process::{Serving, bin};
use tonic::transport::{Channel, Endpoint};
use tower::filter::AsyncFilterLayer;

const CLIENTS: usize = 24;
/// Each forwarded call takes this long upstream, so that calls are in flight.
const UPSTREAM_DELAY: Duration = Duration::from_millis(400);
/// A call sent this long before the signal was certainly received before it.
const SURELY_SENT: Duration = Duration::from_millis(50);

/// A slow upstream simulator in this process.
async fn slow_upstream() -> String {
    let upstream = common::own_upstream(500, chrono::Utc::now()).await;
    let delay = |req: http::Request<tonic::body::Body>| async move {
        tokio::time::sleep(UPSTREAM_DELAY).await;
        Ok::<_, tower::BoxError>(req)
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(AsyncFilterLayer::new(delay))
            .add_service(upstream.qualification)
            .add_service(upstream.medical)
            .serve_with_incoming(upstream.incoming),
    );
    upstream.url
}

/// One call's fate, as the terminal saw it.
struct Call {
    sent: Instant,
    done: Instant,
    /// The access record the answer named; none if the call got no answer.
    record: Option<String>,
    error: Option<tonic::Status>,
}

async fn terminal(channel: Channel, stop: Arc<AtomicBool>, start_after: Duration) -> Vec<Call> {
    // Staggered starts: terminals that started together would call in step, and a
    // signal that came just after one round was sent would find no call surely sent.
    tokio::time::sleep(start_after).await;
    let mut client = QualificationServiceClient::new(channel);
    let mut calls = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let result = client
            .lookup_qualification(as_facility(
                &miyagi_clinic(),
                lookup(DEMO_PATIENT.insured()),
            ))
            .await;
        let (record, error) = match result {
            Ok(r) => (
                r.metadata()
                    .get(ACCESS_RECORD_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                None,
            ),
            Err(s) => (None, Some(s)),
        };
        let refused = error.is_some();
        calls.push(Call {
            sent,
            done: Instant::now(),
            record,
            error,
        });
        if refused {
            // The gateway is going away; a real terminal would try another replica.
            break;
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_every_call_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let upstream = slow_upstream().await;
    let (collector, collector_addr) = otlp::Received::serve().await;
    let mut gateway = Serving::serve_async(
        bin()
            .args(["serve", "--dev-identity-from-metadata"])
            .args(["--upstream", &upstream])
            // One facility calls at the rate of many; only the drain is under test.
            .args(["--facility-rate-per-sec", "0"])
            .args(["--drain-timeout-secs", "20"])
            // A loaded test machine may take more than the production 500 ms to fsync;
            // a refused call would end its terminal's loop before the signal.
            .args(["--audit-commit-timeout-ms", "5000"])
            .args(["--otlp-endpoint", &format!("http://{collector_addr}")])
            .arg("--data-dir")
            .arg(dir.path()),
        &dir.path().join("gateway.log"),
    )
    .await;
    gateway.activate_around_now("04", "drain test");

    let stop = Arc::new(AtomicBool::new(false));
    let mut terminals = Vec::new();
    for i in 0..CLIENTS {
        let channel = Endpoint::from_shared(format!("http://{}", gateway.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let start_after = UPSTREAM_DELAY * u32::try_from(i).expect("few") / CLIENTS as u32;
        terminals.push(tokio::spawn(terminal(channel, stop.clone(), start_after)));
    }
    // Let the load settle, then signal mid-flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = Instant::now();
    gateway.process.terminate();
    let exit = tokio::task::spawn_blocking(move || {
        let status = gateway.process.child.wait();
        (status, gateway)
    });
    let (status, _gateway) = tokio::time::timeout(Duration::from_secs(30), exit)
        .await
        .expect("the gateway exits within its drain")
        .expect("joined");
    let stopped_in = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(
        status.expect("reaped").code(),
        Some(0),
        "exit 0 after SIGTERM"
    );

    let mut calls = Vec::new();
    for t in terminals {
        calls.extend(t.await.expect("terminal"));
    }
    let before: Vec<&Call> = calls
        .iter()
        .filter(|c| c.sent + SURELY_SENT <= signalled)
        .collect();
    // Calls that were in flight when the signal came: sent before, answered after.
    let in_flight = before.iter().filter(|c| c.done > signalled).count();
    assert!(
        in_flight >= CLIENTS / 2,
        "only {in_flight} calls were in flight at SIGTERM; the test did not test the drain; \
         refused before it: {:?}",
        before
            .iter()
            .filter_map(|c| c.error.as_ref())
            .collect::<Vec<_>>()
    );
    // Not one of them was lost: each was answered, with its access record.
    for call in &before {
        assert!(
            call.error.is_none() && call.record.is_some(),
            "a call sent {:?} before SIGTERM got {:?}",
            signalled - call.sent,
            call.error
        );
    }
    // The drain took about one upstream call, not the drain timeout.
    assert!(stopped_in < Duration::from_secs(10), "{stopped_in:?}");

    // Every answer names a committed record, and the log verifies.
    let answered: HashSet<String> = calls.iter().filter_map(|c| c.record.clone()).collect();
    let store = store::open(&StoreLocation::Sqlite(dir.path().join("onshi.db")))
        .await
        .expect("store reopens");
    let mut stored = HashSet::new();
    for chain in store.chains().await.expect("chains") {
        for record in store
            .chain_records(&chain.chain_id, 0, 1_000_000)
            .await
            .expect("records")
        {
            stored.insert(record.record.id);
        }
    }
    let missing: Vec<&String> = answered.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "answered but not in the log: {missing:?}"
    );
    assert!(stored.len() >= answered.len());
    let reports = onshi_gateway::audit::verify::verify_store(store.as_ref(), &[])
        .await
        .expect("verify runs");
    for report in &reports {
        assert!(report.is_intact(), "{report:?}");
        // Flushed at exit: the chain is signed through its last record.
        assert_eq!(report.signed_through, report.last_seq, "{report:?}");
    }
    store.close().await;

    // The spans of the last calls were sent before the process exited.
    let exported = collector
        .spans()
        .into_iter()
        .filter(|(service, span)| {
            service == "onshi-gateway"
                && span.name == "onshi.v1.QualificationService/LookupQualification"
        })
        .count();
    assert!(
        exported >= answered.len(),
        "{exported} call spans exported for {} answered calls",
        answered.len()
    );
}

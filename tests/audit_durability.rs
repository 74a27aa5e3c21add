//! SIGKILL under sustained load loses no acknowledged access record: every response
//! a terminal received, allowed or denied, names a record that is in the store after
//! the process was killed mid-flight, and every chain still verifies.

mod common;
#[path = "common/databases.rs"]
mod databases;
#[path = "common/process.rs"]
mod process;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{as_facility, lookup, miyagi_clinic, search_request, tokyo_clinic};
use databases::fresh_postgres;
use onshi_gateway::audit::verify::verify_store;
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::Sex;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::simulator::fixtures::{ALL, DEMO_PATIENT};
use onshi_gateway::store::{self, Decision, StoreLocation};
use process::{Serving, bin};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

/// Concurrent terminals, each with a connection of its own.
const CLIENTS: usize = 16;
/// Load runs at least this long before the kill…
const LOAD: Duration = Duration::from_millis(1500);
/// …and until at least this many responses were received (a slow machine gets
/// more time, up to `LOAD_LIMIT`).
const ENOUGH: usize = 200;
const LOAD_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_under_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let received = kill_under_load(dir.path(), &[]).await;
    let location = StoreLocation::Sqlite(dir.path().join("onshi.db"));
    assert_all_stored_and_intact(&location, &received).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_under_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = fresh_postgres().await;
    let received = kill_under_load(dir.path(), &["--database-url", &pg.url]).await;
    assert_all_stored_and_intact(&StoreLocation::Postgres(pg.url.clone()), &received).await;
    pg.drop_schema().await;
}

/// Adds an activation of Miyagi (04) covering now, starts `serve` on a free port,
/// drives `CLIENTS` terminals at it, SIGKILLs it under load and returns the
/// access-record ids of every response received.
async fn kill_under_load(dir: &Path, database: &[&str]) -> Vec<String> {
    // Killed (SIGKILL) and reaped if the test ends early.
    let mut gateway = Serving::serve_async(
        bin()
            .args([
                "serve",
                "--dev-identity-from-metadata",
                "--population",
                "2000",
            ])
            // Checkpoints are signed under load too, not only at the end.
            .args(["--audit-checkpoint-records", "50"])
            .args(database)
            .arg("--data-dir")
            .arg(dir),
        &dir.join("gateway.log"),
    )
    .await;
    gateway.activate_around_now("04", "durability test");
    let port = gateway.addr.port();

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let mut terminals = Vec::new();
    for t in 0..CLIENTS {
        let channel = connect(port).await;
        terminals.push(tokio::spawn(terminal(
            t,
            channel,
            stop.clone(),
            count.clone(),
        )));
    }
    let started = Instant::now();
    while started.elapsed() < LOAD
        || (count.load(Ordering::Relaxed) < ENOUGH && started.elapsed() < LOAD_LIMIT)
    {
        if let Some(status) = gateway.process.exited() {
            panic!(
                "the gateway exited under load: {status}\n{}",
                gateway.process.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Mid-flight: the terminals are still sending.
    assert!(
        !terminals.iter().any(tokio::task::JoinHandle::is_finished),
        "a terminal stopped before the kill\n{}",
        gateway.process.log()
    );
    gateway.process.child.kill().expect("SIGKILL sent");
    let status = gateway.process.child.wait().expect("reaped");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed, not exited: {status}");
    }
    #[cfg(not(unix))]
    assert!(!status.success());
    stop.store(true, Ordering::Relaxed);

    let mut received = Vec::new();
    for t in terminals {
        received.extend(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("the terminal stops")
                .expect("terminal task"),
        );
    }
    assert!(
        received.len() > 100,
        "only {} responses received under load\n{}",
        received.len(),
        gateway.process.log()
    );
    received
}

async fn connect(port: u16) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    let mut last = None;
    for _ in 0..20 {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot connect to the gateway: {last:?}");
}

/// One terminal: allowed look-ups of the fixture persons, searches, and look-ups
/// from a facility outside the activation (denied), in a loop until told to stop.
/// Returns the access-record id of every response, answer or refusal.
async fn terminal(
    t: usize,
    channel: Channel,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut client = QualificationServiceClient::new(channel);
    let mut ids = Vec::new();
    let mut i = t;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let metadata: MetadataMap = match i % 4 {
            0 => match client
                .search_patients(as_facility(
                    &miyagi_clinic(),
                    search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻"),
                ))
                .await
            {
                Ok(r) => r.metadata().clone(),
                Err(s) => s.metadata().clone(),
            },
            1 => match client
                .lookup_qualification(as_facility(&tokyo_clinic(), lookup(DEMO_PATIENT.insured())))
                .await
            {
                Ok(r) => r.metadata().clone(),
                Err(s) => s.metadata().clone(),
            },
            _ => match client
                .lookup_qualification(as_facility(
                    &miyagi_clinic(),
                    lookup(ALL[i % ALL.len()].insured()),
                ))
                .await
            {
                Ok(r) => r.metadata().clone(),
                Err(s) => s.metadata().clone(),
            },
        };
        // A call cut off by the kill has no record to name; every answered one has.
        if let Some(id) = metadata
            .get(ACCESS_RECORD_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            ids.push(id.to_string());
            count.fetch_add(1, Ordering::Relaxed);
        } else if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    ids
}

/// Every id received is in some chain of the store, allowed and denied calls among
/// them, and every chain verifies.
async fn assert_all_stored_and_intact(location: &StoreLocation, received: &[String]) {
    let store = store::open(location).await.expect("the store reopens");
    let chains = store.chains().await.expect("chains");
    assert!(!chains.is_empty(), "no chain in the store");
    let mut stored = HashSet::new();
    let (mut allowed, mut denied) = (0usize, 0usize);
    let wanted: HashSet<&str> = received.iter().map(String::as_str).collect();
    assert_eq!(wanted.len(), received.len(), "an id was given twice");
    for chain in &chains {
        let mut after = 0;
        loop {
            let page = store
                .chain_records(&chain.chain_id, after, 5000)
                .await
                .expect("records readable");
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in page {
                if wanted.contains(r.record.id.as_str()) {
                    match r.record.decision {
                        Decision::Allowed => allowed += 1,
                        Decision::Denied => denied += 1,
                        Decision::Failed => {}
                    }
                }
                stored.insert(r.record.id);
            }
        }
    }
    let lost: Vec<&String> = received.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records are not in the store, e.g. {:?}",
        lost.len(),
        received.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(stored.len() >= received.len(), "{} stored", stored.len());
    assert!(
        allowed > 0 && denied > 0,
        "{allowed} allowed, {denied} denied"
    );
    eprintln!(
        "{location}: {} responses received ({allowed} allowed, {denied} denied), {} records stored in {} chain(s)",
        received.len(),
        stored.len(),
        chains.len()
    );

    let reports = verify_store(store.as_ref(), &[])
        .await
        .expect("verify runs");
    assert_eq!(reports.len(), chains.len());
    for r in &reports {
        assert!(r.is_intact(), "{r:?}");
    }
    let verified: u64 = reports.iter().map(|r| r.records_verified).sum();
    assert_eq!(verified, stored.len() as u64);
    store.close().await;
}

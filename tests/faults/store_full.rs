//! Fault 6: the audit store cannot be written. The SQLite data directory lives on a
//! small tmpfs that the suite fills with a file: calls are refused with
//! AUDIT_UNAVAILABLE, none is served without its record, health says NOT_SERVING;
//! once the file is deleted the gateway recovers by itself and the chain verifies.
//!
//! SQLite keeps committing for a while after the disk is full: its write-ahead log
//! reuses the space it already has (about 5 MB after the registry is loaded at the
//! first start). Those commits are durable, so the fault is timed from the first
//! failed commit (the `onshi.audit_writer` health turning NOT_SERVING), and the time
//! in between is reported.

use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;

use crate::expect;
use crate::gateway::Gateway;
use crate::health::HealthWatch;
use crate::load;
use crate::size::Size;
use crate::summary::Summary;
use crate::tmpfs::Tmpfs;

const RECOVER_WITHIN: Duration = Duration::from_secs(5);
/// How long SQLite may go on writing into space it already has before the suite
/// gives up waiting for the first failed commit.
const FIRST_FAILURE_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_store_disk_full() {
    let _one = crate::exclusive().await;
    let Some(disk) = Tmpfs::mount("32m") else {
        return;
    };
    let size = Size::from_env();
    let logs = tempfile::tempdir().expect("temp dir");
    let data = disk.path().join("data");
    let mut gateway = Gateway::start(&data, logs.path(), &size, &[]).await;
    gateway.activate();
    let ready = HealthWatch::start(gateway.addr(), "");
    let writer = HealthWatch::start(gateway.addr(), "onshi.audit_writer");

    let running = load::start(gateway.addr(), size.plan());
    tokio::time::sleep(size.warm).await;
    let full = Instant::now();
    let filler = tokio::task::block_in_place(|| disk.fill());
    let failing = writer.wait_not_serving(full, FIRST_FAILURE_WITHIN).await;
    tokio::time::sleep(size.fault).await;
    let metrics = gateway.metrics_now("with the disk full").await;
    std::fs::remove_file(&filler).expect("filler removed");
    let freed = Instant::now();
    tokio::time::sleep(size.after).await;
    let calls = running.stop().await;

    let check = crate::audit::check(
        &StoreLocation::Sqlite(data.join("onshi.db")),
        &calls.outcomes,
    )
    .await;
    let during = calls.sent_between(failing.unwrap_or(full), freed);
    let recovered = calls.recovered(freed);
    let fault = "audit store disk full (SQLite on a full tmpfs)";
    Summary::new(fault, size.full, &[&calls], &check)
        .fault(full, freed)
        .recovered(recovered)
        .note(first_failure(full, failing))
        .note(format!(
            "served after that while full: {}",
            during.len() - expect::refusals(&during).len()
        ))
        .note(format!("health \"\": {}", ready.story(full)))
        .note(format!("onshi.audit_writer: {}", writer.story(full)))
        .print();
    println!("{metrics}");
    gateway.print_warnings();

    let outage = expect::StoreOutage {
        name: fault,
        while_: "the disk was full",
        after: "after space was freed",
        fault: (full, freed),
        during,
        recovered,
        within: RECOVER_WITHIN,
    };
    expect::audit_store_outage_handled(&mut gateway, &check, &calls, outage, (&ready, &writer));
}

fn first_failure(full: Instant, failing: Option<Instant>) -> String {
    match failing {
        Some(at) => format!(
            "first failed commit {:.1} s after the disk was full",
            (at - full).as_secs_f64()
        ),
        None => format!("no failed commit within {FIRST_FAILURE_WITHIN:?} of the disk being full"),
    }
}

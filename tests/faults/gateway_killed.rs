//! Fault 4: the gateway itself is SIGKILLed under load and started again on the same
//! data, with SQLite and with PostgreSQL: its chain continues and verifies and every
//! answer with data that a terminal saw is in the log. And two replicas on one
//! PostgreSQL, each with its own data directory and audit key: one is killed, the
//! other serves on.

use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;

use crate::databases::fresh_postgres;
use crate::expect;
use crate::gateway::Gateway;
use crate::load::{self, Calls};
use crate::size::Size;
use crate::summary::Summary;

/// Calls must be served this soon after the new process listens.
const RECOVER_WITHIN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gateway_killed_and_restarted() {
    let _one = crate::exclusive().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let location = StoreLocation::Sqlite(data.join("onshi.db"));
    killed_and_restarted(
        "gateway SIGKILLed and restarted (SQLite)",
        dir.path(),
        &[],
        &location,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gateway_killed_and_restarted() {
    let _one = crate::exclusive().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = fresh_postgres().await;
    let location = StoreLocation::Postgres(pg.url.clone());
    killed_and_restarted(
        "gateway SIGKILLed and restarted (PostgreSQL)",
        dir.path(),
        &["--database-url", &pg.url],
        &location,
    )
    .await;
    pg.drop_schema().await;
}

async fn killed_and_restarted(
    fault: &str,
    dir: &std::path::Path,
    extra: &[&str],
    location: &StoreLocation,
) {
    let size = Size::from_env();
    let mut gateway = Gateway::start(&dir.join("data"), dir, &size, extra).await;
    gateway.activate();

    let running = load::start(gateway.addr(), size.plan());
    tokio::time::sleep(size.warm).await;
    gateway.kill();
    let killed = Instant::now();
    gateway.restart().await;
    let back = Instant::now();
    tokio::time::sleep(size.after).await;
    let calls = running.stop().await;

    let check = crate::audit::check(location, &calls.outcomes).await;
    let recovered = calls.recovered(back);
    Summary::new(fault, size.full, &[&calls], &check)
        .fault(killed, back)
        .recovered(recovered)
        .note(format!("down {:.1} s", (back - killed).as_secs_f64()))
        .note(format!(
            "{} records in {} chain(s)",
            check.stored, check.chains
        ))
        .print();
    gateway.print_warnings();

    check.assert_kept(fault);
    assert_eq!(check.chains, 1, "the restarted gateway continues its chain");
    expect::none_hung(&calls);
    expect::recovered(recovered, RECOVER_WITHIN, "after the restart");
    gateway.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_the_other_serves_on() {
    let _one = crate::exclusive().await;
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = fresh_postgres().await;
    let shared = ["--database-url", pg.url.as_str()];
    let mut a = Gateway::start(&dir.path().join("a"), dir.path(), &size, &shared).await;
    a.activate();
    let logs_b = dir.path().join("b-logs");
    std::fs::create_dir_all(&logs_b).expect("log dir");
    let mut b = Gateway::start(&dir.path().join("b"), &logs_b, &size, &shared).await;

    let mut half = size.plan();
    half.rate /= 2.0;
    half.clients = (half.clients / 2).max(1);
    let (on_a, on_b) = (load::start(a.addr(), half), load::start(b.addr(), half));
    tokio::time::sleep(size.warm).await;
    a.kill();
    let killed = Instant::now();
    tokio::time::sleep(size.fault + size.after).await;
    let (calls_a, calls_b) = (on_a.stop().await, on_b.stop().await);

    let all = calls_a.outcomes.iter().chain(&calls_b.outcomes);
    let check = crate::audit::check(&StoreLocation::Postgres(pg.url.clone()), all).await;
    let b_after = calls_b.sent_between(killed, Instant::now());
    let b_failed: Vec<_> = b_after.iter().copied().filter(|o| !o.ok()).collect();
    Summary::new(
        "replica killed, the other serves on (PostgreSQL)",
        size.full,
        &[&calls_a, &calls_b],
        &check,
    )
    .fault(killed, killed)
    .note(format!(
        "B after the kill: {} calls, {} served",
        b_after.len(),
        b_after.len() - b_failed.len()
    ))
    .note(format!(
        "{} records in {} chain(s)",
        check.stored, check.chains
    ))
    .print();
    a.print_warnings();
    b.print_warnings();

    check.assert_kept("two replicas");
    assert_eq!(check.chains, 2, "one chain per replica");
    expect::none_hung(&calls_a);
    expect::none_hung(&calls_b);
    expect::still_running(&mut b);
    assert!(!b_after.is_empty(), "no load on B after the kill");
    assert!(
        b_failed.is_empty(),
        "replica B failed calls after A was killed: {}",
        Calls::examples(b_failed)
    );
    b.kill();
    pg.drop_schema().await;
}

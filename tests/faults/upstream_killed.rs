//! Fault 1: the upstream OQS process is SIGKILLed under load and started again on the
//! same port. Calls fail fast with UNAVAILABLE and UPSTREAM_UNAVAILABLE while it is
//! gone, none hangs, and traffic is served again within seconds of its return, by
//! the same gateway process.

use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;
use tonic::Code;

use crate::calls::percentile;
use crate::expect;
use crate::gateway::Gateway;
use crate::load;
use crate::size::Size;
use crate::summary::{Summary, ms};
use crate::upstream::Simulator;

/// Service must be back this soon after the upstream listens again.
const RECOVER_WITHIN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_and_restarted() {
    let _one = crate::exclusive().await;
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut upstream = Simulator::start(dir.path(), size.population).await;
    let mut gateway =
        Gateway::start(&data, dir.path(), &size, &["--upstream", &upstream.url()]).await;
    gateway.activate();

    let running = load::start(gateway.addr(), size.plan());
    tokio::time::sleep(size.warm).await;
    upstream.kill();
    // From here on the upstream is gone: no call sent later can be in flight on it.
    let killed = Instant::now();
    tokio::time::sleep(size.fault).await;
    let metrics = gateway.metrics_now("with the upstream down").await;
    upstream.restart().await;
    let back = Instant::now();
    tokio::time::sleep(size.after).await;
    let calls = running.stop().await;

    let location = StoreLocation::Sqlite(data.join("onshi.db"));
    let check = crate::audit::check(&location, &calls.outcomes).await;
    let during = calls.sent_between(killed, back);
    let refused = expect::refusals(&during);
    let p99 = percentile(refused.iter().copied(), 0.99);
    let recovered = calls.recovered(back);
    let fault = "upstream killed and restarted";
    Summary::new(fault, size.full, &[&calls], &check)
        .fault(killed, back)
        .recovered(recovered)
        .note(format!(
            "outage refusals p50 {} p99 {}",
            ms(percentile(refused.iter().copied(), 0.5)),
            ms(p99)
        ))
        .print();
    println!("{metrics}");
    gateway.print_warnings();

    expect::still_running(&mut gateway);
    check.assert_kept(fault);
    expect::none_hung(&calls);
    expect::refused_as(
        &during,
        Code::Unavailable,
        "UPSTREAM_UNAVAILABLE",
        "the upstream was down",
    );
    assert!(
        p99 <= size.deadline / 4,
        "refusals are not fast: p99 {p99:?}"
    );
    expect::recovered(recovered, RECOVER_WITHIN, "after the upstream's return");
    gateway.kill();
}

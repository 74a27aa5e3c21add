//! Fault 2: the upstream OQS stays up but its link degrades, through the suite's
//! proxy: every chunk late by a whole deadline, each connection cut in the middle of
//! a reply, or every connection reset again and again. Deadlines hold (no call
//! outlives its deadline plus the slack), the gateway's memory stays bounded, and
//! service comes back once the link is sound.

use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;

use crate::expect;
use crate::gateway::Gateway;
use crate::load;
use crate::proxy::Proxy;
use crate::rss::PeakRss;
use crate::size::Size;
use crate::summary::Summary;
use crate::upstream::Simulator;

/// Growth of the gateway's resident memory through the fault that counts as bounded.
const RSS_GROWTH_KIB: u64 = 64 * 1024;
/// Service must be back this soon after the link is sound again.
const RECOVER_WITHIN: Duration = Duration::from_secs(3);
/// Reply bytes a connection forwards before it is cut: inside the first reply.
const CUT_AFTER: usize = 150;
/// How often every connection is reset in the reset fault.
const RESET_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
enum Degradation {
    Slow,
    CutMidReply,
    Resets,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_slow_past_the_deadline() {
    degraded(
        "upstream slow (latency = deadline per chunk)",
        Degradation::Slow,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_cut_mid_reply() {
    degraded("upstream cut mid-reply", Degradation::CutMidReply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_reset() {
    degraded(
        "upstream connections reset every 200 ms",
        Degradation::Resets,
    )
    .await;
}

async fn degraded(fault: &str, how: Degradation) {
    let _one = crate::exclusive().await;
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let upstream = Simulator::start(dir.path(), size.population).await;
    let proxy = Proxy::start(upstream.addr).await;
    let mut gateway = Gateway::start(&data, dir.path(), &size, &["--upstream", &proxy.url()]).await;
    gateway.activate();

    let running = load::start(gateway.addr(), size.plan());
    tokio::time::sleep(size.warm).await;
    let before_kib = gateway.rss_kib();
    let peak = PeakRss::start(gateway.pid());
    let began = Instant::now();
    degrade(&proxy, how, &size).await;
    let metrics = gateway.metrics_now("at the end of the fault").await;
    let back = Instant::now();
    tokio::time::sleep(size.after).await;
    let calls = running.stop().await;
    let peak_kib = peak.peak_kib();

    let location = StoreLocation::Sqlite(data.join("onshi.db"));
    let check = crate::audit::check(&location, &calls.outcomes).await;
    let recovered = calls.recovered(back);
    Summary::new(fault, size.full, &[&calls], &check)
        .fault(began, back)
        .recovered(recovered)
        .note(format!(
            "RSS {} -> peak {} MiB",
            before_kib / 1024,
            peak_kib / 1024
        ))
        .print();
    println!("{metrics}");
    gateway.print_warnings();

    expect::still_running(&mut gateway);
    check.assert_kept(fault);
    expect::none_hung(&calls);
    assert!(
        peak_kib <= before_kib + RSS_GROWTH_KIB,
        "RSS grew from {before_kib} KiB to {peak_kib} KiB"
    );
    expect::recovered(recovered, RECOVER_WITHIN, "after the link was sound");
    gateway.kill();
}

/// Degrades the link for the fault's time, then makes it sound again.
async fn degrade(proxy: &Proxy, how: Degradation, size: &Size) {
    let how_long = size.fault;
    match how {
        Degradation::Slow => {
            proxy.set_latency(size.deadline);
            tokio::time::sleep(how_long).await;
            proxy.set_latency(Duration::ZERO);
        }
        Degradation::CutMidReply => {
            proxy.cut_replies_after(Some(CUT_AFTER));
            proxy.cut_all();
            tokio::time::sleep(how_long).await;
            proxy.cut_replies_after(None);
            proxy.cut_all();
        }
        Degradation::Resets => {
            let until = Instant::now() + how_long;
            while Instant::now() < until {
                proxy.cut_all();
                tokio::time::sleep(RESET_EVERY).await;
            }
        }
    }
}

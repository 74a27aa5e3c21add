//! Fault 5: offered load at about three times what the gateway can serve (a small
//! `--max-in-flight` in front of a slow upstream). The excess is refused at once with
//! RESOURCE_EXHAUSTED / OVERLOADED and a RetryInfo; the calls accepted keep their
//! latency (nothing queues); memory stays bounded; once the load drops, every call is
//! served again.

use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;
use tonic::Code;

use crate::calls::percentile;
use crate::expect;
use crate::gateway::Gateway;
use crate::load::{self, Calls, Outcome, Plan};
use crate::proxy::Proxy;
use crate::rss::PeakRss;
use crate::size::Size;
use crate::summary::{Summary, ms};
use crate::upstream::Simulator;

const MAX_IN_FLIGHT: usize = 8;
const RSS_GROWTH_KIB: u64 = 64 * 1024;

/// Each chunk to and from the upstream is this late, so that calls hold their slot:
/// the short form's saturation stays within what a debug build serves on two cores.
fn upstream_latency(size: &Size) -> Duration {
    Duration::from_millis(if size.full { 50 } else { 100 })
}

/// The three phases: saturation measured, three times it offered, half of it.
struct Phases {
    calibration: Calls,
    saturation: f64,
    overload: Calls,
    calmed: Instant,
    after: Calls,
    before_kib: u64,
    peak_kib: u64,
    metrics: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_at_three_times_saturation() {
    let _one = crate::exclusive().await;
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let upstream = Simulator::start(dir.path(), size.population).await;
    let proxy = Proxy::start(upstream.addr).await;
    proxy.set_latency(upstream_latency(&size));
    let limit = MAX_IN_FLIGHT.to_string();
    let extra = ["--upstream", &proxy.url(), "--max-in-flight", &limit];
    let mut gateway = Gateway::start(&data, dir.path(), &size, &extra).await;
    gateway.activate();

    let p = phases(&gateway, &size).await;
    let all = p
        .calibration
        .outcomes
        .iter()
        .chain(&p.overload.outcomes)
        .chain(&p.after.outcomes);
    let check = crate::audit::check(&StoreLocation::Sqlite(data.join("onshi.db")), all).await;
    let base_p99 = percentile(p.calibration.outcomes.iter(), 0.99);
    let accepted_p99 = percentile(p.overload.outcomes.iter().filter(|o| o.ok()), 0.99);
    let shed: Vec<&Outcome> = p.overload.outcomes.iter().filter(|o| !o.ok()).collect();
    let shed_p99 = percentile(shed.iter().copied(), 0.99);
    let recovered = p.after.recovered(p.calmed);
    let fault = "overload at 3x saturation (max in flight 8)";
    let summary = Summary::new(fault, size.full, &[&p.overload], &check)
        .recovered(recovered)
        .note(format!(
            "saturation {:.0}/s, p99 {}",
            p.saturation,
            ms(base_p99)
        ))
        .note(format!(
            "accepted p99 {}, refusals p99 {}",
            ms(accepted_p99),
            ms(shed_p99)
        ))
        .note(format!(
            "RSS {} -> peak {} MiB",
            p.before_kib / 1024,
            p.peak_kib / 1024
        ))
        .note(format!(
            "after: {} calls at {:.0}/s, {} served",
            p.after.outcomes.len(),
            p.after.plan.rate,
            p.after.ok()
        ))
        .print();
    println!("{}", p.metrics);
    gateway.print_warnings();

    check.assert_kept(fault);
    expect::none_hung(&p.overload);
    expect::none_hung(&p.after);
    shed_not_queued(&p, &size, summary.held);
    let refused = p.after.refused();
    assert!(
        refused.is_empty(),
        "refused after the load dropped: {refused:?}"
    );
    gateway.kill();
}

/// The excess was refused at once, with a retry hint; what was accepted did not
/// queue; the terminals could keep their rate; memory stayed bounded.
#[track_caller]
fn shed_not_queued(p: &Phases, size: &Size, held: f64) {
    let refused = p.calibration.refused();
    assert!(refused.is_empty(), "calibration calls refused: {refused:?}");
    let shed: Vec<&Outcome> = p.overload.outcomes.iter().filter(|o| !o.ok()).collect();
    expect::refused_as(&shed, Code::ResourceExhausted, "OVERLOADED", "overloaded");
    let without_retry = shed.iter().filter(|o| !o.retry_info).count();
    assert_eq!(without_retry, 0, "OVERLOADED refusals without RetryInfo");
    let shed_p99 = percentile(shed.iter().copied(), 0.99);
    assert!(
        shed_p99 <= size.deadline / 4,
        "refusals are slow: p99 {shed_p99:?}"
    );
    let base_p99 = percentile(p.calibration.outcomes.iter(), 0.99);
    let accepted_p99 = percentile(p.overload.outcomes.iter().filter(|o| o.ok()), 0.99);
    let bound = (base_p99 * 2).max(base_p99 + size.deadline / 4);
    assert!(
        accepted_p99 <= bound,
        "accepted calls queue: p99 {accepted_p99:?} (bound {bound:?})"
    );
    let offered = p.overload.plan.rate;
    assert!(
        held >= 0.8 * offered,
        "terminals held only {held:.0}/s of {offered:.0}/s"
    );
    let (before, peak) = (p.before_kib, p.peak_kib);
    assert!(
        peak <= before + RSS_GROWTH_KIB,
        "RSS grew from {before} KiB to {peak} KiB"
    );
}

async fn phases(gateway: &Gateway, size: &Size) -> Phases {
    // Saturation: as many terminals as slots, each calling again at once.
    let closed_loop = Plan {
        rate: 10_000.0,
        clients: MAX_IN_FLIGHT,
        ..size.plan()
    };
    let calibration = run_for(gateway, closed_loop, size.warm.max(Duration::from_secs(2))).await;
    let ran = (calibration.stopped - calibration.started).as_secs_f64();
    let saturation = calibration.ok() as f64 / ran;

    let before_kib = gateway.rss_kib();
    let peak = PeakRss::start(gateway.pid());
    let over = Plan {
        rate: 3.0 * saturation,
        clients: 6 * MAX_IN_FLIGHT,
        ..size.plan()
    };
    let overload = run_for(gateway, over, size.fault).await;
    let peak_kib = peak.peak_kib();
    let metrics = gateway.metrics_now("after the overload").await;

    let calm = Plan {
        rate: saturation / 2.0,
        clients: MAX_IN_FLIGHT,
        ..size.plan()
    };
    let calmed = Instant::now();
    let after = run_for(gateway, calm, size.after).await;
    Phases {
        calibration,
        saturation,
        overload,
        calmed,
        after,
        before_kib,
        peak_kib,
        metrics,
    }
}

async fn run_for(gateway: &Gateway, plan: Plan, how_long: Duration) -> Calls {
    let running = load::start(gateway.addr(), plan);
    tokio::time::sleep(how_long).await;
    running.stop().await
}

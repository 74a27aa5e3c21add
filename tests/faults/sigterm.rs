//! Fault 7: SIGTERM under load, with a slow upstream so that calls are in flight.
//! Every call ends within the drain timeout, served or refused cleanly (a status the
//! terminal can act on, never a hang), the process exits 0, and every answer with
//! data names a record in the log. The summary counts the calls the transport ended
//! as the connections closed (UNAVAILABLE, or CANCELLED from the client itself).

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;
use tonic::Code;

use crate::expect;
use crate::gateway::Gateway;
use crate::load::{self, Calls, Outcome};
use crate::proxy::Proxy;
use crate::size::Size;
use crate::summary::{Summary, ms};
use crate::upstream::Simulator;

const DRAIN: Duration = Duration::from_secs(5);
/// Each chunk to and from the upstream is this late, so that calls are in flight.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load() {
    let _one = crate::exclusive().await;
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let upstream = Simulator::start(dir.path(), size.population).await;
    let proxy = Proxy::start(upstream.addr).await;
    proxy.set_latency(UPSTREAM_LATENCY);
    let drain = DRAIN.as_secs().to_string();
    let extra = ["--upstream", &proxy.url(), "--drain-timeout-secs", &drain];
    let gateway = Gateway::start(&data, dir.path(), &size, &extra).await;
    gateway.activate();

    let running = load::start(gateway.addr(), size.plan());
    tokio::time::sleep(size.warm).await;
    let signalled = Instant::now();
    let (status, gateway) = terminate(gateway).await;
    let exited = Instant::now();
    // Terminals keep calling a while: they must be refused, not left hanging.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = running.stop().await;

    let location = StoreLocation::Sqlite(data.join("onshi.db"));
    let check = crate::audit::check(&location, &calls.outcomes).await;
    let in_flight: Vec<&Outcome> = calls
        .outcomes
        .iter()
        .filter(|o| o.sent < signalled && o.ended > signalled)
        .collect();
    let fault = "SIGTERM under load (drain timeout 5 s)";
    Summary::new(fault, size.full, &[&calls], &check)
        .fault(signalled, exited)
        .note(format!(
            "exited {} after SIGTERM, {}",
            ms(exited - signalled),
            status.map_or("still running".to_string(), |s| s.to_string())
        ))
        .note(format!(
            "in flight at SIGTERM {}, of them served {}",
            in_flight.len(),
            in_flight.iter().filter(|o| o.ok()).count()
        ))
        .print();
    gateway.print_warnings();

    check.assert_kept(fault);
    expect::none_hung(&calls);
    let status =
        status.unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", gateway.log()));
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM:\n{}",
        gateway.log()
    );
    let took = exited - signalled;
    assert!(
        took <= DRAIN + Duration::from_secs(2),
        "took {took:?} to exit"
    );
    assert!(
        !in_flight.is_empty(),
        "no call was in flight at SIGTERM: the drain was not tested"
    );
    drained_cleanly(&calls, signalled);
}

/// SIGTERM, then waits (off the runtime) for the process to exit.
async fn terminate(mut gateway: Gateway) -> (Option<ExitStatus>, Gateway) {
    gateway.serving.process.terminate();
    tokio::task::spawn_blocking(move || {
        let status = gateway
            .serving
            .process
            .wait_exit(DRAIN + Duration::from_secs(10));
        (status, gateway)
    })
    .await
    .expect("joined")
}

/// Calls sent before the signal ended within the drain; every call that was not
/// served was refused by the gateway with a reason, or ended by the transport as
/// the listener and connections closed: UNAVAILABLE, or CANCELLED raised by the
/// client for a request its closing connection never sent (not a deadline).
#[track_caller]
fn drained_cleanly(calls: &Calls, signalled: Instant) {
    let late: Vec<&Outcome> = calls
        .outcomes
        .iter()
        .filter(|o| o.sent < signalled && o.ended > signalled + DRAIN)
        .collect();
    assert!(
        late.is_empty(),
        "calls outlived the drain: {}",
        Calls::examples(late)
    );
    let unclean: Vec<&Outcome> = calls
        .outcomes
        .iter()
        .filter(|o| !o.ok() && o.reason.is_none() && !closed_under(o))
        .collect();
    assert!(
        unclean.is_empty(),
        "calls ended uncleanly: {}",
        Calls::examples(unclean)
    );
}

/// Ended by the transport because the gateway's connection closed.
fn closed_under(o: &Outcome) -> bool {
    match o.code {
        Some(Code::Unavailable) => true,
        Some(Code::Cancelled) => !o.message.contains("Timeout expired"),
        _ => false,
    }
}

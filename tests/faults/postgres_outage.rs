//! Fault 3: PostgreSQL goes away under load and comes back. Patient-data calls are
//! refused with AUDIT_UNAVAILABLE within their deadline (fail closed), never served
//! without a committed record; health says NOT_SERVING during the outage and
//! SERVING after; calls and health recover by themselves, with no record lost or
//! doubled.
//!
//! Three ways: the suite's proxy between the gateway and the shared test server resets
//! every connection and refuses new ones for the fault's time (PostgreSQL "stopped");
//! the proxy lets every connection go silent and never answers new ones (the network
//! to it gone); and a private cluster really stopped (`pg_ctl stop -m fast`) and
//! started again.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use onshi_gateway::store::StoreLocation;

use crate::databases::fresh_postgres;
use crate::expect;
use crate::gateway::Gateway;
use crate::health::HealthWatch;
use crate::load;
use crate::pg_cluster::Cluster;
use crate::proxy::{Mode, Proxy};
use crate::size::Size;
use crate::summary::Summary;

/// Calls and health must be back this soon after PostgreSQL is.
const RECOVER_WITHIN: Duration = Duration::from_secs(5);
/// Until the gateway has seen the database go (a commit timing out, 500 ms, or a
/// connection not found within the pool's 500 ms), calls already past its
/// "audit ready" rule may be caught waiting on the store: they end at their deadline
/// as CALL_DEADLINE_EXCEEDED, without data. From then on every call is refused at once.
const NOTICED_WITHIN: Duration = Duration::from_secs(1);

/// Long enough that nothing forwarded in a partition arrives during the test.
const FOREVER: Duration = Duration::from_secs(3600);

enum Outage<'a> {
    /// Connections reset, new ones refused: the server process is gone.
    Proxy(&'a Proxy),
    /// Connections go silent, new ones are never answered: the network is gone.
    Partition(&'a Proxy),
    /// The server really stopped.
    Server(&'a Cluster),
}

impl Outage<'_> {
    fn begin(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.outage(),
            Outage::Partition(proxy) => {
                proxy.set_mode(Mode::Blackhole);
                proxy.set_latency(FOREVER);
            }
            Outage::Server(cluster) => tokio::task::block_in_place(|| cluster.pg_stop()),
        }
    }

    fn end(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.set_mode(Mode::Pass),
            // As TCP would at last: the silent connections reset.
            Outage::Partition(proxy) => {
                proxy.set_latency(Duration::ZERO);
                proxy.set_mode(Mode::Pass);
                proxy.cut_all();
            }
            Outage::Server(cluster) => tokio::task::block_in_place(|| cluster.pg_start()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_then_back() {
    behind_proxy(
        "PostgreSQL stopped (proxy: connections reset, port closed)",
        |p| Outage::Proxy(p),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitioned_then_back() {
    behind_proxy("PostgreSQL partitioned (proxy: silent, then reset)", |p| {
        Outage::Partition(p)
    })
    .await;
}

/// The shared test database reached through the suite's proxy, which makes the outage.
async fn behind_proxy(fault: &str, how: fn(&Proxy) -> Outage<'_>) {
    let _one = crate::exclusive().await;
    let pg = fresh_postgres().await;
    let mut url = url::Url::parse(&pg.url).expect("database URL");
    let proxy = Proxy::start(server_of(&url)).await;
    url.set_port(Some(proxy.addr.port())).expect("a port");
    outage(fault, url.as_str(), &pg.url, how(&proxy)).await;
    pg.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted() {
    let _one = crate::exclusive().await;
    let Some(cluster) = tokio::task::block_in_place(Cluster::start) else {
        return;
    };
    let url = cluster.url();
    outage(
        "PostgreSQL stopped and restarted (pg_ctl)",
        &url,
        &url,
        Outage::Server(&cluster),
    )
    .await;
}

fn server_of(url: &url::Url) -> SocketAddr {
    let host = url.host_str().expect("database host");
    (host, url.port().unwrap_or(5432))
        .to_socket_addrs()
        .expect("database address")
        .next()
        .expect("an address")
}

/// Runs the load on a gateway whose store is at `via`, with the outage in the middle;
/// checks the store at `direct` afterwards.
async fn outage(fault: &str, via: &str, direct: &str, how: Outage<'_>) {
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gateway = Gateway::start(
        &dir.path().join("data"),
        dir.path(),
        &size,
        &["--database-url", via],
    )
    .await;
    gateway.activate();
    let ready = HealthWatch::start(gateway.addr(), "");
    let writer = HealthWatch::start(gateway.addr(), "onshi.audit_writer");

    let running = load::start(gateway.addr(), size.plan());
    tokio::time::sleep(size.warm).await;
    let down = Instant::now();
    how.begin();
    tokio::time::sleep(size.fault).await;
    let metrics = gateway.metrics_now("during the outage").await;
    how.end();
    let back = Instant::now();
    tokio::time::sleep(size.after).await;
    let calls = running.stop().await;

    let check = crate::audit::check(&StoreLocation::Postgres(direct.into()), &calls.outcomes).await;
    let during = calls.sent_between(down + NOTICED_WITHIN, back);
    let recovered = calls.recovered(back);
    Summary::new(fault, size.full, &[&calls], &check)
        .fault(down, back)
        .recovered(recovered)
        .note(format!("health \"\": {}", ready.story(down)))
        .note(format!("onshi.audit_writer: {}", writer.story(down)))
        .print();
    println!("{metrics}");
    gateway.print_warnings();

    let outage = expect::StoreOutage {
        name: fault,
        while_: "PostgreSQL was away",
        after: "after PostgreSQL was back",
        fault: (down, back),
        during,
        recovered,
        within: RECOVER_WITHIN,
    };
    expect::audit_store_outage_handled(&mut gateway, &check, &calls, outage, (&ready, &writer));
}

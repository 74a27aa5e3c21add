//! The fault suite: the real gateway under sustained load while what it depends on
//! fails (the upstream OQS killed, slow or cut; PostgreSQL gone; the disk full), while
//! it is itself killed, overloaded or stopped, and afterwards the check of its one
//! promise against the store: the log verifies, every answer that carried patient
//! data names a committed record, no record is there twice, and no call outlived its
//! deadline by more than a small slack.
//!
//! The default run is the short form (CI); `ONSHI_FAULTS=full cargo test --release
//! --test faults -- --nocapture --test-threads=1` is the full form. Each test prints
//! one `FAULT …` line; docs/reliability.md has the table of them.

mod common;
#[path = "common/databases.rs"]
mod databases;
#[path = "common/process.rs"]
mod process;

#[path = "faults/audit.rs"]
mod audit;
#[path = "faults/calls.rs"]
mod calls;
#[path = "faults/expect.rs"]
mod expect;
#[path = "faults/gateway.rs"]
mod gateway;
#[path = "faults/health.rs"]
mod health;
#[path = "faults/load.rs"]
mod load;
#[path = "faults/pg_cluster.rs"]
mod pg_cluster;
#[path = "faults/proxy.rs"]
mod proxy;
#[path = "faults/rss.rs"]
mod rss;
#[path = "faults/size.rs"]
mod size;
#[path = "faults/summary.rs"]
mod summary;
#[path = "faults/tmpfs.rs"]
mod tmpfs;
#[path = "faults/upstream.rs"]
mod upstream;

#[path = "faults/gateway_killed.rs"]
mod gateway_killed;
#[path = "faults/overload.rs"]
mod overload;
#[path = "faults/postgres_outage.rs"]
mod postgres_outage;
#[path = "faults/sigterm.rs"]
mod sigterm;
#[path = "faults/store_full.rs"]
mod store_full;
#[path = "faults/upstream_degraded.rs"]
mod upstream_degraded;
#[path = "faults/upstream_killed.rs"]
mod upstream_killed;

/// The faults run one at a time whatever the test threads: each measures latency and
/// memory, which a neighbour's load would distort.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

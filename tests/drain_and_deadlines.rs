//! What a caller and the access log see at the edges of time: a caller's deadline
//! that passes at the gateway, a caller that leaves before its call is done, and a
//! shutdown with a health watch open.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, Options, as_facility, lookup, miyagi_clinic};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::{
    self, AccessQuery, AuditStore, ChainHead, ChainInfo, Checkpoint, Store, StoreError,
    StoreLocation, StoredRecord,
};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// An upstream that takes connections and never answers.
fn silent_upstream() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

async fn silent_gateway() -> (Harness, std::net::TcpListener) {
    let (silent, url) = silent_upstream();
    let h = Harness::start_with(Options {
        upstream: Some(url),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    (h, silent)
}

/// Calls with this deadline, and what the caller and the log say of the last.
async fn called_within(h: &mut Harness, deadline: Duration, reason: &str) {
    let mut req = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    req.set_timeout(deadline);
    let started = Instant::now();
    let status = h
        .qualification
        .lookup_qualification(req)
        .await
        .expect_err("no answer in time");
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.reason, reason);
    let id = status
        .metadata()
        .get(ACCESS_RECORD_HEADER)
        .expect("names its record")
        .to_str()
        .expect("ascii")
        .to_string();
    // The record may be committed just after the answer.
    let mut record = h.last_record().await;
    for _ in 0..50 {
        if record.id == id {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        record = h.last_record().await;
    }
    assert_eq!(record.id, id);
    assert_eq!(record.grpc_code, Code::DeadlineExceeded as i32);
    assert_eq!(record.reason.as_deref(), Some(reason));
}

#[tokio::test]
async fn an_upstream_slower_than_the_callers_deadline_is_answered_in_time_and_recorded_alike() {
    let (mut h, _silent) = silent_gateway().await;
    // Long enough that the commit keeps its whole reserve (250 ms) on a busy machine.
    called_within(&mut h, Duration::from_secs(3), "UPSTREAM_TIMEOUT").await;
}

/// The access log of a store, each append taking `delay` first.
struct SlowLog {
    inner: Arc<dyn Store>,
    delay: Duration,
}

#[async_trait::async_trait]
impl AuditStore for SlowLog {
    async fn register_chain(&self, chain: &ChainInfo) -> Result<(), StoreError> {
        self.inner.register_chain(chain).await
    }
    async fn chains(&self) -> Result<Vec<ChainInfo>, StoreError> {
        self.inner.chains().await
    }
    async fn logged_chain_ids(&self) -> Result<Vec<String>, StoreError> {
        self.inner.logged_chain_ids().await
    }
    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
        self.inner.chain_head(chain_id).await
    }
    async fn append(
        &self,
        records: &[StoredRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.append(records, checkpoint).await
    }
    async fn chain_records(
        &self,
        chain_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.inner.chain_records(chain_id, after, limit).await
    }
    async fn checkpoints(&self, chain_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints(chain_id).await
    }
    async fn query(
        &self,
        query: &AccessQuery,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.inner.query(query, limit).await
    }
    async fn prune(&self, chain_id: &str, through_seq: u64) -> Result<u64, StoreError> {
        self.inner.prune(chain_id, through_seq).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_slower_than_the_callers_deadline_is_answered_in_time_with_the_record_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = store::open(&StoreLocation::Sqlite(dir.path().join("log.db")))
        .await
        .expect("log store");
    let mut h = Harness::start_with(Options {
        audit: Some(Arc::new(SlowLog {
            inner: log,
            delay: Duration::from_millis(450),
        })),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    let mut req = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = h
        .qualification
        .lookup_qualification(req)
        .await
        .expect_err("the record is not committed in time");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "CALL_DEADLINE_EXCEEDED");
    assert!(
        status.metadata().get(ACCESS_RECORD_HEADER).is_some(),
        "names the record to come"
    );
    drop(dir);
}

#[tokio::test]
async fn a_call_whose_caller_left_is_recorded_before_the_log_closes() {
    let (mut h, _silent) = silent_gateway().await;
    // No deadline: the call runs on to the gateway's upstream timeout (2 s here)
    // after the caller gave up.
    let req = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        h.qualification.lookup_qualification(req),
    )
    .await;
    assert!(gave_up.is_err(), "the silent upstream cannot have answered");
    let store = h.gateway.store.clone();
    let chain = h.gateway.chain_id.clone();
    let Harness {
        gateway,
        qualification,
        medical,
        ..
    } = h;
    drop((qualification, medical));
    gateway.shutdown().await.expect("clean shutdown");
    let records = store.chain_records(&chain, 0, 100).await.expect("readable");
    let last = records
        .last()
        .expect("the call's record was written before the log closed");
    assert_eq!(last.record.method, "LookupQualification");
    assert_eq!(last.record.reason.as_deref(), Some("UPSTREAM_TIMEOUT"));
}

#[tokio::test]
async fn an_open_health_watch_is_told_and_ended_without_holding_shutdown() {
    let h = Harness::start_with(Options::default()).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", h.gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch opens")
        .into_inner();
    let first = watch.message().await.expect("status").expect("one");
    assert_eq!(first.status(), ServingStatus::Serving);
    let Harness {
        gateway,
        qualification,
        medical,
        ..
    } = h;
    drop((qualification, medical));
    let started = Instant::now();
    let stopping = tokio::spawn(gateway.shutdown());
    let mut last = first.status();
    while let Ok(Some(message)) = watch.message().await {
        last = message.status();
    }
    assert_eq!(last, ServingStatus::NotServing, "told before the end");
    stopping.await.expect("joined").expect("clean shutdown");
    // The drain timeout is 10 s; the watch must not hold it.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

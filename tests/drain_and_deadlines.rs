//! What a caller and the access log see at the edges of time: a caller's deadline
//! that passes at the gateway, a caller that leaves before its call is done, and a
//! shutdown with a health watch open.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, Options, as_facility, lookup, miyagi_clinic};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
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

#[tokio::test]
async fn a_deadline_passing_at_the_gateway_is_deadline_exceeded_for_the_caller_and_the_log() {
    let (mut h, _silent) = silent_gateway().await;
    let mut req = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    req.set_timeout(Duration::from_millis(800));
    let started = Instant::now();
    let status = h
        .qualification
        .lookup_qualification(req)
        .await
        .expect_err("no answer upstream");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "CALL_DEADLINE_EXCEEDED");
    let id = status
        .metadata()
        .get(ACCESS_RECORD_HEADER)
        .expect("names its record")
        .to_str()
        .expect("ascii")
        .to_string();
    let record = h.last_record().await;
    assert_eq!(record.id, id);
    assert_eq!(record.grpc_code, Code::DeadlineExceeded as i32);
    assert_eq!(record.reason.as_deref(), Some("CALL_DEADLINE_EXCEEDED"));
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

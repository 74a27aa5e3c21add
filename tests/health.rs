//! `grpc.health.v1`: the terminal services serve only while the store, the access-log
//! writer and the upstream are usable, and each part says for itself whether it is.

mod common;

use std::time::Duration;

use common::*;
use onshi_gateway::health::{AUDIT_WRITER, STORE, UPSTREAM};
use onshi_gateway::upstream::simulator::{Population, Simulator};
use tonic_health::pb::health_check_response::ServingStatus;

const TERMINAL: &str = "onshi.v1.QualificationService";

/// Polls until `service` reports `want` (a probe interval is 100 ms here).
async fn becomes(h: &Harness, service: &str, want: ServingStatus) {
    for _ in 0..100 {
        if h.health(service).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.health(service).await, want, "{service}");
}

fn quick() -> Options {
    Options {
        health_check_interval: Duration::from_millis(100),
        ..Options::default()
    }
}

#[tokio::test]
async fn everything_usable_is_serving_part_by_part() {
    let h = Harness::start_with(quick()).await;
    for service in [
        "",
        TERMINAL,
        "onshi.v1.MedicalInformationService",
        STORE,
        AUDIT_WRITER,
        UPSTREAM,
    ] {
        assert_eq!(
            h.health(service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    let text = h.scrape_metrics().await;
    for component in [STORE, AUDIT_WRITER, UPSTREAM] {
        assert!(
            text.contains(&format!(
                "onshi_component_healthy{{component=\"{component}\"}} 1"
            )),
            "{component}:\n{text}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_upstream_takes_the_gateway_out_of_service_until_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = port.local_addr().expect("addr");
    drop(port);
    let h = Harness::start_with(Options {
        upstream: Some(format!("http://{addr}")),
        ..quick()
    })
    .await;
    // Known before the gateway answers anything: no SERVING at start.
    assert_eq!(h.health(UPSTREAM).await, ServingStatus::NotServing);
    assert_eq!(h.health(TERMINAL).await, ServingStatus::NotServing);
    assert_eq!(h.health("").await, ServingStatus::NotServing);
    // Which part: not the store, not the access log.
    assert_eq!(h.health(STORE).await, ServingStatus::Serving);
    assert_eq!(h.health(AUDIT_WRITER).await, ServingStatus::Serving);
    let text = h.scrape_metrics().await;
    assert!(
        text.contains(&format!(
            "onshi_component_healthy{{component=\"{UPSTREAM}\"}} 0"
        )),
        "{text}"
    );

    // The upstream comes up on that address.
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let today = onshi_gateway::domain::jst::today_jst(jst_at(2022, 3, 20, 10, 0));
    let simulator = Simulator::new(std::sync::Arc::new(Population::generate_at(7, 200, today)));
    tokio::spawn(onshi_gateway::upstream::simulator::serve(
        listener,
        simulator,
        std::future::pending(),
    ));
    becomes(&h, UPSTREAM, ServingStatus::Serving).await;
    becomes(&h, TERMINAL, ServingStatus::Serving).await;
    assert_eq!(h.health("").await, ServingStatus::Serving);
}

#[tokio::test]
async fn a_store_that_does_not_answer_takes_the_gateway_out_of_service() {
    let h = Harness::start_with(quick()).await;
    assert_eq!(h.health(TERMINAL).await, ServingStatus::Serving);
    h.gateway.store.close().await;
    becomes(&h, STORE, ServingStatus::NotServing).await;
    becomes(&h, TERMINAL, ServingStatus::NotServing).await;
    assert_eq!(h.health("").await, ServingStatus::NotServing);
    assert_eq!(h.health(UPSTREAM).await, ServingStatus::Serving);
}

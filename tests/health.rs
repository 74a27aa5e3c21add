//! `grpc.health.v1`: the terminal services serve only while the store, the access-log
//! writer and the upstream are usable, and each part says for itself whether it is.

mod common;

use std::time::Duration;

use common::*;
use onshi_gateway::server::health::{AUDIT_WRITER, LIVENESS, STORE, UPSTREAM};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::simulator::{Population, Simulator};
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
    tokio::spawn(onshi_gateway::simulator::serve(
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

#[tokio::test]
async fn the_plaintext_health_listener_answers_health_and_nothing_else() {
    let h = Harness::start_with(Options {
        health_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..quick()
    })
    .await;
    let addr = h.gateway.health_addr.expect("health listener");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for (service, want) in [
        ("", ServingStatus::Serving),
        (LIVENESS, ServingStatus::Serving),
        (UPSTREAM, ServingStatus::Serving),
    ] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner();
        assert_eq!(reply.status(), want, "{service:?}");
    }
    // No patient data on this port.
    let refused =
        onshi_gateway::proto::qualification_service_client::QualificationServiceClient::new(
            channel,
        )
        .lookup_qualification(as_facility(
            &miyagi_clinic(),
            lookup(onshi_gateway::simulator::fixtures::DEMO_PATIENT.insured()),
        ))
        .await
        .expect_err("not served here");
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");

    // Shutting down: a watcher is told NOT_SERVING before the listener closes.
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("update").expect("open");
    assert_eq!(first.status(), ServingStatus::Serving);
    // Several probes pass meanwhile; a watcher is told of changes, not of each probe.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let stopping = tokio::spawn(h.gateway.shutdown());
    let next = watch
        .message()
        .await
        .expect("update")
        .expect("told before closing");
    assert_eq!(next.status(), ServingStatus::NotServing);
    stopping.await.expect("joined").expect("clean shutdown");
}

/// An upstream that takes connections and speaks HTTP/2 (so a connection probe
/// passes) but answers no call in time.
async fn unanswering_upstream() -> String {
    let upstream = own_upstream(100, jst_at(2022, 3, 20, 10, 0)).await;
    let stall = |req: http::Request<tonic::body::Body>| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, tower::BoxError>(req)
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(tower::filter::AsyncFilterLayer::new(stall))
            .add_service(upstream.qualification)
            .add_service(upstream.medical)
            .serve_with_incoming(upstream.incoming),
    );
    upstream.url
}

#[tokio::test]
async fn an_upstream_that_takes_connections_but_fails_its_calls_is_not_serving() {
    let h = Harness::start_with(Options {
        upstream: Some(unanswering_upstream().await),
        ..quick()
    })
    .await
    .with_fukushima_2022()
    .await;
    assert_eq!(
        h.health(UPSTREAM).await,
        ServingStatus::Serving,
        "it connects"
    );
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut client = h.qualification.clone();
            tokio::spawn(async move {
                let mut req = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
                req.set_timeout(Duration::from_millis(300));
                client.lookup_qualification(req).await
            })
        })
        .collect();
    for call in calls {
        call.await.expect("joined").expect_err("no answer in time");
    }
    becomes(&h, UPSTREAM, ServingStatus::NotServing).await;
    becomes(&h, "", ServingStatus::NotServing).await;
    assert_eq!(h.health(LIVENESS).await, ServingStatus::Serving);
}

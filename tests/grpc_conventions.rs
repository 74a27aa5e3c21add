//! What gRPC tools and clients expect of a server: reflection lists the API, gzip is
//! negotiated, and a caller's deadline is honoured and handed on to the upstream.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use onshi_gateway::proto::medical_information_service_client::MedicalInformationServiceClient;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::Decision;
use std::sync::atomic::{AtomicBool, Ordering};
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tower::filter::AsyncFilterLayer;

/// The services reflection lists over `addr`, asked in protocol v1.
async fn listed_v1(addr: std::net::SocketAddr) -> BTreeSet<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let reply = ServerReflectionClient::new(channel(addr).await)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1 answers")
        .into_inner()
        .message()
        .await
        .expect("a reply")
        .expect("not empty");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a service list: {reply:?}");
    };
    list.service.into_iter().map(|s| s.name).collect()
}

/// The services reflection lists over `addr`, asked in protocol v1alpha.
async fn listed_v1alpha(addr: std::net::SocketAddr) -> BTreeSet<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let reply = ServerReflectionClient::new(channel(addr).await)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1alpha answers")
        .into_inner()
        .message()
        .await
        .expect("a reply")
        .expect("not empty");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a service list: {reply:?}");
    };
    list.service.into_iter().map(|s| s.name).collect()
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn reflection_lists_exactly_each_listeners_services_in_v1_and_v1alpha() {
    let h = Harness::start().await;
    let reflection = [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let mut terminal = names(&[
        "onshi.v1.QualificationService",
        "onshi.v1.MedicalInformationService",
        // The facility's own access log.
        "onshi.v1.AuditService",
        "grpc.health.v1.Health",
    ]);
    terminal.extend(names(&reflection));
    let mut operators = names(&[
        "onshi.v1.AuditService",
        "onshi.v1.ActivationAdminService",
        "onshi.v1.TransparencyService",
        "onshi.v1.SiteAdminService",
    ]);
    operators.extend(names(&reflection));

    let admin = h.gateway.admin_addr.expect("the operators' listener");
    for (listener, addr, expected) in [
        ("terminal", h.gateway.addr, &terminal),
        ("operators", admin, &operators),
    ] {
        assert_eq!(
            &listed_v1(addr).await,
            expected,
            "v1 over the {listener} listener"
        );
        assert_eq!(
            &listed_v1alpha(addr).await,
            expected,
            "v1alpha over the {listener} listener"
        );
    }
}

#[tokio::test]
async fn reflection_v1alpha_describes_a_listed_service() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let h = Harness::start().await;
    let admin = h.gateway.admin_addr.expect("the operators' listener");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "onshi.v1.ActivationAdminService".into(),
        )),
    };
    let reply = ServerReflectionClient::new(channel(admin).await)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1alpha answers")
        .into_inner()
        .message()
        .await
        .expect("a reply")
        .expect("not empty");
    let Some(MessageResponse::FileDescriptorResponse(files)) = reply.message_response else {
        panic!("not a file descriptor: {reply:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn gzip_is_negotiated_both_ways() {
    let h = Harness::start().await.with_fukushima_2022().await;
    let channel = Channel::from_shared(format!("http://{}", h.gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut gzip = MedicalInformationServiceClient::new(channel.clone())
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let reply = gzip
        .get_drug_history(as_facility(
            &miyagi_clinic(),
            drugs(DEMO_PATIENT.insured(), known()),
        ))
        .await
        .expect("allowed");
    assert_eq!(
        reply
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip"),
        "the reply is compressed for a caller that accepts gzip"
    );
    assert!(!reply.into_inner().dispensings.is_empty());

    // A caller that offers nothing gets an uncompressed reply.
    let plain = MedicalInformationServiceClient::new(channel)
        .get_drug_history(as_facility(
            &miyagi_clinic(),
            drugs(DEMO_PATIENT.insured(), known()),
        ))
        .await
        .expect("allowed");
    assert_eq!(plain.metadata().get("grpc-encoding"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_deadline_goes_upstream_and_ends_the_call() {
    // An upstream that notes the deadline it is given, and is slow once asked to be.
    let deadlines: Arc<Mutex<Vec<String>>> = Arc::default();
    let slow = Arc::new(AtomicBool::new(false));
    let (noted, slow_now) = (deadlines.clone(), slow.clone());
    let note = move |req: http::Request<tonic::body::Body>| {
        let timeout = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        noted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(timeout);
        let slow = slow_now.load(Ordering::SeqCst);
        async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
            Ok::<_, tower::BoxError>(req)
        }
    };
    let upstream = own_upstream(300, jst_at(2022, 3, 20, 10, 0)).await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(AsyncFilterLayer::new(note))
            .add_service(upstream.qualification)
            .add_service(upstream.medical)
            .serve_with_incoming(upstream.incoming),
    );
    let mut h = Harness::start_with(Options {
        upstream: Some(upstream.url),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;

    // A 300 ms deadline: the upstream is told less than that (time has passed), never
    // the gateway's own 2 s cap.
    let mut request = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    request.set_timeout(Duration::from_millis(300));
    h.qualification
        .lookup_qualification(request)
        .await
        .expect("allowed in time");
    let handed = deadlines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(handed.len(), 1, "{handed:?}");
    let micros = onshi_gateway::pipeline::forward::caller_deadline(&{
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert("grpc-timeout", handed[0].parse().expect("ascii"));
        m
    })
    .unwrap_or_else(|| panic!("no deadline handed on: {handed:?}"));
    assert!(
        micros <= Duration::from_millis(300) && micros > Duration::from_millis(100),
        "{micros:?}"
    );

    // The upstream now takes 600 ms: a 200 ms caller gets its deadline's refusal at
    // that deadline, and the call is in the access log all the same, as forwarded and failed.
    slow.store(true, Ordering::SeqCst);
    let before = h.records(None).await.len();
    let started = std::time::Instant::now();
    let mut request = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    request.set_timeout(Duration::from_millis(200));
    let result = h.qualification.lookup_qualification(request).await;
    let waited = started.elapsed();
    let status = result.expect_err("the upstream is too slow for this caller");
    // The client gives up at its deadline (tonic's client says CANCELLED, the server
    // DEADLINE_EXCEEDED, whichever is first).
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(waited < Duration::from_millis(550), "{waited:?}");
    let mut records = h.records(None).await;
    for _ in 0..100 {
        if records.len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        records = h.records(None).await;
    }
    assert_eq!(records.len(), before + 1, "the timed-out call is recorded");
    let record = records.pop().expect("record");
    assert_eq!(record.decision, Decision::Failed, "{record:?}");
    assert_eq!(
        record.reason.as_deref(),
        Some("UPSTREAM_TIMEOUT"),
        "{record:?}"
    );
    assert_eq!(
        record.facility.as_deref(),
        Some(miyagi_clinic().to_string().as_str())
    );
}

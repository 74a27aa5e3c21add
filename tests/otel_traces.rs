//! Traces over OTLP: an OTLP receiver runs in this process, the gateway exports to
//! it, and the spans of one allowed and one denied call are checked as a collector
//! would show them: names, parent links, the trace the terminal started, the
//! decision of every rule, and no patient identifier anywhere. The upstream is a
//! separate simulator that records the trace context it is handed.
//! Its own test binary: the subscriber is global.

mod common;
#[path = "common/otlp.rs"]
mod otlp;

use std::sync::{Arc, Mutex};

use common::*;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::telemetry::TelemetryConfig;
use onshi_gateway::telemetry::TraceExport;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otlp::Received;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            Some(Value::IntValue(i)) => Some(i.to_string()),
            Some(Value::BoolValue(b)) => Some(b.to_string()),
            _ => None,
        })
}

/// Every string an attribute or event of `span` carries, and its name.
fn texts(span: &Span) -> Vec<String> {
    let mut out = vec![span.name.clone()];
    let attributes = span
        .attributes
        .iter()
        .chain(span.events.iter().flat_map(|e| e.attributes.iter()));
    for a in attributes {
        out.push(a.key.clone());
        if let Some(v) = &a.value {
            out.push(format!("{:?}", v.value));
        }
    }
    out.extend(span.events.iter().map(|e| e.name.clone()));
    out
}

const TRACE_ALLOWED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_DENIED: &str = "0af7651916cd43dd8448eb211c80319c";
const TERMINAL_SPAN: &str = "00f067aa0ba902b7";

fn traced<T>(request: &mut tonic::Request<T>, trace: &str) {
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{TERMINAL_SPAN}-01")
            .parse()
            .expect("ascii"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_is_one_trace_with_a_span_per_rule_and_no_patient_identifier() {
    let (received, collector_addr) = Received::serve().await;

    // The upstream, noting the `traceparent` of every call it gets.
    let handed_on: Arc<Mutex<Vec<String>>> = Arc::default();
    let note = handed_on.clone();
    let capture = move |req: tonic::Request<()>| {
        let traceparent = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        note.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(traceparent);
        Ok(req)
    };
    let upstream = own_upstream(500, jst_at(2022, 3, 20, 10, 0)).await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InterceptedService::new(
                upstream.qualification,
                capture.clone(),
            ))
            .add_service(InterceptedService::new(upstream.medical, capture))
            .serve_with_incoming(upstream.incoming),
    );

    let export = TraceExport::start(&TelemetryConfig {
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        service_name: "onshi-gateway-under-test".into(),
        sample_ratio: 1.0,
    })
    .expect("exporter")
    .expect("an endpoint was given");
    tracing_subscriber::registry()
        .with(export.layer())
        .try_init()
        .expect("the only subscriber of this test binary");

    let mut h = Harness::start_with(Options {
        upstream: Some(upstream.url),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;

    let mut allowed = as_facility(&miyagi_clinic(), lookup(DEMO_PATIENT.insured()));
    traced(&mut allowed, TRACE_ALLOWED);
    let reply = h
        .qualification
        .lookup_qualification(allowed)
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::Valid as i32, "{reply:?}");

    let mut denied = as_facility(&tokyo_clinic(), lookup(DEMO_PATIENT.insured()));
    traced(&mut denied, TRACE_DENIED);
    assert_denied(
        h.qualification.lookup_qualification(denied).await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );

    h.gateway.shutdown().await.expect("clean shutdown");
    export.shutdown().await;
    let spans = received.spans();
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "onshi-gateway-under-test"),
        "service.name"
    );
    let spans: Vec<Span> = spans.into_iter().map(|(_, s)| s).collect();
    let of_trace = |trace: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| hex::encode(&s.trace_id) == trace)
            .collect()
    };
    let named = |trace: &[&Span], name: &str| -> Span {
        let found: Vec<&&Span> = trace.iter().filter(|s| s.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "one span {name:?} in {:?}",
            trace.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        (*found[0]).clone()
    };

    // The allowed call: the terminal's trace, the gateway's server span its child,
    // every rule, the audit commit and the upstream call children of that.
    let trace = of_trace(TRACE_ALLOWED);
    let root = named(&trace, "onshi.v1.QualificationService/LookupQualification");
    assert_eq!(hex::encode(&root.parent_span_id), TERMINAL_SPAN);
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(attr(&root, "onshi.decision").as_deref(), Some("allowed"));
    assert_eq!(
        attr(&root, "rpc.method").as_deref(),
        Some("LookupQualification")
    );
    for rule in [
        "rule.identity",
        "rule.activation",
        "rule.identification",
        "rule.consent",
    ] {
        let span = named(&trace, rule);
        assert_eq!(span.parent_span_id, root.span_id, "{rule} under the call");
        assert_eq!(
            attr(&span, "onshi.decision").as_deref(),
            Some("pass"),
            "{rule}"
        );
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    let audit = named(&trace, "audit.commit");
    assert_eq!(audit.parent_span_id, root.span_id);
    let forwarded = named(&trace, "upstream LookupQualification");
    assert_eq!(forwarded.parent_span_id, root.span_id);
    assert_eq!(forwarded.kind, SpanKind::Client as i32);
    assert_eq!(
        attr(&forwarded, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );

    // The upstream was handed the same trace, as the child of the gateway's client span.
    let handed_on = handed_on
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(
        handed_on,
        vec![format!(
            "00-{TRACE_ALLOWED}-{}-01",
            hex::encode(&forwarded.span_id)
        )],
        "only the allowed call reaches the upstream"
    );

    // The denied call: the activation rule says why; nothing after it ran.
    let trace = of_trace(TRACE_DENIED);
    let root = named(&trace, "onshi.v1.QualificationService/LookupQualification");
    assert_eq!(hex::encode(&root.parent_span_id), TERMINAL_SPAN);
    assert_eq!(attr(&root, "onshi.decision").as_deref(), Some("denied"));
    assert_eq!(
        attr(&root, "onshi.reason").as_deref(),
        Some("AREA_NOT_ACTIVATED")
    );
    assert_eq!(
        attr(&named(&trace, "rule.identity"), "onshi.decision").as_deref(),
        Some("pass")
    );
    let activation = named(&trace, "rule.activation");
    assert_eq!(attr(&activation, "onshi.decision").as_deref(), Some("deny"));
    assert_eq!(
        attr(&activation, "onshi.reason").as_deref(),
        Some("AREA_NOT_ACTIVATED")
    );
    for later in ["rule.identification", "rule.consent"] {
        assert!(
            trace.iter().all(|s| s.name != later),
            "{later} ran after a denial"
        );
    }
    assert!(trace.iter().all(|s| !s.name.starts_with("upstream")));
    named(&trace, "audit.commit");

    // No patient identifier in any span of either trace.
    let identifiers = [
        DEMO_PATIENT.name,
        DEMO_PATIENT.name_kana,
        "1958-04-12",
        DEMO_PATIENT.insurer_number,
        DEMO_PATIENT.symbol,
        DEMO_PATIENT.address,
        DEMO_PATIENT.postcode,
    ];
    for span in &spans {
        for text in texts(span) {
            for id in identifiers {
                assert!(
                    !text.contains(id),
                    "span {:?} carries {id:?}: {text}",
                    span.name
                );
            }
        }
    }
    // Sanity: the search above matched spans at all.
    assert!(spans.len() >= 12, "{} spans", spans.len());
}

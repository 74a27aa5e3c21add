//! `/metrics` as Prometheus scrapes it: calls by method, decision and reason; time
//! per rule, per upstream call and per call; upstream errors; the activation cache's
//! hits and the age of its index.

mod common;

use common::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use tonic::Code;

/// The value of the sample `name{labels}` (labels in the order they are written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[tokio::test]
async fn calls_rules_and_upstream_are_counted_and_timed() {
    let mut h = Harness::start().await.with_fukushima_2022().await;
    let clinic = miyagi_clinic();
    for _ in 0..2 {
        h.qualification
            .lookup_qualification(as_facility(&clinic, lookup(DEMO_PATIENT.insured())))
            .await
            .expect("allowed");
    }
    assert_denied(
        h.qualification
            .lookup_qualification(as_facility(&tokyo_clinic(), lookup(DEMO_PATIENT.insured())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    let text = h.scrape_metrics().await;

    let calls = |decision: &str, reason: &str| {
        value(
            &text,
            &format!(
                "onshi_requests_total{{method=\"LookupQualification\",decision=\"{decision}\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(calls("allowed", ""), 2.0);
    assert_eq!(calls("denied", "AREA_NOT_ACTIVATED"), 1.0);
    assert_eq!(
        value(
            &text,
            "onshi_request_seconds_count{method=\"LookupQualification\"}"
        ),
        3.0
    );

    // Each rule's decisions are timed: the activation rule passed twice and denied once;
    // the rules after it ran only for the allowed calls.
    let rule = |name: &str, decision: &str| {
        sample(
            &text,
            &format!("onshi_rule_seconds_count{{rule=\"{name}\",decision=\"{decision}\"}}"),
        )
    };
    assert_eq!(rule("rule.identity", "pass"), Some(3.0));
    assert_eq!(rule("rule.activation", "pass"), Some(2.0));
    assert_eq!(rule("rule.activation", "deny"), Some(1.0));
    assert_eq!(rule("rule.consent", "pass"), Some(2.0));
    // Both series of a rule exist from its first call, so a rate over them is defined.
    assert_eq!(rule("rule.consent", "deny"), Some(0.0));
    assert!(
        value(
            &text,
            "onshi_rule_seconds_sum{rule=\"rule.activation\",decision=\"pass\"}"
        ) > 0.0
    );

    assert_eq!(
        value(
            &text,
            "onshi_upstream_seconds_count{method=\"LookupQualification\",code=\"OK\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "onshi_upstream_errors_total{method=\"LookupQualification\",code=\"OK\"}"
        ),
        None
    );

    // The activation cache: the index was served from memory; the clinic's registry
    // entry was read once, then found in the cache.
    assert!(
        value(
            &text,
            "onshi_activation_index_lookups_total{result=\"fresh\"}"
        ) >= 2.0
    );
    assert_eq!(
        value(
            &text,
            "onshi_facility_registry_lookups_total{result=\"miss\"}"
        ),
        2.0,
        "the clinic and the Tokyo clinic, once each"
    );
    assert_eq!(
        value(
            &text,
            "onshi_facility_registry_lookups_total{result=\"hit\"}"
        ),
        1.0
    );
    let age = value(&text, "onshi_activation_index_age_seconds");
    assert!((0.0..60.0).contains(&age), "{age}");

    // No patient identifier in any label.
    for id in [
        DEMO_PATIENT.symbol,
        DEMO_PATIENT.insurer_number,
        DEMO_PATIENT.name,
    ] {
        assert!(!text.contains(id), "{id} in /metrics");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_counts_as_an_upstream_error() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut h = Harness::start_with(Options {
        upstream: Some(url),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await;
    assert_denied(
        h.qualification
            .lookup_qualification(as_facility(
                &miyagi_clinic(),
                lookup(DEMO_PATIENT.insured()),
            ))
            .await,
        Code::Unavailable,
        "UPSTREAM_UNAVAILABLE",
    );
    let text = h.scrape_metrics().await;
    assert_eq!(
        value(
            &text,
            "onshi_upstream_errors_total{method=\"LookupQualification\",code=\"UNAVAILABLE\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "onshi_requests_total{method=\"LookupQualification\",decision=\"failed\",reason=\"UPSTREAM_UNAVAILABLE\"}"
        ),
        1.0
    );
}

//! Micro-benchmarks of the rule layers' checks with their state in cache (criterion):
//! identity from metadata, activation (area index and facility registry from the
//! moka cache), identification of an insured number, consent, and the chain of all
//! four as one call meets them. Each iteration builds its request the way the audit
//! layer hands it on (the call's note in its extensions), so that is included.
//! Target: single-digit microseconds per rule (docs/performance.md).
//!
//! `cargo bench --bench rules`; under `cargo test` each check runs once and must
//! pass, and the activation rule must refuse a facility outside the activated area.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use onshi_gateway::activation::cache::ActivationCache;
use onshi_gateway::activation::registry::{fixture_facility, seed_if_empty};
use onshi_gateway::activation::seed::new_activation;
use onshi_gateway::clock::{SharedClock, SystemClock};
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::{Window, today_jst};
use onshi_gateway::pipeline::rules::activation::ActivationRule;
use onshi_gateway::pipeline::rules::consent::ConsentRule;
use onshi_gateway::pipeline::rules::identification::IdentificationRule;
use onshi_gateway::pipeline::rules::identity::IdentityRule;
use onshi_gateway::pipeline::{AccessNote, Note, Rule};
use onshi_gateway::proto::*;
use onshi_gateway::simulator::Population;
use onshi_gateway::store::{Store, StoreLocation};
use onshi_gateway::telemetry::metrics::Metrics;
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, IdentitySource};

/// The rules under test, sharing one store and a warm activation cache.
struct Rules {
    identity: IdentityRule,
    activation: ActivationRule,
    identification: IdentificationRule,
    consent: ConsentRule,
    insured: InsuredNumber,
    inside: String,
    outside: String,
    _dir: tempfile::TempDir,
}

async fn rules() -> Rules {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store: Arc<dyn Store> =
        onshi_gateway::store::open(&StoreLocation::Sqlite(dir.path().join("onshi.db")))
            .await
            .expect("store");
    seed_if_empty(store.as_ref()).await.expect("registry");
    let window = Window::one_week_from(today_jst(Utc::now()));
    let activation =
        new_activation("bench", "", &["04".into()], &[], window, "bench").expect("activation");
    store
        .add_activation(&activation)
        .await
        .expect("activation added");
    let clock: SharedClock = Arc::new(SystemClock);
    let cache = ActivationCache::new(
        store.clone(),
        Duration::from_secs(60),
        Metrics::new().activations.clone(),
    );
    let inside = fixture_facility("04202", FacilityKind::Medical);
    // Warm: the index and the facility, as after a gateway's first call.
    cache.index().await.expect("index");
    cache.facility(&inside).await.expect("facility");
    let person = Population::generate(20220317, 1_000)
        .persons()
        .iter()
        .find(|p| p.status == QualificationStatus::Valid as i32)
        .map(onshi_gateway::simulator::Person::insured_number)
        .expect("a valid patient");
    Rules {
        identity: IdentityRule::new(IdentitySource::DevelopmentMetadata),
        activation: ActivationRule::new(cache, clock.clone()),
        identification: IdentificationRule::new(store, clock, Duration::from_secs(1800)),
        consent: ConsentRule,
        insured: person,
        inside,
        outside: fixture_facility("13104", FacilityKind::Medical),
        _dir: dir,
    }
}

impl Rules {
    /// A lookup from `facility` as the audit layer hands it to the first rule.
    fn request(&self, facility: &str) -> tonic::Request<LookupQualificationRequest> {
        let message = LookupQualificationRequest {
            access: Some(AccessContext::for_care(
                "staff-1",
                StaffRole::Doctor,
                Consent::patient(),
                Some(Identification::insured_number_known()),
            )),
            insured: Some(self.insured.clone()),
            birth_date: String::new(),
        };
        let mut req = tonic::Request::new(message);
        req.metadata_mut()
            .insert(DEV_FACILITY_HEADER, facility.parse().expect("ascii"));
        let note = Note::new(AccessNote::stated(req.get_ref().access.as_ref()));
        req.extensions_mut().insert(note);
        req
    }

    /// The request after the identity rule, as the later rules see it.
    async fn identified(&self, facility: &str) -> tonic::Request<LookupQualificationRequest> {
        let mut req = self.request(facility);
        self.identity.check(&mut req).await.expect("identified");
        req
    }

    async fn all(&self, facility: &str) -> Result<(), onshi_gateway::domain::Violation> {
        let mut req = self.request(facility);
        self.identity.check(&mut req).await?;
        self.activation.check(&mut req).await?;
        self.identification.check(&mut req).await?;
        self.consent.check(&mut req).await
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(rules());
    // Holds under `cargo test` too: the checks pass, and the activation rule refuses.
    rt.block_on(async {
        r.all(&r.inside)
            .await
            .expect("every rule passes inside the area");
        let refused = r
            .all(&r.outside)
            .await
            .expect_err("refused outside the area");
        assert_eq!(refused.reason.as_str(), "AREA_NOT_ACTIVATED");
    });
    let mut g = c.benchmark_group("rule");
    g.bench_function("request as built by the audit layer", |b| {
        b.iter(|| r.request(&r.inside));
    });
    g.bench_function("identity (metadata)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut req = r.request(&r.inside);
            r.identity.check(&mut req).await.expect("pass");
        });
    });
    g.bench_function("activation (from cache)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut req = r.identified(&r.inside).await;
            r.activation.check(&mut req).await.expect("pass");
        });
    });
    g.bench_function("identification (insured number)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut req = r.identified(&r.inside).await;
            r.identification.check(&mut req).await.expect("pass");
        });
    });
    g.bench_function("consent", |b| {
        b.to_async(&rt).iter(|| async {
            let mut req = r.identified(&r.inside).await;
            r.consent.check(&mut req).await.expect("pass");
        });
    });
    g.bench_function("all four, allowed", |b| {
        b.to_async(&rt)
            .iter(|| async { r.all(&r.inside).await.expect("pass") });
    });
    g.bench_function("all four, area not activated", |b| {
        b.to_async(&rt)
            .iter(|| async { r.all(&r.outside).await.expect_err("refused") });
    });
    g.finish();
}

criterion_group!(rule_checks, bench);
criterion_main!(rule_checks);

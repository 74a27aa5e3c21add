//! The activation cache's guarantees, with several replicas:
//! - on PostgreSQL a change made through one replica decides the other's calls
//!   within a second, although its periodic refresh is 30 s: only LISTEN/NOTIFY can
//!   explain it;
//! - a change written into the store behind the cache's back is picked up within
//!   the refresh interval;
//! - with the store unreadable, decisions keep coming from the last index, windows
//!   still end on time, and health and metrics say so;
//! - a window's end denies at its instant with nothing reloaded.

mod common;
#[path = "common/databases.rs"]
mod databases;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use onshi_gateway::activation::index::decide;
use onshi_gateway::activation::registry::fixture_facility;
use onshi_gateway::clock::{Clock, ManualClock};
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::Reason;
use onshi_gateway::domain::activation_change::{self, Change, ChangeKind};
use onshi_gateway::domain::facility::{FacilityKind, parse_facility_code};
use onshi_gateway::domain::jst::Window;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::qualification_service_server::QualificationServiceServer;
use onshi_gateway::proto::{
    ActivationView, AddAreasRequest, Areas, ChangeContext, CreateActivationRequest,
    EndEarlyRequest, Instants, WindowEnd, WindowSpec, window_end, window_spec,
};
use onshi_gateway::server::health::ACTIVATION_REGISTRY;
use onshi_gateway::server::terminal::QualificationGateway;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::AreaKey;
use onshi_gateway::tls::identity::IdentitySource;
use tonic::Code;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

/// What only LISTEN/NOTIFY can beat: the periodic refresh of the PostgreSQL replicas.
const LONG_REFRESH: Duration = Duration::from_secs(30);
/// The bound the documentation promises for a change made through another replica.
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);
/// How often a replica's decision is polled.
const POLL: Duration = Duration::from_millis(10);

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn before(at: DateTime<Utc>) -> DateTime<Utc> {
    at - chrono::Duration::nanoseconds(1)
}

fn change() -> Option<ChangeContext> {
    Some(ChangeContext {
        author: "operator-1".into(),
        notice: "令和6年8月28日付事務連絡".into(),
        expected_revision: 0,
    })
}

fn instants(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<WindowSpec> {
    Some(WindowSpec {
        form: Some(window_spec::Form::Instants(Instants {
            start: Some(ts(start)),
            end: Some(ts(end)),
        })),
    })
}

fn at_instant(at: DateTime<Utc>) -> Option<WindowEnd> {
    Some(WindowEnd {
        form: Some(window_end::Form::At(ts(at))),
    })
}

async fn admin_client(gateway: &RunningGateway) -> ActivationAdminServiceClient<Channel> {
    ActivationAdminServiceClient::connect(format!(
        "http://{}",
        gateway.admin_addr.expect("admin listener")
    ))
    .await
    .expect("admin connects")
}

async fn create(
    admin: &mut ActivationAdminServiceClient<Channel>,
    areas: Areas,
    window: Option<WindowSpec>,
) -> ActivationView {
    admin
        .create_activation(CreateActivationRequest {
            event: "令和6年台風第10号".into(),
            areas: Some(areas),
            window,
            change: change(),
        })
        .await
        .expect("activation created")
        .into_inner()
}

/// How a lookup of the demo patient from `facility` was decided: allowed, or the
/// reason of its refusal. Anything but an allowed call or a PERMISSION_DENIED
/// refusal fails the test.
async fn decision(
    client: &mut QualificationServiceClient<Channel>,
    facility: &str,
) -> Result<(), String> {
    match client
        .lookup_qualification(as_raw_facility(facility, lookup(DEMO_PATIENT.insured())))
        .await
    {
        Ok(_) => Ok(()),
        Err(status) => {
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            Err(status
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_default())
        }
    }
}

/// Polls `client` every POLL until `facility` is decided as `wanted`; returns how
/// long that took from `since`. Gives up after five times the bound.
async fn until_decided(
    client: &mut QualificationServiceClient<Channel>,
    facility: &str,
    wanted: Result<(), &str>,
    since: Instant,
) -> Duration {
    let wanted = wanted.map_err(str::to_string);
    loop {
        let got = decision(client, facility).await;
        if got == wanted {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < 5 * PROPAGATION_BOUND,
            "{facility} still decided {got:?}, not {wanted:?}, after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A sample's value in the `/metrics` text (unlabelled samples only).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

// ---------------------------------------------------------------------------
// Two replicas on one PostgreSQL.

struct Replica {
    gateway: RunningGateway,
    qualification: QualificationServiceClient<Channel>,
    admin: ActivationAdminServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

impl Replica {
    async fn start(database_url: &str, clock: &Arc<ManualClock>) -> Replica {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = replica_config(database_url, dir.path());
        let gateway = server::start(config, clock.clone())
            .await
            .expect("replica starts");
        let channel = Channel::from_shared(format!("http://{}", gateway.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Replica {
            qualification: QualificationServiceClient::new(channel),
            admin: admin_client(&gateway).await,
            gateway,
            _dir: dir,
        }
    }

    async fn shutdown(self) {
        let Replica {
            gateway,
            qualification,
            admin,
            ..
        } = self;
        drop(qualification);
        drop(admin);
        gateway.shutdown().await.expect("clean shutdown");
    }
}

fn replica_config(database_url: &str, data_dir: &Path) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(database_url.to_string()),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity: IdentitySource::DevelopmentMetadata,
        upstream_timeout: Duration::from_secs(5),
        activation_refresh: LONG_REFRESH,
        drain_timeout: Duration::from_secs(5),
        audit: common::test_audit_batch(),
        ..GatewayConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_through_one_replica_decides_the_others_calls_within_a_second() {
    let db = databases::fresh_postgres().await;
    // One clock for both, inside the typhoon's week.
    let clock = ManualClock::new(jst_at(2024, 8, 30, 10, 0));
    let now = jst_at(2024, 8, 30, 10, 0);
    let mut a = Replica::start(&db.url, &clock).await;
    let mut b = Replica::start(&db.url, &clock).await;
    let kagoshima = fixture_facility("46201", FacilityKind::Medical);
    let miyazaki = fixture_facility("45201", FacilityKind::Pharmacy);
    for f in [&kagoshima, &miyazaki] {
        for r in [&mut a, &mut b] {
            assert_eq!(
                decision(&mut r.qualification, f).await,
                Err("AREA_NOT_ACTIVATED".into())
            );
        }
    }

    let mut delays = Vec::new();
    // 1. Created through A: all of Kagoshima, for the typhoon's week.
    let sent = Instant::now();
    let view = create(
        &mut a.admin,
        Areas {
            prefectures: vec!["46".into()],
            ..Areas::default()
        },
        Some(WindowSpec {
            form: Some(window_spec::Form::OneWeekFrom("2024-08-28".into())),
        }),
    )
    .await;
    let returned = Instant::now();
    // In force on A before the call returned.
    assert_eq!(decision(&mut a.qualification, &kagoshima).await, Ok(()));
    let delay = until_decided(&mut b.qualification, &kagoshima, Ok(()), returned).await;
    delays.push(("create: B allows", delay, returned - sent));

    // 2. Ended early at "now" through A: B refuses.
    let sent = Instant::now();
    a.admin
        .end_early(EndEarlyRequest {
            activation_id: view.id.clone(),
            areas: None,
            at: at_instant(now),
            change: change(),
        })
        .await
        .expect("ended");
    let returned = Instant::now();
    assert_eq!(
        decision(&mut a.qualification, &kagoshima).await,
        Err("AREA_NOT_ACTIVATED".into())
    );
    let delay = until_decided(
        &mut b.qualification,
        &kagoshima,
        Err("AREA_NOT_ACTIVATED"),
        returned,
    )
    .await;
    delays.push(("end early: B refuses", delay, returned - sent));

    // 3. A municipality added, then 4. ended, through A.
    let sent = Instant::now();
    a.admin
        .add_areas(AddAreasRequest {
            activation_id: view.id.clone(),
            areas: Some(Areas {
                municipalities: vec!["45201".into()],
                ..Areas::default()
            }),
            window: instants(
                now - chrono::Duration::hours(1),
                now + chrono::Duration::days(1),
            ),
            change: change(),
        })
        .await
        .expect("added");
    let returned = Instant::now();
    assert_eq!(decision(&mut a.qualification, &miyazaki).await, Ok(()));
    let delay = until_decided(&mut b.qualification, &miyazaki, Ok(()), returned).await;
    delays.push(("add areas: B allows", delay, returned - sent));

    let sent = Instant::now();
    a.admin
        .end_early(EndEarlyRequest {
            activation_id: view.id.clone(),
            areas: Some(Areas {
                municipalities: vec!["45201".into()],
                ..Areas::default()
            }),
            at: at_instant(now),
            change: change(),
        })
        .await
        .expect("ended");
    let returned = Instant::now();
    let delay = until_decided(
        &mut b.qualification,
        &miyazaki,
        Err("AREA_NOT_ACTIVATED"),
        returned,
    )
    .await;
    delays.push(("end early: B refuses", delay, returned - sent));

    for (what, delay, call) in &delays {
        eprintln!(
            "propagation A -> B over PostgreSQL NOTIFY ({what}): {delay:?} after the admin call returned (the call took {call:?})"
        );
    }
    for (what, delay, _) in &delays {
        assert!(
            *delay <= PROPAGATION_BOUND,
            "{what}: {delay:?} > {PROPAGATION_BOUND:?}"
        );
    }
    // Both replicas agree, and neither failed to read the store.
    for r in [&mut a, &mut b] {
        assert_eq!(
            decision(&mut r.qualification, &kagoshima).await,
            Err("AREA_NOT_ACTIVATED".into())
        );
    }
    a.shutdown().await;
    b.shutdown().await;
    db.drop_schema().await;
}

// ---------------------------------------------------------------------------
// The periodic refresh as the backstop.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_written_behind_the_caches_back_is_seen_within_the_refresh_interval() {
    // SQLite: no LISTEN/NOTIFY, only the periodic refresh.
    let refresh = Duration::from_millis(300);
    let mut h = Harness::start_with(Options {
        activation_refresh: refresh,
        ..Options::default()
    })
    .await;
    let mut admin = admin_client(&h.gateway).await;
    let now = h.clock.now();
    let view = create(
        &mut admin,
        Areas {
            prefectures: vec!["04".into()],
            ..Areas::default()
        },
        instants(
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(1),
        ),
    )
    .await;
    let shinjuku = fixture_facility("13104", FacilityKind::Medical);
    assert_eq!(
        decision(&mut h.qualification, &shinjuku).await,
        Err("AREA_NOT_ACTIVATED".into())
    );

    // Another writer records a revision adding Tokyo, straight into the store: the
    // admin service is not involved, so nothing tells this replica's cache.
    let store = h.gateway.store.clone();
    let activation = store
        .activation(&view.id)
        .await
        .expect("readable")
        .expect("stored");
    let change = Change::AddAreas {
        areas: vec![AreaKey::Prefecture(13)],
        window: Window::new(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(1),
        )
        .expect("window"),
    };
    let revision = activation_change::Revision {
        number: activation.latest_revision() + 1,
        recorded_at: now,
        author: "operator-on-another-host".into(),
        notice: String::new(),
        kind: ChangeKind::AddAreas,
        windows: activation_change::apply(&activation.areas(), &change).expect("applies"),
    };
    assert!(store.subscribe().await.expect("subscribe").is_none());
    let written = Instant::now();
    store
        .add_revision(&activation.id, &revision)
        .await
        .expect("written");
    let delay = until_decided(&mut h.qualification, &shinjuku, Ok(()), written).await;
    eprintln!(
        "periodic refresh ({refresh:?}): a change written directly into the store decided calls after {delay:?}"
    );
    assert!(
        delay <= refresh + Duration::from_millis(300),
        "{delay:?} > {refresh:?} + 300 ms"
    );
}

/// The follower reloads an idle replica's index at least every refresh interval
/// (docs/activations.md), so that it learns of changes and of store failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_replica_reloads_at_least_every_refresh_interval() {
    let refresh = Duration::from_millis(200);
    let h = Harness::start_with(Options {
        activation_refresh: refresh,
        ..Options::default()
    })
    .await;
    tokio::time::sleep(refresh).await;
    let reloads = |text: &str| metric(text, "onshi_activation_reloads_total");
    let before_idle = reloads(&h.scrape_metrics().await);
    let idle = 15 * refresh;
    tokio::time::sleep(idle).await;
    let after_idle = reloads(&h.scrape_metrics().await);
    let n = after_idle - before_idle;
    eprintln!("idle for {idle:?} with a refresh of {refresh:?}: {n} reloads");
    assert!(n >= 13.0, "only {n} reloads in {idle:?}");
}

// ---------------------------------------------------------------------------
// The store unreadable.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_store_unreadable_the_last_index_decides_and_windows_still_end() {
    let refresh = Duration::from_millis(300);
    let mut h = Harness::start_with(Options {
        activation_refresh: refresh,
        ..Options::default()
    })
    .await;
    let mut admin = admin_client(&h.gateway).await;
    let now = h.clock.now();
    let end = now + chrono::Duration::hours(2);
    create(
        &mut admin,
        Areas {
            municipalities: vec!["04202".into()],
            ..Areas::default()
        },
        instants(now - chrono::Duration::days(3), end),
    )
    .await;
    let code = fixture_facility("04202", FacilityKind::Medical);
    assert_eq!(decision(&mut h.qualification, &code).await, Ok(()));
    let facility = parse_facility_code("facility", &code).expect("valid code");
    let registered = h
        .gateway
        .store
        .facility(&code)
        .await
        .expect("registry readable")
        .expect("registered");
    assert_eq!(registered.municipality, "04202");
    assert_eq!(h.health(ACTIVATION_REGISTRY).await, ServingStatus::Serving);
    let text = h.scrape_metrics().await;
    assert_eq!(metric(&text, "onshi_activation_store_healthy"), 1.0);
    assert_eq!(metric(&text, "onshi_activation_reload_failures_total"), 0.0);

    h.gateway.store.close().await;

    // The registry's health turns NOT_SERVING once a reload has failed.
    let closed = Instant::now();
    while h.health(ACTIVATION_REGISTRY).await != ServingStatus::NotServing {
        assert!(
            closed.elapsed() < Duration::from_secs(5),
            "still SERVING {:?} after the store closed",
            closed.elapsed()
        );
        tokio::time::sleep(POLL).await;
    }
    eprintln!(
        "registry health NOT_SERVING {:?} after the store closed (refresh {refresh:?})",
        closed.elapsed()
    );
    // The terminal services are not: decisions are still made from what is known.
    let terminal = <QualificationServiceServer<QualificationGateway> as NamedService>::NAME;
    assert_eq!(h.health(terminal).await, ServingStatus::Serving);
    let text = h.scrape_metrics().await;
    assert_eq!(metric(&text, "onshi_activation_store_healthy"), 0.0);
    assert!(metric(&text, "onshi_activation_reload_failures_total") >= 1.0);

    // The rule's decision, from the last index: still allowed, and the window still
    // ends at its instant. (A terminal call would be refused AUDIT_UNAVAILABLE: the
    // access log is in the same closed store.)
    for (at, allowed) in [(now, true), (before(end), true), (end, false)] {
        h.clock.set(at);
        let index = h
            .gateway
            .activations
            .index()
            .await
            .expect("the last index keeps serving");
        match decide(&index, &facility, Some(&registered), at) {
            Ok(a) => {
                assert!(allowed, "allowed at {at}: {a:?}");
                assert_eq!(a.area, AreaKey::Municipality("04202".into()));
                assert_eq!(a.coverage.window.end, end);
            }
            Err(v) => {
                assert!(!allowed, "refused at {at}: {v:?}");
                assert_eq!(v.reason, Reason::AreaNotActivated, "{v:?}");
            }
        }
    }
    // Reloads keep being retried, and keep failing.
    let failures = metric(
        &h.scrape_metrics().await,
        "onshi_activation_reload_failures_total",
    );
    tokio::time::sleep(3 * refresh).await;
    let text = h.scrape_metrics().await;
    assert!(metric(&text, "onshi_activation_reload_failures_total") > failures);
    assert_eq!(metric(&text, "onshi_activation_store_healthy"), 0.0);
}

// ---------------------------------------------------------------------------
// A window's end, with nothing reloaded.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_ends_at_its_instant_with_nothing_reloaded() {
    let mut h = Harness::start_with(Options {
        activation_refresh: LONG_REFRESH,
        ..Options::default()
    })
    .await;
    let mut admin = admin_client(&h.gateway).await;
    let now = h.clock.now();
    let end = now + chrono::Duration::hours(1);
    create(
        &mut admin,
        Areas {
            municipalities: vec!["04202".into()],
            ..Areas::default()
        },
        instants(now - chrono::Duration::hours(1), end),
    )
    .await;
    let code = fixture_facility("04202", FacilityKind::Medical);
    let reloads = metric(&h.scrape_metrics().await, "onshi_activation_reloads_total");

    h.clock.set(before(end));
    assert_eq!(decision(&mut h.qualification, &code).await, Ok(()));
    h.clock.set(end);
    let facility = parse_facility_code("facility", &code).expect("valid code");
    crate::denied!(
        h,
        h.qualification
            .lookup_qualification(as_facility(&facility, lookup(DEMO_PATIENT.insured())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    assert_eq!(
        metric(&h.scrape_metrics().await, "onshi_activation_reloads_total"),
        reloads,
        "nothing was reloaded between the two calls"
    );
}

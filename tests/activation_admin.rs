//! The operators' activation service end to end, over the admin listener: creating,
//! widening, extending and ending activations, reading them back as known now or at
//! a past instant, previews, and the terminal calls each change decides, checked at
//! the edges of their windows.

mod common;

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use common::*;
use onshi_gateway::activation::registry::fixture_facility;
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::to_jst_string;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::{
    ActivationView, AddAreasRequest, AreaWindow, Areas, ChangeContext, CheckFacilityRequest,
    CreateActivationRequest, Days, EndEarlyRequest, ExtendWindowRequest, FacilityDecision,
    FacilityPreview, GetActivationRequest, GetHistoryRequest, Instants, ListActivationsRequest,
    PreviewAreasRequest, WindowEnd, WindowSpec, window_end, window_spec,
};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

type Admin = ActivationAdminServiceClient<Channel>;

const NOTO: &str = "令和6年能登半島地震";

async fn admin(h: &Harness) -> Admin {
    let addr = h.gateway.admin_addr.expect("admin listener");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the admin listener");
    ActivationAdminServiceClient::new(channel)
}

fn ns(n: i64) -> ChronoDuration {
    ChronoDuration::nanoseconds(n)
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).expect("nanos"),
    }
}

fn instant_of(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.expect("timestamp set");
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).expect("nanos")).expect("instant")
}

fn areas(prefectures: &[&str], municipalities: &[&str], facilities: &[&str]) -> Option<Areas> {
    let own = |s: &[&str]| s.iter().map(std::string::ToString::to_string).collect();
    Some(Areas {
        prefectures: own(prefectures),
        municipalities: own(municipalities),
        facilities: own(facilities),
    })
}

fn prefectures(codes: &[&str]) -> Option<Areas> {
    areas(codes, &[], &[])
}

fn municipalities(codes: &[&str]) -> Option<Areas> {
    areas(&[], codes, &[])
}

fn facilities(codes: &[&str]) -> Option<Areas> {
    areas(&[], &[], codes)
}

fn instants(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<WindowSpec> {
    Some(WindowSpec {
        form: Some(window_spec::Form::Instants(Instants {
            start: Some(ts(start)),
            end: Some(ts(end)),
        })),
    })
}

fn days(first: &str, last: &str) -> Option<WindowSpec> {
    Some(WindowSpec {
        form: Some(window_spec::Form::Days(Days {
            first_day: first.into(),
            last_day: last.into(),
        })),
    })
}

fn one_week_from(day: &str) -> Option<WindowSpec> {
    Some(WindowSpec {
        form: Some(window_spec::Form::OneWeekFrom(day.into())),
    })
}

fn at(t: DateTime<Utc>) -> Option<WindowEnd> {
    Some(WindowEnd {
        form: Some(window_end::Form::At(ts(t))),
    })
}

fn end_of_day(day: &str) -> Option<WindowEnd> {
    Some(WindowEnd {
        form: Some(window_end::Form::EndOfDay(day.into())),
    })
}

fn by(author: &str, notice: &str) -> Option<ChangeContext> {
    Some(ChangeContext {
        author: author.into(),
        notice: notice.into(),
        expected_revision: 0,
    })
}

fn by_at_revision(author: &str, expected_revision: u32) -> Option<ChangeContext> {
    Some(ChangeContext {
        author: author.into(),
        notice: String::new(),
        expected_revision,
    })
}

fn create(
    event: &str,
    areas: Option<Areas>,
    window: Option<WindowSpec>,
    change: Option<ChangeContext>,
) -> CreateActivationRequest {
    CreateActivationRequest {
        event: event.into(),
        areas,
        window,
        change,
    }
}

/// The window an area has, as the service shows it.
fn window(
    kind: &str,
    code: &str,
    name: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> AreaWindow {
    AreaWindow {
        kind: kind.into(),
        code: code.into(),
        name: name.into(),
        start: Some(ts(start)),
        end: Some(ts(end)),
    }
}

/// The registry's name of a facility.
async fn registry_name(h: &Harness, code: &str) -> String {
    h.gateway
        .store
        .facility(code)
        .await
        .expect("registry readable")
        .unwrap_or_else(|| panic!("{code} is in the registry"))
        .name
}

/// A facility of Ishikawa (17) that the registry does not have: district 1, number
/// 1050 is below every generated number and no demo facility is in Ishikawa.
async fn unregistered_ishikawa(h: &Harness) -> String {
    let code = onshi_gateway::demo::facility(17, FacilityKind::Medical, 1050).to_string();
    assert!(
        h.gateway
            .store
            .facility(&code)
            .await
            .expect("registry readable")
            .is_none(),
        "{code} must not be registered"
    );
    code
}

/// A terminal call from `facility` at `t`: the demo patient's qualification.
async fn terminal(
    h: &mut Harness,
    facility: &str,
    t: DateTime<Utc>,
) -> Result<tonic::Response<onshi_gateway::proto::LookupQualificationResponse>, Status> {
    h.clock.set(t);
    h.qualification
        .lookup_qualification(as_raw_facility(facility, lookup(DEMO_PATIENT.insured())))
        .await
}

async fn assert_allowed(h: &mut Harness, facility: &str, t: DateTime<Utc>) {
    if let Err(status) = terminal(h, facility, t).await {
        panic!(
            "{facility} at {}: expected allowed, got {:?} {}",
            to_jst_string(t),
            status.get_details_error_info().map(|i| i.reason),
            status.message()
        );
    }
}

async fn assert_refused(h: &mut Harness, facility: &str, t: DateTime<Utc>, reason: &str) -> Status {
    match terminal(h, facility, t).await {
        Ok(_) => panic!(
            "{facility} at {}: expected {reason}, but it was allowed",
            to_jst_string(t)
        ),
        Err(status) => {
            let info = status
                .get_details_error_info()
                .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
            assert_eq!(
                (status.code(), info.reason.as_str()),
                (Code::PermissionDenied, reason),
                "{facility} at {}: {}",
                to_jst_string(t),
                status.message()
            );
            status
        }
    }
}

fn metadata(status: &Status, key: &str) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}

/// Asserts a refusal's code, reason and `BadRequest` field.
#[track_caller]
fn assert_refusal<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, Status>,
    code: Code,
    reason: &str,
    field: &str,
) -> Status {
    let status = assert_denied(result, code, reason);
    assert_eq!(bad_field(&status), field, "{reason}: {}", status.message());
    status
}

async fn history(admin: &mut Admin, id: &str) -> onshi_gateway::proto::ActivationHistory {
    admin
        .get_history(GetHistoryRequest {
            activation_id: id.into(),
        })
        .await
        .expect("history")
        .into_inner()
}

async fn list(admin: &mut Admin) -> Vec<ActivationView> {
    admin
        .list_activations(ListActivationsRequest {})
        .await
        .expect("list")
        .into_inner()
        .activations
}

async fn known_at(admin: &mut Admin, id: &str, t: Option<DateTime<Utc>>) -> ActivationView {
    admin
        .get_activation(GetActivationRequest {
            activation_id: id.into(),
            as_known_at: t.map(ts),
        })
        .await
        .expect("activation")
        .into_inner()
}

async fn check(
    admin: &mut Admin,
    facility: &str,
    t: DateTime<Utc>,
    known: Option<DateTime<Utc>>,
) -> FacilityDecision {
    admin
        .check_facility(CheckFacilityRequest {
            facility_code: facility.into(),
            at: Some(ts(t)),
            as_known_at: known.map(ts),
        })
        .await
        .expect("decision")
        .into_inner()
}

/// Creation in every area kind and every window form: the view names the areas,
/// holds the windows exactly, and is revision 1 by its author.
#[tokio::test]
async fn create_in_each_area_kind_and_window_form() {
    let mut h = Harness::start().await;
    let mut admin = admin(&h).await;
    assert!(list(&mut admin).await.is_empty(), "no activation at start");

    // Fukushima-oki 2022 by whole days: 17 March to the end of 23 March.
    let created = jst_at(2022, 3, 17, 9, 30);
    h.clock.set(created);
    let start = jst_at(2022, 3, 17, 0, 0);
    let end = jst_at(2022, 3, 24, 0, 0);
    let fukushima = admin
        .create_activation(create(
            "令和4年福島沖地震",
            prefectures(&["04", "7"]),
            days("2022-03-17", "2022-03-23"),
            by("operator-1", "令和4年3月17日付事務連絡"),
        ))
        .await
        .expect("created")
        .into_inner();
    assert!(!fukushima.id.is_empty());
    assert_eq!(fukushima.event, "令和4年福島沖地震");
    assert_eq!(fukushima.notice, "令和4年3月17日付事務連絡");
    assert_eq!(fukushima.created_by, "operator-1");
    assert_eq!(instant_of(fukushima.created_at.as_ref()), created);
    assert_eq!(fukushima.revision, 1);
    assert_eq!(
        fukushima.areas,
        vec![
            window("prefecture", "04", "宮城県", start, end),
            window("prefecture", "07", "福島県", start, end),
        ]
    );
    assert_eq!(
        to_jst_string(instant_of(fukushima.areas[0].end.as_ref())),
        "2022-03-24T00:00:00+09:00"
    );
    // The terminals see exactly that window.
    let clinic = miyagi_clinic().to_string();
    assert_refused(&mut h, &clinic, start - ns(1), "AREA_NOT_ACTIVATED").await;
    assert_allowed(&mut h, &clinic, start).await;
    assert_allowed(&mut h, &clinic, end - ns(1)).await;
    let status = assert_refused(&mut h, &clinic, end, "AREA_NOT_ACTIVATED").await;
    assert_eq!(
        metadata(&status, "last_window_end").as_deref(),
        Some("2022-03-24T00:00:00+09:00")
    );

    // The notice's default form gives the same window.
    h.clock.set(created + ChronoDuration::minutes(1));
    let week = admin
        .create_activation(create(
            "令和4年福島沖地震 (one week)",
            prefectures(&["04"]),
            one_week_from("2022-03-17"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(week.revision, 1);
    assert_eq!(
        week.areas,
        vec![window("prefecture", "04", "宮城県", start, end)]
    );

    // Municipalities by exact instants; the 5- and 6-digit forms name one area.
    let noto_start = jst_at(2024, 1, 1, 16, 10);
    let noto_end = jst_at(2024, 1, 8, 0, 0);
    h.clock.set(jst_at(2024, 1, 1, 18, 0));
    let five = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204"]),
            instants(noto_start, noto_end),
            by("operator-2", "令和6年1月1日付事務連絡"),
        ))
        .await
        .expect("created")
        .into_inner();
    h.clock.set(jst_at(2024, 1, 1, 18, 1));
    let six = admin
        .create_activation(create(
            NOTO,
            municipalities(&["172049"]),
            instants(noto_start, noto_end),
            by("operator-2", "令和6年1月1日付事務連絡"),
        ))
        .await
        .expect("created")
        .into_inner();
    let wajima = window("municipality", "17204", "輪島市", noto_start, noto_end);
    assert_eq!(five.areas, vec![wajima.clone()]);
    assert_eq!(six.areas, vec![wajima]);
    assert_eq!((five.revision, six.revision), (1, 1));
    assert_ne!(five.id, six.id);

    // A single facility, named from the registry.
    let clinic = fixture_facility("17205", FacilityKind::Medical);
    let name = registry_name(&h, &clinic).await;
    assert!(!name.is_empty());
    h.clock.set(jst_at(2024, 1, 1, 18, 2));
    let single = admin
        .create_activation(create(
            NOTO,
            facilities(&[&clinic]),
            days("2024-01-01", "2024-01-07"),
            by("operator-2", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(single.revision, 1);
    assert_eq!(
        single.areas,
        vec![window(
            "facility",
            &clinic,
            &name,
            jst_at(2024, 1, 1, 0, 0),
            noto_end
        )]
    );

    // Each has one revision, its creation.
    for view in [&fukushima, &week, &five, &six, &single] {
        let history = history(&mut admin, &view.id).await;
        assert_eq!(history.activation.as_ref(), Some(view));
        assert_eq!(history.revisions.len(), 1);
        let r = &history.revisions[0];
        assert_eq!((r.number, r.kind.as_str()), (1, "create"));
        assert_eq!(r.author, view.created_by);
        assert_eq!(r.notice, view.notice);
        assert_eq!(r.recorded_at, view.created_at);
        assert_eq!(r.windows, view.areas);
    }
    assert_eq!(list(&mut admin).await.len(), 5);
}

/// With a refresh interval far longer than the test, every change made through this
/// gateway decides its very next terminal call.
#[tokio::test]
async fn changes_are_in_force_before_the_call_returns() {
    let now = jst_at(2024, 1, 2, 10, 0);
    let mut h = Harness::start_with(Options {
        now,
        activation_refresh: Duration::from_secs(600),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let suzu = fixture_facility("17205", FacilityKind::Medical);

    // The index is loaded, and would stay so for ten minutes.
    assert_refused(&mut h, &wajima, now, "AREA_NOT_ACTIVATED").await;
    assert_refused(&mut h, &suzu, now, "AREA_NOT_ACTIVATED").await;

    h.clock.set(now);
    let view = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204"]),
            days("2024-01-01", "2024-01-07"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    assert_allowed(&mut h, &wajima, now).await;
    assert_refused(&mut h, &suzu, now, "AREA_NOT_ACTIVATED").await;

    let added_at = now + ChronoDuration::minutes(1);
    h.clock.set(added_at);
    admin
        .add_areas(AddAreasRequest {
            activation_id: view.id.clone(),
            areas: municipalities(&["17205"]),
            window: instants(added_at, jst_at(2024, 1, 8, 0, 0)),
            change: by("operator-1", ""),
        })
        .await
        .expect("added");
    assert_allowed(&mut h, &suzu, added_at).await;

    let ended_at = now + ChronoDuration::minutes(5);
    h.clock.set(ended_at);
    let ended = admin
        .end_early(EndEarlyRequest {
            activation_id: view.id.clone(),
            areas: None,
            at: at(ended_at),
            change: by("operator-1", ""),
        })
        .await
        .expect("ended")
        .into_inner();
    assert_eq!(ended.revision, 3);
    assert!(
        ended
            .areas
            .iter()
            .all(|a| instant_of(a.end.as_ref()) == ended_at),
        "{ended:?}"
    );
    for facility in [&wajima, &suzu] {
        let status = assert_refused(&mut h, facility, ended_at, "AREA_NOT_ACTIVATED").await;
        assert_eq!(
            metadata(&status, "last_window_end").as_deref(),
            Some("2024-01-02T10:05:00+09:00")
        );
        assert_allowed(&mut h, facility, ended_at - ns(1)).await;
    }
}

/// Municipality areas decide through the registry; a facility missing from it falls
/// back to its prefecture, and is told to get registered while a municipality of its
/// prefecture is open.
#[tokio::test]
async fn municipality_decisions_through_the_registry() {
    let now = jst_at(2024, 1, 2, 9, 0);
    let mut h = Harness::start_with(Options {
        now,
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let kanazawa = fixture_facility("17201", FacilityKind::Medical);
    let unregistered = unregistered_ishikawa(&h).await;
    let toyama_unregistered =
        onshi_gateway::demo::facility(16, FacilityKind::Medical, 1050).to_string();

    h.clock.set(now);
    let municipal = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204"]),
            days("2024-01-01", "2024-01-07"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();

    assert_allowed(&mut h, &wajima, now).await;
    let status = assert_refused(&mut h, &kanazawa, now, "AREA_NOT_ACTIVATED").await;
    assert_eq!(metadata(&status, "municipality").as_deref(), Some("17201"));
    assert_eq!(metadata(&status, "prefecture").as_deref(), Some("17"));
    let status = assert_refused(&mut h, &unregistered, now, "FACILITY_NOT_IN_REGISTRY").await;
    assert_eq!(metadata(&status, "prefecture").as_deref(), Some("17"));
    assert_eq!(
        metadata(&status, "activation").as_deref(),
        Some(municipal.id.as_str())
    );
    // Another prefecture's unregistered facility is simply not activated.
    assert_refused(&mut h, &toyama_unregistered, now, "AREA_NOT_ACTIVATED").await;

    // CheckFacility gives the same answers, with the area that allowed.
    let d = check(&mut admin, &wajima, now, None).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.activation_id, municipal.id);
    assert_eq!(d.event, NOTO);
    assert_eq!(d.municipality, "17204");
    assert_eq!(
        d.area,
        Some(window(
            "municipality",
            "17204",
            "輪島市",
            jst_at(2024, 1, 1, 0, 0),
            jst_at(2024, 1, 8, 0, 0)
        ))
    );
    let d = check(&mut admin, &kanazawa, now, None).await;
    assert!(!d.allowed);
    assert_eq!(
        (d.reason.as_str(), d.municipality.as_str()),
        ("AREA_NOT_ACTIVATED", "17201")
    );
    let d = check(&mut admin, &unregistered, now, None).await;
    assert!(!d.allowed);
    assert_eq!(
        (d.reason.as_str(), d.municipality.as_str()),
        ("FACILITY_NOT_IN_REGISTRY", "")
    );

    // A prefecture-wide activation allows it from the prefecture in its code.
    let created = now + ChronoDuration::hours(1);
    h.clock.set(created);
    let prefecture = admin
        .create_activation(create(
            NOTO,
            prefectures(&["17"]),
            days("2024-01-01", "2024-01-03"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    assert_allowed(&mut h, &unregistered, created).await;
    assert_allowed(&mut h, &kanazawa, created).await;
    let d = check(&mut admin, &unregistered, created, None).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.activation_id, prefecture.id);
    assert_eq!(
        d.area
            .as_ref()
            .map(|a| (a.kind.as_str(), a.code.as_str(), a.name.as_str())),
        Some(("prefecture", "17", "石川県"))
    );

    // Once the prefecture's window ends, only the municipality's is open again.
    let pref_end = jst_at(2024, 1, 4, 0, 0);
    assert_allowed(&mut h, &unregistered, pref_end - ns(1)).await;
    assert_refused(&mut h, &unregistered, pref_end, "FACILITY_NOT_IN_REGISTRY").await;
    assert_allowed(&mut h, &kanazawa, pref_end - ns(1)).await;
    assert_refused(&mut h, &kanazawa, pref_end, "AREA_NOT_ACTIVATED").await;
    assert_allowed(&mut h, &wajima, pref_end).await;
    // And once the municipality's ends too, nothing is open in Ishikawa.
    let muni_end = jst_at(2024, 1, 8, 0, 0);
    assert_refused(
        &mut h,
        &unregistered,
        muni_end - ns(1),
        "FACILITY_NOT_IN_REGISTRY",
    )
    .await;
    assert_refused(&mut h, &unregistered, muni_end, "AREA_NOT_ACTIVATED").await;
    assert_refused(&mut h, &wajima, muni_end, "AREA_NOT_ACTIVATED").await;
}

/// The Noto story: created for three municipalities, one added mid-window, two
/// extended, one ended early, a facility kept open after its area closed. Every
/// change is checked at its edges, and the history shows each revision.
#[tokio::test]
async fn add_extend_end_and_keep_a_facility_open() {
    let mut h = Harness::start_with(Options {
        now: jst_at(2024, 1, 2, 9, 0),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let wajima_dental = fixture_facility("17204", FacilityKind::Dental);
    let suzu = fixture_facility("17205", FacilityKind::Medical);
    let kanazawa = fixture_facility("17201", FacilityKind::Medical);
    let nanao = fixture_facility("17202", FacilityKind::Pharmacy);
    let wajima_name = registry_name(&h, &wajima).await;

    let start = jst_at(2024, 1, 1, 0, 0);
    let first_end = jst_at(2024, 1, 8, 0, 0);
    let extended_end = jst_at(2024, 1, 15, 0, 0);
    let added_start = jst_at(2024, 1, 3, 16, 0);
    let suzu_end = jst_at(2024, 1, 12, 12, 0);
    let kept_end = jst_at(2024, 2, 1, 0, 0);

    // 1: create.
    let t1 = jst_at(2024, 1, 2, 9, 0);
    h.clock.set(t1);
    let view = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204", "172057", "17201"]),
            days("2024-01-01", "2024-01-07"),
            by("operator-1", "令和6年1月1日付事務連絡"),
        ))
        .await
        .expect("created")
        .into_inner();
    let id = view.id.clone();
    assert_allowed(&mut h, &kanazawa, start).await;
    assert_allowed(&mut h, &kanazawa, first_end - ns(1)).await;
    assert_refused(&mut h, &kanazawa, first_end, "AREA_NOT_ACTIVATED").await;
    assert_refused(&mut h, &nanao, added_start, "AREA_NOT_ACTIVATED").await;

    // 2: 七尾市 added from 16:00 on 3 January, with its own window.
    let t2 = jst_at(2024, 1, 3, 15, 30);
    h.clock.set(t2);
    let view = admin
        .add_areas(AddAreasRequest {
            activation_id: id.clone(),
            areas: municipalities(&["17202"]),
            window: instants(added_start, first_end),
            change: by("operator-2", "令和6年1月3日付事務連絡"),
        })
        .await
        .expect("added")
        .into_inner();
    assert_eq!(view.revision, 2);
    assert_eq!(view.areas.len(), 4);
    assert_refused(&mut h, &nanao, added_start - ns(1), "AREA_NOT_ACTIVATED").await;
    assert_allowed(&mut h, &nanao, added_start).await;
    assert_allowed(&mut h, &nanao, first_end - ns(1)).await;
    assert_refused(&mut h, &nanao, first_end, "AREA_NOT_ACTIVATED").await;

    // 3: 輪島市 and 珠洲市 extended to the end of 14 January, after the first end.
    let t3 = jst_at(2024, 1, 9, 10, 0);
    h.clock.set(t3);
    let view = admin
        .extend_window(ExtendWindowRequest {
            activation_id: id.clone(),
            areas: municipalities(&["17204", "17205"]),
            until: end_of_day("2024-01-14"),
            change: by("operator-1", "令和6年1月9日付事務連絡"),
        })
        .await
        .expect("extended")
        .into_inner();
    assert_eq!(view.revision, 3);
    assert_allowed(&mut h, &wajima, first_end).await;
    assert_allowed(&mut h, &wajima, extended_end - ns(1)).await;
    assert_refused(&mut h, &wajima, extended_end, "AREA_NOT_ACTIVATED").await;
    assert_refused(&mut h, &kanazawa, first_end, "AREA_NOT_ACTIVATED").await;
    assert_refused(&mut h, &nanao, first_end, "AREA_NOT_ACTIVATED").await;

    // 4: 珠洲市 ended early, at noon on 12 January.
    let t4 = jst_at(2024, 1, 12, 9, 0);
    h.clock.set(t4);
    let view = admin
        .end_early(EndEarlyRequest {
            activation_id: id.clone(),
            areas: municipalities(&["17205"]),
            at: at(suzu_end),
            change: by("operator-2", "令和6年1月12日付事務連絡"),
        })
        .await
        .expect("ended")
        .into_inner();
    assert_eq!(view.revision, 4);
    assert_allowed(&mut h, &suzu, suzu_end - ns(1)).await;
    let status = assert_refused(&mut h, &suzu, suzu_end, "AREA_NOT_ACTIVATED").await;
    assert_eq!(
        metadata(&status, "last_window_end").as_deref(),
        Some("2024-01-12T12:00:00+09:00")
    );
    assert_allowed(&mut h, &wajima, suzu_end).await;

    // 5: one clinic of 輪島市 kept open after its municipality closes.
    let t5 = jst_at(2024, 1, 13, 9, 0);
    h.clock.set(t5);
    let view = admin
        .add_areas(AddAreasRequest {
            activation_id: id.clone(),
            areas: facilities(&[&wajima]),
            window: days("2024-01-15", "2024-01-31"),
            change: by("operator-1", "令和6年1月13日付事務連絡"),
        })
        .await
        .expect("added")
        .into_inner();
    assert_eq!(view.revision, 5);
    assert_allowed(&mut h, &wajima_dental, extended_end - ns(1)).await;
    assert_refused(&mut h, &wajima_dental, extended_end, "AREA_NOT_ACTIVATED").await;
    assert_allowed(&mut h, &wajima, extended_end).await;
    assert_allowed(&mut h, &wajima, kept_end - ns(1)).await;
    assert_refused(&mut h, &wajima, kept_end, "AREA_NOT_ACTIVATED").await;
    let d = check(&mut admin, &wajima, extended_end, None).await;
    assert_eq!(
        d.area.as_ref().map(|a| (a.kind.as_str(), a.name.as_str())),
        Some(("facility", wajima_name.as_str()))
    );

    // The current state, each area in the order it first appeared.
    let wajima_window = window("municipality", "17204", "輪島市", start, extended_end);
    let suzu_window = window("municipality", "17205", "珠洲市", start, suzu_end);
    let kanazawa_window = window("municipality", "17201", "金沢市", start, first_end);
    let nanao_window = window("municipality", "17202", "七尾市", added_start, first_end);
    let kept_window = window("facility", &wajima, &wajima_name, extended_end, kept_end);
    assert_eq!(
        view.areas,
        vec![
            wajima_window.clone(),
            suzu_window.clone(),
            kanazawa_window.clone(),
            nanao_window.clone(),
            kept_window.clone(),
        ]
    );

    // The history: every revision, its author, notice, kind, time and windows.
    let history = history(&mut admin, &id).await;
    assert_eq!(history.activation.as_ref(), Some(&view));
    let got: Vec<_> = history
        .revisions
        .iter()
        .map(|r| {
            (
                r.number,
                instant_of(r.recorded_at.as_ref()),
                r.author.as_str(),
                r.notice.as_str(),
                r.kind.as_str(),
                r.windows.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                t1,
                "operator-1",
                "令和6年1月1日付事務連絡",
                "create",
                vec![
                    window("municipality", "17204", "輪島市", start, first_end),
                    window("municipality", "17205", "珠洲市", start, first_end),
                    kanazawa_window,
                ]
            ),
            (
                2,
                t2,
                "operator-2",
                "令和6年1月3日付事務連絡",
                "add_areas",
                vec![nanao_window]
            ),
            (
                3,
                t3,
                "operator-1",
                "令和6年1月9日付事務連絡",
                "extend",
                vec![
                    wajima_window,
                    window("municipality", "17205", "珠洲市", start, extended_end),
                ]
            ),
            (
                4,
                t4,
                "operator-2",
                "令和6年1月12日付事務連絡",
                "end",
                vec![suzu_window]
            ),
            (
                5,
                t5,
                "operator-1",
                "令和6年1月13日付事務連絡",
                "add_areas",
                vec![kept_window]
            ),
        ]
    );
}

/// The state as known at a past instant: the window before an extension, and the
/// auditors' question answered from what was in force then.
#[tokio::test]
async fn state_as_known_at_an_instant() {
    let h = Harness::start_with(Options {
        now: jst_at(2024, 1, 2, 9, 0),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let start = jst_at(2024, 1, 1, 0, 0);
    let first_end = jst_at(2024, 1, 8, 0, 0);
    let extended_end = jst_at(2024, 1, 15, 0, 0);

    let created = jst_at(2024, 1, 2, 9, 0);
    h.clock.set(created);
    let view = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204"]),
            days("2024-01-01", "2024-01-07"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    let id = view.id.clone();
    let extended = jst_at(2024, 1, 9, 10, 0);
    h.clock.set(extended);
    admin
        .extend_window(ExtendWindowRequest {
            activation_id: id.clone(),
            areas: None,
            until: end_of_day("2024-01-14"),
            change: by("operator-1", "令和6年1月9日付事務連絡"),
        })
        .await
        .expect("extended");

    let old = vec![window("municipality", "17204", "輪島市", start, first_end)];
    let new = vec![window(
        "municipality",
        "17204",
        "輪島市",
        start,
        extended_end,
    )];
    let shown = |v: ActivationView| (v.revision, v.areas);
    assert_eq!(
        shown(known_at(&mut admin, &id, Some(created - ns(1))).await),
        (0, vec![]),
        "nothing was known before the creation"
    );
    assert_eq!(
        shown(known_at(&mut admin, &id, Some(created)).await),
        (1, old.clone())
    );
    assert_eq!(
        shown(known_at(&mut admin, &id, Some(jst_at(2024, 1, 5, 10, 3))).await),
        (1, old.clone())
    );
    assert_eq!(
        shown(known_at(&mut admin, &id, Some(extended - ns(1))).await),
        (1, old)
    );
    assert_eq!(
        shown(known_at(&mut admin, &id, Some(extended)).await),
        (2, new.clone())
    );
    assert_eq!(shown(known_at(&mut admin, &id, None).await), (2, new));

    // Was 輪島 allowed at 10:03 on 5 January? Yes, by the first window.
    let d = check(&mut admin, &wajima, jst_at(2024, 1, 5, 10, 3), None).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(
        d.area.as_ref().map(|a| instant_of(a.end.as_ref())),
        Some(first_end)
    );
    assert!(d.explanation.contains("2024-01-05T10:03:00+09:00"), "{d:?}");
    // On 8 January, before the extension was made: refused as known then...
    let gap = jst_at(2024, 1, 8, 10, 0);
    let d = check(&mut admin, &wajima, gap, None).await;
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.reason, "AREA_NOT_ACTIVATED");
    let d = check(&mut admin, &wajima, gap, Some(extended - ns(1))).await;
    assert!(!d.allowed, "{d:?}");
    // ...allowed as known once it was extended, and as known now.
    let d = check(&mut admin, &wajima, gap, Some(extended)).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(
        d.area.as_ref().map(|a| instant_of(a.end.as_ref())),
        Some(extended_end)
    );
    let d = check(&mut admin, &wajima, gap, Some(jst_at(2024, 2, 1, 0, 0))).await;
    assert!(d.allowed, "{d:?}");
    // The edges of the first window, as known then.
    assert!(
        check(&mut admin, &wajima, first_end - ns(1), None)
            .await
            .allowed
    );
    assert!(!check(&mut admin, &wajima, first_end, None).await.allowed);
    assert!(
        !check(&mut admin, &wajima, start - ns(1), None)
            .await
            .allowed
    );
    // And of the extended one, as known now.
    let now = Some(jst_at(2024, 2, 1, 0, 0));
    assert!(
        check(&mut admin, &wajima, extended_end - ns(1), now)
            .await
            .allowed
    );
    assert!(!check(&mut admin, &wajima, extended_end, now).await.allowed);
}

/// Asserts that the activations and `id`'s revisions are as they were.
async fn assert_unchanged(admin: &mut Admin, id: &str, activations: usize, revisions: usize) {
    assert_eq!(list(admin).await.len(), activations, "activations added");
    assert_eq!(
        history(admin, id).await.revisions.len(),
        revisions,
        "revisions added"
    );
}

/// Bad input is refused with INVALID_ARGUMENT, its reason and its field, and
/// changes nothing; unknown ids are NOT_FOUND, stale revisions ABORTED.
#[tokio::test]
async fn bad_input_is_refused_with_its_field_and_changes_nothing() {
    let h = Harness::start_with(Options {
        now: jst_at(2024, 1, 2, 9, 0),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let view = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204"]),
            days("2024-01-01", "2024-01-07"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    let id = view.id.clone();
    assert!(
        h.gateway
            .store
            .municipality("17999")
            .await
            .expect("registry")
            .is_none(),
        "17999 must not be in the master"
    );
    let week = || days("2024-01-01", "2024-01-07");
    let op = || by("operator-1", "");
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let bad_check_digit = {
        let (body, last) = wajima.split_at(9);
        let d: u8 = last.parse().expect("digit");
        format!("{body}{}", (d + 1) % 10)
    };
    let invalid = Code::InvalidArgument;

    // Creations.
    let creations = [
        (
            create(NOTO, prefectures(&["48"]), week(), op()),
            "PREFECTURE_CODE_UNKNOWN",
            "areas.prefectures[0]",
        ),
        (
            create(NOTO, prefectures(&["04", "x"]), week(), op()),
            "PREFECTURE_CODE_UNKNOWN",
            "areas.prefectures[1]",
        ),
        (
            create(NOTO, municipalities(&["1720"]), week(), op()),
            "MUNICIPALITY_CODE_FORMAT",
            "areas.municipalities[0]",
        ),
        (
            create(NOTO, municipalities(&["1720a"]), week(), op()),
            "MUNICIPALITY_CODE_FORMAT",
            "areas.municipalities[0]",
        ),
        (
            create(NOTO, municipalities(&["17204", "172040"]), week(), op()),
            "MUNICIPALITY_CODE_CHECK_DIGIT",
            "areas.municipalities[1]",
        ),
        (
            create(NOTO, municipalities(&["17999"]), week(), op()),
            "MUNICIPALITY_UNKNOWN",
            "areas.municipalities[0]",
        ),
        (
            create(
                NOTO,
                municipalities(&["17204"]),
                instants(jst_at(2024, 1, 8, 0, 0), jst_at(2024, 1, 1, 0, 0)),
                op(),
            ),
            "ACTIVATION_WINDOW_INVALID",
            "window.instants.end",
        ),
        (
            create(
                NOTO,
                municipalities(&["17204"]),
                instants(jst_at(2024, 1, 1, 0, 0), jst_at(2024, 1, 1, 0, 0)),
                op(),
            ),
            "ACTIVATION_WINDOW_INVALID",
            "window.instants.end",
        ),
        (
            create(
                NOTO,
                municipalities(&["17204"]),
                days("2024-01-07", "2024-01-01"),
                op(),
            ),
            "ACTIVATION_WINDOW_INVALID",
            "window.days.last_day",
        ),
        (
            create(
                NOTO,
                municipalities(&["17204"]),
                days("2024-01-01", "7 January"),
                op(),
            ),
            "ACTIVATION_WINDOW_INVALID",
            "window.days.last_day",
        ),
        (
            create(NOTO, municipalities(&["17204"]), None, op()),
            "ACTIVATION_WINDOW_INVALID",
            "window",
        ),
        (
            create(NOTO, None, week(), op()),
            "ACTIVATION_AREAS_MISSING",
            "areas",
        ),
        (
            create(NOTO, areas(&[], &[], &[]), week(), op()),
            "ACTIVATION_AREAS_MISSING",
            "areas",
        ),
        (
            create(NOTO, municipalities(&["17204", "172049"]), week(), op()),
            "ACTIVATION_AREA_DUPLICATE",
            "areas",
        ),
        (
            create(NOTO, prefectures(&["04", "4"]), week(), op()),
            "ACTIVATION_AREA_DUPLICATE",
            "areas",
        ),
        (
            create("", municipalities(&["17204"]), week(), op()),
            "ACTIVATION_EVENT_MISSING",
            "event",
        ),
        (
            create("  ", municipalities(&["17204"]), week(), op()),
            "ACTIVATION_EVENT_MISSING",
            "event",
        ),
        (
            create(NOTO, municipalities(&["17204"]), week(), None),
            "CHANGE_AUTHOR_MISSING",
            "change.author",
        ),
        (
            create(NOTO, municipalities(&["17204"]), week(), by(" ", "notice")),
            "CHANGE_AUTHOR_MISSING",
            "change.author",
        ),
    ];
    for (request, reason, field) in creations {
        let described = format!("{request:?}");
        let result = admin.create_activation(request).await;
        let status = assert_refusal(result, invalid, reason, field);
        assert!(!status.message().is_empty(), "{described}");
        assert_unchanged(&mut admin, &id, 1, 1).await;
    }
    // A facility code with a wrong check digit: its reason and field. (Its gRPC code
    // is checked in `facility_code_refusals_are_invalid_argument`.)
    let status = admin
        .create_activation(create(NOTO, facilities(&[&bad_check_digit]), week(), op()))
        .await
        .expect_err("refused");
    assert_eq!(
        status.get_details_error_info().map(|i| i.reason),
        Some("FACILITY_CODE_CHECK_DIGIT".to_string())
    );
    assert_eq!(bad_field(&status), "areas.facilities[0]");
    assert_unchanged(&mut admin, &id, 1, 1).await;

    // Revisions that contradict the activation.
    let result = admin
        .add_areas(AddAreasRequest {
            activation_id: id.clone(),
            areas: municipalities(&["17205", "172049"]),
            window: week(),
            change: op(),
        })
        .await;
    let status = assert_refusal(result, invalid, "ACTIVATION_AREA_ALREADY_INCLUDED", "areas");
    assert_eq!(
        metadata(&status, "area").as_deref(),
        Some("municipality:17204")
    );
    assert_unchanged(&mut admin, &id, 1, 1).await;
    let result = admin
        .add_areas(AddAreasRequest {
            activation_id: id.clone(),
            areas: None,
            window: week(),
            change: op(),
        })
        .await;
    assert_refusal(result, invalid, "ACTIVATION_AREAS_MISSING", "areas");
    let result = admin
        .add_areas(AddAreasRequest {
            activation_id: id.clone(),
            areas: municipalities(&["17205"]),
            window: week(),
            change: None,
        })
        .await;
    assert_refusal(result, invalid, "CHANGE_AUTHOR_MISSING", "change.author");
    assert_unchanged(&mut admin, &id, 1, 1).await;

    let extend = |areas: Option<Areas>, until: Option<WindowEnd>| ExtendWindowRequest {
        activation_id: id.clone(),
        areas,
        until,
        change: by("operator-1", ""),
    };
    let extensions = [
        (
            extend(municipalities(&["17205"]), end_of_day("2024-01-14")),
            "ACTIVATION_AREA_NOT_INCLUDED",
            "areas",
        ),
        (
            extend(municipalities(&["17204"]), end_of_day("2024-01-07")),
            "ACTIVATION_REVISION_CONTRADICTS",
            "until",
        ),
        (
            extend(None, at(jst_at(2024, 1, 8, 0, 0))),
            "ACTIVATION_REVISION_CONTRADICTS",
            "until",
        ),
        (
            extend(None, end_of_day("2024-01-05")),
            "ACTIVATION_REVISION_CONTRADICTS",
            "until",
        ),
        (extend(None, None), "ACTIVATION_WINDOW_INVALID", "until"),
        (
            extend(None, end_of_day("14 January")),
            "ACTIVATION_WINDOW_INVALID",
            "until.end_of_day",
        ),
    ];
    for (request, reason, field) in extensions {
        let result = admin.extend_window(request).await;
        assert_refusal(result, invalid, reason, field);
        assert_unchanged(&mut admin, &id, 1, 1).await;
    }

    let end = |areas: Option<Areas>, when: Option<WindowEnd>| EndEarlyRequest {
        activation_id: id.clone(),
        areas,
        at: when,
        change: by("operator-1", ""),
    };
    let ends = [
        (
            end(None, at(jst_at(2024, 1, 9, 0, 0))),
            "ACTIVATION_REVISION_CONTRADICTS",
            "at",
        ),
        (
            end(municipalities(&["17204"]), at(jst_at(2024, 1, 8, 0, 0))),
            "ACTIVATION_REVISION_CONTRADICTS",
            "at",
        ),
        (
            end(municipalities(&["17204"]), at(jst_at(2023, 12, 31, 12, 0))),
            "ACTIVATION_REVISION_CONTRADICTS",
            "at",
        ),
        (
            end(municipalities(&["17204"]), at(jst_at(2024, 1, 1, 0, 0))),
            "ACTIVATION_REVISION_CONTRADICTS",
            "at",
        ),
        (
            end(municipalities(&["17201"]), end_of_day("2024-01-03")),
            "ACTIVATION_AREA_NOT_INCLUDED",
            "areas",
        ),
        (end(None, None), "ACTIVATION_WINDOW_INVALID", "at"),
    ];
    for (request, reason, field) in ends {
        let result = admin.end_early(request).await;
        assert_refusal(result, invalid, reason, field);
        assert_unchanged(&mut admin, &id, 1, 1).await;
    }

    // Unknown activations.
    let unknown = "00000000-0000-0000-0000-000000000000".to_string();
    let result = admin
        .add_areas(AddAreasRequest {
            activation_id: unknown.clone(),
            areas: municipalities(&["17205"]),
            window: week(),
            change: op(),
        })
        .await;
    assert_refusal(
        result,
        Code::NotFound,
        "ACTIVATION_NOT_FOUND",
        "activation_id",
    );
    let result = admin
        .extend_window(ExtendWindowRequest {
            activation_id: unknown.clone(),
            areas: None,
            until: end_of_day("2024-01-14"),
            change: op(),
        })
        .await;
    assert_refusal(
        result,
        Code::NotFound,
        "ACTIVATION_NOT_FOUND",
        "activation_id",
    );
    let result = admin
        .end_early(EndEarlyRequest {
            activation_id: unknown.clone(),
            areas: None,
            at: end_of_day("2024-01-03"),
            change: op(),
        })
        .await;
    assert_refusal(
        result,
        Code::NotFound,
        "ACTIVATION_NOT_FOUND",
        "activation_id",
    );
    let result = admin
        .get_activation(GetActivationRequest {
            activation_id: unknown.clone(),
            as_known_at: None,
        })
        .await;
    assert_refusal(
        result,
        Code::NotFound,
        "ACTIVATION_NOT_FOUND",
        "activation_id",
    );
    let result = admin
        .get_history(GetHistoryRequest {
            activation_id: unknown.clone(),
        })
        .await;
    assert_refusal(
        result,
        Code::NotFound,
        "ACTIVATION_NOT_FOUND",
        "activation_id",
    );
    assert_unchanged(&mut admin, &id, 1, 1).await;

    // Conditional changes: at the expected revision it applies, stale it is refused.
    h.clock.set(jst_at(2024, 1, 3, 9, 0));
    let extended = admin
        .extend_window(ExtendWindowRequest {
            activation_id: id.clone(),
            areas: None,
            until: end_of_day("2024-01-14"),
            change: by_at_revision("operator-1", 1),
        })
        .await
        .expect("extended at revision 1")
        .into_inner();
    assert_eq!(extended.revision, 2);
    h.clock.set(jst_at(2024, 1, 3, 9, 1));
    let result = admin
        .end_early(EndEarlyRequest {
            activation_id: id.clone(),
            areas: None,
            at: end_of_day("2024-01-10"),
            change: by_at_revision("operator-2", 1),
        })
        .await;
    let status = assert_refusal(
        result,
        Code::Aborted,
        "ACTIVATION_REVISION_CONFLICT",
        "change.expected_revision",
    );
    assert_eq!(metadata(&status, "latest_revision").as_deref(), Some("2"));
    let result = admin
        .add_areas(AddAreasRequest {
            activation_id: id.clone(),
            areas: municipalities(&["17205"]),
            window: week(),
            change: by_at_revision("operator-2", 3),
        })
        .await;
    assert_refusal(
        result,
        Code::Aborted,
        "ACTIVATION_REVISION_CONFLICT",
        "change.expected_revision",
    );
    assert_unchanged(&mut admin, &id, 1, 2).await;
    let now = known_at(&mut admin, &id, None).await;
    assert_eq!(now, extended, "nothing changed after the refusals");
    assert_eq!(
        instant_of(now.areas[0].end.as_ref()),
        jst_at(2024, 1, 15, 0, 0)
    );

    // Check a facility: its code and its instants are validated too.
    let result = admin
        .check_facility(CheckFacilityRequest {
            facility_code: "17".into(),
            at: None,
            as_known_at: None,
        })
        .await;
    let status = result.expect_err("refused");
    assert_eq!(bad_field(&status), "facility_code");
    let result = admin
        .check_facility(CheckFacilityRequest {
            facility_code: wajima.clone(),
            at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            as_known_at: None,
        })
        .await;
    assert_refusal(result, invalid, "ACTIVATION_WINDOW_INVALID", "at");
}

/// Previews count from the registry and change nothing.
#[tokio::test]
async fn preview_counts_from_the_registry_and_changes_nothing() {
    let h = Harness::start().await;
    let mut admin = admin(&h).await;
    let counts: Vec<(String, String, u64)> = h
        .gateway
        .store
        .facility_counts(&[17])
        .await
        .expect("counts")
        .into_iter()
        .map(|(m, n)| (m.code, m.name, n))
        .collect();
    assert_eq!(counts.len(), 19, "Ishikawa's municipalities");
    assert!(counts.iter().all(|(_, _, n)| *n > 0));
    let total: u64 = counts.iter().map(|(_, _, n)| n).sum();
    let triples = |ms: &[onshi_gateway::proto::MunicipalityCount]| -> Vec<(String, String, u64)> {
        ms.iter()
            .map(|m| (m.code.clone(), m.name.clone(), m.facilities))
            .collect()
    };

    // Two municipalities of Noto.
    let preview = admin
        .preview_areas(PreviewAreasRequest {
            areas: municipalities(&["17204", "172057"]),
        })
        .await
        .expect("preview")
        .into_inner();
    let (opened, not_opened): (Vec<_>, Vec<_>) = counts
        .iter()
        .cloned()
        .partition(|(code, _, _)| code == "17204" || code == "17205");
    assert_eq!(opened.len(), 2);
    assert_eq!(opened[0].1, "輪島市");
    assert_eq!(opened[1].1, "珠洲市");
    let opened_sum: u64 = opened.iter().map(|(_, _, n)| n).sum();
    assert_eq!(preview.prefectures.len(), 1);
    let ishikawa = &preview.prefectures[0];
    assert_eq!(
        (
            ishikawa.code.as_str(),
            ishikawa.name.as_str(),
            ishikawa.whole
        ),
        ("17", "石川県", false)
    );
    assert_eq!(triples(&ishikawa.municipalities_opened), opened);
    assert_eq!(triples(&ishikawa.municipalities_not_opened), not_opened);
    assert_eq!(ishikawa.facilities_opened, opened_sum);
    assert_eq!(ishikawa.facilities_not_opened, total - opened_sum);
    assert_eq!(preview.facilities_opened, opened_sum);
    assert!(preview.facilities.is_empty());

    // The whole prefecture.
    let preview = admin
        .preview_areas(PreviewAreasRequest {
            areas: prefectures(&["17"]),
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.prefectures.len(), 1);
    let ishikawa = &preview.prefectures[0];
    assert!(ishikawa.whole);
    assert_eq!(triples(&ishikawa.municipalities_opened), counts);
    assert!(ishikawa.municipalities_not_opened.is_empty());
    assert_eq!(
        (ishikawa.facilities_opened, ishikawa.facilities_not_opened),
        (total, 0)
    );
    assert_eq!(preview.facilities_opened, total);

    // Single facilities: one registered, one not.
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let wajima_name = registry_name(&h, &wajima).await;
    let unregistered = unregistered_ishikawa(&h).await;
    let preview = admin
        .preview_areas(PreviewAreasRequest {
            areas: facilities(&[&wajima, &unregistered]),
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(
        preview.facilities,
        vec![
            FacilityPreview {
                code: wajima.clone(),
                name: wajima_name,
                municipality: "17204".into(),
                in_registry: true,
            },
            FacilityPreview {
                code: unregistered.clone(),
                name: String::new(),
                municipality: String::new(),
                in_registry: false,
            },
        ]
    );
    assert!(
        preview
            .prefectures
            .iter()
            .all(|p| !p.whole && p.municipalities_opened.is_empty()),
        "no municipality is opened by single facilities: {:?}",
        preview.prefectures
    );

    // A registered facility inside an opened municipality is counted once.
    let preview = admin
        .preview_areas(PreviewAreasRequest {
            areas: areas(&[], &["17204"], &[&wajima]),
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.facilities_opened, opened[0].2);

    // Bad areas are refused as a change's would be.
    let result = admin
        .preview_areas(PreviewAreasRequest { areas: None })
        .await;
    assert_refusal(
        result,
        Code::InvalidArgument,
        "ACTIVATION_AREAS_MISSING",
        "areas",
    );
    let result = admin
        .preview_areas(PreviewAreasRequest {
            areas: municipalities(&["17999"]),
        })
        .await;
    assert_refusal(
        result,
        Code::InvalidArgument,
        "MUNICIPALITY_UNKNOWN",
        "areas.municipalities[0]",
    );

    // Nothing was created.
    assert!(list(&mut admin).await.is_empty());
}

/// ListActivations lists every activation in the order they were created.
#[tokio::test]
async fn list_in_creation_order() {
    let h = Harness::start().await;
    let mut admin = admin(&h).await;
    let mut created = Vec::new();
    for (i, (event, when)) in [
        ("令和4年福島沖地震", jst_at(2022, 3, 17, 9, 0)),
        ("令和5年梅雨前線豪雨", jst_at(2023, 7, 10, 9, 0)),
        (NOTO, jst_at(2024, 1, 1, 18, 0)),
        ("令和6年奥能登豪雨", jst_at(2024, 9, 22, 9, 0)),
    ]
    .into_iter()
    .enumerate()
    {
        h.clock.set(when);
        let view = admin
            .create_activation(create(
                event,
                prefectures(&[&format!("{:02}", 4 + i)]),
                one_week_from(&when.format("%Y-%m-%d").to_string()),
                by("operator-1", ""),
            ))
            .await
            .expect("created")
            .into_inner();
        created.push(view);
    }
    // A later revision of the first does not move it.
    h.clock.set(jst_at(2024, 10, 1, 9, 0));
    let revised = admin
        .add_areas(AddAreasRequest {
            activation_id: created[0].id.clone(),
            areas: prefectures(&["07"]),
            window: days("2022-03-17", "2022-03-23"),
            change: by("operator-1", ""),
        })
        .await
        .expect("added")
        .into_inner();
    created[0] = revised;
    assert_eq!(list(&mut admin).await, created);
}

// ---------------------------------------------------------------------------------
// Defects: each of these shows a disagreement between src/ and its documentation.
// ---------------------------------------------------------------------------------

/// The service promises INVALID_ARGUMENT for bad input (admin.proto), and the CLI
/// exits 2 only on INVALID_ARGUMENT; a facility code is mapped to UNAUTHENTICATED
/// because its reasons are the terminals' identity reasons.
#[tokio::test]
async fn facility_code_refusals_are_invalid_argument() {
    let h = Harness::start_with(Options {
        now: jst_at(2024, 1, 2, 9, 0),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let (body, last) = wajima.split_at(9);
    let bad = format!("{body}{}", (last.parse::<u8>().expect("digit") + 1) % 10);
    let result = admin
        .create_activation(create(
            NOTO,
            facilities(&[&bad]),
            days("2024-01-01", "2024-01-07"),
            by("operator-1", ""),
        ))
        .await;
    assert_refusal(
        result,
        Code::InvalidArgument,
        "FACILITY_CODE_CHECK_DIGIT",
        "areas.facilities[0]",
    );
    let result = admin
        .preview_areas(PreviewAreasRequest {
            areas: facilities(&["1712345"]),
        })
        .await;
    assert_refusal(
        result,
        Code::InvalidArgument,
        "FACILITY_CODE_FORMAT",
        "areas.facilities[0]",
    );
    let result = admin
        .check_facility(CheckFacilityRequest {
            facility_code: bad,
            at: None,
            as_known_at: None,
        })
        .await;
    assert_refusal(
        result,
        Code::InvalidArgument,
        "FACILITY_CODE_CHECK_DIGIT",
        "facility_code",
    );
    assert!(list(&mut admin).await.is_empty());
}

/// docs/activations.md: `add-areas ID --facility … --from 2024-03-08`, then
/// `end ID --until "2024-03-07 24:00"`. Ending "every area still open" must leave
/// alone the facility windows that only open at or after that end.
#[tokio::test]
async fn ending_every_area_leaves_windows_not_yet_open() {
    let mut h = Harness::start_with(Options {
        now: jst_at(2024, 3, 1, 9, 0),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let wajima_dental = fixture_facility("17204", FacilityKind::Dental);
    let view = admin
        .create_activation(create(
            NOTO,
            municipalities(&["17204"]),
            days("2024-01-01", "2024-03-31"),
            by("operator-1", ""),
        ))
        .await
        .expect("created")
        .into_inner();
    h.clock.set(jst_at(2024, 3, 5, 9, 0));
    admin
        .add_areas(AddAreasRequest {
            activation_id: view.id.clone(),
            areas: facilities(&[&wajima]),
            window: days("2024-03-08", "2024-03-31"),
            change: by("operator-1", ""),
        })
        .await
        .expect("facility kept open from 8 March");
    h.clock.set(jst_at(2024, 3, 6, 9, 0));
    let close = jst_at(2024, 3, 8, 0, 0);
    let ended = admin
        .end_early(EndEarlyRequest {
            activation_id: view.id.clone(),
            areas: None,
            at: end_of_day("2024-03-07"),
            change: by("operator-1", ""),
        })
        .await
        .expect("the municipality ends at the end of 7 March")
        .into_inner();
    let history = history(&mut admin, &view.id).await;
    let last = history.revisions.last().expect("revision");
    assert_eq!(last.kind, "end");
    assert_eq!(last.windows.len(), 1, "only the municipality is ended");
    assert_eq!(instant_of(ended.areas[0].end.as_ref()), close);
    assert_allowed(&mut h, &wajima_dental, close - ns(1)).await;
    assert_refused(&mut h, &wajima_dental, close, "AREA_NOT_ACTIVATED").await;
    assert_allowed(&mut h, &wajima, close).await;
}

/// `ListActivations` orders by (created_at, id) and ids are random (UUID v4), so
/// activations created at one instant of the gateway's clock come back shuffled.
#[tokio::test]
async fn list_in_creation_order_within_one_instant() {
    let h = Harness::start_with(Options {
        now: jst_at(2024, 1, 2, 9, 0),
        ..Options::default()
    })
    .await;
    let mut admin = admin(&h).await;
    let mut events = Vec::new();
    for (i, code) in ["17201", "17202", "17203", "17204", "17205", "17206"]
        .into_iter()
        .enumerate()
    {
        let event = format!("{NOTO} #{i}");
        admin
            .create_activation(create(
                &event,
                municipalities(&[code]),
                days("2024-01-01", "2024-01-07"),
                by("operator-1", ""),
            ))
            .await
            .expect("created");
        events.push(event);
    }
    let listed: Vec<String> = list(&mut admin)
        .await
        .into_iter()
        .map(|a| a.event)
        .collect();
    assert_eq!(listed, events);
}

/// admin.proto: `facilities_opened` counts registered facilities opened, "a facility
/// counted once"; a facility named twice in a preview is counted twice (the preview
/// does not refuse duplicates as a change would).
#[tokio::test]
async fn preview_counts_a_facility_once() {
    let h = Harness::start().await;
    let mut admin = admin(&h).await;
    let wajima = fixture_facility("17204", FacilityKind::Medical);
    let result = admin
        .preview_areas(PreviewAreasRequest {
            areas: facilities(&[&wajima, &wajima]),
        })
        .await;
    match result {
        Ok(preview) => assert_eq!(preview.into_inner().facilities_opened, 1),
        Err(status) => {
            assert_denied::<()>(
                Err(status),
                Code::InvalidArgument,
                "ACTIVATION_AREA_DUPLICATE",
            );
        }
    }
}

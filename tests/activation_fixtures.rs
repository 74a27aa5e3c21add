//! The four real activations of the emergency function replayed through the
//! operators' service, change by change, each recorded at the moment its notice
//! made it; then decided by real terminal calls (a qualification lookup of the demo
//! patient) and by `CheckFacility`, for facilities inside and outside every area,
//! 1 ns before, at and after every window edge and every extension.
//!
//! Each change starts a stage. A stage's table is checked twice per row: by a
//! terminal call with the gateway clock at the row's instant (decided from every
//! revision recorded so far), and by `CheckFacility` at that instant as known at
//! the stage's change (the same revisions). At the end every stage's rows are asked
//! again of `CheckFacility` as known then: later revisions do not rewrite what was
//! in force earlier.

mod common;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use common::*;
use onshi_gateway::activation::registry::fixture_facility;
use onshi_gateway::domain::facility::{FacilityKind, make_facility_code};
use onshi_gateway::domain::jst::{jst, to_jst_string};
use onshi_gateway::domain::prefecture::Prefecture;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::{
    ActivationHistory, ActivationView, AddAreasRequest, Areas, ChangeContext, CheckFacilityRequest,
    CreateActivationRequest, Days, EndEarlyRequest, ExtendWindowRequest, FacilityDecision,
    GetActivationRequest, GetHistoryRequest, Instants, WindowEnd, WindowSpec, window_end,
    window_spec,
};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

// ---------------------------------------------------------------------------
// Instants, areas and windows as the notices give them.

/// A Japan-time instant, "YYYY-MM-DD HH:MM".
fn t(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
        .and_local_timezone(jst())
        .single()
        .expect("JST has no gaps")
        .with_timezone(&Utc)
}

/// The last instant before `at`.
fn before(at: DateTime<Utc>) -> DateTime<Utc> {
    at - Duration::nanoseconds(1)
}

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn instant_of(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("timestamp present");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

fn strings(codes: &[&str]) -> Vec<String> {
    codes.iter().map(std::string::ToString::to_string).collect()
}

fn prefectures(codes: &[&str]) -> Areas {
    Areas {
        prefectures: strings(codes),
        ..Areas::default()
    }
}

fn municipalities(codes: &[&str]) -> Areas {
    Areas {
        municipalities: strings(codes),
        ..Areas::default()
    }
}

fn one_week_from(day: &str) -> WindowSpec {
    WindowSpec {
        form: Some(window_spec::Form::OneWeekFrom(day.into())),
    }
}

fn instants(start: DateTime<Utc>, end: DateTime<Utc>) -> WindowSpec {
    WindowSpec {
        form: Some(window_spec::Form::Instants(Instants {
            start: Some(ts(start)),
            end: Some(ts(end)),
        })),
    }
}

fn days(first: &str, last: &str) -> WindowSpec {
    WindowSpec {
        form: Some(window_spec::Form::Days(Days {
            first_day: first.into(),
            last_day: last.into(),
        })),
    }
}

fn end_of_day(day: &str) -> WindowEnd {
    WindowEnd {
        form: Some(window_end::Form::EndOfDay(day.into())),
    }
}

// ---------------------------------------------------------------------------
// Facilities and expected decisions.

/// A facility, with the municipality the registry holds for it ("" if unregistered).
#[derive(Debug, Clone)]
struct Fac {
    code: String,
    municipality: String,
}

fn registered(municipality: &str, kind: FacilityKind) -> Fac {
    Fac {
        code: fixture_facility(municipality, kind),
        municipality: municipality.to_string(),
    }
}

/// The medical fixture facility of a municipality.
fn clinic(municipality: &str) -> Fac {
    registered(municipality, FacilityKind::Medical)
}

fn pharmacy(municipality: &str) -> Fac {
    registered(municipality, FacilityKind::Pharmacy)
}

fn dental(municipality: &str) -> Fac {
    registered(municipality, FacilityKind::Dental)
}

/// A valid facility code of `prefecture` that the registry does not hold: district
/// 95 is used by neither generated (≤ 89) nor fixture (90, 91) facilities.
fn unregistered(prefecture: u8) -> Fac {
    Fac {
        code: make_facility_code(
            Prefecture::new(prefecture).expect("prefecture"),
            FacilityKind::Medical,
            95,
            1950,
        )
        .to_string(),
        municipality: String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Allowed by a window of the facility's prefecture.
    ByPrefecture,
    /// Allowed by a window of its municipality (from the registry).
    ByMunicipality,
    /// Allowed by a window of the facility itself.
    ByFacility,
    /// AREA_NOT_ACTIVATED.
    NotActivated,
    /// FACILITY_NOT_IN_REGISTRY.
    NotInRegistry,
}
use Expect::*;

impl Expect {
    /// The area kind that allows, or the reason that refuses.
    fn outcome(self) -> Result<&'static str, &'static str> {
        match self {
            ByPrefecture => Ok("prefecture"),
            ByMunicipality => Ok("municipality"),
            ByFacility => Ok("facility"),
            NotActivated => Err("AREA_NOT_ACTIVATED"),
            NotInRegistry => Err("FACILITY_NOT_IN_REGISTRY"),
        }
    }
}

type Row = (Fac, DateTime<Utc>, Expect);

fn describe(f: &Fac, at: DateTime<Utc>) -> String {
    let place = if f.municipality.is_empty() {
        "unregistered".to_string()
    } else {
        format!("in {}", f.municipality)
    };
    format!(
        "facility {} ({place}) at {} [{}]",
        f.code,
        to_jst_string(at),
        at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

// ---------------------------------------------------------------------------
// The replay: one gateway, one activation, changes through the admin service.

struct Replay {
    h: Harness,
    admin: ActivationAdminServiceClient<Channel>,
    id: String,
    /// The instant of the latest change.
    known_at: DateTime<Utc>,
    /// Every row checked, with the instant as of which it was decided.
    history: Vec<(Row, DateTime<Utc>)>,
}

impl Replay {
    async fn start(first_change: DateTime<Utc>) -> Replay {
        let h = Harness::start_with(Options {
            now: first_change,
            ..Options::default()
        })
        .await;
        let admin = ActivationAdminServiceClient::connect(format!(
            "http://{}",
            h.gateway.admin_addr.expect("admin listener")
        ))
        .await
        .expect("admin connects");
        Replay {
            h,
            admin,
            id: String::new(),
            known_at: first_change,
            history: Vec::new(),
        }
    }

    /// The gateway clock at the moment a notice's change is made.
    fn change_at(&mut self, at: DateTime<Utc>) {
        self.h.clock.set(at);
        self.known_at = at;
    }

    fn change(notice: &str) -> Option<ChangeContext> {
        Some(ChangeContext {
            author: "operator-1".into(),
            notice: notice.into(),
            expected_revision: 0,
        })
    }

    async fn create(
        &mut self,
        at: DateTime<Utc>,
        event: &str,
        notice: &str,
        areas: Areas,
        window: WindowSpec,
    ) -> ActivationView {
        self.change_at(at);
        let view = self
            .admin
            .create_activation(CreateActivationRequest {
                event: event.into(),
                areas: Some(areas),
                window: Some(window),
                change: Self::change(notice),
            })
            .await
            .unwrap_or_else(|s| panic!("create {event}: {s:?}"))
            .into_inner();
        assert_eq!(view.revision, 1);
        assert_eq!(
            instant_of(&view.created_at),
            at,
            "created at the gateway clock"
        );
        self.id = view.id.clone();
        view
    }

    async fn add_areas(
        &mut self,
        at: DateTime<Utc>,
        notice: &str,
        areas: Areas,
        window: WindowSpec,
    ) -> ActivationView {
        self.change_at(at);
        self.admin
            .add_areas(AddAreasRequest {
                activation_id: self.id.clone(),
                areas: Some(areas),
                window: Some(window),
                change: Self::change(notice),
            })
            .await
            .unwrap_or_else(|s| panic!("add areas ({notice}): {s:?}"))
            .into_inner()
    }

    async fn extend(
        &mut self,
        at: DateTime<Utc>,
        notice: &str,
        areas: Areas,
        until: WindowEnd,
    ) -> ActivationView {
        self.change_at(at);
        self.admin
            .extend_window(ExtendWindowRequest {
                activation_id: self.id.clone(),
                areas: Some(areas),
                until: Some(until),
                change: Self::change(notice),
            })
            .await
            .unwrap_or_else(|s| panic!("extend ({notice}): {s:?}"))
            .into_inner()
    }

    async fn end_early(
        &mut self,
        at: DateTime<Utc>,
        notice: &str,
        areas: Areas,
        end: WindowEnd,
    ) -> ActivationView {
        self.change_at(at);
        self.admin
            .end_early(EndEarlyRequest {
                activation_id: self.id.clone(),
                areas: Some(areas),
                at: Some(end),
                change: Self::change(notice),
            })
            .await
            .unwrap_or_else(|s| panic!("end early ({notice}): {s:?}"))
            .into_inner()
    }

    /// `CheckFacility` at `at`, as known at `known_at` (unset: as known at `at`).
    async fn check(
        &mut self,
        f: &Fac,
        at: DateTime<Utc>,
        known_at: Option<DateTime<Utc>>,
    ) -> FacilityDecision {
        self.admin
            .check_facility(CheckFacilityRequest {
                facility_code: f.code.clone(),
                at: Some(ts(at)),
                as_known_at: known_at.map(ts),
            })
            .await
            .unwrap_or_else(|s| panic!("check {}: {s:?}", describe(f, at)))
            .into_inner()
    }

    async fn get(&mut self, known_at: Option<DateTime<Utc>>) -> ActivationView {
        self.admin
            .get_activation(GetActivationRequest {
                activation_id: self.id.clone(),
                as_known_at: known_at.map(ts),
            })
            .await
            .expect("activation readable")
            .into_inner()
    }

    async fn history(&mut self) -> ActivationHistory {
        self.admin
            .get_history(GetHistoryRequest {
                activation_id: self.id.clone(),
            })
            .await
            .expect("history readable")
            .into_inner()
    }

    /// What `CheckFacility` says against `expect`; None if it agrees.
    fn mismatch(
        &self,
        f: &Fac,
        at: DateTime<Utc>,
        expect: Expect,
        d: &FacilityDecision,
    ) -> Option<String> {
        if d.municipality != f.municipality {
            return Some(format!(
                "CheckFacility: {} is registered in {:?}, not {:?}",
                describe(f, at),
                d.municipality,
                f.municipality
            ));
        }
        let got = match (&d.allowed, &d.area) {
            (true, Some(area)) if d.activation_id == self.id => Ok(area.kind.as_str()),
            (true, _) => return Some(format!("CheckFacility: {}: {d:?}", describe(f, at))),
            (false, _) => Err(d.reason.as_str()),
        };
        (got != expect.outcome()).then(|| {
            format!(
                "CheckFacility: {}: expected {expect:?}, got {got:?} ({})",
                describe(f, at),
                d.explanation
            )
        })
    }

    /// A terminal call from `f` with the gateway clock at `at`; None if it is decided
    /// as expected (an allowed call's access record names the activation).
    async fn terminal(&mut self, f: &Fac, at: DateTime<Utc>, expect: Expect) -> Option<String> {
        self.h.clock.set(at);
        let result = self
            .h
            .qualification
            .lookup_qualification(as_raw_facility(&f.code, lookup(DEMO_PATIENT.insured())))
            .await;
        let got = match &result {
            Ok(_) => Ok(()),
            Err(status) => {
                let reason = status
                    .get_details_error_info()
                    .map(|i| i.reason)
                    .unwrap_or_default();
                if status.code() != Code::PermissionDenied {
                    return Some(format!("terminal: {}: {status:?}", describe(f, at)));
                }
                Err(reason)
            }
        };
        let wanted = expect.outcome().map(|_| ()).map_err(str::to_string);
        if got != wanted {
            return Some(format!(
                "terminal: {}: expected {expect:?}, got {got:?}",
                describe(f, at)
            ));
        }
        if got.is_ok() {
            let record = self.h.last_record().await;
            if record.activation_id.as_deref() != Some(self.id.as_str()) {
                return Some(format!(
                    "terminal: {}: access record names activation {:?}",
                    describe(f, at),
                    record.activation_id
                ));
            }
        }
        None
    }

    /// Decides every row by a terminal call and by `CheckFacility` as known at the
    /// latest change, and reports every disagreement with the table at once.
    async fn expect(&mut self, stage: &str, rows: Vec<Row>) {
        let mut wrong = Vec::new();
        for (f, at, expect) in &rows {
            wrong.extend(self.terminal(f, *at, *expect).await);
            let d = self.check(f, *at, Some(self.known_at)).await;
            wrong.extend(self.mismatch(f, *at, *expect, &d));
        }
        assert!(
            wrong.is_empty(),
            "{stage}: {} of {} decisions wrong:\n{}",
            wrong.len(),
            rows.len() * 2,
            wrong.join("\n")
        );
        let known_at = self.known_at;
        self.history
            .extend(rows.into_iter().map(|row| (row, known_at)));
    }

    /// Every stage's rows again, as known at their stage's change: what later
    /// revisions changed does not rewrite what was in force before them.
    async fn replay_history(&mut self) {
        let mut wrong = Vec::new();
        for ((f, at, expect), known_at) in self.history.clone() {
            let d = self.check(&f, at, Some(known_at)).await;
            wrong.extend(self.mismatch(&f, at, expect, &d));
        }
        assert!(
            wrong.is_empty(),
            "history replayed: {} of {} decisions changed:\n{}",
            wrong.len(),
            self.history.len(),
            wrong.join("\n")
        );
    }

    async fn assert_unregistered(&self, f: &Fac) {
        assert!(
            self.h
                .gateway
                .store
                .facility(&f.code)
                .await
                .expect("registry readable")
                .is_none(),
            "{} is registered",
            f.code
        );
    }
}

#[track_caller]
fn assert_allowed_by(
    d: &FacilityDecision,
    kind: &str,
    code: &str,
) -> (DateTime<Utc>, DateTime<Utc>) {
    assert!(d.allowed, "{d:?}");
    let area = d.area.as_ref().expect("the allowing area");
    assert_eq!(
        (area.kind.as_str(), area.code.as_str()),
        (kind, code),
        "{d:?}"
    );
    (instant_of(&area.start), instant_of(&area.end))
}

#[track_caller]
fn assert_refused(d: &FacilityDecision, reason: &str) {
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.reason, reason, "{d:?}");
    assert!(d.area.is_none(), "{d:?}");
}

// ---------------------------------------------------------------------------
// 令和4年福島県沖地震: Miyagi and Fukushima, 17 March to the end of 23 March 2022.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fukushima_oki_2022_whole_prefectures_for_one_week() {
    let notice_day = t("2022-03-17 12:00");
    let mut r = Replay::start(notice_day).await;
    let view = r
        .create(
            notice_day,
            "令和4年福島県沖地震",
            "令和4年3月17日付事務連絡",
            prefectures(&["04", "07"]),
            one_week_from("2022-03-17"),
        )
        .await;
    let (start, end) = (t("2022-03-17 00:00"), t("2022-03-24 00:00"));
    assert_eq!(view.areas.len(), 2);
    for (area, code) in view.areas.iter().zip(["04", "07"]) {
        assert_eq!(
            (area.kind.as_str(), area.code.as_str()),
            ("prefecture", code)
        );
        assert_eq!(
            (instant_of(&area.start), instant_of(&area.end)),
            (start, end)
        );
    }
    assert_eq!(view.areas[0].name, "宮城県");

    let ishinomaki = clinic("04202");
    let sendai = pharmacy("04100");
    let koriyama = pharmacy("07203");
    let iwaki = dental("07204");
    let shinjuku = clinic("13104");
    let yamagata = clinic("06201");
    let miyagi_unregistered = unregistered(4);
    r.assert_unregistered(&miyagi_unregistered).await;
    r.expect(
        "Fukushima-oki 2022",
        vec![
            (ishinomaki.clone(), before(start), NotActivated),
            (ishinomaki.clone(), start, ByPrefecture),
            (ishinomaki.clone(), t("2022-03-20 10:00"), ByPrefecture),
            (ishinomaki.clone(), before(end), ByPrefecture),
            (ishinomaki.clone(), end, NotActivated),
            (sendai.clone(), start, ByPrefecture),
            (sendai.clone(), before(end), ByPrefecture),
            (koriyama.clone(), before(start), NotActivated),
            (koriyama.clone(), start, ByPrefecture),
            (koriyama.clone(), before(end), ByPrefecture),
            (koriyama.clone(), end, NotActivated),
            (iwaki.clone(), t("2022-03-23 23:00"), ByPrefecture),
            (iwaki.clone(), end + Duration::days(1), NotActivated),
            // A whole prefecture opens its facilities missing from the registry too.
            (
                miyagi_unregistered.clone(),
                t("2022-03-18 09:00"),
                ByPrefecture,
            ),
            (miyagi_unregistered.clone(), end, NotActivated),
            (shinjuku.clone(), start, NotActivated),
            (shinjuku.clone(), t("2022-03-20 10:00"), NotActivated),
            (yamagata.clone(), t("2022-03-20 10:00"), NotActivated),
        ],
    )
    .await;

    // The auditors' view: before the notice was recorded (12:00), nothing was known,
    // although the window, as recorded later, starts at 00:00.
    let early = t("2022-03-17 09:30");
    assert_refused(
        &r.check(&ishinomaki, early, None).await,
        "AREA_NOT_ACTIVATED",
    );
    let (s, e) = assert_allowed_by(
        &r.check(&ishinomaki, early, Some(notice_day)).await,
        "prefecture",
        "04",
    );
    assert_eq!((s, e), (start, end));
    let history = r.history().await;
    assert_eq!(history.revisions.len(), 1);
    assert_eq!(history.revisions[0].kind, "create");
    assert_eq!(instant_of(&history.revisions[0].recorded_at), notice_day);
    r.replay_history().await;
}

// ---------------------------------------------------------------------------
// 令和5年梅雨前線による大雨: 出雲市 from 8 July 2023 for one week; 10 Fukuoka
// municipalities added on 10 July at 16:00, Saga and Oita ones at 19:30, each
// until the end of 14 July.

const FUKUOKA_2023: [&str; 10] = [
    "40202", "40203", "40207", "40210", "40211", "40212", "40216", "40225", "40228", "40229",
];
const SAGA_OITA_2023: [&str; 5] = ["41201", "41202", "41205", "44203", "44204"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_rain_2023_areas_added_at_stated_times_of_day() {
    let (start, end) = (t("2023-07-08 00:00"), t("2023-07-15 00:00"));
    let created = t("2023-07-08 11:00");
    let mut r = Replay::start(created).await;
    let view = r
        .create(
            created,
            "令和5年梅雨前線による大雨",
            "令和5年7月8日付事務連絡",
            municipalities(&["32203"]),
            one_week_from("2023-07-08"),
        )
        .await;
    assert_eq!(view.areas.len(), 1);
    assert_eq!(view.areas[0].name, "出雲市");
    assert_eq!(
        (
            instant_of(&view.areas[0].start),
            instant_of(&view.areas[0].end)
        ),
        (start, end)
    );

    let izumo = clinic("32203");
    let izumo_pharmacy = pharmacy("32203");
    let matsue = clinic("32201");
    let kurume = clinic("40203");
    let miyama = pharmacy("40229");
    let omuta = dental("40202");
    let fukuoka_higashi = clinic("40131");
    let kitakyushu = clinic("40100");
    let saga = clinic("41201");
    let karatsu = pharmacy("41202");
    let imari = clinic("41205");
    let nakatsu = clinic("44203");
    let hita = dental("44204");
    let oita = clinic("44201");
    let shimane_unregistered = unregistered(32);
    let saga_unregistered = unregistered(41);
    r.assert_unregistered(&shimane_unregistered).await;
    r.assert_unregistered(&saga_unregistered).await;

    r.expect(
        "rain 2023, 出雲市 only",
        vec![
            (izumo.clone(), before(start), NotActivated),
            (izumo.clone(), start, ByMunicipality),
            (
                izumo_pharmacy.clone(),
                t("2023-07-10 12:00"),
                ByMunicipality,
            ),
            (izumo.clone(), before(end), ByMunicipality),
            (izumo.clone(), end, NotActivated),
            (matsue.clone(), t("2023-07-10 12:00"), NotActivated),
            // Somewhere in Shimane, but where? Only the registry could tell.
            (
                shimane_unregistered.clone(),
                t("2023-07-10 12:00"),
                NotInRegistry,
            ),
            (shimane_unregistered.clone(), end, NotActivated),
            (kurume.clone(), t("2023-07-10 12:00"), NotActivated),
            (saga.clone(), t("2023-07-10 12:00"), NotActivated),
        ],
    )
    .await;

    // 10 July, 16:00: ten Fukuoka municipalities.
    let at_16 = t("2023-07-10 16:00");
    let view = r
        .add_areas(
            at_16,
            "令和5年7月10日付事務連絡（16時）",
            municipalities(&FUKUOKA_2023),
            instants(at_16, end),
        )
        .await;
    assert_eq!(view.revision, 2);
    assert_eq!(view.areas.len(), 11);
    r.expect(
        "rain 2023, Fukuoka added at 16:00",
        vec![
            (kurume.clone(), before(at_16), NotActivated),
            (kurume.clone(), at_16, ByMunicipality),
            (kurume.clone(), before(end), ByMunicipality),
            (kurume.clone(), end, NotActivated),
            (miyama.clone(), at_16, ByMunicipality),
            (omuta.clone(), t("2023-07-12 08:00"), ByMunicipality),
            (omuta.clone(), end, NotActivated),
            // Fukuoka municipalities not listed.
            (fukuoka_higashi.clone(), t("2023-07-12 08:00"), NotActivated),
            (kitakyushu.clone(), at_16, NotActivated),
            (izumo.clone(), at_16, ByMunicipality),
            (saga.clone(), t("2023-07-10 19:00"), NotActivated),
        ],
    )
    .await;

    // 10 July, 19:30: Saga, Karatsu, Imari; Nakatsu, Hita.
    let at_1930 = t("2023-07-10 19:30");
    let view = r
        .add_areas(
            at_1930,
            "令和5年7月10日付事務連絡（19時30分）",
            municipalities(&SAGA_OITA_2023),
            instants(at_1930, end),
        )
        .await;
    assert_eq!(view.revision, 3);
    assert_eq!(view.areas.len(), 16);
    r.expect(
        "rain 2023, Saga and Oita added at 19:30",
        vec![
            (saga.clone(), before(at_1930), NotActivated),
            (saga.clone(), at_1930, ByMunicipality),
            (saga.clone(), before(end), ByMunicipality),
            (saga.clone(), end, NotActivated),
            (karatsu.clone(), at_1930, ByMunicipality),
            (imari.clone(), before(at_1930), NotActivated),
            (imari.clone(), t("2023-07-13 03:00"), ByMunicipality),
            (nakatsu.clone(), at_1930, ByMunicipality),
            (hita.clone(), before(at_1930), NotActivated),
            (hita.clone(), before(end), ByMunicipality),
            (hita.clone(), end, NotActivated),
            (oita.clone(), t("2023-07-11 12:00"), NotActivated),
            (saga_unregistered.clone(), before(at_1930), NotActivated),
            (saga_unregistered.clone(), at_1930, NotInRegistry),
            (kurume.clone(), at_1930, ByMunicipality),
            (fukuoka_higashi.clone(), at_1930, NotActivated),
            (izumo.clone(), before(end), ByMunicipality),
        ],
    )
    .await;

    // The auditors: Saga at 19:00 as known then, refused; at 19:45 as known at 19:00
    // (before the addition) refused, as known at 19:45 allowed.
    assert_refused(
        &r.check(&saga, t("2023-07-10 19:00"), None).await,
        "AREA_NOT_ACTIVATED",
    );
    let at_1945 = t("2023-07-10 19:45");
    assert_refused(
        &r.check(&saga, at_1945, Some(t("2023-07-10 19:00"))).await,
        "AREA_NOT_ACTIVATED",
    );
    let (s, e) = assert_allowed_by(
        &r.check(&saga, at_1945, None).await,
        "municipality",
        "41201",
    );
    assert_eq!((s, e), (at_1930, end));
    // 16:30, known before 16:00: only 出雲市 was open.
    assert_refused(
        &r.check(&kurume, t("2023-07-10 16:30"), Some(before(at_16)))
            .await,
        "AREA_NOT_ACTIVATED",
    );

    let history = r.history().await;
    let kinds: Vec<&str> = history.revisions.iter().map(|v| v.kind.as_str()).collect();
    assert_eq!(kinds, ["create", "add_areas", "add_areas"]);
    let recorded: Vec<DateTime<Utc>> = history
        .revisions
        .iter()
        .map(|v| instant_of(&v.recorded_at))
        .collect();
    assert_eq!(recorded, [created, at_16, at_1930]);
    let sizes: Vec<usize> = history.revisions.iter().map(|v| v.windows.len()).collect();
    assert_eq!(sizes, [1, 10, 5]);
    r.replay_history().await;
}

// ---------------------------------------------------------------------------
// 令和6年能登半島地震: 47 municipalities of Niigata, Toyama, Ishikawa and Fukui from
// 1 January 2024 to the end of 7 January; 18 extended to 14 January; Ishikawa's to
// 31 January, then further; 野々市市 and 川北町 join; closed 7 March 2024 at 24:00;
// single facilities kept open from 8 March.
//
// DOMAIN gives the count (47) but not the list. The master has 81 real
// municipalities in these four prefectures (Niigata 30, Toyama 15, Ishikawa 19,
// Fukui 17); the 47 below are real codes from it: every Ishikawa municipality but
// 野々市市 and 川北町 (which joined in an extension), all of Toyama, 13 of Niigata
// and 2 of Fukui. Which 18 were extended to 14 January is also ours to choose:
// Ishikawa's but 金沢市, and 高岡市 and 氷見市.

const ISHIKAWA_FIRST: [&str; 17] = [
    "17201", "17202", "17203", "17204", "17205", "17206", "17207", "17209", "17210", "17211",
    "17361", "17365", "17384", "17386", "17407", "17461", "17463",
];
const TOYAMA: [&str; 15] = [
    "16201", "16202", "16204", "16205", "16206", "16207", "16208", "16209", "16210", "16211",
    "16321", "16322", "16323", "16342", "16343",
];
const NIIGATA_2024: [&str; 13] = [
    "15100", "15202", "15204", "15205", "15206", "15211", "15213", "15216", "15217", "15222",
    "15223", "15224", "15504",
];
const FUKUI_2024: [&str; 2] = ["18208", "18210"];
const KANAZAWA: &str = "17201";
const JOINED: [&str; 2] = ["17212", "17324"];

fn noto_first_47() -> Vec<&'static str> {
    let all: Vec<&str> = ISHIKAWA_FIRST
        .iter()
        .chain(&TOYAMA)
        .chain(&NIIGATA_2024)
        .chain(&FUKUI_2024)
        .copied()
        .collect();
    assert_eq!(all.len(), 47);
    all
}

/// Extended to 14 January: Ishikawa's but 金沢市 (16), 高岡市 and 氷見市.
fn noto_extended_18() -> Vec<&'static str> {
    let mut v: Vec<&str> = ISHIKAWA_FIRST
        .iter()
        .copied()
        .filter(|c| *c != KANAZAWA)
        .collect();
    v.extend(["16202", "16205"]);
    assert_eq!(v.len(), 18);
    for m in ["17204", "17205", "17463", "17461"] {
        assert!(v.contains(&m));
    }
    v
}

/// All 19 of Ishikawa.
fn ishikawa_19() -> Vec<&'static str> {
    let mut v: Vec<&str> = ISHIKAWA_FIRST.iter().chain(&JOINED).copied().collect();
    v.sort_unstable();
    assert_eq!(v.len(), 19);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noto_2024_extensions_joins_closure_and_a_facility_kept_open() {
    let jan1 = t("2024-01-01 00:00");
    let jan8 = t("2024-01-08 00:00");
    let jan15 = t("2024-01-15 00:00");
    let feb1 = t("2024-02-01 00:00");
    let mar1 = t("2024-03-01 00:00");
    let mar8 = t("2024-03-08 00:00");
    let apr1 = t("2024-04-01 00:00");

    let wajima = clinic("17204");
    let wajima_pharmacy = pharmacy("17204");
    let wajima_dental = dental("17204");
    let suzu = pharmacy("17205");
    let noto_town = clinic("17463");
    let anamizu = dental("17461");
    let nanao = clinic("17202");
    let kanazawa = clinic(KANAZAWA);
    let nonoichi = clinic("17212");
    let kawakita = pharmacy("17324");
    let niigata = clinic("15100");
    let tokamachi = clinic("15210");
    let toyama = dental("16201");
    let himi = clinic("16205");
    let sakai = clinic("18210");
    let fukui = clinic("18201");
    let shinjuku = clinic("13104");
    let ishikawa_unregistered = unregistered(17);

    // 1 January, evening: the first notice.
    let t1 = t("2024-01-01 22:00");
    let mut r = Replay::start(t1).await;
    r.assert_unregistered(&ishikawa_unregistered).await;
    let view = r
        .create(
            t1,
            "令和6年能登半島地震",
            "令和6年1月1日付事務連絡",
            municipalities(&noto_first_47()),
            one_week_from("2024-01-01"),
        )
        .await;
    assert_eq!(view.areas.len(), 47);
    assert!(
        view.areas.iter().all(|a| a.kind == "municipality"
            && (instant_of(&a.start), instant_of(&a.end)) == (jan1, jan8)),
        "{view:?}"
    );
    let wajima_view = view
        .areas
        .iter()
        .find(|a| a.code == "17204")
        .expect("輪島市");
    assert_eq!(wajima_view.name, "輪島市");
    r.expect(
        "Noto, first week",
        vec![
            (wajima.clone(), before(jan1), NotActivated),
            (wajima.clone(), jan1, ByMunicipality),
            (wajima.clone(), t("2024-01-05 10:03"), ByMunicipality),
            (wajima.clone(), before(jan8), ByMunicipality),
            (wajima.clone(), jan8, NotActivated),
            (suzu.clone(), t("2024-01-03 12:00"), ByMunicipality),
            (kanazawa.clone(), before(jan8), ByMunicipality),
            (kanazawa.clone(), jan8, NotActivated),
            (niigata.clone(), t("2024-01-04 12:00"), ByMunicipality),
            (tokamachi.clone(), t("2024-01-04 12:00"), NotActivated),
            (toyama.clone(), t("2024-01-04 12:00"), ByMunicipality),
            (sakai.clone(), before(jan8), ByMunicipality),
            (fukui.clone(), t("2024-01-04 12:00"), NotActivated),
            (nonoichi.clone(), t("2024-01-04 12:00"), NotActivated),
            (kawakita.clone(), t("2024-01-04 12:00"), NotActivated),
            (ishikawa_unregistered.clone(), before(jan1), NotActivated),
            (
                ishikawa_unregistered.clone(),
                t("2024-01-04 12:00"),
                NotInRegistry,
            ),
            (ishikawa_unregistered.clone(), jan8, NotActivated),
            (shinjuku.clone(), t("2024-01-04 12:00"), NotActivated),
        ],
    )
    .await;

    // 7 January: 18 municipalities to the end of 14 January.
    let t2 = t("2024-01-07 15:00");
    let view = r
        .extend(
            t2,
            "令和6年1月7日付事務連絡",
            municipalities(&noto_extended_18()),
            end_of_day("2024-01-14"),
        )
        .await;
    assert_eq!(view.revision, 2);
    r.expect(
        "Noto, 18 extended to 14 January",
        vec![
            (wajima.clone(), before(jan8), ByMunicipality),
            (wajima.clone(), jan8, ByMunicipality),
            (wajima.clone(), before(jan15), ByMunicipality),
            (wajima.clone(), jan15, NotActivated),
            (suzu.clone(), jan8, ByMunicipality),
            (noto_town.clone(), before(jan15), ByMunicipality),
            (anamizu.clone(), jan8, ByMunicipality),
            (anamizu.clone(), jan15, NotActivated),
            (himi.clone(), t("2024-01-10 09:00"), ByMunicipality),
            (kanazawa.clone(), before(jan8), ByMunicipality),
            (kanazawa.clone(), jan8, NotActivated),
            (kanazawa.clone(), t("2024-01-10 09:00"), NotActivated),
            (niigata.clone(), before(jan8), ByMunicipality),
            (niigata.clone(), jan8, NotActivated),
            (toyama.clone(), jan8, NotActivated),
            (
                ishikawa_unregistered.clone(),
                t("2024-01-10 09:00"),
                NotInRegistry,
            ),
            (nonoichi.clone(), t("2024-01-10 09:00"), NotActivated),
        ],
    )
    .await;

    // 12 January: Ishikawa's to the end of 31 January, 金沢市 included again (as an
    // extension of its window, which keeps its start).
    let t3 = t("2024-01-12 17:00");
    let mut ishikawa_17: Vec<&str> = ISHIKAWA_FIRST.to_vec();
    ishikawa_17.sort_unstable();
    let view = r
        .extend(
            t3,
            "令和6年1月12日付事務連絡",
            municipalities(&ishikawa_17),
            end_of_day("2024-01-31"),
        )
        .await;
    assert_eq!(view.revision, 3);
    r.expect(
        "Noto, Ishikawa to 31 January",
        vec![
            (wajima.clone(), jan15, ByMunicipality),
            (wajima.clone(), before(feb1), ByMunicipality),
            (wajima.clone(), feb1, NotActivated),
            (kanazawa.clone(), t("2024-01-20 09:00"), ByMunicipality),
            (kanazawa.clone(), before(feb1), ByMunicipality),
            (kanazawa.clone(), feb1, NotActivated),
            (himi.clone(), before(jan15), ByMunicipality),
            (himi.clone(), jan15, NotActivated),
            (nonoichi.clone(), t("2024-01-20 09:00"), NotActivated),
        ],
    )
    .await;

    // 12 January, 17:30: 野々市市 and 川北町 join, from then to the end of 31 January.
    let t4 = t("2024-01-12 17:30");
    let view = r
        .add_areas(
            t4,
            "令和6年1月12日付事務連絡（追加）",
            municipalities(&JOINED),
            instants(t4, feb1),
        )
        .await;
    assert_eq!(view.revision, 4);
    assert_eq!(view.areas.len(), 49);
    r.expect(
        "Noto, 野々市市 and 川北町 join",
        vec![
            (nonoichi.clone(), before(t4), NotActivated),
            (nonoichi.clone(), t4, ByMunicipality),
            (nonoichi.clone(), before(feb1), ByMunicipality),
            (nonoichi.clone(), feb1, NotActivated),
            (kawakita.clone(), t4, ByMunicipality),
            (kawakita.clone(), feb1, NotActivated),
            (wajima.clone(), t4, ByMunicipality),
        ],
    )
    .await;

    // Later extensions, of all 19 of Ishikawa.
    let t5 = t("2024-01-30 12:00");
    r.extend(
        t5,
        "令和6年1月30日付事務連絡",
        municipalities(&ishikawa_19()),
        end_of_day("2024-02-29"),
    )
    .await;
    r.expect(
        "Noto, Ishikawa to 29 February",
        vec![
            (wajima.clone(), feb1, ByMunicipality),
            (wajima.clone(), before(mar1), ByMunicipality),
            (wajima.clone(), mar1, NotActivated),
            (kanazawa.clone(), feb1, ByMunicipality),
            (nonoichi.clone(), t("2024-02-15 09:00"), ByMunicipality),
            (kawakita.clone(), before(mar1), ByMunicipality),
            (niigata.clone(), feb1, NotActivated),
            (himi.clone(), feb1, NotActivated),
        ],
    )
    .await;
    let t6 = t("2024-02-28 12:00");
    r.extend(
        t6,
        "令和6年2月28日付事務連絡",
        municipalities(&ishikawa_19()),
        end_of_day("2024-03-31"),
    )
    .await;
    r.expect(
        "Noto, Ishikawa to 31 March",
        vec![
            (wajima.clone(), mar1, ByMunicipality),
            (wajima.clone(), before(apr1), ByMunicipality),
            (wajima.clone(), apr1, NotActivated),
            (kawakita.clone(), mar8, ByMunicipality),
        ],
    )
    .await;

    // Closed on 7 March at 24:00: every area still open then, i.e. the 19 of Ishikawa.
    let t7 = t("2024-03-06 12:00");
    let view = r
        .end_early(
            t7,
            "令和6年3月6日付事務連絡",
            Areas::default(),
            end_of_day("2024-03-07"),
        )
        .await;
    assert_eq!(view.revision, 7);
    r.expect(
        "Noto, closed 7 March 24:00",
        vec![
            (wajima.clone(), before(mar8), ByMunicipality),
            (wajima.clone(), mar8, NotActivated),
            (nonoichi.clone(), before(mar8), ByMunicipality),
            (kawakita.clone(), mar8, NotActivated),
            (kanazawa.clone(), mar8, NotActivated),
            (ishikawa_unregistered.clone(), before(mar8), NotInRegistry),
            (ishikawa_unregistered.clone(), mar8, NotActivated),
        ],
    )
    .await;

    // From 8 March, one facility of 輪島市 kept open, on application; its
    // neighbours are not.
    let t8 = t("2024-03-07 15:00");
    let view = r
        .add_areas(
            t8,
            "令和6年3月7日付事務連絡（個別医療機関）",
            Areas {
                facilities: vec![wajima.code.clone()],
                ..Areas::default()
            },
            days("2024-03-08", "2024-03-31"),
        )
        .await;
    assert_eq!(view.revision, 8);
    let kept = view
        .areas
        .iter()
        .find(|a| a.kind == "facility")
        .expect("the facility area");
    assert_eq!(kept.code, wajima.code);
    assert!(!kept.name.is_empty(), "named from the registry: {kept:?}");
    r.expect(
        "Noto, a facility kept open",
        vec![
            (wajima.clone(), before(mar8), ByMunicipality),
            (wajima.clone(), mar8, ByFacility),
            (wajima.clone(), t("2024-03-20 10:00"), ByFacility),
            (wajima.clone(), before(apr1), ByFacility),
            (wajima.clone(), apr1, NotActivated),
            (wajima_pharmacy.clone(), before(mar8), ByMunicipality),
            (wajima_pharmacy.clone(), mar8, NotActivated),
            (wajima_dental.clone(), t("2024-03-20 10:00"), NotActivated),
            (nanao.clone(), t("2024-03-20 10:00"), NotActivated),
            // A facility area is not a municipality's: no one is sent to the registry.
            (
                ishikawa_unregistered.clone(),
                t("2024-03-20 10:00"),
                NotActivated,
            ),
        ],
    )
    .await;

    // The auditors' question: was this 輪島市 clinic allowed at 10:03 on 5 January?
    // Yes, by the first notice's window as it stood then (to 8 January 00:00).
    let at_1003 = t("2024-01-05 10:03");
    let d = r.check(&wajima, at_1003, None).await;
    assert_eq!(assert_allowed_by(&d, "municipality", "17204"), (jan1, jan8));
    assert_eq!(d.activation_id, r.id);
    assert_eq!(d.event, "令和6年能登半島地震");
    assert_eq!(d.municipality, "17204");
    // Asked as known now, the same instant is allowed by the window as extended since.
    let d = r.check(&wajima, at_1003, Some(t8)).await;
    assert_eq!(assert_allowed_by(&d, "municipality", "17204"), (jan1, mar8));
    // A 金沢市 clinic on 10 January: not extended then, refused.
    let jan10 = t("2024-01-10 09:00");
    assert_refused(&r.check(&kanazawa, jan10, None).await, "AREA_NOT_ACTIVATED");
    // Its window was later extended from its start, so as recorded after 12 January
    // it reads as covering 10 January: only "as known then" answers what was in
    // force, which is why CheckFacility defaults to it.
    let (s, _) = assert_allowed_by(
        &r.check(&kanazawa, jan10, Some(t3)).await,
        "municipality",
        KANAZAWA,
    );
    assert_eq!(s, jan1);
    assert_refused(
        &r.check(&kanazawa, jan10, Some(before(t3))).await,
        "AREA_NOT_ACTIVATED",
    );
    // In March, the kept facility is allowed by itself, the other 輪島 ones refused.
    let mar10 = t("2024-03-10 10:00");
    let d = r.check(&wajima, mar10, None).await;
    assert_eq!(
        assert_allowed_by(&d, "facility", &wajima.code),
        (mar8, apr1)
    );
    assert_refused(
        &r.check(&wajima_pharmacy, mar10, None).await,
        "AREA_NOT_ACTIVATED",
    );

    // The activation as known at 10:03 on 5 January: revision 1, 47 areas to 8 January.
    let then = r.get(Some(at_1003)).await;
    assert_eq!(then.revision, 1);
    assert_eq!(then.areas.len(), 47);
    assert!(
        then.areas
            .iter()
            .all(|a| (instant_of(&a.start), instant_of(&a.end)) == (jan1, jan8))
    );
    // As known now: 50 areas; Ishikawa's 19 closed 8 March 00:00, 高岡市 and 氷見市
    // on 15 January, the other 26 on 8 January, the facility kept to 1 April.
    let now = r.get(None).await;
    assert_eq!(now.revision, 8);
    assert_eq!(now.areas.len(), 50);
    for a in &now.areas {
        let end = instant_of(&a.end);
        let expected = if a.kind == "facility" {
            apr1
        } else if a.code.starts_with("17") {
            mar8
        } else if ["16202", "16205"].contains(&a.code.as_str()) {
            jan15
        } else {
            jan8
        };
        assert_eq!(end, expected, "{a:?}");
    }

    // Every revision, in order, with its kind, time and author.
    let history = r.history().await;
    let got: Vec<(u32, &str, DateTime<Utc>, usize)> = history
        .revisions
        .iter()
        .map(|v| {
            (
                v.number,
                v.kind.as_str(),
                instant_of(&v.recorded_at),
                v.windows.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "create", t1, 47),
            (2, "extend", t2, 18),
            (3, "extend", t3, 17),
            (4, "add_areas", t4, 2),
            (5, "extend", t5, 19),
            (6, "extend", t6, 19),
            (7, "end", t7, 19),
            (8, "add_areas", t8, 1),
        ]
    );
    assert!(history.revisions.iter().all(|v| v.author == "operator-1"));
    assert_eq!(history.revisions[1].notice, "令和6年1月7日付事務連絡");
    let closed = &history.revisions[6];
    assert!(
        closed
            .windows
            .iter()
            .all(|w| w.code.starts_with("17") && instant_of(&w.end) == mar8),
        "{closed:?}"
    );
    r.replay_history().await;
}

// ---------------------------------------------------------------------------
// 令和6年台風第10号: all of Kagoshima, 24 municipalities of Miyazaki and 蒲郡市, one
// week to the end of 3 September 2024. DOMAIN does not list the 24: the master
// holds Miyazaki's 26, of which we leave out 西米良村 and 五ヶ瀬町.

const MIYAZAKI_LEFT_OUT: [&str; 2] = ["45403", "45443"];

fn miyazaki_24() -> Vec<String> {
    let v: Vec<String> = onshi_gateway::activation::registry::synthetic_municipalities()
        .into_iter()
        .filter(|m| m.code.starts_with("45") && !MIYAZAKI_LEFT_OUT.contains(&m.code.as_str()))
        .map(|m| m.code)
        .collect();
    assert_eq!(v.len(), 24, "{v:?}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typhoon_10_2024_a_prefecture_municipalities_and_one_city_elsewhere() {
    let (start, end) = (t("2024-08-28 00:00"), t("2024-09-04 00:00"));
    let created = t("2024-08-28 18:00");
    let mut r = Replay::start(created).await;
    let view = r
        .create(
            created,
            "令和6年台風第10号",
            "令和6年8月28日付事務連絡",
            Areas {
                prefectures: strings(&["46"]),
                municipalities: miyazaki_24().into_iter().chain(["23214".into()]).collect(),
                facilities: Vec::new(),
            },
            one_week_from("2024-08-28"),
        )
        .await;
    assert_eq!(view.areas.len(), 26);
    assert!(
        view.areas
            .iter()
            .all(|a| (instant_of(&a.start), instant_of(&a.end)) == (start, end))
    );

    let miyazaki = clinic("45201");
    let nobeoka = pharmacy("45203");
    let takachiho = clinic("45441");
    let nishimera = clinic("45403");
    let gokase = dental("45443");
    let kagoshima = clinic("46201");
    let amami = pharmacy("46222");
    let kirishima = dental("46218");
    let kagoshima_unregistered = unregistered(46);
    let miyazaki_unregistered = unregistered(45);
    let gamagori = clinic("23214");
    let toyohashi = clinic("23201");
    let nagoya_naka = pharmacy("23106");
    let aichi_unregistered = unregistered(23);
    let kumamoto = clinic("43100");
    for f in [
        &kagoshima_unregistered,
        &miyazaki_unregistered,
        &aichi_unregistered,
    ] {
        r.assert_unregistered(f).await;
    }
    let mid = t("2024-08-30 14:00");
    r.expect(
        "Typhoon No. 10",
        vec![
            (miyazaki.clone(), before(start), NotActivated),
            (miyazaki.clone(), start, ByMunicipality),
            (miyazaki.clone(), before(end), ByMunicipality),
            (miyazaki.clone(), end, NotActivated),
            (nobeoka.clone(), mid, ByMunicipality),
            (takachiho.clone(), mid, ByMunicipality),
            (nishimera.clone(), mid, NotActivated),
            (gokase.clone(), start, NotActivated),
            (miyazaki_unregistered.clone(), mid, NotInRegistry),
            (kagoshima.clone(), before(start), NotActivated),
            (kagoshima.clone(), start, ByPrefecture),
            (kagoshima.clone(), before(end), ByPrefecture),
            (kagoshima.clone(), end, NotActivated),
            (amami.clone(), mid, ByPrefecture),
            (kirishima.clone(), mid, ByPrefecture),
            (kagoshima_unregistered.clone(), mid, ByPrefecture),
            (gamagori.clone(), before(start), NotActivated),
            (gamagori.clone(), start, ByMunicipality),
            (gamagori.clone(), before(end), ByMunicipality),
            (gamagori.clone(), end, NotActivated),
            (toyohashi.clone(), mid, NotActivated),
            (nagoya_naka.clone(), mid, NotActivated),
            // A municipality of Aichi is open, so an unregistered Aichi facility
            // cannot be told apart from one in 蒲郡市.
            (aichi_unregistered.clone(), mid, NotInRegistry),
            (aichi_unregistered.clone(), end, NotActivated),
            (kumamoto.clone(), mid, NotActivated),
        ],
    )
    .await;

    let d = r.check(&gamagori, mid, None).await;
    let area = d.area.as_ref().expect("area");
    assert_eq!(
        (area.code.as_str(), area.name.as_str()),
        ("23214", "蒲郡市")
    );
    let d = r.check(&kagoshima, mid, None).await;
    assert_eq!(d.area.as_ref().expect("area").name, "鹿児島県");
    r.replay_history().await;
}

//! `onshi-gateway activation …`: the operators' commands, each a call to the
//! activation admin service of a running gateway (`--admin`), so that a change is
//! validated, recorded and put in force exactly as through any other client.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::cli::InvalidInput;
use crate::cli::admin_connection::AdminArgs;
use crate::domain::jst::{parse_instant, to_jst_string};
use crate::proto::activation_admin_service_client::ActivationAdminServiceClient;
use crate::proto::{self, window_end, window_spec};

#[derive(Debug, Subcommand)]
pub enum ActivationCommand {
    /// Open the emergency function for areas and a window (Japan time, half-open).
    ///
    /// Fukushima-oki 2022: --event 令和4年福島沖地震 --prefecture 04,07 --from 2022-03-17 --last-day 2022-03-23
    Create(CreateArgs),
    /// Add areas, with their own window, to a running activation.
    AddAreas(AddAreasArgs),
    /// Move the end of some areas (default: all) later.
    Extend(NewEndArgs),
    /// Move the end of some areas (default: all still open) earlier.
    End(NewEndArgs),
    /// One activation: its areas and windows, now or as known at a past instant.
    Show(ShowArgs),
    /// Every revision of an activation: who changed what, when, on which notice.
    History(IdArgs),
    /// Every activation.
    List(AdminArgs),
    /// What areas would open (prefectures, municipalities, facility counts) and what not.
    Preview(PreviewArgs),
    /// Whether a facility was allowed at an instant, as known then.
    ///
    /// When the answer as known then differs from the answer as known now (a
    /// change recorded later covered or ended that instant), both are shown.
    ///
    /// Exit status: 0 allowed (as known then), 4 refused (as known then), 2 bad
    /// input, 1 any other error (e.g. the gateway cannot be reached).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct AreaArgs {
    /// Prefecture codes (JIS X 0401), comma-separated: 04,07.
    #[arg(long, value_delimiter = ',')]
    pub prefecture: Vec<String>,
    /// Municipality codes (JIS X 0402, 5 digits or 6 with the check digit), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub municipality: Vec<String>,
    /// Single facility codes (10 digits), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub facility: Vec<String>,
}

impl AreaArgs {
    fn to_proto(&self) -> Option<proto::Areas> {
        let trimmed = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Some(proto::Areas {
            prefectures: trimmed(&self.prefecture),
            municipalities: trimmed(&self.municipality),
            facilities: trimmed(&self.facility),
        })
    }
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    /// First instant: YYYY-MM-DD (00:00 JST), YYYY-MM-DDTHH:MM (JST) or RFC 3339.
    #[arg(long)]
    pub from: String,
    /// First instant no longer covered (exclusive); "2022-03-23 24:00" is allowed.
    #[arg(long, conflicts_with_all = ["last_day", "one_week"])]
    pub until: Option<String>,
    /// Last day covered, inclusive, to its 24:00 JST.
    #[arg(long, conflicts_with = "one_week")]
    pub last_day: Option<String>,
    /// One week from --from (a date): the notice's default window.
    #[arg(long)]
    pub one_week: bool,
}

impl WindowArgs {
    fn to_proto(&self) -> anyhow::Result<proto::WindowSpec> {
        let form = match (&self.until, &self.last_day, self.one_week) {
            (Some(until), None, false) => window_spec::Form::Instants(proto::Instants {
                start: Some(timestamp(instant("--from", &self.from)?)),
                end: Some(timestamp(instant("--until", until)?)),
            }),
            (None, Some(last), false) => window_spec::Form::Days(proto::Days {
                first_day: self.from.clone(),
                last_day: last.clone(),
            }),
            (None, None, true) => window_spec::Form::OneWeekFrom(self.from.clone()),
            _ => {
                return Err(invalid(
                    "--until",
                    "give exactly one of --until (exclusive instant), --last-day (inclusive day), --one-week",
                ));
            }
        };
        Ok(proto::WindowSpec { form: Some(form) })
    }
}

#[derive(Debug, Args)]
pub struct NewEnd {
    /// The new end, an instant (exclusive): RFC 3339, YYYY-MM-DDTHH:MM (JST), "YYYY-MM-DD 24:00".
    #[arg(long, conflicts_with = "last_day")]
    pub until: Option<String>,
    /// The new last day, to its 24:00 JST.
    #[arg(long)]
    pub last_day: Option<String>,
}

impl NewEnd {
    fn to_proto(&self) -> anyhow::Result<proto::WindowEnd> {
        let form = match (&self.until, &self.last_day) {
            (Some(t), None) => window_end::Form::At(timestamp(instant("--until", t)?)),
            (None, Some(d)) => window_end::Form::EndOfDay(d.clone()),
            _ => {
                return Err(invalid(
                    "--until",
                    "give --until (an instant) or --last-day (a day)",
                ));
            }
        };
        Ok(proto::WindowEnd { form: Some(form) })
    }
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Who makes the change (recorded with the revision).
    #[arg(long)]
    pub by: String,
    /// The notice the change follows, e.g. 令和6年1月9日付事務連絡.
    #[arg(long, default_value = "")]
    pub notice: String,
    /// Apply only if the activation is still at this revision.
    #[arg(long, default_value_t = 0)]
    pub expected_revision: u32,
}

impl ChangeArgs {
    fn to_proto(&self) -> Option<proto::ChangeContext> {
        Some(proto::ChangeContext {
            author: self.by.clone(),
            notice: self.notice.clone(),
            expected_revision: self.expected_revision,
        })
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Name of the event, e.g. 令和4年福島沖地震.
    #[arg(long)]
    pub event: String,
    #[command(flatten)]
    pub areas: AreaArgs,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct AddAreasArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub activation_id: String,
    #[command(flatten)]
    pub areas: AreaArgs,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// Extend or end: the activation, its areas and their new end.
#[derive(Debug, Args)]
pub struct NewEndArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub activation_id: String,
    #[command(flatten)]
    pub areas: AreaArgs,
    #[command(flatten)]
    pub end: NewEnd,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub activation_id: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub activation_id: String,
    /// The state known at this instant.
    #[arg(long)]
    pub as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(flatten)]
    pub areas: AreaArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub facility: String,
    /// The instant to decide at (default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Decide by the state known at this instant (default: --at).
    #[arg(long)]
    pub as_of: Option<String>,
}

pub(crate) fn invalid(flag: &str, message: impl Into<String>) -> anyhow::Error {
    InvalidInput {
        flag: flag.to_string(),
        message: message.into(),
    }
    .into()
}

pub(crate) fn instant(flag: &str, s: &str) -> anyhow::Result<DateTime<Utc>> {
    parse_instant(flag, s).map_err(|m| invalid(flag, m))
}

/// The instant `flag` gives, if any, for the admin service.
fn optional_instant(flag: &str, s: Option<&str>) -> anyhow::Result<Option<prost_types::Timestamp>> {
    s.map(|s| instant(flag, s).map(timestamp)).transpose()
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn shown(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(to_jst_string)
        .unwrap_or_else(|| "-".into())
}

async fn client(admin: &AdminArgs) -> anyhow::Result<ActivationAdminServiceClient<Channel>> {
    Ok(ActivationAdminServiceClient::new(admin.connect().await?))
}

/// A refusal from the service, with its reason and field: exit code 2 when the
/// input was at fault.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    let details = status.get_error_details();
    let reason = details
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default();
    let field = details
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default();
    if status.code() == tonic::Code::InvalidArgument {
        return InvalidInput {
            flag: if field.is_empty() {
                reason.clone()
            } else {
                field
            },
            message: format!("{reason}: {}", status.message()),
        }
        .into();
    }
    anyhow::anyhow!("{:?} {reason}: {}", status.code(), status.message())
}

fn print_view(v: &proto::ActivationView) {
    println!(
        "activation {}  {}  (revision {}, by {}, notice {:?})",
        v.id, v.event, v.revision, v.created_by, v.notice
    );
    for a in &v.areas {
        print_area("  ", a);
    }
}

fn print_area(indent: &str, a: &proto::AreaWindow) {
    println!(
        "{indent}{:<12} {:<10} {:<16} [{} .. {})",
        a.kind,
        a.code,
        a.name,
        shown(a.start.as_ref()),
        shown(a.end.as_ref())
    );
}

/// Exit status of `activation check` for a facility refused (as known then):
/// distinct from errors (1), bad input (2) and a broken access log (3).
pub const REFUSED_EXIT_STATUS: u8 = 4;

/// What a command found, beyond success or error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `check`: the facility was refused (exit [`REFUSED_EXIT_STATUS`]).
    Refused,
}

pub async fn run(command: ActivationCommand) -> anyhow::Result<Outcome> {
    match command {
        ActivationCommand::Create(a) => create(a).await,
        ActivationCommand::AddAreas(a) => add_areas(a).await,
        ActivationCommand::Extend(a) => move_end(a, Direction::Later).await,
        ActivationCommand::End(a) => move_end(a, Direction::Earlier).await,
        ActivationCommand::Show(a) => show(a).await,
        ActivationCommand::History(a) => history(a).await,
        ActivationCommand::List(a) => list(&a).await,
        ActivationCommand::Preview(a) => preview(a).await,
        ActivationCommand::Check(a) => return check(a).await,
    }
    .map(|()| Outcome::Done)
}

/// One change through the admin service, then the activation as it now stands.
async fn change<F, Fut>(admin: &AdminArgs, call: F) -> anyhow::Result<()>
where
    F: FnOnce(ActivationAdminServiceClient<Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<proto::ActivationView>, tonic::Status>>,
{
    let v = call(client(admin).await?).await.map_err(refused)?;
    print_view(v.get_ref());
    Ok(())
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let request = proto::CreateActivationRequest {
        event: a.event.clone(),
        areas: a.areas.to_proto(),
        window: Some(a.window.to_proto()?),
        change: a.change.to_proto(),
    };
    change(&a.admin, |mut c| async move {
        c.create_activation(request).await
    })
    .await
}

async fn add_areas(a: AddAreasArgs) -> anyhow::Result<()> {
    let request = proto::AddAreasRequest {
        activation_id: a.activation_id.clone(),
        areas: a.areas.to_proto(),
        window: Some(a.window.to_proto()?),
        change: a.change.to_proto(),
    };
    change(&a.admin, |mut c| async move { c.add_areas(request).await }).await
}

/// Which way `extend` and `end` move an end.
enum Direction {
    Later,
    Earlier,
}

async fn move_end(a: NewEndArgs, direction: Direction) -> anyhow::Result<()> {
    let end = Some(a.end.to_proto()?);
    let activation_id = a.activation_id.clone();
    let (areas, change) = (a.areas.to_proto(), a.change.to_proto());
    let mut c = client(&a.admin).await?;
    let v = match direction {
        Direction::Later => {
            let request = proto::ExtendWindowRequest {
                activation_id,
                areas,
                until: end,
                change,
            };
            c.extend_window(request).await
        }
        Direction::Earlier => {
            let request = proto::EndEarlyRequest {
                activation_id,
                areas,
                at: end,
                change,
            };
            c.end_early(request).await
        }
    };
    print_view(v.map_err(refused)?.get_ref());
    Ok(())
}

async fn show(a: ShowArgs) -> anyhow::Result<()> {
    let request = proto::GetActivationRequest {
        activation_id: a.activation_id.clone(),
        as_known_at: optional_instant("--as-of", a.as_of.as_deref())?,
    };
    change(
        &a.admin,
        |mut c| async move { c.get_activation(request).await },
    )
    .await
}

async fn history(a: IdArgs) -> anyhow::Result<()> {
    let h = client(&a.admin)
        .await?
        .get_history(proto::GetHistoryRequest {
            activation_id: a.activation_id.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    if let Some(v) = &h.activation {
        print_view(v);
    }
    for r in &h.revisions {
        println!(
            "revision {} {} at {} by {} (notice {:?})",
            r.number,
            r.kind,
            shown(r.recorded_at.as_ref()),
            r.author,
            r.notice
        );
        for w in &r.windows {
            print_area("    ", w);
        }
    }
    for c in &h.site_changes {
        println!(
            "site {} {} #{} {} at {} by {}, valid until {} {}",
            c.site_id,
            c.site_name,
            c.number,
            c.kind,
            shown(c.recorded_at.as_ref()),
            c.author,
            shown(c.valid_until.as_ref()),
            c.detail
        );
    }
    Ok(())
}

async fn list(admin: &AdminArgs) -> anyhow::Result<()> {
    let list = client(admin)
        .await?
        .list_activations(proto::ListActivationsRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    for v in &list.activations {
        print_view(v);
    }
    Ok(())
}

async fn preview(a: PreviewArgs) -> anyhow::Result<()> {
    let p = client(&a.admin)
        .await?
        .preview_areas(proto::PreviewAreasRequest {
            areas: a.areas.to_proto(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    println!("facilities opened: {}", p.facilities_opened);
    for pref in &p.prefectures {
        print_prefecture(pref);
    }
    for f in &p.facilities {
        println!(
            "facility {} {} {}",
            f.code,
            f.name,
            if f.in_registry {
                format!("in municipality {}", f.municipality)
            } else {
                "NOT in the registry".to_string()
            }
        );
    }
    for s in &p.sites {
        println!(
            "site {} {} ({}) in municipality {}, sponsored by {}, activation {}{}",
            s.site_id,
            s.name,
            s.kind,
            s.municipality,
            s.sponsor,
            s.activation_id,
            if s.closed { ", closed" } else { "" }
        );
    }
    Ok(())
}

fn print_prefecture(pref: &proto::PrefecturePreview) {
    println!(
        "{} {}{}: {} facilities opened, {} not",
        pref.code,
        pref.name,
        if pref.whole {
            " (whole prefecture)"
        } else {
            ""
        },
        pref.facilities_opened,
        pref.facilities_not_opened
    );
    for (label, municipalities) in [
        ("opened    ", &pref.municipalities_opened),
        ("not opened", &pref.municipalities_not_opened),
    ] {
        for m in municipalities {
            println!(
                "  {label}  {} {} ({} facilities)",
                m.code, m.name, m.facilities
            );
        }
    }
}

/// The decision as known then (at `--as-of`, default `--at`), and, when it
/// differs, as known now.
async fn check(a: CheckArgs) -> anyhow::Result<Outcome> {
    let at = optional_instant("--at", a.at.as_deref())?;
    let as_of = optional_instant("--as-of", a.as_of.as_deref())?;
    let request = proto::CheckFacilityRequest {
        facility_code: a.facility.clone(),
        at,
        as_known_at: as_of,
    };
    let mut c = client(&a.admin).await?;
    let then = c
        .check_facility(request.clone())
        .await
        .map_err(refused)?
        .into_inner();
    // With neither flag, "then" is now: there is nothing to compare.
    let now = if at.is_some() || as_of.is_some() {
        let now = Utc::now();
        let request = proto::CheckFacilityRequest {
            as_known_at: Some(timestamp(now)),
            ..request
        };
        let decision = c.check_facility(request).await.map_err(refused)?;
        Some((now, decision.into_inner()))
    } else {
        None
    };
    match now {
        Some((now, known_now)) if !same_answer(&then, &known_now) => {
            let known_then = as_of.as_ref().or(at.as_ref());
            println!("as known at {}: {}", shown(known_then), answer(&then));
            println!(
                "as known now ({}): {}",
                to_jst_string(now),
                answer(&known_now)
            );
        }
        _ => println!("{}", answer(&then)),
    }
    Ok(if then.allowed {
        Outcome::Done
    } else {
        Outcome::Refused
    })
}

/// Whether two decisions say the same, whatever instants they explain.
fn same_answer(a: &proto::FacilityDecision, b: &proto::FacilityDecision) -> bool {
    (a.allowed, &a.activation_id, &a.area, &a.reason)
        == (b.allowed, &b.activation_id, &b.area, &b.reason)
}

/// One line: ALLOWED by what, or REFUSED and why.
fn answer(d: &proto::FacilityDecision) -> String {
    if d.allowed {
        let area = d.area.clone().unwrap_or_default();
        format!(
            "ALLOWED by {} ({}) through {} {} [{} .. {})",
            d.activation_id,
            d.event,
            area.kind,
            area.code,
            shown(area.start.as_ref()),
            shown(area.end.as_ref())
        )
    } else {
        format!("REFUSED {}: {}", d.reason, d.explanation)
    }
}

//! The operators' activation service: create, widen, extend and end activations,
//! read them back as known now or at any past instant, preview areas, and check a
//! facility at an instant. Every change is validated whole before anything is
//! written, recorded as a revision, and in force on this replica (the cache is
//! reloaded) before the call returns.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tonic::{Request, Response, Status};

use crate::activation::cache::ActivationCache;
use crate::activation::index::{AreaIndex, decide};
use crate::clock::SharedClock;
use crate::domain::activation_change::{self, AreaWindow, Change};
use crate::domain::facility::parse_facility_code;
use crate::domain::jst::{Window, midnight_jst, to_jst_string};
use crate::domain::municipality::parse_municipality_code;
use crate::domain::prefecture::Prefecture;
use crate::domain::{Reason, Violation};
use crate::proto::activation_admin_service_server::ActivationAdminService;
use crate::proto::{self, window_end, window_spec};
use crate::status::status_of;
use crate::status::status_with_code;
use crate::store::{Activation, AreaKey, NewActivation, Store, StoreError};

pub struct ActivationAdmin {
    store: Arc<dyn Store>,
    cache: ActivationCache,
    clock: SharedClock,
}

impl ActivationAdmin {
    pub fn new(store: Arc<dyn Store>, cache: ActivationCache, clock: SharedClock) -> Self {
        ActivationAdmin {
            store,
            cache,
            clock,
        }
    }
}

fn refuse(reason: Reason, field: &str, description: impl Into<String>) -> Status {
    status_of(&Violation::new(reason, field, description))
}

/// Bad input from an operator is INVALID_ARGUMENT whatever the reason's usual code.
fn bad_input(v: &Violation) -> Status {
    status_with_code(v, tonic::Code::InvalidArgument)
}

fn store_error(e: StoreError) -> Status {
    status_of(&Violation::new(
        Reason::ActivationStoreUnavailable,
        "",
        format!("the activation registry cannot be written or read: {e}"),
    ))
}

pub(crate) fn instant(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Status> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
        .ok_or_else(|| {
            refuse(
                Reason::ActivationWindowInvalid,
                field,
                format!("{field} is not a valid instant"),
            )
        })
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn day(field: &str, s: &str) -> Result<NaiveDate, Status> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        refuse(
            Reason::ActivationWindowInvalid,
            field,
            format!("{field}: {s:?} is not a date YYYY-MM-DD"),
        )
    })
}

/// The window in whichever of the notices' forms it was given.
pub fn window_of(field: &str, spec: Option<&proto::WindowSpec>) -> Result<Window, Status> {
    let invalid = |f: String, e: String| refuse(Reason::ActivationWindowInvalid, &f, e);
    match spec.and_then(|s| s.form.as_ref()) {
        None => Err(invalid(
            field.to_string(),
            "give the window: instants, whole days, or one week from a date".into(),
        )),
        Some(window_spec::Form::Instants(i)) => {
            let start = i
                .start
                .as_ref()
                .ok_or_else(|| {
                    invalid(
                        format!("{field}.instants.start"),
                        "the start is missing".into(),
                    )
                })
                .and_then(|t| instant(&format!("{field}.instants.start"), t))?;
            let end = i
                .end
                .as_ref()
                .ok_or_else(|| {
                    invalid(format!("{field}.instants.end"), "the end is missing".into())
                })
                .and_then(|t| instant(&format!("{field}.instants.end"), t))?;
            Window::new(start, end)
                .map_err(|e| invalid(format!("{field}.instants.end"), e.to_string()))
        }
        Some(window_spec::Form::Days(d)) => {
            let first = day(&format!("{field}.days.first_day"), &d.first_day)?;
            let last = day(&format!("{field}.days.last_day"), &d.last_day)?;
            Window::days(first, last)
                .map_err(|e| invalid(format!("{field}.days.last_day"), e.to_string()))
        }
        Some(window_spec::Form::OneWeekFrom(d)) => Ok(Window::one_week_from(day(
            &format!("{field}.one_week_from"),
            d,
        )?)),
    }
}

fn end_of(field: &str, end: Option<&proto::WindowEnd>) -> Result<DateTime<Utc>, Status> {
    match end.and_then(|e| e.form.as_ref()) {
        None => Err(refuse(
            Reason::ActivationWindowInvalid,
            field,
            "give the new end: an instant, or a day whose 24:00 JST it is",
        )),
        Some(window_end::Form::At(t)) => instant(&format!("{field}.at"), t),
        Some(window_end::Form::EndOfDay(d)) => {
            let f = format!("{field}.end_of_day");
            let date = day(&f, d)?;
            date.succ_opt().and_then(midnight_jst).ok_or_else(|| {
                refuse(
                    Reason::ActivationWindowInvalid,
                    &f,
                    format!("{d} is out of range"),
                )
            })
        }
    }
}

impl ActivationAdmin {
    /// The areas named, each validated; municipalities must be in the master.
    async fn areas(
        &self,
        field: &str,
        areas: Option<&proto::Areas>,
    ) -> Result<Vec<AreaKey>, Status> {
        let Some(areas) = areas else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, p) in areas.prefectures.iter().enumerate() {
            let f = format!("{field}.prefectures[{i}]");
            let prefecture = Prefecture::parse(p).ok_or_else(|| {
                refuse(
                    Reason::PrefectureCodeUnknown,
                    &f,
                    format!("{p:?} is not a prefecture code 01-47 (JIS X 0401)"),
                )
            })?;
            out.push(AreaKey::Prefecture(prefecture.code()));
        }
        for (i, m) in areas.municipalities.iter().enumerate() {
            let f = format!("{field}.municipalities[{i}]");
            let code = parse_municipality_code(&f, m).map_err(|v| status_of(&v))?;
            if self
                .store
                .municipality(code.as_str())
                .await
                .map_err(store_error)?
                .is_none()
            {
                return Err(status_of(
                    &Violation::new(
                        Reason::MunicipalityUnknown,
                        &f,
                        format!("{code} is not in the municipality master (JIS X 0402)"),
                    )
                    .with("municipality", code.to_string()),
                ));
            }
            out.push(AreaKey::Municipality(code.to_string()));
        }
        for (i, c) in areas.facilities.iter().enumerate() {
            let f = format!("{field}.facilities[{i}]");
            let code = parse_facility_code(&f, c).map_err(|v| bad_input(&v))?;
            out.push(AreaKey::Facility(code.to_string()));
        }
        Ok(out)
    }

    fn author(change: Option<&proto::ChangeContext>) -> Result<(String, String, u32), Status> {
        let c = change.cloned().unwrap_or_default();
        let author = c.author.trim().to_string();
        if author.is_empty() {
            return Err(refuse(
                Reason::ChangeAuthorMissing,
                "change.author",
                "name the operator making the change: every revision is attributed",
            ));
        }
        Ok((author, c.notice.trim().to_string(), c.expected_revision))
    }

    async fn load(&self, id: &str) -> Result<Activation, Status> {
        self.store
            .activation(id.trim())
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                refuse(
                    Reason::ActivationNotFound,
                    "activation_id",
                    format!("no activation has the id {id:?}"),
                )
            })
    }

    /// Validates `change` against the activation's current windows, records it as
    /// the next revision, and reloads this replica's cache.
    async fn revise(
        &self,
        id: &str,
        context: Option<&proto::ChangeContext>,
        change: Change,
    ) -> Result<Response<proto::ActivationView>, Status> {
        let (author, notice, expected) = Self::author(context)?;
        let mut activation = self.load(id).await?;
        let latest = activation.latest_revision();
        if expected != 0 && expected != latest {
            return Err(conflict(expected, latest));
        }
        let windows =
            activation_change::apply(&activation.areas(), &change).map_err(|v| status_of(&v))?;
        let revision = activation_change::Revision {
            number: latest + 1,
            recorded_at: self.clock.now(),
            author,
            notice,
            kind: change.kind(),
            windows,
        };
        match self.store.add_revision(&activation.id, &revision).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(conflict(latest, latest + 1)),
            Err(e) => return Err(store_error(e)),
        }
        self.in_force().await;
        activation.revisions.push(revision);
        Ok(Response::new(self.view(&activation, None).await))
    }

    /// Makes a change made here decide this replica's next call.
    async fn in_force(&self) {
        if let Err(e) = self.cache.refresh().await {
            // Recorded, but this replica could not reload: it will on the next call.
            tracing::warn!(error = %e, "activation recorded; reloading the cache failed");
            self.cache.invalidate();
        }
    }

    async fn area_view(&self, w: &AreaWindow) -> proto::AreaWindow {
        let name = match &w.area {
            AreaKey::Prefecture(p) => Prefecture::new(*p).map(|p| p.name_ja().to_string()),
            AreaKey::Municipality(m) => self
                .store
                .municipality(m)
                .await
                .ok()
                .flatten()
                .map(|m| m.name),
            AreaKey::Facility(f) => self.store.facility(f).await.ok().flatten().map(|f| f.name),
        };
        proto::AreaWindow {
            kind: w.area.kind().to_string(),
            code: w.area.code(),
            name: name.unwrap_or_default(),
            start: Some(timestamp(w.window.start)),
            end: Some(timestamp(w.window.end)),
        }
    }

    async fn view(&self, a: &Activation, known_at: Option<DateTime<Utc>>) -> proto::ActivationView {
        let (areas, revision) = match known_at {
            None => (a.areas(), a.latest_revision()),
            Some(t) => (
                a.areas_at(t),
                a.revisions
                    .iter()
                    .filter(|r| r.recorded_at <= t)
                    .map(|r| r.number)
                    .max()
                    .unwrap_or(0),
            ),
        };
        let mut views = Vec::with_capacity(areas.len());
        for w in &areas {
            views.push(self.area_view(w).await);
        }
        proto::ActivationView {
            id: a.id.clone(),
            event: a.event.clone(),
            notice: a.notice.clone(),
            created_by: a.created_by.clone(),
            created_at: Some(timestamp(a.created_at)),
            revision,
            areas: views,
        }
    }
}

type ViewReply = Result<Response<proto::ActivationView>, Status>;

/// The revisions of an activation over some of its areas, as requested.
enum AreaRevision {
    Add(proto::AddAreasRequest),
    Extend(proto::ExtendWindowRequest),
    End(proto::EndEarlyRequest),
}

impl ActivationAdmin {
    /// Reads the areas first, then what the revision does to them, so a request
    /// with several errors is told of the areas' first, as for a creation.
    async fn revise_areas(&self, request: AreaRevision) -> ViewReply {
        let (id, context, areas) = match &request {
            AreaRevision::Add(r) => (&r.activation_id, &r.change, &r.areas),
            AreaRevision::Extend(r) => (&r.activation_id, &r.change, &r.areas),
            AreaRevision::End(r) => (&r.activation_id, &r.change, &r.areas),
        };
        let areas = self.areas("areas", areas.as_ref()).await?;
        let change = match &request {
            AreaRevision::Add(r) => Change::AddAreas {
                areas,
                window: window_of("window", r.window.as_ref())?,
            },
            AreaRevision::Extend(r) => Change::Extend {
                areas,
                until: end_of("until", r.until.as_ref())?,
            },
            AreaRevision::End(r) => Change::End {
                areas,
                at: end_of("at", r.at.as_ref())?,
            },
        };
        self.revise(id, context.as_ref(), change).await
    }
}

fn conflict(expected: u32, latest: u32) -> Status {
    status_of(
        &Violation::new(
            Reason::ActivationRevisionConflict,
            "change.expected_revision",
            format!(
                "the activation is at revision {latest}, not {expected}: someone else changed it; read it again"
            ),
        )
        .with("latest_revision", latest.to_string()),
    )
}

#[tonic::async_trait]
impl ActivationAdminService for ActivationAdmin {
    async fn create_activation(
        &self,
        request: Request<proto::CreateActivationRequest>,
    ) -> Result<Response<proto::ActivationView>, Status> {
        let r = request.into_inner();
        let event = r.event.trim().to_string();
        if event.is_empty() {
            return Err(refuse(
                Reason::ActivationEventMissing,
                "event",
                "name the event, e.g. 令和6年能登半島地震",
            ));
        }
        let (author, notice, _) = Self::author(r.change.as_ref())?;
        let areas = self.areas("areas", r.areas.as_ref()).await?;
        let window = window_of("window", r.window.as_ref())?;
        // Validates the areas as a whole (none, duplicates) exactly as a revision would.
        activation_change::apply(
            &[],
            &Change::Create {
                areas: areas.clone(),
                window,
            },
        )
        .map_err(|v| status_of(&v))?;
        let activation = self
            .store
            .add_activation(&NewActivation {
                event,
                notice,
                areas,
                window,
                created_by: author,
                at: self.clock.now(),
            })
            .await
            .map_err(store_error)?;
        self.in_force().await;
        Ok(Response::new(self.view(&activation, None).await))
    }

    async fn add_areas(&self, request: Request<proto::AddAreasRequest>) -> ViewReply {
        self.revise_areas(AreaRevision::Add(request.into_inner()))
            .await
    }

    async fn extend_window(&self, request: Request<proto::ExtendWindowRequest>) -> ViewReply {
        self.revise_areas(AreaRevision::Extend(request.into_inner()))
            .await
    }

    async fn end_early(&self, request: Request<proto::EndEarlyRequest>) -> ViewReply {
        self.revise_areas(AreaRevision::End(request.into_inner()))
            .await
    }

    async fn get_activation(
        &self,
        request: Request<proto::GetActivationRequest>,
    ) -> Result<Response<proto::ActivationView>, Status> {
        let r = request.into_inner();
        let known_at = r
            .as_known_at
            .as_ref()
            .map(|t| instant("as_known_at", t))
            .transpose()?;
        let a = self.load(&r.activation_id).await?;
        Ok(Response::new(self.view(&a, known_at).await))
    }

    async fn list_activations(
        &self,
        _request: Request<proto::ListActivationsRequest>,
    ) -> Result<Response<proto::ListActivationsResponse>, Status> {
        let all = self.store.list_activations().await.map_err(store_error)?;
        let mut activations = Vec::with_capacity(all.len());
        for a in &all {
            activations.push(self.view(a, None).await);
        }
        Ok(Response::new(proto::ListActivationsResponse {
            activations,
        }))
    }

    async fn get_history(
        &self,
        request: Request<proto::GetHistoryRequest>,
    ) -> Result<Response<proto::ActivationHistory>, Status> {
        let a = self.load(&request.into_inner().activation_id).await?;
        let mut revisions = Vec::with_capacity(a.revisions.len());
        for r in &a.revisions {
            let mut windows = Vec::with_capacity(r.windows.len());
            for w in &r.windows {
                windows.push(self.area_view(w).await);
            }
            revisions.push(proto::Revision {
                number: r.number,
                recorded_at: Some(timestamp(r.recorded_at)),
                author: r.author.clone(),
                notice: r.notice.clone(),
                kind: r.kind.as_str().to_string(),
                windows,
            });
        }
        let mut site_changes: Vec<proto::SiteChange> = self
            .store
            .list_sites()
            .await
            .map_err(store_error)?
            .iter()
            .filter(|s| s.activation_id == a.id)
            .flat_map(|s| {
                s.revisions.iter().map(|r| proto::SiteChange {
                    site_id: s.id.clone(),
                    site_name: s.name.clone(),
                    number: r.number,
                    recorded_at: Some(timestamp(r.recorded_at)),
                    author: r.author.clone(),
                    kind: r.kind.as_str().to_string(),
                    valid_until: Some(timestamp(r.window.end)),
                    detail: r.detail.clone(),
                })
            })
            .collect();
        site_changes.sort_by_key(|c| c.recorded_at.as_ref().map(|t| (t.seconds, t.nanos)));
        Ok(Response::new(proto::ActivationHistory {
            activation: Some(self.view(&a, None).await),
            revisions,
            site_changes,
        }))
    }

    async fn preview_areas(
        &self,
        request: Request<proto::PreviewAreasRequest>,
    ) -> Result<Response<proto::AreasPreview>, Status> {
        let areas = self
            .areas("areas", request.into_inner().areas.as_ref())
            .await?;
        activation_change::distinct_areas(&areas).map_err(|v| status_of(&v))?;
        crate::activation::preview::preview(self.store.as_ref(), &areas)
            .await
            .map(Response::new)
            .map_err(store_error)
    }

    async fn check_facility(
        &self,
        request: Request<proto::CheckFacilityRequest>,
    ) -> Result<Response<proto::FacilityDecision>, Status> {
        let r = request.into_inner();
        let facility =
            parse_facility_code("facility_code", &r.facility_code).map_err(|v| bad_input(&v))?;
        let at = match &r.at {
            Some(t) => instant("at", t)?,
            None => self.clock.now(),
        };
        let known_at = match &r.as_known_at {
            Some(t) => instant("as_known_at", t)?,
            None => at,
        };
        let activations = self.store.list_activations().await.map_err(store_error)?;
        let index = AreaIndex::build(&activations, Some(known_at));
        let registered = self
            .store
            .facility(facility.as_str())
            .await
            .map_err(store_error)?;
        let municipality = registered
            .as_ref()
            .map(|f| f.municipality.clone())
            .unwrap_or_default();
        let decision = match decide(&index, &facility, registered.as_ref(), at) {
            Ok(allowed) => proto::FacilityDecision {
                allowed: true,
                area: Some(
                    self.area_view(&AreaWindow {
                        area: allowed.area,
                        window: allowed.coverage.window,
                    })
                    .await,
                ),
                activation_id: allowed.coverage.activation_id,
                event: allowed.coverage.event,
                reason: String::new(),
                explanation: format!(
                    "allowed at {} as known at {}",
                    to_jst_string(at),
                    to_jst_string(known_at)
                ),
                municipality,
            },
            Err(v) => proto::FacilityDecision {
                allowed: false,
                activation_id: String::new(),
                event: String::new(),
                area: None,
                reason: v.reason.as_str().to_string(),
                explanation: v.description,
                municipality,
            },
        };
        Ok(Response::new(decision))
    }
}

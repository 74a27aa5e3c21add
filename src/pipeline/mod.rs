//! The request path, top to bottom, for every patient-data RPC:
//!
//! ```text
//! audit ─ identity ─ rate limit ─ audit ready ─ in-flight bound ─ emergency viewing
//!       ─ activation ─ identification ─ request options ─ consent ─ consent kind
//!       ─ [search recorder | summary] ─ upstream
//! ```
//!
//! Emergency viewing comes before activation: a call it accepts in its own mode
//! (a registry-marked emergency hospital, the summary, the exemption) needs no
//! activation; every other call is decided by the activation rule as before.
//!
//! The audit layer is outermost so that a denial by any rule is recorded too, and so
//! that nothing (data or denial) reaches the caller before its record is committed.
//! The per-facility rate limit needs the facility the identity rule establishes; the
//! in-flight bound comes after it, so a facility over its rate never takes a slot, and
//! before everything that reads a store or calls the upstream. While the access log
//! cannot take records, calls stop at "audit ready", before taking a slot.
//!
//! The rules between the audit layer and the endpoint run as one chain in one future
//! (`rule::Chain`), each still timed and traced on its own.

pub mod audit_layer;
pub mod circuit;
pub mod context;
pub mod deadline;
pub mod fault;
pub mod forward;
pub mod patient_request;
pub mod request_options;
pub mod retry;
pub mod rule;
pub mod rules;
pub mod search_recorder;
pub mod summary;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

use crate::activation::cache::ActivationCache;
use crate::audit::AuditWriter;
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::pipeline::rules::activation::ActivationRule;
use crate::pipeline::rules::audit_ready::AuditReadyRule;
use crate::pipeline::rules::consent::ConsentRule;
use crate::pipeline::rules::consent_kind::ConsentKindRule;
use crate::pipeline::rules::emergency_viewing::EmergencyViewingRule;
use crate::pipeline::rules::identification::IdentificationRule;
use crate::pipeline::rules::identity::IdentityRule;
use crate::pipeline::rules::in_flight::InFlightLimit;
use crate::pipeline::rules::rate_limit::{FacilityLimiter, RateLimitRule};
use crate::pipeline::rules::request_options::RequestOptionsRule;
use crate::pipeline::search_recorder::SearchRecorder;
use crate::proto::{GetEmergencySummaryRequest, SearchPatientsRequest};
use crate::store::SearchLedger;
use crate::telemetry::metrics::RequestMetrics;
use crate::tls::identity::IdentitySource;
use audit_layer::AuditLayer;
pub use context::{AccessNote, Note};
use forward::{Forward, Forwardable};
pub use patient_request::PatientRequest;
pub use rule::{Chain, Rule, Rules};
use upstream::Upstream;

/// What the rules and the forwarder need.
#[derive(Clone)]
pub struct Deps {
    pub identity: IdentitySource,
    pub activations: ActivationCache,
    pub ledger: Arc<dyn SearchLedger>,
    pub search_ttl: Duration,
    pub audit: AuditWriter,
    pub upstream: Upstream,
    pub clock: SharedClock,
    pub limits: Limits,
    pub metrics: RequestMetrics,
    /// The calls running to their records; shutdown waits for them.
    pub calls: TaskTracker,
    /// Which calls queue a notice to their patient.
    pub notices: audit_layer::NoticePolicy,
}

/// The load limits, shared by every patient-data RPC: each facility's token bucket
/// and the gateway's slots for calls in flight. Either may be off.
#[derive(Clone, Default)]
pub struct Limits {
    pub facility_rate: Option<FacilityLimiter>,
    pub in_flight: Option<InFlightLimit>,
}

impl Limits {
    pub fn from_config(config: &GatewayConfig) -> Limits {
        Limits {
            facility_rate: FacilityLimiter::new(
                config.facility_rate_per_sec,
                config.facility_burst,
            ),
            in_flight: InFlightLimit::new(config.max_in_flight),
        }
    }
}

pub type Guarded<M> =
    BoxCloneSyncService<Request<M>, Response<<M as PatientRequest>::Reply>, Status>;

/// Puts the rules, in order, in front of `endpoint`.
pub fn guard<M, S>(deps: &Deps, endpoint: S) -> Guarded<M>
where
    M: PatientRequest,
    S: Service<Request<M>, Response = Response<M::Reply>, Error = Status>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let clock = &deps.clock;
    let rules = Chain::<M, _>::new(&deps.metrics)
        .rule(IdentityRule::new(deps.identity).with_sites(deps.activations.clone()))
        .optional(
            deps.limits
                .facility_rate
                .clone()
                .map(|limiter| RateLimitRule::new(limiter, clock.clone())),
        )
        .rule(AuditReadyRule::new(deps.audit.clone()))
        .optional(deps.limits.in_flight.clone())
        .rule(EmergencyViewingRule::new(deps.activations.clone()))
        .rule(ActivationRule::new(deps.activations.clone(), clock.clone()))
        .rule(IdentificationRule::new(
            deps.ledger.clone(),
            clock.clone(),
            deps.search_ttl,
        ))
        .rule(RequestOptionsRule)
        .rule(ConsentRule)
        .rule(ConsentKindRule);
    let stack = ServiceBuilder::new()
        .layer(
            AuditLayer::new(
                deps.audit.clone(),
                deps.clock.clone(),
                deps.metrics.clone(),
                deps.calls.clone(),
            )
            .with_notices(deps.notices),
        )
        .layer(rules.layer())
        .service(endpoint);
    BoxCloneSyncService::new(stack)
}

/// The guarded path of an RPC whose answer goes straight back to the caller.
pub fn forwarded<M: Forwardable>(deps: &Deps) -> Guarded<M> {
    guard(
        deps,
        Forward::new(deps.upstream.clone(), deps.metrics.clone()),
    )
}

/// The guarded path of GetEmergencySummary: its parts are fetched together.
pub fn summary(deps: &Deps) -> Guarded<GetEmergencySummaryRequest> {
    let summary = summary::Summary::new(
        Forward::new(deps.upstream.clone(), deps.metrics.clone()),
        deps.clock.clone(),
    );
    guard(deps, summary)
}

/// The guarded path of SearchPatients: the search is named, and its record opens it in
/// the search ledger for later identification.
pub fn search(deps: &Deps) -> Guarded<SearchPatientsRequest> {
    let recorder = SearchRecorder::new(Forward::new(deps.upstream.clone(), deps.metrics.clone()));
    guard(deps, recorder)
}

//! The request path, top to bottom, for every patient-data RPC:
//!
//! ```text
//! audit ─ identity ─ activation ─ identification ─ consent ─ [search recorder] ─ upstream
//! ```
//!
//! The audit layer is outermost so that a denial by any rule is recorded too, and so
//! that nothing (data or denial) reaches the caller before its record is committed.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

use crate::activation_cache::ActivationCache;
use crate::audit::{AuditLayer, AuditWriter};
use crate::clock::SharedClock;
use crate::proto::SearchPatientsRequest;
use crate::rules::activation::ActivationRule;
use crate::rules::consent::ConsentRule;
use crate::rules::identification::IdentificationRule;
use crate::rules::identity::{IdentityRule, IdentitySource};
use crate::rules::search_recorder::SearchRecorder;
use crate::rules::{PatientRequest, RuleLayer};
use crate::store::SearchLedger;
use crate::upstream::{Forward, Forwardable, Upstream};

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
    let stack = ServiceBuilder::new()
        .layer(AuditLayer::new(deps.audit.clone(), deps.clock.clone()))
        .layer(RuleLayer(IdentityRule::new(deps.identity)))
        .layer(RuleLayer(ActivationRule::new(
            deps.activations.clone(),
            deps.clock.clone(),
        )))
        .layer(RuleLayer(IdentificationRule::new(
            deps.ledger.clone(),
            deps.clock.clone(),
            deps.search_ttl,
        )))
        .layer(RuleLayer(ConsentRule))
        .service(endpoint);
    BoxCloneSyncService::new(stack)
}

/// The guarded path of an RPC whose answer goes straight back to the caller.
pub fn forwarded<M: Forwardable>(deps: &Deps) -> Guarded<M> {
    guard(deps, Forward::new(deps.upstream.clone()))
}

/// The guarded path of SearchPatients: the search is recorded for later identification.
pub fn search(deps: &Deps) -> Guarded<SearchPatientsRequest> {
    let recorder = SearchRecorder::new(
        Forward::new(deps.upstream.clone()),
        deps.ledger.clone(),
        deps.clock.clone(),
    );
    guard(deps, recorder)
}

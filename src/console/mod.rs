//! The operators' console in the browser: server-rendered pages over the same
//! operators' services the gRPC listener serves (activations, the access log and its
//! reviews), on an HTTPS listener of its own with the operators' certificates and
//! CA. The browser presents the operator's client certificate; each page and action
//! is allowed to the roles of the API method it stands for, attributed to the
//! certificate, and audited as that method is. No session, no cookies: every request
//! carries its certificate, every form a CSRF token bound to it.

mod assets;
pub mod caller;
pub mod csrf;
mod error;
mod form;
pub mod headers;
mod history;
mod listener;
pub mod map;
mod notice;
mod now;
mod page;
pub mod paths;
pub mod resolve;
mod review;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::activation::admin::ActivationAdmin;
use crate::activation::site_admin::SiteAdmin;
use crate::audit::read_log::LogWriter;
use crate::audit::service::AuditQueryService;
use crate::clock::SharedClock;
use crate::store::Store;
use crate::tls::acceptor::ReloadableTls;

/// What the pages call: the operators' own service implementations, and the store
/// for the registry's names and shapes.
#[derive(Clone)]
pub struct Console {
    admin: Arc<ActivationAdmin>,
    sites: SiteAdmin,
    audit: Arc<AuditQueryService>,
    store: Arc<dyn Store>,
    log: LogWriter,
    clock: SharedClock,
    csrf: csrf::CsrfKey,
}

impl Console {
    /// `admin` is the activation service with the gateway's cache, so a change made
    /// here is in force on this replica before the page answers.
    /// `csrf`: see [`csrf::CsrfKey::derive`].
    pub fn new(
        (admin, sites): (ActivationAdmin, SiteAdmin),
        store: Arc<dyn Store>,
        log: LogWriter,
        clock: SharedClock,
        csrf: csrf::CsrfKey,
    ) -> Console {
        Console {
            admin: Arc::new(admin),
            sites,
            audit: Arc::new(AuditQueryService::new(store.clone()).with_log(log.clone())),
            store,
            log,
            clock,
            csrf,
        }
    }

    /// Every page and action, with the security headers on each response.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(|| async { Redirect::to("/console/now") }))
            .route("/console", get(|| async { Redirect::to("/console/now") }))
            .route("/console/", get(|| async { Redirect::to("/console/now") }))
            .route("/console/now", get(now::page))
            .route("/console/notice", get(notice::form_page))
            .route(notice::PREVIEW, post(notice::preview))
            .route(notice::CREATE, post(notice::create))
            .route(notice::REVISE, post(notice::revise))
            .route("/console/history", get(history::page))
            .route("/console/review", get(review::page))
            .route(review::OUTCOME, post(review::outcome))
            .route(review::EXPORT, post(review::export))
            .route("/console/assets/{file}", get(assets::file))
            .fallback(error::not_found)
            .layer(axum::middleware::from_fn(headers::secure))
            .with_state(self)
    }
}

/// Serves the console on `listen` with the operators' certificates.
pub async fn start(
    listen: SocketAddr,
    console: Console,
    tls: &ReloadableTls,
) -> anyhow::Result<(
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
)> {
    listener::serve(listen, console.router(), tls).await
}

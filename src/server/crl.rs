//! The site CA's CRL over plain HTTP, beside `/metrics`, for the parties that check
//! site certificates without asking the gateway: a CRL is signed, so it needs no
//! TLS, and relying parties fetch it by URL. The gateway itself never relies on it:
//! every call checks the site registry.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::activation::site_admin::SiteAdmin;

/// Where the CRL is published, DER-encoded (RFC 5280, `application/pkix-crl`).
pub const SITE_CRL_PATH: &str = "/crl/sites.crl";

pub fn routes(sites: SiteAdmin) -> Router {
    Router::new()
        .route(SITE_CRL_PATH, get(site_crl))
        .with_state(sites)
}

async fn site_crl(State(sites): State<SiteAdmin>) -> Response {
    match sites.crl().await {
        Ok((_, der)) => (
            [
                (CONTENT_TYPE, "application/pkix-crl"),
                // Signed afresh on each fetch: a relying party must not keep an old one.
                (CACHE_CONTROL, "no-cache"),
            ],
            der,
        )
            .into_response(),
        Err(v) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}: {}\n", v.reason.as_str(), v.description),
        )
            .into_response(),
    }
}

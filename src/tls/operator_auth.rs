//! On the operators' listener, which method which operator role may call:
//! activation changes need `activation-manager`; reading activations either role;
//! the access log needs `auditor`; the review queue and its outcomes `reviewer` or
//! `auditor`; checkpoints and proofs `auditor` or `witness`; site changes
//! `activation-manager` or `prefecture`. Checked on the HTTP request, before any service
//! sees it, from the client certificate the TLS handshake verified.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::peer::{OperatorRole, Peer, peer_of};
use crate::domain::{Reason, Violation};
use crate::status::status_of;

const CHANGES: [&str; 4] = [
    "/onshi.v1.ActivationAdminService/CreateActivation",
    "/onshi.v1.ActivationAdminService/AddAreas",
    "/onshi.v1.ActivationAdminService/ExtendWindow",
    "/onshi.v1.ActivationAdminService/EndEarly",
];

/// Changes to temporary sites: activation managers, and a prefecture's health
/// department, so that the prefecture can open its own first-aid posts.
const SITE_CHANGES: [&str; 4] = [
    "/onshi.v1.SiteAdminService/RegisterSite",
    "/onshi.v1.SiteAdminService/RenewSite",
    "/onshi.v1.SiteAdminService/CloseSite",
    "/onshi.v1.SiteAdminService/IssueSiteCertificate",
];

/// What a reviewer may call: the queue of unreviewed accesses and the outcome.
const REVIEWS: [&str; 2] = [
    "/onshi.v1.AuditService/RecordReviewOutcome",
    "/onshi.v1.AuditService/ListUnreviewed",
];

/// The roles allowed to call `path`; `None`: any verified operator (reflection).
pub fn roles_for(path: &str) -> Option<&'static [OperatorRole]> {
    if REVIEWS.contains(&path) {
        Some(&[OperatorRole::Reviewer, OperatorRole::Auditor])
    } else if CHANGES.contains(&path) {
        Some(&[OperatorRole::ActivationManager])
    } else if path.starts_with("/onshi.v1.ActivationAdminService/") {
        Some(&[OperatorRole::ActivationManager, OperatorRole::Auditor])
    } else if SITE_CHANGES.contains(&path) {
        Some(&[
            OperatorRole::ActivationManager,
            OperatorRole::PrefectureHealth,
        ])
    } else if path.starts_with("/onshi.v1.SiteAdminService/") {
        Some(&[
            OperatorRole::ActivationManager,
            OperatorRole::PrefectureHealth,
            OperatorRole::Auditor,
        ])
    } else if path.starts_with("/onshi.v1.AuditService/") {
        Some(&[OperatorRole::Auditor])
    } else if path.starts_with("/onshi.v1.TransparencyService/") {
        Some(&[OperatorRole::Auditor, OperatorRole::Witness])
    } else {
        None
    }
}

/// Why `peer` may not call `path`, if it may not.
pub fn refusal(path: &str, peer: Result<Peer, Violation>) -> Option<Violation> {
    let roles = roles_for(path)?;
    match peer {
        Ok(Peer::Operator { role, .. }) if roles.contains(&role) => None,
        Ok(Peer::Operator { role, id }) => Some(
            Violation::new(
                Reason::OperatorRoleRequired,
                "",
                format!(
                    "{path} needs the role {}; operator {id} has {}",
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    role.as_str()
                ),
            )
            .with("role", role.as_str()),
        ),
        Ok(Peer::Facility(f)) => Some(Violation::new(
            Reason::OperatorRoleRequired,
            "",
            format!("facility {f} cannot call the operators' services"),
        )),
        Ok(Peer::Site(id)) => Some(Violation::new(
            Reason::SiteNotPermitted,
            "",
            format!("site {id} cannot call the operators' services"),
        )),
        Err(v) => Some(v),
    }
}

/// Enforced with TLS; without it (development, loopback) there is no certificate
/// to read and every call passes.
#[derive(Clone, Default)]
pub struct OperatorAuthLayer {
    pub enforce: bool,
}

impl<S> Layer<S> for OperatorAuthLayer {
    type Service = OperatorAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        OperatorAuth {
            inner,
            enforce: self.enforce,
        }
    }
}

#[derive(Clone)]
pub struct OperatorAuth<S> {
    inner: S,
    enforce: bool,
}

impl<S, B, R> Service<http::Request<B>> for OperatorAuth<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !self.enforce {
            return Box::pin(self.inner.call(req));
        }
        let peer = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(tonic::transport::server::TlsConnectInfo::peer_certs)
            .and_then(|certs| certs.first().map(|c| peer_of(c.as_ref())))
            .unwrap_or_else(|| {
                Err(Violation::new(
                    Reason::FacilityUnidentified,
                    "",
                    "no client certificate",
                ))
            });
        if let Some(v) = refusal(req.uri().path(), peer) {
            let response = status_of(&v).into_http();
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(role: OperatorRole) -> Result<Peer, Violation> {
        Ok(Peer::Operator {
            id: "op".into(),
            role,
        })
    }

    #[test]
    fn reviewers_may_review_and_nothing_more() {
        for path in REVIEWS {
            assert_eq!(
                refusal(path, operator(OperatorRole::Reviewer)),
                None,
                "{path}"
            );
            assert_eq!(
                refusal(path, operator(OperatorRole::Auditor)),
                None,
                "{path}"
            );
            let v = refusal(path, operator(OperatorRole::ActivationManager)).expect("refused");
            assert_eq!(v.reason, Reason::OperatorRoleRequired);
        }
        for path in [
            "/onshi.v1.AuditService/QueryAccessLog",
            "/onshi.v1.AuditService/ListAuditReads",
            "/onshi.v1.ActivationAdminService/ListActivations",
            CHANGES[0],
        ] {
            let v = refusal(path, operator(OperatorRole::Reviewer)).expect("refused");
            assert_eq!(v.reason, Reason::OperatorRoleRequired, "{path}");
        }
        assert_eq!(
            refusal(
                "/onshi.v1.AuditService/ListAuditReads",
                operator(OperatorRole::Auditor)
            ),
            None
        );
    }

    #[test]
    fn the_reviewer_role_is_named_reviewer() {
        assert_eq!(
            OperatorRole::parse("reviewer"),
            Some(OperatorRole::Reviewer)
        );
        assert_eq!(OperatorRole::Reviewer.as_str(), "reviewer");
    }

    #[test]
    fn a_witness_may_fetch_checkpoints_and_proofs_but_never_a_record() {
        let checkpoint = "/onshi.v1.TransparencyService/GetCheckpoint";
        let proof = "/onshi.v1.TransparencyService/GetInclusionProof";
        for path in [checkpoint, proof] {
            assert!(
                refusal(path, operator(OperatorRole::Witness)).is_none(),
                "{path}"
            );
            assert!(
                refusal(path, operator(OperatorRole::Auditor)).is_none(),
                "{path}"
            );
            let manager = refusal(path, operator(OperatorRole::ActivationManager));
            assert_eq!(
                manager.map(|v| v.reason),
                Some(Reason::OperatorRoleRequired)
            );
        }
        for path in [
            "/onshi.v1.AuditService/QueryAccessLog",
            "/onshi.v1.AuditService/QueryPatientAccesses",
            "/onshi.v1.ActivationAdminService/ListActivations",
            "/onshi.v1.ActivationAdminService/CreateActivation",
        ] {
            let v = refusal(path, operator(OperatorRole::Witness));
            assert_eq!(
                v.map(|v| v.reason),
                Some(Reason::OperatorRoleRequired),
                "{path}"
            );
        }
        assert_eq!(OperatorRole::parse("witness"), Some(OperatorRole::Witness));
        assert_eq!(OperatorRole::Witness.as_str(), "witness");
    }
}

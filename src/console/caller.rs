//! Who is calling the console: the operator named by the client certificate the TLS
//! handshake verified, carried on every request (the console keeps no session).
//! Each page and action names the operators' API method it stands for, and the
//! caller must hold a role that method allows (`tls::operator_auth::refusal`): the
//! console adds no power to what the gRPC services give.

use sha2::{Digest, Sha256};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::domain::{Reason, Violation};
use crate::tls::{OperatorRole, Peer, peer_of};

/// The connection's verified client certificate, read once per connection.
#[derive(Clone)]
pub struct Caller {
    pub peer: Result<Peer, Violation>,
    /// SHA-256 of the certificate (DER): what CSRF tokens are bound to.
    pub fingerprint: [u8; 32],
    /// The connection as tonic describes it, so that the services called on the
    /// operator's behalf name them exactly as they would over gRPC.
    pub tls: Option<TlsConnectInfo<TcpConnectInfo>>,
}

impl Caller {
    /// The caller behind a handshake's certificates (`None`: no certificate).
    pub fn from_certificate(der: Option<&[u8]>) -> Caller {
        match der {
            Some(der) => Caller {
                peer: peer_of(der),
                fingerprint: Sha256::digest(der).into(),
                tls: None,
            },
            None => Caller {
                peer: Err(Violation::new(
                    Reason::FacilityUnidentified,
                    "",
                    "no client certificate: open the console with your operator certificate",
                )),
                fingerprint: [0; 32],
                tls: None,
            },
        }
    }

    /// An operator's role and id, or why this caller may not use the console at all.
    pub fn operator(&self) -> Result<(OperatorRole, &str), Violation> {
        match &self.peer {
            Ok(Peer::Operator { role, id }) => Ok((*role, id.as_str())),
            Ok(Peer::Facility(f)) => Err(Violation::new(
                Reason::OperatorRoleRequired,
                "",
                format!("facility {f} cannot open the operators' console"),
            )),
            Ok(Peer::Site(id)) => Err(Violation::new(
                Reason::SiteNotPermitted,
                "",
                format!("site {id} cannot open the operators' console"),
            )),
            Err(v) => Err(v.clone()),
        }
    }

    /// `<role>:<id>`, as the access log and the revisions name operators.
    pub fn actor(&self) -> String {
        match self.operator() {
            Ok((role, id)) => format!("{}:{id}", role.as_str()),
            Err(_) => crate::audit::read_log::UNAUTHENTICATED.to_string(),
        }
    }

    /// Refuses unless the caller may call the operators' API method `path`.
    pub fn may(&self, path: &str) -> Result<(), Violation> {
        self.operator()?;
        match crate::tls::operator_auth::refusal(path, self.peer.clone()) {
            Some(v) => Err(v),
            None => Ok(()),
        }
    }

    /// Whether the caller may call `path` (to show or hide a link or a form).
    pub fn can(&self, path: &str) -> bool {
        self.may(path).is_ok()
    }

    /// A request to one of the operators' services, carrying this caller's connection
    /// so that the service attributes it as it would a gRPC call.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(tls) = &self.tls {
            request.extensions_mut().insert(tls.clone());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(peer: Peer) -> Caller {
        Caller {
            peer: Ok(peer),
            fingerprint: [1; 32],
            tls: None,
        }
    }

    #[test]
    fn facilities_and_sites_are_refused_whatever_the_page() {
        use crate::domain::facility::{FacilityKind, make_facility_code};
        let miyagi = crate::domain::prefecture::Prefecture::new(4).expect("04");
        let code = make_facility_code(miyagi, FacilityKind::Medical, 1, 1001);
        let c = caller(Peer::Facility(code));
        assert_eq!(
            c.may("/onshi.v1.ActivationAdminService/ListActivations")
                .map_err(|v| v.reason),
            Err(Reason::OperatorRoleRequired)
        );
        let site = caller(Peer::Site("post-1".into()));
        assert_eq!(
            site.may("/onshi.v1.ActivationAdminService/ListActivations")
                .map_err(|v| v.reason),
            Err(Reason::SiteNotPermitted)
        );
        assert!(Caller::from_certificate(None).operator().is_err());
    }

    #[test]
    fn an_operator_gets_what_their_role_gets_over_grpc() {
        let reviewer = caller(Peer::Operator {
            id: "r1".into(),
            role: OperatorRole::Reviewer,
        });
        assert!(reviewer.can("/onshi.v1.AuditService/ListUnreviewed"));
        assert!(!reviewer.can("/onshi.v1.ActivationAdminService/CreateActivation"));
        assert_eq!(reviewer.actor(), "reviewer:r1");
    }
}

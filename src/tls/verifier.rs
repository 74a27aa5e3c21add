//! A listener's check of client certificates: the WebPKI chain to the CA it trusts,
//! then the identity the certificate names. A certificate every call would refuse
//! (no identity, a facility code with a wrong check digit, an identity of the
//! other listener's kind) is refused at the handshake, with its reason in the
//! gateway's log, rather than on each call with the reason only the caller sees.
//! The calls still check the identity themselves.
//!
//! Each CA vouches for one kind of identity only: a site's certificate must chain
//! to the site CA and a facility's to the facility CA, so that neither CA can mint
//! the other's callers.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use rustls::{SignatureScheme, server::WebPkiClientVerifier};

use super::acceptor::Listener;
use super::peer::{Peer, peer_of};

/// A certificate from the trusted CA that names no identity this listener accepts.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadIdentity(pub String);

/// The kind of identity a trusted CA may vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    Facilities,
    Sites,
    Operators,
}

impl Issuer {
    fn of(peer: &Peer) -> Issuer {
        match peer {
            Peer::Facility(_) => Issuer::Facilities,
            Peer::Site(_) => Issuer::Sites,
            Peer::Operator { .. } => Issuer::Operators,
        }
    }

    fn ca(self) -> &'static str {
        match self {
            Issuer::Facilities => "the facility CA",
            Issuer::Sites => "the site CA",
            Issuer::Operators => "the operator CA",
        }
    }
}

#[derive(Debug)]
pub struct IdentityVerifier {
    /// Every CA the listener trusts: the chain check and the hints to clients.
    chain: Arc<dyn ClientCertVerifier>,
    /// Each CA alone, with the kind of identity it may vouch for.
    issuers: Vec<(Issuer, Arc<dyn ClientCertVerifier>)>,
    listener: Listener,
}

fn webpki(
    roots: rustls::RootCertStore,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, rustls::server::VerifierBuilderError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
}

impl IdentityVerifier {
    /// Client certificates must chain to one of the `trusted` CAs, the one for the
    /// kind of identity they name, and name an identity for `listener`: a facility
    /// or site on the terminal listener, an operator on the operators'.
    pub fn new(
        trusted: Vec<(Issuer, rustls::RootCertStore)>,
        provider: Arc<rustls::crypto::CryptoProvider>,
        listener: Listener,
    ) -> Result<IdentityVerifier, rustls::server::VerifierBuilderError> {
        let mut all = rustls::RootCertStore::empty();
        let mut issuers = Vec::new();
        for (issuer, roots) in trusted {
            all.roots.extend(roots.roots.iter().cloned());
            issuers.push((issuer, webpki(roots, &provider)?));
        }
        Ok(IdentityVerifier {
            chain: webpki(all, &provider)?,
            issuers,
            listener,
        })
    }

    /// The certificate chains to the CA for the kind of identity it names.
    fn issued_by_its_ca(
        &self,
        peer: &Peer,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), BadIdentity> {
        let issuer = Issuer::of(peer);
        let vouched = self.issuers.iter().any(|(i, chain)| {
            *i == issuer
                && chain
                    .verify_client_cert(end_entity, intermediates, now)
                    .is_ok()
        });
        if vouched {
            return Ok(());
        }
        Err(BadIdentity(format!(
            "the certificate names {} but was not issued by {}, the only CA that vouches for it",
            describe(peer),
            issuer.ca()
        )))
    }

    fn identity(&self, leaf: &CertificateDer<'_>) -> Result<Peer, BadIdentity> {
        match (peer_of(leaf.as_ref()), self.listener) {
            (Ok(p @ (Peer::Facility(_) | Peer::Site(_))), Listener::Terminal)
            | (Ok(p @ Peer::Operator { .. }), Listener::Operators) => Ok(p),
            (Ok(Peer::Site(id)), Listener::Operators) => Err(BadIdentity(format!(
                "the certificate names site {id}; the operators' listener takes operators only"
            ))),
            (Ok(Peer::Facility(f)), Listener::Operators) => Err(BadIdentity(format!(
                "the certificate names facility {f}; the operators' listener takes operators only"
            ))),
            (Ok(Peer::Operator { id, .. }), Listener::Terminal) => Err(BadIdentity(format!(
                "the certificate names operator {id}; the terminal listener takes facilities only"
            ))),
            (Err(v), _) => Err(BadIdentity(v.to_string())),
        }
    }
}

fn describe(peer: &Peer) -> String {
    match peer {
        Peer::Facility(f) => format!("facility {f}"),
        Peer::Site(id) => format!("site {id}"),
        Peer::Operator { id, .. } => format!("operator {id}"),
    }
}

impl ClientCertVerifier for IdentityVerifier {
    fn offer_client_auth(&self) -> bool {
        self.chain.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        self.identity(end_entity)
            .and_then(|peer| self.issued_by_its_ca(&peer, end_entity, intermediates, now))
            .map_err(|e| {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
            })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::OperatorRole;
    use crate::tls::dev_ca::DevCa;

    fn roots(ca: &DevCa) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        let der =
            rustls_pki_types::pem::PemObject::from_pem_slice(ca.cert_pem.as_bytes()).expect("PEM");
        roots.add(der).expect("a root");
        roots
    }

    fn with(trusted: Vec<(Issuer, rustls::RootCertStore)>, listener: Listener) -> IdentityVerifier {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        IdentityVerifier::new(trusted, provider, listener).expect("verifier")
    }

    /// One CA trusted for every kind of identity the listener takes.
    fn verifier(ca: &DevCa, listener: Listener) -> IdentityVerifier {
        let kinds = match listener {
            Listener::Terminal => vec![Issuer::Facilities, Issuer::Sites],
            Listener::Operators => vec![Issuer::Operators],
        };
        with(
            kinds.into_iter().map(|k| (k, roots(ca))).collect(),
            listener,
        )
    }

    fn verdict(v: &IdentityVerifier, cert_pem: &str) -> Result<(), String> {
        let der =
            rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes()).expect("PEM");
        v.verify_client_cert(&der, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_listener_takes_its_own_kind_of_identity_only() {
        let ca = DevCa::new("test CA").expect("ca");
        let terminal = verifier(&ca, Listener::Terminal);
        let operators = verifier(&ca, Listener::Operators);
        let clinic = ca.facility("0410110019").expect("cert").cert_pem;
        let auditor = ca
            .operator(OperatorRole::Auditor, "a")
            .expect("cert")
            .cert_pem;
        assert_eq!(verdict(&terminal, &clinic), Ok(()));
        assert_eq!(verdict(&operators, &auditor), Ok(()));
        let err = verdict(&terminal, &auditor).expect_err("an operator on the terminals'");
        assert!(err.contains("takes facilities only"), "{err}");
        let err = verdict(&operators, &clinic).expect_err("a facility on the operators'");
        assert!(err.contains("takes operators only"), "{err}");
    }

    #[test]
    fn a_wrong_check_digit_or_no_identity_is_refused_with_its_reason() {
        let ca = DevCa::new("test CA").expect("ca");
        let terminal = verifier(&ca, Listener::Terminal);
        let wrong = ca.facility("0410110018").expect("cert").cert_pem;
        let err = verdict(&terminal, &wrong).expect_err("check digit");
        assert!(err.contains("FACILITY_CODE_CHECK_DIGIT"), "{err}");
        let nameless = ca
            .client_with_uris(&["https://example.invalid/"])
            .expect("cert")
            .cert_pem;
        let err = verdict(&terminal, &nameless).expect_err("no identity");
        assert!(err.contains("exactly one identity"), "{err}");
        // The chain is checked first: another CA's certificate is refused as such.
        let other = DevCa::new("other CA").expect("ca");
        let foreign = other.facility("0410110019").expect("cert").cert_pem;
        let err = verdict(&terminal, &foreign).expect_err("unknown issuer");
        assert!(err.contains("UnknownIssuer"), "{err}");
    }

    #[test]
    fn a_site_must_come_from_the_site_ca_and_a_facility_from_the_facility_ca() {
        let facility_ca = DevCa::new("facility CA").expect("ca");
        let site_ca = DevCa::new("site CA").expect("ca");
        let terminal = with(
            vec![
                (Issuer::Facilities, roots(&facility_ca)),
                (Issuer::Sites, roots(&site_ca)),
            ],
            Listener::Terminal,
        );
        let site = |ca: &DevCa| {
            ca.client_with_uris(&["urn:onshi:site:wajima-post-1"])
                .expect("cert")
                .cert_pem
        };
        let clinic = |ca: &DevCa| ca.facility("0410110019").expect("cert").cert_pem;
        assert_eq!(verdict(&terminal, &site(&site_ca)), Ok(()));
        assert_eq!(verdict(&terminal, &clinic(&facility_ca)), Ok(()));
        let err =
            verdict(&terminal, &site(&facility_ca)).expect_err("a site minted by the facility CA");
        assert!(
            err.contains("site wajima-post-1 but was not issued by the site CA"),
            "{err}"
        );
        let err =
            verdict(&terminal, &clinic(&site_ca)).expect_err("a facility minted by the site CA");
        assert!(err.contains("not issued by the facility CA"), "{err}");
        // Without a site CA, no site gets in.
        let facilities_only = with(
            vec![(Issuer::Facilities, roots(&facility_ca))],
            Listener::Terminal,
        );
        let err = verdict(&facilities_only, &site(&facility_ca)).expect_err("no site CA");
        assert!(err.contains("not issued by the site CA"), "{err}");
    }
}

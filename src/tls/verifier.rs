//! A listener's check of client certificates: the WebPKI chain to the CA it trusts,
//! then the identity the certificate names. A certificate every call would refuse
//! (no identity, a facility code with a wrong check digit, an identity of the
//! other listener's kind) is refused at the handshake, with its reason in the
//! gateway's log, rather than on each call with the reason only the caller sees.
//! The calls still check the identity themselves.

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

#[derive(Debug)]
pub struct IdentityVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    listener: Listener,
}

impl IdentityVerifier {
    /// Client certificates must chain to one of `roots` and name an identity for
    /// `listener`: a facility on the terminal listener, an operator on the operators'.
    pub fn new(
        roots: rustls::RootCertStore,
        provider: Arc<rustls::crypto::CryptoProvider>,
        listener: Listener,
    ) -> Result<IdentityVerifier, rustls::server::VerifierBuilderError> {
        let chain =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(IdentityVerifier { chain, listener })
    }

    fn identity(&self, leaf: &CertificateDer<'_>) -> Result<(), BadIdentity> {
        match (peer_of(leaf.as_ref()), self.listener) {
            (Ok(Peer::Facility(_) | Peer::Site(_)), Listener::Terminal)
            | (Ok(Peer::Operator { .. }), Listener::Operators) => Ok(()),
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
        self.identity(end_entity).map_err(|e| {
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

    fn verifier(ca: &DevCa, listener: Listener) -> IdentityVerifier {
        let mut roots = rustls::RootCertStore::empty();
        let der =
            rustls_pki_types::pem::PemObject::from_pem_slice(ca.cert_pem.as_bytes()).expect("PEM");
        roots.add(der).expect("a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        IdentityVerifier::new(roots, provider, listener).expect("verifier")
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
}

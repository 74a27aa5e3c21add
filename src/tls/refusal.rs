//! Why a TLS handshake failed, in a small closed set an operator can count and
//! alert on (`onshi_tls_handshake_refused_total{listener,reason}`), with the precise
//! cause for the log line. A connection closed before the client said hello (a
//! port probe) is no refusal.

use std::io;

use rustls::{AlertDescription, CertificateError, InvalidMessage};

use super::verifier::BadIdentity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client certificate has expired, or is not valid yet.
    Expired,
    /// It was not issued by the CA this listener trusts.
    UnknownCa,
    /// The client presented none.
    NoClientCertificate,
    /// From the trusted CA, but it names no identity this listener accepts.
    BadIdentity,
    /// The client refused the gateway's certificate (it trusts another CA, or
    /// expected another name): with an alert (rustls, Go), or by hanging up after
    /// the gateway's answer to its hello (grpcio, grpc-js).
    GatewayNotTrusted,
    /// The client spoke plaintext (e.g. HTTP/2 without TLS) to a TLS listener.
    NotTls,
    /// Anything else: protocol versions, cipher suites, a malformed handshake.
    Other,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::Expired,
        Refusal::UnknownCa,
        Refusal::NoClientCertificate,
        Refusal::BadIdentity,
        Refusal::GatewayNotTrusted,
        Refusal::NotTls,
        Refusal::Other,
    ];

    /// The metric's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Expired => "expired",
            Refusal::UnknownCa => "unknown_ca",
            Refusal::NoClientCertificate => "no_client_certificate",
            Refusal::BadIdentity => "bad_identity",
            Refusal::GatewayNotTrusted => "gateway_not_trusted",
            Refusal::NotTls => "not_tls",
            Refusal::Other => "other",
        }
    }
}

/// The refusal behind a failed handshake's `error`, and its detail; `None` when
/// the peer went away before its hello (`after_hello`: it had sent it).
pub fn classify(error: &io::Error, after_hello: bool) -> Option<(Refusal, String)> {
    if let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return Some(of_tls(tls));
    }
    let hung_up = matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    );
    // The gateway's answer to the hello carries its certificate: a client that
    // hangs up on it without a word did not accept it.
    (after_hello && hung_up).then(|| {
        (
            Refusal::GatewayNotTrusted,
            format!(
                "the client hung up on the gateway's certificate ({error}): it trusts \
                 another CA, or expected another name"
            ),
        )
    })
}

fn of_tls(error: &rustls::Error) -> (Refusal, String) {
    use rustls::Error as E;
    let refusal = match error {
        E::NoCertificatesPresented => Refusal::NoClientCertificate,
        E::InvalidCertificate(CertificateError::Other(other)) => {
            if other.0.downcast_ref::<BadIdentity>().is_some() {
                // Its own words, not rustls' debug form of the wrapper.
                return (Refusal::BadIdentity, other.to_string());
            }
            Refusal::Other
        }
        E::InvalidCertificate(c) => of_certificate(c),
        E::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::UnsupportedCertificate,
        ) => Refusal::GatewayNotTrusted,
        E::InvalidMessage(InvalidMessage::InvalidContentType) => Refusal::NotTls,
        _ => Refusal::Other,
    };
    (refusal, error.to_string())
}

fn of_certificate(error: &CertificateError) -> Refusal {
    use CertificateError as C;
    match error {
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            Refusal::Expired
        }
        // A bad signature under a trusted CA's name: another CA of that name (one
        // regenerated since, say) issued it.
        C::UnknownIssuer | C::BadSignature => Refusal::UnknownCa,
        _ => Refusal::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn wrapped(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn each_rustls_error_has_its_reason() {
        let expired = CertificateError::Expired;
        let identity = CertificateError::Other(rustls::OtherError(Arc::new(BadIdentity(
            "FACILITY_CODE_CHECK_DIGIT: 0410110018 fails the check digit (expected 9)".into(),
        ))));
        for (error, reason) in [
            (rustls::Error::InvalidCertificate(expired), "expired"),
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "unknown_ca",
            ),
            (
                rustls::Error::NoCertificatesPresented,
                "no_client_certificate",
            ),
            (rustls::Error::InvalidCertificate(identity), "bad_identity"),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                "gateway_not_trusted",
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                "not_tls",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose),
                "other",
            ),
        ] {
            let (refusal, _) = classify(&wrapped(error), true).expect("a refusal");
            assert_eq!(refusal.as_str(), reason);
        }
    }

    #[test]
    fn a_bad_identity_is_told_in_its_own_words() {
        let identity = CertificateError::Other(rustls::OtherError(Arc::new(BadIdentity(
            "FACILITY_UNIDENTIFIED: no identity".into(),
        ))));
        let (_, detail) = classify(&wrapped(rustls::Error::InvalidCertificate(identity)), true)
            .expect("a refusal");
        assert_eq!(detail, "FACILITY_UNIDENTIFIED: no identity");
    }

    #[test]
    fn a_peer_that_hangs_up_before_its_hello_is_no_refusal_and_after_it_one() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(classify(&eof, false), None);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset, false), None);
        for closed in [eof, reset] {
            let (refusal, detail) = classify(&closed, true).expect("a refusal");
            assert_eq!(refusal, Refusal::GatewayNotTrusted);
            assert!(detail.contains("hung up"), "{detail}");
        }
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify(&timeout, true), None);
    }
}

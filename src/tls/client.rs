//! The client side of mutual TLS: trust the CA that issued the gateway's
//! certificate and present a facility's or an operator's certificate. The files are
//! read and parsed here, so that a missing or wrong file is named before any
//! connection is tried.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Which of the client's files is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFile {
    /// The CA certificate(s) the gateway's certificate must chain to.
    Ca,
    /// The client's certificate chain.
    Cert,
    /// The client's private key.
    Key,
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ClientFileError {
    pub file: ClientFile,
    pub path: PathBuf,
    pub problem: String,
}

/// A client certificate and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(file: ClientFile, path: &Path) -> Result<Vec<u8>, ClientFileError> {
    std::fs::read(path).map_err(|e| ClientFileError {
        file,
        path: path.to_path_buf(),
        problem: format!("cannot read it: {e}"),
    })
}

/// The PEM in `path`, which must hold at least one certificate.
fn certificates(file: ClientFile, path: &Path) -> Result<Vec<u8>, ClientFileError> {
    let pem = read(file, path)?;
    let fault = |problem: String| ClientFileError {
        file,
        path: path.to_path_buf(),
        problem,
    };
    let count = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fault(format!("not a PEM certificate file: {e}")))?
        .len();
    if count == 0 {
        return Err(fault("holds no PEM certificate".into()));
    }
    Ok(pem)
}

fn private_key(path: &Path) -> Result<Vec<u8>, ClientFileError> {
    let pem = read(ClientFile::Key, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ClientFileError {
        file: ClientFile::Key,
        path: path.to_path_buf(),
        problem: format!("holds no PEM private key: {e}"),
    })?;
    Ok(pem)
}

/// TLS for a channel to a gateway: verify its certificate against `ca` for
/// `server_name` (a DNS name or an IP address), and present `identity` if given.
pub fn client_tls(
    ca: &Path,
    identity: Option<&ClientIdentity>,
    server_name: &str,
) -> Result<ClientTlsConfig, ClientFileError> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(certificates(ClientFile::Ca, ca)?))
        .domain_name(server_name);
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(
            certificates(ClientFile::Cert, &id.cert)?,
            private_key(&id.key)?,
        ));
    }
    Ok(tls)
}

/// TLS to the upstream OQS: its certificate must chain to `ca`; `identity` is the
/// gateway's own client certificate where the upstream asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    pub ca: PathBuf,
    pub identity: Option<ClientIdentity>,
}

impl ClientTlsFiles {
    /// The rustls client configuration, with the files read and checked here so
    /// that a wrong one is named at start rather than on every call.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, ClientFileError> {
        let fault = |file, path: &Path, problem: String| ClientFileError {
            file,
            path: path.to_path_buf(),
            problem,
        };
        let mut roots = rustls::RootCertStore::empty();
        let pem = certificates(ClientFile::Ca, &self.ca)?;
        for ca in CertificateDer::pem_slice_iter(&pem) {
            let ca = ca.map_err(|e| fault(ClientFile::Ca, &self.ca, e.to_string()))?;
            roots
                .add(ca)
                .map_err(|e| fault(ClientFile::Ca, &self.ca, format!("not a CA: {e}")))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fault(ClientFile::Ca, &self.ca, e.to_string()))?
            .with_root_certificates(roots);
        let Some(id) = &self.identity else {
            return Ok(builder.with_no_client_auth());
        };
        let chain = CertificateDer::pem_slice_iter(&certificates(ClientFile::Cert, &id.cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fault(ClientFile::Cert, &id.cert, e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(&private_key(&id.key)?)
            .map_err(|e| fault(ClientFile::Key, &id.key, e.to_string()))?;
        builder.with_client_auth_cert(chain, key).map_err(|e| {
            fault(
                ClientFile::Key,
                &id.key,
                format!("does not match the certificate: {e}"),
            )
        })
    }
}

/// For an upstream without a configured CA: trusts no certificate, so that an
/// `https://` upstream is refused rather than trusted blindly.
pub fn trusting_no_one() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        let err = client_tls(&missing, None, "localhost").expect_err("missing CA");
        assert_eq!(err.file, ClientFile::Ca);
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate").expect("write");
        let err = client_tls(&not_pem, None, "localhost").expect_err("no certificate");
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );

        let pki = crate::tls::dev_ca::DevPki::generate().expect("pki");
        let ca = dir.path().join("server-ca.pem");
        std::fs::write(&ca, &pki.server_ca.cert_pem).expect("write");
        let cert = dir.path().join("op.pem");
        std::fs::write(&cert, &pki.server.cert_pem).expect("write");
        let id = ClientIdentity {
            cert: cert.clone(),
            key: cert,
        };
        let err = client_tls(&ca, Some(&id), "localhost").expect_err("a certificate as key");
        assert_eq!(err.file, ClientFile::Key);
        assert!(
            err.to_string().contains("holds no PEM private key"),
            "{err}"
        );
    }
}

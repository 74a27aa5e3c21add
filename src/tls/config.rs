//! The certificate files a TLS-enabled gateway is started with.

use std::path::{Path, PathBuf};

use super::pki_dir::{self, Ca};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The gateway's certificate chain and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that issues facility certificates: the only one the terminal listener trusts.
    pub facility_ca: PathBuf,
    /// The CA that issues operator certificates: the only one the operators' listener trusts.
    pub operator_ca: PathBuf,
    /// The site CA's certificate (its key `site-ca.key` beside it): the terminal
    /// listener trusts it too when the file exists, and the gateway issues the
    /// temporary sites' certificates with it.
    pub site_ca: PathBuf,
}

impl TlsFiles {
    /// All four files in `dir` under the names `certs dev` writes.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join(pki_dir::SERVER_CERT),
            key: dir.join(pki_dir::SERVER_KEY),
            facility_ca: dir.join(Ca::Facility.cert_file()),
            operator_ca: dir.join(Ca::Operator.cert_file()),
            site_ca: dir.join(super::site_ca::SITE_CA_CERT),
        }
    }
}

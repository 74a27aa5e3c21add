//! The certificate files a TLS-enabled gateway is started with.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The gateway's certificate chain and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that issues facility certificates: the only one the terminal listener trusts.
    pub facility_ca: PathBuf,
    /// The CA that issues operator certificates: the only one the operators' listener trusts.
    pub operator_ca: PathBuf,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

impl TlsFiles {
    /// All four files in `dir` under the names `certs dev` writes.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            facility_ca: dir.join("facility-ca.pem"),
            operator_ca: dir.join("operator-ca.pem"),
        }
    }

    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::from_pem(read(&self.cert)?, read(&self.key)?))
    }

    /// Terminals: a facility certificate is required.
    pub fn terminal(&self) -> anyhow::Result<ServerTlsConfig> {
        Ok(ServerTlsConfig::new()
            .identity(self.identity()?)
            .client_ca_root(Certificate::from_pem(read(&self.facility_ca)?)))
    }

    /// Operators: an operator certificate is required.
    pub fn operators(&self) -> anyhow::Result<ServerTlsConfig> {
        Ok(ServerTlsConfig::new()
            .identity(self.identity()?)
            .client_ca_root(Certificate::from_pem(read(&self.operator_ca)?)))
    }
}

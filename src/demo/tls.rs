//! The demo runs with real mutual TLS: a development PKI is written beside the
//! demo's store, the gateway serves with it, and each demo client connects with the
//! certificate of the facility or operator it plays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tonic::transport::Channel;

use crate::domain::facility::FacilityCode;
use crate::tls::TlsFiles;
use crate::tls::client::{ClientIdentity, client_tls};
use crate::tls::dev_ca::DevPki;

pub struct DemoPki {
    dir: PathBuf,
}

impl DemoPki {
    /// A fresh development PKI in `dir`, with certificates for `facilities` and
    /// for each operator role.
    pub fn create(dir: &Path, facilities: &[FacilityCode]) -> anyhow::Result<DemoPki> {
        let codes: Vec<String> = facilities.iter().map(ToString::to_string).collect();
        DevPki::generate()?.write(dir, &codes)?;
        Ok(DemoPki {
            dir: dir.to_path_buf(),
        })
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles::in_dir(&self.dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A channel to `addr` presenting the certificate `<name>.pem` (e.g.
    /// `facility-0410110019`, `operator-auditor`).
    pub async fn channel(&self, addr: SocketAddr, name: &str) -> anyhow::Result<Channel> {
        let identity = ClientIdentity {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        let tls = client_tls(
            &self.dir.join("server-ca.pem"),
            Some(&identity),
            "localhost",
        )?;
        Ok(Channel::from_shared(format!("https://{addr}"))?
            .tls_config(tls)?
            .connect()
            .await?)
    }
}

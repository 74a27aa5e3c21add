//! The demo runs with real mutual TLS: a development PKI is written beside the
//! demo's store, the gateway serves with it, and each demo client connects with the
//! certificate of the facility or operator it plays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::domain::facility::FacilityCode;
use crate::tls::TlsFiles;
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
        let read = |file: String| {
            let path = self.dir.join(&file);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("server-ca.pem".into())?))
            .identity(Identity::from_pem(
                read(format!("{name}.pem"))?,
                read(format!("{name}.key"))?,
            ))
            .domain_name("localhost");
        Ok(Channel::from_shared(format!("https://{addr}"))?
            .tls_config(tls)?
            .connect()
            .await?)
    }
}

//! How the operators' commands reach a gateway's operators' listener: plaintext
//! (`http://`, a gateway serving without TLS) or mutual TLS (`https://`, trusting
//! the gateway's CA and presenting an operator's certificate, whose role the
//! gateway checks on every method).

use std::path::PathBuf;

use clap::Args;
use tonic::transport::{Channel, Uri};

use crate::cli::InvalidInput;
use crate::tls::client::{ClientFile, ClientIdentity, client_tls};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The gateway's operators' address: http://HOST:PORT, or https://HOST:PORT for
    /// a gateway serving with TLS (`serve --tls-dir`), which then needs --ca, --cert
    /// and --key.
    #[arg(long, env = "ONSHI_ADMIN", default_value = "http://127.0.0.1:50061")]
    pub admin: String,
    /// The CA certificate (PEM) that issued the gateway's certificate; required
    /// with an https:// address (`certs dev` writes server-ca.pem).
    #[arg(long, env = "ONSHI_ADMIN_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The operator's certificate (PEM), required with an https:// address; the
    /// gateway checks its role: operator-activation-manager.pem may change
    /// activations, operator-auditor.pem only read them. Give --key with it.
    #[arg(long, env = "ONSHI_OPERATOR_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The operator's private key (PEM), for --cert.
    #[arg(long, env = "ONSHI_OPERATOR_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name the gateway's certificate must carry (default: the host of
    /// --admin, a DNS name or an IP address; the `certs dev` certificate carries
    /// localhost and 127.0.0.1).
    #[arg(long, env = "ONSHI_ADMIN_TLS_DOMAIN", value_name = "NAME")]
    pub tls_domain: Option<String>,
}

fn invalid(flag: &str, message: impl Into<String>) -> anyhow::Error {
    InvalidInput {
        flag: flag.to_string(),
        message: message.into(),
    }
    .into()
}

fn flag_of(file: ClientFile) -> &'static str {
    match file {
        ClientFile::Ca => "--ca",
        ClientFile::Cert => "--cert",
        ClientFile::Key => "--key",
    }
}

impl AdminArgs {
    /// The operator's certificate and key: the operators' listener of a gateway
    /// serving with TLS accepts no connection without them.
    fn identity(&self) -> anyhow::Result<ClientIdentity> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(ClientIdentity {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => Err(invalid(
                "--cert",
                format!(
                    "{} is a TLS address, where the operators' listener accepts only an operator certificate: give --cert and --key (or ONSHI_OPERATOR_CERT and ONSHI_OPERATOR_KEY)",
                    self.admin
                ),
            )),
            (Some(_), None) => Err(invalid(
                "--key",
                "--cert needs --key, the operator's private key",
            )),
            (None, Some(_)) => Err(invalid(
                "--cert",
                "--key needs --cert, the operator's certificate",
            )),
        }
    }

    /// A channel to the operators' listener, with TLS as the address and flags say.
    /// Every flag is checked, and every file read, before connecting.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        let uri: Uri = self.admin.parse().map_err(|e| {
            invalid(
                "--admin",
                format!("{:?} is not an address: {e}", self.admin),
            )
        })?;
        let host = uri
            .host()
            .ok_or_else(|| invalid("--admin", format!("{:?} has no host", self.admin)))?;
        let endpoint = Channel::builder(uri.clone());
        let endpoint = match uri.scheme_str() {
            Some("https") => {
                let ca = self.ca.as_ref().ok_or_else(|| {
                    invalid(
                        "--ca",
                        format!(
                            "{} is a TLS address: give --ca, the CA certificate that issued the gateway's certificate (or ONSHI_ADMIN_CA)",
                            self.admin
                        ),
                    )
                })?;
                let identity = self.identity()?;
                // An IPv6 host comes bracketed in the URL, not in the certificate.
                let name = self
                    .tls_domain
                    .clone()
                    .unwrap_or_else(|| host.trim_start_matches('[').trim_end_matches(']').into());
                let tls = client_tls(ca, Some(&identity), &name)
                    .map_err(|e| invalid(flag_of(e.file), e.to_string()))?;
                endpoint.tls_config(tls).map_err(|e| {
                    invalid(
                        "--cert",
                        format!(
                            "{} with {}: {}",
                            identity.cert.display(),
                            identity.key.display(),
                            chain(&e)
                        ),
                    )
                })?
            }
            Some("http") => {
                let given = [
                    ("--ca", self.ca.is_some()),
                    ("--cert", self.cert.is_some()),
                    ("--key", self.key.is_some()),
                    ("--tls-domain", self.tls_domain.is_some()),
                ];
                if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
                    return Err(invalid(
                        flag,
                        format!(
                            "{flag} is for TLS, but {} is http://; use https:// for a gateway serving with TLS",
                            self.admin
                        ),
                    ));
                }
                endpoint
            }
            _ => {
                return Err(invalid(
                    "--admin",
                    format!("{:?}: use http:// or https://", self.admin),
                ));
            }
        };
        endpoint.connect().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the gateway's operators' service at {}: {}",
                self.admin,
                chain(&e)
            )
        })
    }
}

/// An error with its causes, which name what failed (a refused connection, a
/// certificate not trusted).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

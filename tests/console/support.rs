//! A gateway with mutual TLS and the operators' console, for the console's tests.
// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::tls::dev_ca::DevPki;
use onshi_gateway::tls::identity::IdentitySource;
use onshi_gateway::tls::{OperatorRole, TlsFiles};

pub struct ConsoleGateway {
    pub gateway: RunningGateway,
    pub clock: std::sync::Arc<ManualClock>,
    pub pki: DevPki,
    pub dir: tempfile::TempDir,
}

/// The gateway at `now`, its console on a loopback port.
pub async fn start(now: DateTime<Utc>, audit: onshi_gateway::audit::BatchConfig) -> ConsoleGateway {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().expect("pki");
    pki.write(&dir.path().join("certs"), &[]).expect("written");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        console_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: 3000,
        },
        identity: IdentitySource::Certificate,
        tls: Some(TlsFiles::in_dir(&dir.path().join("certs"))),
        upstream_timeout: Duration::from_secs(2),
        audit,
        ..GatewayConfig::default()
    };
    let clock = ManualClock::new(now);
    let gateway = server::start(config, clock.clone()).await.expect("starts");
    ConsoleGateway {
        gateway,
        clock,
        pki,
        dir,
    }
}

impl ConsoleGateway {
    pub fn console_url(&self) -> String {
        let addr = self.gateway.console_addr.expect("console listening");
        format!("https://localhost:{}", addr.port())
    }

    /// An operator's certificate and key, written as PEM files for a browser.
    pub fn operator_files(&self, role: OperatorRole, id: &str) -> (String, String) {
        let issued = self.pki.operator_ca.operator(role, id).expect("cert");
        self.write(&format!("operator-{id}"), &issued.cert_pem, &issued.key_pem)
    }

    pub fn write(&self, stem: &str, cert: &str, key: &str) -> (String, String) {
        let c = self.dir.path().join(format!("{stem}.pem"));
        let k = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&c, cert).expect("cert written");
        std::fs::write(&k, key).expect("key written");
        (c.display().to_string(), k.display().to_string())
    }
}

//! An `https://` upstream: the gateway verifies the upstream's certificate against
//! the configured CA and presents its own client certificate. With the wrong CA, or
//! without the certificate the upstream asks for, no patient data flows and the call
//! is refused as the upstream being unavailable; a CA file that cannot be read stops
//! the start with its name.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::proto::QualificationStatus;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::tls::client::{ClientIdentity, ClientTlsFiles};
use onshi_gateway::tls::dev_ca::DevPki;
use tonic::Code;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// The simulator over TLS, asking for a client certificate from the facility CA
/// (standing in for the CA the real OQS issues the gateway's certificate from).
/// Returns its `https://localhost:<port>` URL.
async fn tls_upstream(pki: &DevPki) -> String {
    let upstream = own_upstream(500, Options::default().now).await;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &pki.server.cert_pem,
            &pki.server.key_pem,
        ))
        .client_ca_root(Certificate::from_pem(&pki.facility_ca.cert_pem));
    let server = Server::builder()
        .tls_config(tls)
        .expect("server TLS")
        .add_service(upstream.qualification)
        .add_service(upstream.medical)
        .serve_with_incoming(upstream.incoming);
    tokio::spawn(server);
    upstream
        .url
        .replace("http://127.0.0.1", "https://localhost")
}

/// The files the gateway is configured with: the upstream's CA (`server-ca.pem`),
/// a CA that did not sign it (`other-ca.pem`), and its own client certificate.
fn files(pki: &DevPki, dir: &Path) -> (PathBuf, PathBuf, ClientIdentity) {
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("written");
        path
    };
    let gateway = pki
        .facility_ca
        .facility(&miyagi_clinic().to_string())
        .expect("cert");
    (
        write("server-ca.pem", &pki.server_ca.cert_pem),
        write("other-ca.pem", &pki.operator_ca.cert_pem),
        ClientIdentity {
            cert: write("gateway.pem", &gateway.cert_pem),
            key: write("gateway.key", &gateway.key_pem),
        },
    )
}

async fn gateway(url: &str, tls: ClientTlsFiles) -> Harness {
    Harness::start_with(Options {
        upstream: Some(url.to_string()),
        upstream_tls: Some(tls),
        ..Options::default()
    })
    .await
    .with_fukushima_2022()
    .await
}

async fn lookup_demo(h: &mut Harness) -> Result<QualificationStatus, tonic::Status> {
    h.qualification
        .lookup_qualification(as_facility(
            &miyagi_clinic(),
            lookup(DEMO_PATIENT.insured()),
        ))
        .await
        .map(|r| r.into_inner().status())
}

#[tokio::test]
async fn with_its_ca_and_the_gateways_certificate_the_calls_go_through() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().expect("pki");
    let url = tls_upstream(&pki).await;
    let (ca, _, identity) = files(&pki, dir.path());
    let mut h = gateway(
        &url,
        ClientTlsFiles {
            ca,
            identity: Some(identity),
        },
    )
    .await;
    assert_eq!(
        lookup_demo(&mut h).await.expect("allowed"),
        QualificationStatus::Valid
    );
    assert_eq!(h.last_record().await.decision.as_str(), "allowed");
}

#[tokio::test]
async fn the_wrong_ca_or_no_client_certificate_serves_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().expect("pki");
    let url = tls_upstream(&pki).await;
    let (ca, other_ca, identity) = files(&pki, dir.path());
    for (case, tls) in [
        (
            "a CA that did not sign the upstream's certificate",
            ClientTlsFiles {
                ca: other_ca,
                identity: Some(identity),
            },
        ),
        (
            "no client certificate",
            ClientTlsFiles { ca, identity: None },
        ),
    ] {
        let mut h = gateway(&url, tls).await;
        let refused = lookup_demo(&mut h).await.expect_err(case);
        assert_eq!(refused.code(), Code::Unavailable, "{case}: {refused:?}");
        let record = h.last_record().await;
        assert_eq!(
            (record.decision.as_str(), record.reason.as_deref()),
            ("failed", Some("UPSTREAM_UNAVAILABLE")),
            "{case}"
        );
    }
}

#[tokio::test]
async fn a_ca_file_that_cannot_be_read_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: None,
        metrics_listen: None,
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Remote("https://localhost:1".into()),
        upstream_tls: Some(ClientTlsFiles {
            ca: dir.path().join("missing-ca.pem"),
            identity: None,
        }),
        upstream_timeout: Duration::from_secs(1),
        audit: test_audit_batch(),
        ..GatewayConfig::default()
    };
    let err = onshi_gateway::server::start(config, ManualClock::new(Options::default().now))
        .await
        .err()
        .expect("refused to start");
    assert!(format!("{err:#}").contains("missing-ca.pem"), "{err:#}");
}

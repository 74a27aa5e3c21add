//! Temporary sites over real mutual TLS and across replicas:
//! - a site's key stays at the site: the operators sign its CSR, the site calls
//!   with the certificate, a closure refuses that still-valid certificate at once,
//!   and the CRL lists it; the site's certificate opens no operators' method;
//! - roles: a prefecture's health department registers sites, an auditor cannot;
//! - two replicas on PostgreSQL: a closure through one refuses the site's calls on
//!   the other within a second, although its periodic refresh is 30 s.
//!
//! The TLS test runs on today's clock, since certificates are checked against the
//! real time at the handshake.

mod common;
#[path = "common/databases.rs"]
mod databases;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::area::AreaKey;
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::Window;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::site_admin_service_client::SiteAdminServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::NewActivation;
use onshi_gateway::tls::dev_ca::{DevPki, Issued};
use onshi_gateway::tls::identity::{DEV_SITE_HEADER, IdentitySource};
use onshi_gateway::tls::{OperatorRole, TlsFiles};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};
use tonic_types::StatusExt;
use x509_parser::prelude::FromDer;

const WAJIMA: &str = "17204";

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

fn demo_lookup() -> LookupQualificationRequest {
    lookup(InsuredNumber {
        insurer_number: DEMO_PATIENT.insurer_number.into(),
        symbol: DEMO_PATIENT.symbol.into(),
        number: DEMO_PATIENT.number.into(),
        branch: DEMO_PATIENT.branch.into(),
    })
}

fn register(activation: &str, author: &str) -> RegisterSiteRequest {
    RegisterSiteRequest {
        activation_id: activation.into(),
        kind: SiteKind::FirstAidPost as i32,
        name: "輪島中学校 救護所".into(),
        municipality: WAJIMA.into(),
        coordinates: String::new(),
        sponsor: facility(17, FacilityKind::Medical, 1001).to_string(),
        contact: "090-0000-0000".into(),
        until: None,
        requires_licence: false,
        author: author.into(),
    }
}

/// 輪島市 from yesterday for a week.
async fn activate_wajima(gateway: &RunningGateway, now: DateTime<Utc>) -> String {
    let new = NewActivation {
        event: "令和6年能登半島地震".into(),
        notice: "事務連絡".into(),
        areas: vec![AreaKey::Municipality(WAJIMA.into())],
        window: Window::new(
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(6),
        )
        .expect("window"),
        created_by: "mhlw".into(),
        at: now - chrono::Duration::hours(1),
    };
    let id = gateway.store.add_activation(&new).await.expect("stored").id;
    gateway.activations.invalidate();
    id
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    pki: &DevPki,
    client: &Issued,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.server_ca.cert_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The body of `GET /crl/sites.crl`, as a relying party fetches it.
async fn fetch_crl(addr: std::net::SocketAddr) -> Vec<u8> {
    let response = common::http_get(addr, "/crl/sites.crl").await;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let headers = String::from_utf8_lossy(&response[..end]).to_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("content-type: application/pkix-crl"),
        "{headers}"
    );
    response[end + 4..].to_vec()
}

/// The site's own key and CSR, made where the site is.
fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    (key.serialize_pem(), csr)
}

#[tokio::test]
async fn a_site_calls_with_a_certificate_from_its_csr_until_it_is_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().expect("pki");
    pki.write(&dir.path().join("certs"), &[]).expect("written");
    let now = Utc::now();
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity: IdentitySource::Certificate,
        tls: Some(TlsFiles::in_dir(&dir.path().join("certs"))),
        upstream_timeout: Duration::from_secs(2),
        audit: common::test_audit_batch(),
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, ManualClock::new(now))
        .await
        .expect("starts");
    let activation = activate_wajima(&gateway, now).await;
    let admin = gateway.admin_addr.expect("admin");
    let operator = |role, id: &str| pki.operator_ca.operator(role, id).expect("cert");

    // An auditor reads sites but registers none; the prefecture registers.
    let auditor = operator(OperatorRole::Auditor, "audit-1");
    let mut as_auditor =
        SiteAdminServiceClient::new(tls_channel(admin, &pki, &auditor).await.expect("connects"));
    let refused = as_auditor
        .register_site(register(&activation, "audit-1"))
        .await
        .expect_err("auditors register nothing");
    assert_eq!(reason(&refused), "OPERATOR_ROLE_REQUIRED");
    let prefecture = operator(OperatorRole::PrefectureHealth, "ishikawa-1");
    let mut sites = SiteAdminServiceClient::new(
        tls_channel(admin, &pki, &prefecture)
            .await
            .expect("connects"),
    );
    let site = sites
        .register_site(register(&activation, "ishikawa-1"))
        .await
        .expect("the prefecture registers")
        .into_inner();
    as_auditor
        .list_sites(ListSitesRequest::default())
        .await
        .expect("auditors read sites");

    // The key never leaves the site: only the CSR travels.
    let (key_pem, csr_pem) = key_and_csr();
    let issued = sites
        .issue_site_certificate(IssueSiteCertificateRequest {
            site_id: site.site_id.clone(),
            csr_pem: csr_pem.clone(),
            valid_hours: 0,
            author: "ishikawa-1".into(),
        })
        .await
        .expect("issued")
        .into_inner();
    assert_eq!(
        issued.not_after.as_ref().map(|t| t.seconds),
        Some((now + chrono::Duration::hours(72)).timestamp())
    );
    let site_cert = Issued {
        cert_pem: issued.certificate_pem.clone(),
        key_pem,
    };
    let mut terminal = QualificationServiceClient::new(
        tls_channel(gateway.addr, &pki, &site_cert)
            .await
            .expect("the site connects"),
    );
    terminal
        .lookup_qualification(demo_lookup())
        .await
        .expect("the site is allowed");
    let records = gateway
        .store
        .chain_records(&gateway.chain_id, 0, 1000)
        .await
        .expect("log");
    let call = records.last().expect("record");
    assert_eq!(call.record.method, "LookupQualification");
    assert_eq!(
        call.record.site.site_id.as_deref(),
        Some(site.site_id.as_str())
    );

    // The site's certificate opens no operators' method.
    let as_site = match tls_channel(admin, &pki, &site_cert).await {
        Ok(channel) => SiteAdminServiceClient::new(channel)
            .list_sites(ListSitesRequest::default())
            .await
            .map(|_| ()),
        Err(_) => Err(tonic::Status::unavailable("handshake refused")),
    };
    assert!(as_site.is_err(), "a site reached an operators' method");

    // Renewed while open: a second certificate, then closed.
    let renewed = sites
        .issue_site_certificate(IssueSiteCertificateRequest {
            site_id: site.site_id.clone(),
            csr_pem: csr_pem.clone(),
            valid_hours: 14 * 24,
            author: "ishikawa-1".into(),
        })
        .await
        .expect("renewed")
        .into_inner();
    assert_ne!(renewed.serial, issued.serial);
    let refused = sites
        .issue_site_certificate(IssueSiteCertificateRequest {
            site_id: site.site_id.clone(),
            csr_pem: csr_pem.clone(),
            valid_hours: 14 * 24 + 1,
            author: "ishikawa-1".into(),
        })
        .await
        .expect_err("longer than 14 days");
    assert_eq!(reason(&refused), "SITE_CERTIFICATE_VALIDITY");
    let refused = sites
        .issue_site_certificate(IssueSiteCertificateRequest {
            site_id: site.site_id.clone(),
            csr_pem:
                "-----BEGIN CERTIFICATE REQUEST-----\nnot one\n-----END CERTIFICATE REQUEST-----\n"
                    .into(),
            valid_hours: 0,
            author: "ishikawa-1".into(),
        })
        .await
        .expect_err("not a CSR");
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::InvalidArgument, "SITE_CSR_INVALID")
    );
    sites
        .close_site(CloseSiteRequest {
            site_id: site.site_id.clone(),
            author: "ishikawa-1".into(),
            reason: "closed".into(),
        })
        .await
        .expect("closed");

    // The certificate is still valid, the site is not: refused at once.
    let refused = terminal
        .lookup_qualification(demo_lookup())
        .await
        .expect_err("closed");
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::PermissionDenied, "SITE_NOT_OPEN")
    );
    let refused = sites
        .issue_site_certificate(IssueSiteCertificateRequest {
            site_id: site.site_id.clone(),
            csr_pem,
            valid_hours: 0,
            author: "ishikawa-1".into(),
        })
        .await
        .expect_err("no certificate for a closed site");
    assert_eq!(reason(&refused), "SITE_NOT_OPEN");

    // Both certificates are on the CRL, and every certificate is in the log.
    let crl = sites
        .get_site_crl(GetSiteCrlRequest {})
        .await
        .expect("crl")
        .into_inner();
    let (_, parsed) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&crl.crl_der)
            .expect("a CRL");
    let mut serials: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    serials.sort();
    let mut expected = vec![issued.serial, renewed.serial];
    expected.sort();
    assert_eq!(serials, expected);
    // The same list, published over plain HTTP for parties that fetch it by URL.
    let published = fetch_crl(gateway.metrics_addr.expect("metrics")).await;
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(&published)
        .expect("a CRL over HTTP");
    let mut over_http: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    over_http.sort();
    assert_eq!(over_http, expected);
    let methods: Vec<String> = gateway
        .store
        .chain_records(&gateway.chain_id, 0, 1000)
        .await
        .expect("log")
        .into_iter()
        .filter(|s| s.record.items == "site")
        .map(|s| s.record.method)
        .collect();
    assert_eq!(
        methods,
        [
            "RegisterSite",
            "IssueSiteCertificate",
            "IssueSiteCertificate",
            "CloseSite"
        ]
    );
}

// ---------------------------------------------------------------------------
// Two replicas on one PostgreSQL.

const LONG_REFRESH: Duration = Duration::from_secs(30);
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

async fn replica(url: &str, clock: &Arc<ManualClock>) -> (RunningGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(url.to_string()),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity: IdentitySource::DevelopmentMetadata,
        upstream_timeout: Duration::from_secs(5),
        activation_refresh: LONG_REFRESH,
        drain_timeout: Duration::from_secs(5),
        audit: common::test_audit_batch(),
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, clock.clone())
        .await
        .expect("replica starts");
    (gateway, dir)
}

async fn channel(addr: std::net::SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
}

async fn site_call(
    client: &mut QualificationServiceClient<Channel>,
    site: &str,
) -> Result<(), String> {
    let mut req = Request::new(demo_lookup());
    req.metadata_mut()
        .insert(DEV_SITE_HEADER, site.parse().expect("ascii"));
    client
        .lookup_qualification(req)
        .await
        .map(|_| ())
        .map_err(|s| reason(&s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closure_through_one_replica_refuses_the_site_on_the_other_within_a_second() {
    let db = databases::fresh_postgres().await;
    let now = jst_at(2024, 1, 3, 10, 0);
    let clock = ManualClock::new(now);
    let (a, _a_dir) = replica(&db.url, &clock).await;
    let (b, _b_dir) = replica(&db.url, &clock).await;
    let activation = activate_wajima(&a, now).await;
    let mut sites_a =
        SiteAdminServiceClient::new(channel(a.admin_addr.expect("admin")).await.expect("a"));
    let mut sites_b =
        SiteAdminServiceClient::new(channel(b.admin_addr.expect("admin")).await.expect("b"));
    let mut calls_b = QualificationServiceClient::new(channel(b.addr).await.expect("b"));

    let site = sites_a
        .register_site(register(&activation, "op-a"))
        .await
        .expect("registered on a")
        .into_inner();
    // Stored on PostgreSQL, read back whole on the other replica.
    let shown = sites_b
        .get_site(GetSiteRequest {
            site_id: site.site_id.clone(),
        })
        .await
        .expect("seen on b")
        .into_inner();
    assert_eq!(
        (shown.name.as_str(), shown.municipality.as_str()),
        ("輪島中学校 救護所", WAJIMA)
    );
    let since = Instant::now();
    while site_call(&mut calls_b, &site.site_id).await.is_err() {
        assert!(
            since.elapsed() < 5 * PROPAGATION_BOUND,
            "b never saw the site"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    sites_a
        .close_site(CloseSiteRequest {
            site_id: site.site_id.clone(),
            author: "op-a".into(),
            reason: String::new(),
        })
        .await
        .expect("closed on a");
    let since = Instant::now();
    loop {
        match site_call(&mut calls_b, &site.site_id).await {
            Err(r) if r == "SITE_NOT_OPEN" => break,
            other => assert!(
                since.elapsed() < 5 * PROPAGATION_BOUND,
                "b still decides {other:?} after {:?}",
                since.elapsed()
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = since.elapsed();
    assert!(
        took < PROPAGATION_BOUND,
        "the closure reached b after {took:?}"
    );
    let history = sites_b
        .check_site(CheckSiteRequest {
            site_id: site.site_id.clone(),
            at: Some(ts(now - chrono::Duration::seconds(1))),
        })
        .await
        .expect("check")
        .into_inner();
    assert!(!history.allowed, "not yet registered a second before");
    drop((a, b));
    db.drop_schema().await;
}

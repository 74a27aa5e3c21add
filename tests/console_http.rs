//! The console's security over real HTTPS, without a browser: the operator's
//! certificate is the only login (a facility's fails the handshake), each page is
//! allowed to the roles of the API method it stands for, every response carries the
//! strict Content-Security-Policy and `Cache-Control: no-store`, and a form is
//! refused without a valid token for this certificate or from another origin.

mod common;
#[path = "console/support.rs"]
mod support;

use std::sync::Arc;

use axum::body::Body;
use common::*;
use hyper_util::rt::TokioIo;
use onshi_gateway::console::headers::CSP;
use onshi_gateway::tls::OperatorRole;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

/// One HTTPS request to the console presenting `cert` (PEM certificate and key).
async fn call(
    t: &support::ConsoleGateway,
    cert: (&str, &str),
    request: http::Request<Body>,
) -> anyhow::Result<Reply> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(
        t.pki.server_ca.cert_pem.as_bytes(),
    )?)?;
    let chain = CertificateDer::pem_slice_iter(cert.0.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes())?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let addr = t.gateway.console_addr.expect("console");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 4 << 20).await?;
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn get(path: &str) -> http::Request<Body> {
    http::Request::get(path)
        .header("host", "localhost")
        .body(Body::empty())
        .expect("request")
}

fn post(
    t: &support::ConsoleGateway,
    path: &str,
    form: &str,
    origin: Option<&str>,
) -> http::Request<Body> {
    let mut r = http::Request::post(path)
        .header(
            "host",
            format!(
                "localhost:{}",
                t.gateway.console_addr.expect("console").port()
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.body(Body::from(form.to_string())).expect("request")
}

/// The CSRF token of the first form on a page.
fn token(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token")
        + 19;
    page[start..].split('"').next().expect("token").to_string()
}

fn operator(t: &support::ConsoleGateway, role: OperatorRole, id: &str) -> (String, String) {
    let issued = t.pki.operator_ca.operator(role, id).expect("cert");
    (issued.cert_pem, issued.key_pem)
}

#[tokio::test]
async fn pages_carry_the_policy_and_no_store_and_roles_are_those_of_the_api() {
    let t = support::start(jst_at(2024, 1, 1, 16, 30), test_audit_batch()).await;
    let manager = operator(&t, OperatorRole::ActivationManager, "m1");
    let now = call(&t, (&manager.0, &manager.1), get("/console/now"))
        .await
        .expect("served");
    assert_eq!(now.status, 200, "{}", now.body);
    assert_eq!(now.headers["content-security-policy"], CSP);
    assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe-inline"));
    assert_eq!(now.headers["cache-control"], "no-store");
    assert!(now.body.contains("activation-manager:m1"));
    assert!(!now.body.contains("<script>"), "no inline script");

    let reviewer = operator(&t, OperatorRole::Reviewer, "r1");
    let refused = call(&t, (&reviewer.0, &reviewer.1), get("/console/notice"))
        .await
        .expect("served");
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("OPERATOR_ROLE_REQUIRED"),
        "{}",
        refused.body
    );
    assert_eq!(refused.headers["cache-control"], "no-store");
    let queue = call(&t, (&reviewer.0, &reviewer.1), get("/console/review"))
        .await
        .expect("served");
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert_eq!(queue.headers["cache-control"], "no-store");
    let witness = operator(&t, OperatorRole::Witness, "w1");
    let refused = call(&t, (&witness.0, &witness.1), get("/console/review"))
        .await
        .expect("served");
    assert_eq!(refused.status, 403);
    t.gateway.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_form_needs_its_token_for_this_certificate_from_this_origin() {
    let t = support::start(jst_at(2024, 1, 1, 16, 30), test_audit_batch()).await;
    let manager = operator(&t, OperatorRole::ActivationManager, "m1");
    let me = (manager.0.as_str(), manager.1.as_str());
    let page = call(&t, me, get("/console/notice")).await.expect("served");
    let good = token(&page.body);
    let origin = format!(
        "https://localhost:{}",
        t.gateway.console_addr.expect("console").port()
    );
    let form = |csrf: &str| format!("csrf={csrf}&text=%E8%BC%AA%E5%B3%B6%E5%B8%82");
    let path = "/console/notice/preview";

    let missing = call(&t, me, post(&t, path, "text=x", Some(&origin)))
        .await
        .expect("served");
    assert_eq!(missing.status, 403, "{}", missing.body);
    let forged = call(
        &t,
        me,
        post(&t, path, &form("AAAAAAAAAAAAAAAAAAAA"), Some(&origin)),
    )
    .await
    .expect("served");
    assert_eq!(forged.status, 403);
    let elsewhere = call(
        &t,
        me,
        post(&t, path, &form(&good), Some("https://evil.example")),
    )
    .await
    .expect("served");
    assert_eq!(elsewhere.status, 403);
    let mut cross = post(&t, path, &form(&good), None);
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().expect("header"));
    assert_eq!(call(&t, me, cross).await.expect("served").status, 403);
    // Another operator's token is not this one's, even of the same role.
    let other = operator(&t, OperatorRole::ActivationManager, "m2");
    let theirs = call(
        &t,
        (&other.0, &other.1),
        post(&t, path, &form(&good), Some(&origin)),
    )
    .await
    .expect("served");
    assert_eq!(theirs.status, 403);
    // A token for another form is refused too.
    let create = call(
        &t,
        me,
        post(&t, "/console/notice/create", &form(&good), Some(&origin)),
    )
    .await
    .expect("served");
    assert_eq!(create.status, 403);

    let accepted = call(&t, me, post(&t, path, &form(&good), Some(&origin)))
        .await
        .expect("served");
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert!(
        accepted.body.contains("data-municipalities=\"1\""),
        "{}",
        accepted.body
    );
    assert_eq!(accepted.headers["cache-control"], "no-store");
    t.gateway.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_facility_or_site_certificate_cannot_open_the_console() {
    let t = support::start(jst_at(2024, 1, 1, 16, 30), test_audit_batch()).await;
    let clinic = t
        .pki
        .facility_ca
        .facility(&miyagi_clinic().to_string())
        .expect("cert");
    let refused = call(&t, (&clinic.cert_pem, &clinic.key_pem), get("/console/now")).await;
    assert!(
        refused.is_err(),
        "a facility certificate must fail the handshake"
    );
    let site = t
        .pki
        .site_ca
        .client_with_uris(&["urn:onshi:site:post-1"])
        .expect("cert");
    let refused = call(&t, (&site.cert_pem, &site.key_pem), get("/console/now")).await;
    assert!(
        refused.is_err(),
        "a site certificate must fail the handshake"
    );
    // Even from the operator CA, a certificate naming a facility opens nothing.
    let code = miyagi_clinic().to_string();
    let odd = t
        .pki
        .operator_ca
        .client_with_uris(&[&format!("urn:onshi:facility:{code}")])
        .expect("cert");
    // (Refused at the handshake is as good as a refused page.)
    if let Ok(reply) = call(&t, (&odd.cert_pem, &odd.key_pem), get("/console/now")).await {
        assert_eq!(reply.status, 403, "{}", reply.body);
    }
    t.gateway.shutdown().await.expect("stops");
}

#[tokio::test]
async fn the_console_is_not_served_without_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let config = onshi_gateway::config::GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        console_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        audit: test_audit_batch(),
        ..onshi_gateway::config::GatewayConfig::default()
    };
    let clock = onshi_gateway::clock::ManualClock::new(jst_at(2024, 1, 1, 16, 30));
    let refused = onshi_gateway::server::start(config, clock).await;
    let error = format!("{:#}", refused.err().expect("refused"));
    assert!(error.contains("needs TLS"), "{error}");
}

/// "Was site S allowed at T?": the site service's own answer, with the site's
/// revision then; refused once the site is closed.
#[tokio::test]
async fn the_history_page_answers_for_a_temporary_site_at_an_instant() {
    use onshi_gateway::domain::jst::Window;
    use onshi_gateway::proto::site_admin_service_client::SiteAdminServiceClient;
    use onshi_gateway::proto::{CloseSiteRequest, RegisterSiteRequest, SiteKind};
    use onshi_gateway::store::{AreaKey, NewActivation};
    use onshi_gateway::tls::client::{ClientIdentity, client_tls};

    let t = support::start(jst_at(2024, 1, 3, 10, 0), test_audit_batch()).await;
    let noto = NewActivation {
        event: "令和6年能登半島地震".into(),
        notice: "令和6年1月1日付事務連絡".into(),
        areas: vec![AreaKey::Municipality("17204".into())],
        window: Window::new(jst_at(2024, 1, 1, 16, 10), jst_at(2024, 1, 8, 0, 0)).expect("window"),
        created_by: "mhlw".into(),
        at: jst_at(2024, 1, 1, 17, 0),
    };
    let activation = t.gateway.store.add_activation(&noto).await.expect("stored");
    t.gateway.activations.invalidate();
    let prefecture = t
        .pki
        .operator_ca
        .operator(OperatorRole::PrefectureHealth, "p1")
        .expect("cert");
    let (cert, key) = t.write("prefecture", &prefecture.cert_pem, &prefecture.key_pem);
    let identity = ClientIdentity {
        cert: cert.into(),
        key: key.into(),
    };
    let tls = client_tls(
        &t.dir.path().join("certs/server-ca.pem"),
        Some(&identity),
        "localhost",
    )
    .expect("tls");
    let channel = tonic::transport::Channel::from_shared(format!(
        "https://{}",
        t.gateway.admin_addr.expect("admin")
    ))
    .expect("uri")
    .tls_config(tls)
    .expect("tls")
    .connect()
    .await
    .expect("connects");
    let mut sites = SiteAdminServiceClient::new(channel);
    let site = sites
        .register_site(RegisterSiteRequest {
            activation_id: activation.id,
            kind: SiteKind::FirstAidPost as i32,
            name: "輪島中学校 救護所".into(),
            municipality: "17204".into(),
            sponsor: facility(
                13,
                onshi_gateway::domain::facility::FacilityKind::Medical,
                1001,
            )
            .to_string(),
            contact: "090-0000-0000".into(),
            author: "p1".into(),
            ..Default::default()
        })
        .await
        .expect("registered")
        .into_inner();

    let auditor = operator(&t, OperatorRole::Auditor, "a1");
    let ask = |at: &str| get(&format!("/console/history?site={}&at={at}", site.site_id));
    let open = call(&t, (&auditor.0, &auditor.1), ask("2024-01-03+10%3A00"))
        .await
        .expect("served");
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(open.body.contains("data-allowed=\"true\""), "{}", open.body);
    assert!(
        open.body.contains("data-site-revision=\"1\""),
        "{}",
        open.body
    );

    t.clock.set(jst_at(2024, 1, 3, 12, 0));
    sites
        .close_site(CloseSiteRequest {
            site_id: site.site_id.clone(),
            author: "p1".into(),
            reason: "shelter closed".into(),
        })
        .await
        .expect("closed");
    let closed = call(&t, (&auditor.0, &auditor.1), ask("2024-01-03+12%3A30"))
        .await
        .expect("served");
    assert!(
        closed.body.contains("data-allowed=\"false\""),
        "{}",
        closed.body
    );
    assert!(closed.body.contains("SITE_NOT_OPEN"), "{}", closed.body);
    // Asked about before the closure, the answer is as it stood then.
    let before = call(&t, (&auditor.0, &auditor.1), ask("2024-01-03+10%3A30"))
        .await
        .expect("served");
    assert!(
        before.body.contains("data-allowed=\"true\""),
        "{}",
        before.body
    );
    t.gateway.shutdown().await.expect("stops");
}

//! Mutual TLS end to end: facilities are who their certificates say, whatever the
//! request claims; operators' roles decide which admin methods they reach; anything
//! else is refused at the handshake or with a specific reason.

mod common;

use std::time::Duration;

use common::*;
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::audit_service_client::AuditServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::tls::dev_ca::{DevPki, Issued};
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, IdentitySource};
use onshi_gateway::tls::{OperatorRole, TlsFiles};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Tls {
    gateway: RunningGateway,
    pki: DevPki,
    dir: tempfile::TempDir,
}

async fn start(identity: IdentitySource) -> anyhow::Result<Tls> {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().expect("pki");
    pki.write(&dir.path().join("certs"), &[]).expect("written");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity,
        tls: Some(TlsFiles::in_dir(&dir.path().join("certs"))),
        upstream_timeout: Duration::from_secs(2),
        audit: test_audit_batch(),
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, ManualClock::new(jst_at(2022, 3, 20, 10, 0))).await?;
    Ok(Tls { gateway, pki, dir })
}

async fn channel(
    addr: std::net::SocketAddr,
    pki: &DevPki,
    client: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.server_ca.cert_pem))
        .domain_name("localhost");
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

async fn terminal(t: &Tls, client: &Issued) -> QualificationServiceClient<Channel> {
    QualificationServiceClient::new(
        channel(t.gateway.addr, &t.pki, Some(client))
            .await
            .expect("connects"),
    )
}

fn demo_lookup() -> LookupQualificationRequest {
    lookup(InsuredNumber {
        insurer_number: DEMO_PATIENT.insurer_number.into(),
        symbol: DEMO_PATIENT.symbol.into(),
        number: DEMO_PATIENT.number.into(),
        branch: DEMO_PATIENT.branch.into(),
    })
}

async fn activate_fukushima(t: &Tls) {
    let manager = t
        .pki
        .operator_ca
        .operator(OperatorRole::ActivationManager, "op-1")
        .expect("cert");
    let admin = t.gateway.admin_addr.expect("admin");
    let mut operators = ActivationAdminServiceClient::new(
        channel(admin, &t.pki, Some(&manager))
            .await
            .expect("connects"),
    );
    operators
        .create_activation(CreateActivationRequest {
            event: "令和4年福島沖地震".into(),
            areas: Some(Areas {
                prefectures: vec!["04".into(), "07".into()],
                ..Areas::default()
            }),
            window: Some(WindowSpec {
                form: Some(window_spec::Form::OneWeekFrom("2022-03-17".into())),
            }),
            change: Some(ChangeContext {
                author: "op-1".into(),
                ..ChangeContext::default()
            }),
        })
        .await
        .expect("an activation manager may create");
}

#[tokio::test]
async fn the_facility_is_the_certificates_and_a_tokyo_clinic_cannot_pass_as_miyagi() {
    let t = start(IdentitySource::Certificate).await.expect("starts");
    activate_fukushima(&t).await;
    let miyagi = miyagi_clinic().to_string();
    let tokyo = tokyo_clinic().to_string();

    let mut clinic = terminal(&t, &t.pki.facility_ca.facility(&miyagi).expect("cert")).await;
    clinic
        .lookup_qualification(demo_lookup())
        .await
        .expect("Miyagi is activated and its certificate says so");
    let record = t
        .gateway
        .store
        .chain_records(&t.gateway.chain_id, 0, 100)
        .await
        .expect("log")
        .pop()
        .expect("a record");
    assert_eq!(record.record.facility.as_deref(), Some(miyagi.as_str()));

    let mut impostor = terminal(&t, &t.pki.facility_ca.facility(&tokyo).expect("cert")).await;
    // Claiming Miyagi in metadata is refused, not believed.
    let mut claim = tonic::Request::new(demo_lookup());
    claim
        .metadata_mut()
        .insert(DEV_FACILITY_HEADER, miyagi.parse().expect("ascii"));
    assert_denied(
        impostor.lookup_qualification(claim).await,
        Code::PermissionDenied,
        "FACILITY_MISMATCH",
    );
    // Without a claim it is what it is: Tokyo, not activated.
    assert_denied(
        impostor.lookup_qualification(demo_lookup()).await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    // Claiming its own code is harmless.
    let mut own = tonic::Request::new(demo_lookup());
    own.metadata_mut()
        .insert(DEV_FACILITY_HEADER, tokyo.parse().expect("ascii"));
    assert_denied(
        impostor.lookup_qualification(own).await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
}

/// A lookup over a new connection presenting `client`: a refused handshake shows
/// as a connection that fails, or a first call that does.
async fn lookup_with(t: &Tls, client: Option<&Issued>) -> Result<(), tonic::Status> {
    match channel(t.gateway.addr, &t.pki, client).await {
        Ok(c) => QualificationServiceClient::new(c)
            .lookup_qualification(demo_lookup())
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    }
}

/// Handshakes the terminal listener refused for `reason`, once the gateway has
/// counted them (the client may see the refusal first).
async fn refused(t: &Tls, reason: &str, expected: f64) -> f64 {
    let series =
        format!("onshi_tls_handshake_refused_total{{listener=\"terminal\",reason=\"{reason}\"}} ");
    let count = || {
        t.gateway
            .metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok())
            .unwrap_or_default()
    };
    for _ in 0..100 {
        if count() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    count()
}

#[tokio::test]
async fn bad_certificates_are_refused_at_the_handshake_and_counted_by_reason() {
    let t = start(IdentitySource::Certificate).await.expect("starts");
    activate_fukushima(&t).await;

    // No client certificate.
    assert!(lookup_with(&t, None).await.is_err(), "no certificate");
    assert_eq!(refused(&t, "no_client_certificate", 1.0).await, 1.0);

    // A certificate from another CA (the operators') is not a facility's.
    let operator = t
        .pki
        .operator_ca
        .operator(OperatorRole::Auditor, "a")
        .expect("cert");
    assert!(
        lookup_with(&t, Some(&operator)).await.is_err(),
        "foreign CA"
    );
    assert_eq!(refused(&t, "unknown_ca", 1.0).await, 1.0);

    // Expired.
    let expired = t
        .pki
        .facility_ca
        .facility_until(
            &miyagi_clinic().to_string(),
            rcgen::date_time_ymd(2021, 1, 1),
        )
        .expect("cert");
    assert!(lookup_with(&t, Some(&expired)).await.is_err(), "expired");
    assert_eq!(refused(&t, "expired", 1.0).await, 1.0);

    // From the right CA but naming a code whose check digit is wrong, or no
    // facility at all: refused at the handshake too, not only by each call.
    let code = miyagi_clinic().to_string();
    let wrong = format!("{}{}", &code[..9], (code.as_bytes()[9] - b'0' + 1) % 10);
    let bad = t.pki.facility_ca.facility(&wrong).expect("cert");
    assert!(lookup_with(&t, Some(&bad)).await.is_err(), "check digit");
    assert_eq!(refused(&t, "bad_identity", 1.0).await, 1.0);
    let nameless = t
        .pki
        .facility_ca
        .client_with_uris(&["https://example.invalid/"])
        .expect("cert");
    assert!(
        lookup_with(&t, Some(&nameless)).await.is_err(),
        "no identity"
    );
    assert_eq!(refused(&t, "bad_identity", 2.0).await, 2.0);

    // A good certificate is served and counts as no refusal.
    let good = t.pki.facility_ca.facility(&code).expect("cert");
    lookup_with(&t, Some(&good)).await.expect("served");
    for reason in ["no_client_certificate", "unknown_ca", "expired", "other"] {
        let expected = if reason == "other" { 0.0 } else { 1.0 };
        assert_eq!(refused(&t, reason, expected).await, expected, "{reason}");
    }
    assert_eq!(refused(&t, "bad_identity", 2.0).await, 2.0);
}

#[tokio::test]
async fn operator_roles_decide_the_admin_methods_and_facilities_never_reach_them() {
    let t = start(IdentitySource::Certificate).await.expect("starts");
    let admin = t.gateway.admin_addr.expect("admin");
    let auditor = t
        .pki
        .operator_ca
        .operator(OperatorRole::Auditor, "aud-1")
        .expect("cert");
    let manager = t
        .pki
        .operator_ca
        .operator(OperatorRole::ActivationManager, "op-1")
        .expect("cert");

    let create = || CreateActivationRequest {
        event: "e".into(),
        areas: Some(Areas {
            prefectures: vec!["04".into()],
            ..Areas::default()
        }),
        window: Some(WindowSpec {
            form: Some(window_spec::Form::OneWeekFrom("2022-03-17".into())),
        }),
        change: Some(ChangeContext {
            author: "someone".into(),
            ..ChangeContext::default()
        }),
    };
    let auditor_channel = channel(admin, &t.pki, Some(&auditor))
        .await
        .expect("connects");
    assert_denied(
        ActivationAdminServiceClient::new(auditor_channel.clone())
            .create_activation(create())
            .await,
        Code::PermissionDenied,
        "OPERATOR_ROLE_REQUIRED",
    );
    // An auditor may read activations and the access log.
    ActivationAdminServiceClient::new(auditor_channel.clone())
        .list_activations(ListActivationsRequest {})
        .await
        .expect("auditors read activations");
    AuditServiceClient::new(auditor_channel)
        .query_access_log(QueryAccessLogRequest::default())
        .await
        .expect("auditors read the log");

    let manager_channel = channel(admin, &t.pki, Some(&manager))
        .await
        .expect("connects");
    ActivationAdminServiceClient::new(manager_channel.clone())
        .create_activation(create())
        .await
        .expect("a manager creates");
    assert_denied(
        AuditServiceClient::new(manager_channel)
            .query_access_log(QueryAccessLogRequest::default())
            .await,
        Code::PermissionDenied,
        "OPERATOR_ROLE_REQUIRED",
    );

    // A facility certificate is not from the operators' CA: no admin method at all.
    let clinic = t
        .pki
        .facility_ca
        .facility(&facility(4, FacilityKind::Medical, 1001).to_string())
        .expect("cert");
    let refused = match channel(admin, &t.pki, Some(&clinic)).await {
        Ok(c) => ActivationAdminServiceClient::new(c)
            .list_activations(ListActivationsRequest {})
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        refused.is_err(),
        "a facility certificate must not reach an admin method"
    );
}

#[tokio::test]
async fn development_identity_is_refused_with_tls() {
    let err = start(IdentitySource::DevelopmentMetadata)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("refused with TLS"), "{err}");
}

#[tokio::test]
async fn a_facility_reads_only_its_own_audit_records_on_the_terminal_listener() {
    use tokio_stream::StreamExt;
    let t = start(IdentitySource::Certificate).await.expect("starts");
    activate_fukushima(&t).await;
    let miyagi = miyagi_clinic().to_string();
    let tokyo = tokyo_clinic().to_string();
    let miyagi_cert = t.pki.facility_ca.facility(&miyagi).expect("cert");
    let tokyo_cert = t.pki.facility_ca.facility(&tokyo).expect("cert");
    terminal(&t, &miyagi_cert)
        .await
        .lookup_qualification(demo_lookup())
        .await
        .expect("allowed");
    let _ = terminal(&t, &tokyo_cert)
        .await
        .lookup_qualification(demo_lookup())
        .await;

    let channel = channel(t.gateway.addr, &t.pki, Some(&miyagi_cert))
        .await
        .expect("connects");
    let mut audit = AuditServiceClient::new(channel);
    let mut pages = audit
        .query_facility_access_log(QueryFacilityAccessLogRequest::default())
        .await
        .expect("its own records")
        .into_inner();
    let mut facilities = Vec::new();
    while let Some(page) = pages.next().await {
        facilities.extend(
            page.expect("page")
                .entries
                .into_iter()
                .map(|e| e.facility_code),
        );
    }
    assert_eq!(
        facilities,
        vec![miyagi.clone()],
        "only Miyagi's record, not Tokyo's"
    );

    assert_denied(
        audit
            .query_facility_access_log(QueryFacilityAccessLogRequest {
                facility_code: tokyo,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "FACILITY_MISMATCH",
    );
    assert_denied(
        audit
            .query_access_log(QueryAccessLogRequest::default())
            .await,
        Code::PermissionDenied,
        "OPERATOR_ROLE_REQUIRED",
    );
}

#[tokio::test]
async fn certificates_are_reloaded_without_a_restart() {
    let mut t = start(IdentitySource::Certificate).await.expect("starts");
    activate_fukushima(&t).await;
    let miyagi = miyagi_clinic().to_string();
    let old_cert = t.pki.facility_ca.facility(&miyagi).expect("cert");
    let old_pki_channel = channel(t.gateway.addr, &t.pki, Some(&old_cert))
        .await
        .expect("connects");

    // A new PKI replaces the files; a reload that cannot read them changes nothing.
    let certs = t.dir.path().join("certs");
    let new_pki = DevPki::generate().expect("pki");
    std::fs::write(certs.join("facility-ca.pem"), "not a certificate").expect("write");
    assert!(t.gateway.reload_tls().is_err(), "a broken file is reported");
    QualificationServiceClient::new(
        channel(t.gateway.addr, &t.pki, Some(&old_cert))
            .await
            .expect("the old certificates still work"),
    )
    .lookup_qualification(demo_lookup())
    .await
    .expect("served");

    new_pki.write(&certs, &[]).expect("written");
    t.gateway.reload_tls().expect("reloaded");
    let new_cert = new_pki.facility_ca.facility(&miyagi).expect("cert");
    QualificationServiceClient::new(
        channel(t.gateway.addr, &new_pki, Some(&new_cert))
            .await
            .expect("the new certificates are accepted"),
    )
    .lookup_qualification(demo_lookup())
    .await
    .expect("served with the new certificates");
    // A new connection with the old ones is refused; the open one keeps working.
    let old_again = match channel(t.gateway.addr, &t.pki, Some(&old_cert)).await {
        Ok(c) => QualificationServiceClient::new(c)
            .lookup_qualification(demo_lookup())
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        old_again.is_err(),
        "the replaced CA no longer admits new connections"
    );
    QualificationServiceClient::new(old_pki_channel)
        .lookup_qualification(demo_lookup())
        .await
        .expect("an open connection keeps its session");
    t.pki = new_pki;
}

/// A refused call is recorded with all that was known when it was refused: the
/// certificate's facility (even when the request claimed another), the staff, the
/// consent basis and the purpose it stated.
#[tokio::test]
async fn a_refused_claim_is_on_the_certificate_holders_record_with_what_it_stated() {
    let t = start(IdentitySource::Certificate).await.expect("starts");
    let miyagi = miyagi_clinic().to_string();
    let tokyo = tokyo_clinic().to_string();
    let mut impostor = terminal(&t, &t.pki.facility_ca.facility(&tokyo).expect("cert")).await;
    let mut claim = tonic::Request::new(demo_lookup());
    claim
        .metadata_mut()
        .insert(DEV_FACILITY_HEADER, miyagi.parse().expect("ascii"));
    assert_denied(
        impostor.lookup_qualification(claim).await,
        Code::PermissionDenied,
        "FACILITY_MISMATCH",
    );
    let last = || async {
        t.gateway
            .store
            .chain_records(&t.gateway.chain_id, 0, 100)
            .await
            .expect("log")
            .pop()
            .expect("a record")
            .record
    };
    let record = last().await;
    assert_eq!(record.reason.as_deref(), Some("FACILITY_MISMATCH"));
    assert_eq!(record.facility.as_deref(), Some(tokyo.as_str()));
    assert_eq!(record.staff_id.as_deref(), Some("dr-0001"));
    assert_eq!(record.staff_role.as_deref(), Some("doctor"));
    assert_eq!(record.consent_basis.as_deref(), Some("patient_consent"));
    assert_eq!(record.purpose.as_deref(), Some("medical_care"));

    // Refused later, by the activation rule: the statement is on the record too.
    assert_denied(
        impostor.lookup_qualification(demo_lookup()).await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    let record = last().await;
    assert_eq!(record.reason.as_deref(), Some("AREA_NOT_ACTIVATED"));
    assert_eq!(record.facility.as_deref(), Some(tokyo.as_str()));
    assert_eq!(
        (
            record.staff_id.as_deref(),
            record.consent_basis.as_deref(),
            record.purpose.as_deref()
        ),
        (
            Some("dr-0001"),
            Some("patient_consent"),
            Some("medical_care")
        )
    );

    // The certificate holder's own log shows the attempt.
    use tokio_stream::StreamExt;
    let tokyo_cert = t.pki.facility_ca.facility(&tokyo).expect("cert");
    let channel = channel(t.gateway.addr, &t.pki, Some(&tokyo_cert))
        .await
        .expect("connects");
    let mut pages = AuditServiceClient::new(channel)
        .query_facility_access_log(QueryFacilityAccessLogRequest::default())
        .await
        .expect("its own records")
        .into_inner();
    let mut reasons = Vec::new();
    while let Some(page) = pages.next().await {
        reasons.extend(page.expect("page").entries.into_iter().map(|e| e.reason));
    }
    assert!(
        reasons.iter().any(|r| r == "FACILITY_MISMATCH"),
        "the attempt is in Tokyo's own log: {reasons:?}"
    );
}

//! Temporary sites, replayed on Noto 2024: a first-aid post in 輪島市 registered on
//! 3 January calls while 輪島市's window runs and its own is open, and is refused
//! once it is closed or its area's window ends; it never calls as its sponsor nor
//! reads the sponsor's log; a site outside the activated area is refused at
//! registration; every change is attributed, logged and answerable at an instant.
//!
//! The site is identified here by development metadata (`x-onshi-dev-site`), so the
//! clock can stand in 2024; `tests/sites_tls.rs` runs the certificates themselves.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use onshi_gateway::domain::area::AreaKey;
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::domain::jst::Window;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::audit_service_client::AuditServiceClient;
use onshi_gateway::proto::site_admin_service_client::SiteAdminServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::NewActivation;
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, DEV_SITE_HEADER};
use tonic::transport::Channel;
use tonic::{Code, Request};

const WAJIMA: &str = "17204";
const SUZU: &str = "17205";

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

fn demo_insured() -> InsuredNumber {
    InsuredNumber {
        insurer_number: DEMO_PATIENT.insurer_number.into(),
        symbol: DEMO_PATIENT.symbol.into(),
        number: DEMO_PATIENT.number.into(),
        branch: DEMO_PATIENT.branch.into(),
    }
}

fn as_site<T>(site: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut()
        .insert(DEV_SITE_HEADER, site.parse().expect("ascii metadata"));
    req
}

/// A DMAT's hospital in Tokyo: its own area is never activated here.
fn tokyo_sponsor() -> String {
    facility(13, FacilityKind::Medical, 1001).to_string()
}

/// Noto 2024 as the first notice put it, for 輪島市 only: from 1 January 16:10
/// until the end of 7 January (JST).
async fn noto(h: &Harness) -> String {
    let new = NewActivation {
        event: "令和6年能登半島地震".into(),
        notice: "令和6年1月1日付事務連絡".into(),
        areas: vec![AreaKey::Municipality(WAJIMA.into())],
        window: Window::new(jst_at(2024, 1, 1, 16, 10), jst_at(2024, 1, 8, 0, 0)).expect("window"),
        created_by: "mhlw".into(),
        at: jst_at(2024, 1, 1, 17, 0),
    };
    let a = h.gateway.store.add_activation(&new).await.expect("stored");
    h.gateway.activations.invalidate();
    a.id
}

async fn operators(h: &Harness) -> Channel {
    Channel::from_shared(format!(
        "http://{}",
        h.gateway.admin_addr.expect("admin listener")
    ))
    .expect("uri")
    .connect()
    .await
    .expect("connect")
}

fn post(activation: &str, municipality: &str) -> RegisterSiteRequest {
    RegisterSiteRequest {
        activation_id: activation.into(),
        kind: SiteKind::FirstAidPost as i32,
        name: "輪島中学校 救護所".into(),
        municipality: municipality.into(),
        coordinates: "37.3906,136.8990".into(),
        sponsor: tokyo_sponsor(),
        contact: "090-0000-0000".into(),
        until: None,
        requires_licence: false,
        author: "ishikawa-health-1".into(),
    }
}

async fn start() -> (Harness, String, SiteAdminServiceClient<Channel>) {
    let h = Harness::start_with(Options {
        now: jst_at(2024, 1, 3, 10, 0),
        ..Options::default()
    })
    .await;
    let activation = noto(&h).await;
    let sites = SiteAdminServiceClient::new(operators(&h).await);
    (h, activation, sites)
}

#[tokio::test]
async fn a_first_aid_post_in_wajima_calls_while_both_windows_run_and_not_after_closure() {
    let (mut h, activation, mut sites) = start().await;
    let site = sites
        .register_site(post(&activation, WAJIMA))
        .await
        .expect("registered")
        .into_inner();
    assert!(site.open, "{site:?}");
    assert_eq!(
        site.valid_until,
        Some(ts(jst_at(2024, 1, 8, 0, 0))),
        "the area's end"
    );
    assert_eq!(
        site.identity_uri,
        format!("urn:onshi:site:{}", site.site_id)
    );

    // Allowed under 輪島市's window, though the sponsor's Tokyo is not activated.
    let reply = h
        .qualification
        .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
        .await
        .expect("a registered, open site is allowed")
        .into_inner();
    assert!(reply.qualification.is_some());
    let record = h.last_record().await;
    assert_eq!(record.site.site_id.as_deref(), Some(site.site_id.as_str()));
    assert_eq!(record.site.site_kind.as_deref(), Some("first-aid-post"));
    assert_eq!(
        record.site.site_sponsor.as_deref(),
        Some(tokyo_sponsor().as_str())
    );
    assert_eq!(record.facility.as_deref(), Some(tokyo_sponsor().as_str()));
    assert_eq!(record.activation_id.as_deref(), Some(activation.as_str()));

    // Closed on 5 January: refused at once, on this replica.
    h.clock.set(jst_at(2024, 1, 5, 12, 0));
    let closed = sites
        .close_site(CloseSiteRequest {
            site_id: site.site_id.clone(),
            author: "ishikawa-health-1".into(),
            reason: "moved to the gymnasium".into(),
        })
        .await
        .expect("closed")
        .into_inner();
    assert!(closed.closed && !closed.open);
    let refused = assert_denied(
        h.qualification
            .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
            .await,
        Code::PermissionDenied,
        "SITE_NOT_OPEN",
    );
    assert!(
        refused.message().contains("was closed"),
        "{}",
        refused.message()
    );
    assert_eq!(
        h.last_record().await.reason.as_deref(),
        Some("SITE_NOT_OPEN")
    );

    // The history answers for any instant, as known then.
    let check = |at| CheckSiteRequest {
        site_id: site.site_id.clone(),
        at: Some(ts(at)),
    };
    let before = sites
        .check_site(check(jst_at(2024, 1, 4, 9, 0)))
        .await
        .expect("check")
        .into_inner();
    assert!(before.allowed, "{before:?}");
    let after = sites
        .check_site(check(jst_at(2024, 1, 5, 12, 0)))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(
        (after.allowed, after.reason.as_str()),
        (false, "SITE_NOT_OPEN")
    );
    let unregistered = sites
        .check_site(check(jst_at(2024, 1, 3, 9, 59)))
        .await
        .expect("check")
        .into_inner();
    assert!(!unregistered.allowed);
    let shown = sites
        .get_site(GetSiteRequest {
            site_id: site.site_id.clone(),
        })
        .await
        .expect("shown")
        .into_inner();
    let kinds: Vec<&str> = shown.revisions.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["register", "close"]);
    assert_eq!(shown.revisions[1].author, "ishikawa-health-1");
    // The activation's history shows its sites' revisions beside its own.
    let history = ActivationAdminServiceClient::new(operators(&h).await)
        .get_history(GetHistoryRequest {
            activation_id: activation.clone(),
        })
        .await
        .expect("history")
        .into_inner();
    let changes: Vec<(&str, &str, &str)> = history
        .site_changes
        .iter()
        .map(|c| (c.site_id.as_str(), c.kind.as_str(), c.author.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            (site.site_id.as_str(), "register", "ishikawa-health-1"),
            (site.site_id.as_str(), "close", "ishikawa-health-1")
        ]
    );
    assert_denied(
        sites
            .close_site(CloseSiteRequest {
                site_id: site.site_id.clone(),
                author: "x".into(),
                reason: String::new(),
            })
            .await,
        Code::PermissionDenied,
        "SITE_NOT_OPEN",
    );
}

#[tokio::test]
async fn the_areas_window_ending_refuses_an_open_site() {
    let (mut h, activation, mut sites) = start().await;
    let site = sites
        .register_site(post(&activation, WAJIMA))
        .await
        .expect("registered")
        .into_inner();
    // The ministry ends 輪島市 early on 6 January at 12:00: the site's own window
    // still runs to the 8th, but the area decides.
    let mut admin = ActivationAdminServiceClient::new(operators(&h).await);
    admin
        .end_early(EndEarlyRequest {
            activation_id: activation.clone(),
            areas: None,
            at: Some(WindowEnd {
                form: Some(window_end::Form::At(ts(jst_at(2024, 1, 6, 12, 0)))),
            }),
            change: Some(ChangeContext {
                author: "mhlw".into(),
                ..ChangeContext::default()
            }),
        })
        .await
        .expect("ended early");
    h.clock.set(jst_at(2024, 1, 6, 11, 59));
    h.qualification
        .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
        .await
        .expect("before the area ends");
    h.clock.set(jst_at(2024, 1, 6, 12, 0));
    assert_denied(
        h.qualification
            .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    // No renewal and no certificate outside the area's window either.
    assert_denied(
        sites
            .renew_site(RenewSiteRequest {
                site_id: site.site_id.clone(),
                until: Some(ts(jst_at(2024, 1, 7, 0, 0))),
                author: "op".into(),
            })
            .await,
        Code::FailedPrecondition,
        "SITE_OUTSIDE_ACTIVATION",
    );
}

#[tokio::test]
async fn renewal_moves_the_end_inside_the_area_and_expiry_refuses() {
    let (mut h, activation, mut sites) = start().await;
    let mut request = post(&activation, WAJIMA);
    request.until = Some(ts(jst_at(2024, 1, 5, 0, 0)));
    let site = sites
        .register_site(request)
        .await
        .expect("registered")
        .into_inner();
    assert_eq!(site.valid_until, Some(ts(jst_at(2024, 1, 5, 0, 0))));

    h.clock.set(jst_at(2024, 1, 4, 20, 0));
    assert_denied(
        sites
            .renew_site(RenewSiteRequest {
                site_id: site.site_id.clone(),
                until: Some(ts(jst_at(2024, 1, 8, 0, 1))),
                author: "op".into(),
            })
            .await,
        Code::InvalidArgument,
        "SITE_WINDOW_INVALID",
    );
    let renewed = sites
        .renew_site(RenewSiteRequest {
            site_id: site.site_id.clone(),
            until: Some(ts(jst_at(2024, 1, 6, 0, 0))),
            author: "op".into(),
        })
        .await
        .expect("renewed")
        .into_inner();
    assert_eq!(renewed.valid_until, Some(ts(jst_at(2024, 1, 6, 0, 0))));
    assert_eq!(renewed.revisions.len(), 2);

    h.clock.set(jst_at(2024, 1, 5, 23, 59));
    h.qualification
        .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
        .await
        .expect("inside the renewed window");
    h.clock.set(jst_at(2024, 1, 6, 0, 0));
    let refused = assert_denied(
        h.qualification
            .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
            .await,
        Code::PermissionDenied,
        "SITE_NOT_OPEN",
    );
    assert!(
        refused.message().contains("past its validity"),
        "{}",
        refused.message()
    );
    assert_denied(
        sites
            .renew_site(RenewSiteRequest {
                site_id: site.site_id.clone(),
                until: Some(ts(jst_at(2024, 1, 7, 0, 0))),
                author: "op".into(),
            })
            .await,
        Code::PermissionDenied,
        "SITE_NOT_OPEN",
    );
}

#[tokio::test]
async fn registration_is_refused_outside_the_area_and_with_bad_input() {
    let (_h, activation, mut sites) = start().await;
    let refused = assert_denied(
        sites.register_site(post(&activation, SUZU)).await,
        Code::FailedPrecondition,
        "SITE_OUTSIDE_ACTIVATION",
    );
    assert!(refused.message().contains(SUZU), "{}", refused.message());
    let mut late = post(&activation, WAJIMA);
    late.until = Some(ts(jst_at(2024, 1, 8, 0, 1)));
    assert_denied(
        sites.register_site(late).await,
        Code::InvalidArgument,
        "SITE_WINDOW_INVALID",
    );
    let mut bad = post(&activation, WAJIMA);
    bad.kind = 0;
    bad.sponsor = "13101".into();
    bad.name = String::new();
    let status = assert_denied(
        sites.register_site(bad).await,
        Code::InvalidArgument,
        "SITE_KIND_UNKNOWN",
    );
    let fields = tonic_types::StatusExt::get_error_details(&status)
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|f| f.field.clone())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["kind", "name", "sponsor"],
        "every field at fault is named"
    );
    let mut no_contact = post(&activation, WAJIMA);
    no_contact.contact = "\u{3000}".into();
    assert_denied(
        sites.register_site(no_contact).await,
        Code::InvalidArgument,
        "SITE_FIELD_INVALID",
    );
    let mut nobody = post(&activation, WAJIMA);
    nobody.author = " ".into();
    assert_denied(
        sites.register_site(nobody).await,
        Code::InvalidArgument,
        "CHANGE_AUTHOR_MISSING",
    );
    let mut unknown = post("no-such-activation", WAJIMA);
    unknown.activation_id = "no-such-activation".into();
    assert_denied(
        sites.register_site(unknown).await,
        Code::NotFound,
        "ACTIVATION_NOT_FOUND",
    );
    assert_denied(
        sites
            .get_site(GetSiteRequest {
                site_id: "nope".into(),
            })
            .await,
        Code::NotFound,
        "SITE_NOT_FOUND",
    );
    // No site CA in development: no certificates, said plainly.
    assert_denied(
        sites
            .issue_site_certificate(IssueSiteCertificateRequest {
                site_id: "nope".into(),
                csr_pem: String::new(),
                valid_hours: 0,
                author: "op".into(),
            })
            .await,
        Code::Unavailable,
        "SITE_CA_UNAVAILABLE",
    );
}

#[tokio::test]
async fn a_site_never_passes_as_its_sponsor_and_may_require_a_licence_number() {
    let (mut h, activation, mut sites) = start().await;
    let mut request = post(&activation, WAJIMA);
    request.requires_licence = true;
    let site = sites
        .register_site(request)
        .await
        .expect("registered")
        .into_inner();

    // Claiming the sponsor besides the site is refused.
    let mut claim = as_site(&site.site_id, lookup(demo_insured()));
    claim
        .metadata_mut()
        .insert(DEV_FACILITY_HEADER, tokyo_sponsor().parse().expect("ascii"));
    assert_denied(
        h.qualification.lookup_qualification(claim).await,
        Code::PermissionDenied,
        "FACILITY_MISMATCH",
    );
    // The sponsor itself, in Tokyo, is not activated: the site's area is not its.
    assert_denied(
        h.qualification
            .lookup_qualification(as_raw_facility(&tokyo_sponsor(), lookup(demo_insured())))
            .await,
        Code::PermissionDenied,
        "AREA_NOT_ACTIVATED",
    );
    // Nor does it read the sponsor's log on the terminal listener.
    let mut own_log = AuditServiceClient::new(
        Channel::from_shared(format!("http://{}", h.gateway.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect"),
    );
    assert_denied(
        own_log
            .query_facility_access_log(as_site(
                &site.site_id,
                QueryFacilityAccessLogRequest::default(),
            ))
            .await,
        Code::PermissionDenied,
        "SITE_NOT_PERMITTED",
    );
    // An unknown site is refused.
    assert_denied(
        h.qualification
            .lookup_qualification(as_site("no-such-site", lookup(demo_insured())))
            .await,
        Code::NotFound,
        "SITE_NOT_FOUND",
    );

    // The licence number is required here, checked, and recorded.
    assert_denied(
        h.qualification
            .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
            .await,
        Code::PermissionDenied,
        "SITE_LICENCE_REQUIRED",
    );
    let mut request = lookup(demo_insured());
    if let Some(staff) = request.access.as_mut().and_then(|a| a.staff.as_mut()) {
        staff.licence_number = "12a".into();
    }
    assert_denied(
        h.qualification
            .lookup_qualification(as_site(&site.site_id, request.clone()))
            .await,
        Code::InvalidArgument,
        "LICENCE_NUMBER_INVALID",
    );
    if let Some(staff) = request.access.as_mut().and_then(|a| a.staff.as_mut()) {
        staff.licence_number = "４５６７８９".into();
    }
    h.qualification
        .lookup_qualification(as_site(&site.site_id, request))
        .await
        .expect("with the licence number");
    assert_eq!(
        h.last_record().await.site.licence_number.as_deref(),
        Some("456789")
    );
}

#[tokio::test]
async fn the_log_names_the_site_for_the_patient_and_the_sponsor_sees_its_sites() {
    let (mut h, activation, mut sites) = start().await;
    let site = sites
        .register_site(post(&activation, WAJIMA))
        .await
        .expect("registered")
        .into_inner();
    h.qualification
        .lookup_qualification(as_site(&site.site_id, lookup(demo_insured())))
        .await
        .expect("allowed");
    sites
        .close_site(CloseSiteRequest {
            site_id: site.site_id.clone(),
            author: "op".into(),
            reason: String::new(),
        })
        .await
        .expect("closed");

    let mut audit = AuditServiceClient::new(operators(&h).await);
    let mut stream = audit
        .query_patient_accesses(QueryPatientAccessesRequest {
            patient: Some(demo_insured()),
            ..Default::default()
        })
        .await
        .expect("patient history")
        .into_inner();
    let page = stream.message().await.expect("page").expect("one page");
    let access = page.accesses.last().expect("the site's access");
    assert_eq!(
        access.place,
        format!("輪島中学校 救護所 (sponsored by {})", tokyo_sponsor())
    );
    assert_eq!(access.site_id, site.site_id);

    // The sponsor's log holds its site's calls and the site's registration and closure.
    let mut stream = audit
        .query_facility_access_log(QueryFacilityAccessLogRequest {
            facility_code: tokyo_sponsor(),
            ..Default::default()
        })
        .await
        .expect("facility log")
        .into_inner();
    let mut methods = Vec::new();
    while let Some(page) = stream.message().await.expect("page") {
        for e in page.entries {
            assert_eq!(e.site_id, site.site_id);
            methods.push(e.method);
        }
    }
    assert_eq!(
        methods,
        ["RegisterSite", "LookupQualification", "CloseSite"]
    );
}

/// Without a site CA there is no CRL to publish: the URL says so rather than
/// serving an empty list a relying party would trust.
#[tokio::test]
async fn without_a_site_ca_the_crl_url_answers_unavailable() {
    let (h, _, _) = start().await;
    let addr = h.gateway.metrics_addr.expect("metrics listener");
    let response = String::from_utf8_lossy(&http_get(addr, "/crl/sites.crl").await).into_owned();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("SITE_CA_UNAVAILABLE"), "{response}");
}

//! The operators' site service: register, renew and close temporary sites, issue
//! their certificates from CSRs, read them back, answer "was site S allowed at
//! T?", and publish the site CA's revocation list.
//!
//! Every change is validated whole before anything is written, recorded as an
//! attributed revision of the site, written to the hash-chained access log (so
//! that the registry's history cannot be edited unseen: the log's chain and
//! checkpoints cover it), and in force on this replica before the call returns.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use super::admin::{instant, timestamp};
use super::cache::ActivationCache;
use super::index::AreaIndex;
use super::sites::{SiteBook, area_window, decide_site};
use crate::audit::AuditWriter;
use crate::clock::SharedClock;
use crate::domain::facility::parse_facility_code;
use crate::domain::jst::Window;
use crate::domain::municipality::parse_municipality_code;
use crate::domain::site::{
    SITE_URI_PREFIX, Site, SiteChangeKind, SiteKind, SiteRevision, parse_coordinates, site_text,
    site_window,
};
use crate::domain::{Reason, Violation};
use crate::proto::site_admin_service_server::SiteAdminService;
use crate::proto::{self, SiteKind as WireKind};
use crate::status::{status_of, status_with_code};
use crate::store::{AccessRecord, Activation, SiteStamp, Store, StoreError};
use crate::tls::site_ca::SiteCa;

#[derive(Clone)]
pub struct SiteAdmin {
    store: Arc<dyn Store>,
    cache: ActivationCache,
    clock: SharedClock,
    audit: AuditWriter,
    ca: Option<Arc<SiteCa>>,
}

impl SiteAdmin {
    /// The site CA's CRL now, PEM and DER: every certificate of a closed site that
    /// had not expired when it closed. Refused without a site CA, or without the
    /// registry.
    pub async fn crl(&self) -> Result<(String, Vec<u8>), Violation> {
        let ca = self.ca.clone().ok_or_else(|| {
            Violation::new(Reason::SiteCaUnavailable, "", "this gateway has no site CA")
        })?;
        let sites = self.store.list_sites().await.map_err(registry_unreadable)?;
        let book = SiteBook::new(sites);
        ca.crl(&book.all(), self.clock.now()).map_err(|e| {
            Violation::new(
                Reason::SiteCaUnavailable,
                "",
                format!("the CRL cannot be signed: {e}"),
            )
        })
    }
}

fn bad_input(v: &Violation) -> Status {
    status_with_code(v, tonic::Code::InvalidArgument)
}

fn registry_unreadable(e: StoreError) -> Violation {
    Violation::new(
        Reason::ActivationStoreUnavailable,
        "",
        format!("the site registry cannot be written or read: {e}"),
    )
}

fn store_error(e: StoreError) -> Status {
    status_of(&registry_unreadable(e))
}

fn author(raw: &str) -> Result<String, Status> {
    let author = raw.trim();
    if author.is_empty() {
        return Err(status_of(&Violation::new(
            Reason::ChangeAuthorMissing,
            "author",
            "name the operator making the change: every revision is attributed",
        )));
    }
    Ok(author.to_string())
}

fn kind_of(wire: i32) -> Result<SiteKind, Violation> {
    match WireKind::try_from(wire) {
        Ok(WireKind::FirstAidPost) => Ok(SiteKind::FirstAidPost),
        Ok(WireKind::MobileClinic) => Ok(SiteKind::MobileClinic),
        Ok(WireKind::MobilePharmacy) => Ok(SiteKind::MobilePharmacy),
        Ok(WireKind::ReliefTeam) => Ok(SiteKind::ReliefTeam),
        _ => Err(Violation::new(
            Reason::SiteKindUnknown,
            "kind",
            format!(
                "the site's kind is required: first-aid post, mobile clinic, mobile pharmacy or relief team; found {wire}"
            ),
        )),
    }
}

fn wire_kind(kind: SiteKind) -> WireKind {
    match kind {
        SiteKind::FirstAidPost => WireKind::FirstAidPost,
        SiteKind::MobileClinic => WireKind::MobileClinic,
        SiteKind::MobilePharmacy => WireKind::MobilePharmacy,
        SiteKind::ReliefTeam => WireKind::ReliefTeam,
    }
}

/// The site's record in the access log: the change, who made it, and the site.
fn change_record(site: &Site, method: &str, r: &SiteRevision) -> AccessRecord {
    AccessRecord {
        facility: Some(site.sponsor.clone()),
        staff_id: Some(r.author.clone()),
        staff_role: Some("operator".to_string()),
        activation_id: Some(site.activation_id.clone()),
        upstream_result: Some(format!(
            "{} revision={} window={}..{} {}",
            r.kind.as_str(),
            r.number,
            r.window.start.to_rfc3339(),
            r.window.end.to_rfc3339(),
            r.detail
        )),
        site: SiteStamp {
            site_id: Some(site.id.clone()),
            site_kind: Some(site.kind.as_str().to_string()),
            site_name: Some(site.name.clone()),
            site_sponsor: Some(site.sponsor.clone()),
            licence_number: None,
        },
        ..AccessRecord::operators(method, "site", r.recorded_at)
    }
}

impl SiteAdmin {
    pub fn new(
        store: Arc<dyn Store>,
        cache: ActivationCache,
        clock: SharedClock,
        audit: AuditWriter,
        ca: Option<Arc<SiteCa>>,
    ) -> Self {
        SiteAdmin {
            store,
            cache,
            clock,
            audit,
            ca,
        }
    }

    async fn activation(&self, id: &str) -> Result<Activation, Status> {
        self.store
            .activation(id.trim())
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                status_of(&Violation::new(
                    Reason::ActivationNotFound,
                    "activation_id",
                    format!("no activation has the id {id:?}"),
                ))
            })
    }

    async fn site(&self, id: &str) -> Result<Site, Status> {
        self.store
            .site(id.trim())
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                status_of(
                    &Violation::new(
                        Reason::SiteNotFound,
                        "site_id",
                        format!("no temporary site has the id {id:?}"),
                    )
                    .with("site", id.trim().to_string()),
                )
            })
    }

    /// The activation's current window over the site's area, or why there is none.
    fn area_window_of(activation: &Activation, site: &Site) -> Result<Window, Status> {
        area_window(activation, &site.areas()).ok_or_else(|| {
            status_of(
                &Violation::new(
                    Reason::SiteOutsideActivation,
                    "municipality",
                    format!(
                        "activation {} ({}) covers neither municipality {} nor its prefecture: a site is registered only inside its activation's areas",
                        activation.id, activation.event, site.municipality
                    ),
                )
                .with("municipality", site.municipality.to_string())
                .with("activation", activation.id.clone()),
            )
        })
    }

    /// Records `revision`, logs it, and puts it in force on this replica.
    async fn record(
        &self,
        site: &mut Site,
        method: &str,
        revision: SiteRevision,
    ) -> Result<(), Status> {
        match self.store.add_site_revision(site, &revision).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(status_of(&Violation::new(
                    Reason::ActivationRevisionConflict,
                    "",
                    format!("site {} was changed meanwhile; read it again", site.id),
                )));
            }
            Err(e) => return Err(store_error(e)),
        }
        site.revisions.push(revision);
        self.logged(site, method).await
    }

    /// Writes the latest revision of `site` to the access log, then reloads the cache.
    async fn logged(&self, site: &Site, method: &str) -> Result<(), Status> {
        let revision = site.revisions.last().cloned().ok_or_else(|| {
            store_error(StoreError::Corrupt(format!(
                "site {} has no revision",
                site.id
            )))
        })?;
        if let Err(e) = self.cache.refresh().await {
            tracing::warn!(error = %e, "site recorded; reloading the cache failed");
            self.cache.invalidate();
        }
        self.audit
            .commit(change_record(site, method, &revision))
            .await
            .map_err(|e| {
                status_of(&Violation::new(
                    Reason::AuditUnavailable,
                    "",
                    format!("the change is recorded, but its access-log record is not yet: {e}"),
                ))
            })
    }

    async fn view(&self, site: &Site) -> proto::SiteView {
        let now = self.clock.now();
        let open = match self.cache.index().await {
            Ok(index) => decide_site(&index, site, now).is_ok(),
            Err(_) => false,
        };
        site_view(site, open)
    }

    /// A new site from the request, validated against its activation at `now`.
    async fn new_site(
        &self,
        r: &proto::RegisterSiteRequest,
        now: DateTime<Utc>,
    ) -> Result<(Site, Activation), Status> {
        let author = author(&r.author)?;
        let found = [
            kind_of(r.kind).map(|_| ()),
            site_text("name", &r.name, 100).map(|_| ()),
            parse_municipality_code("municipality", &r.municipality).map(|_| ()),
            parse_coordinates("coordinates", &r.coordinates).map(|_| ()),
            parse_facility_code("sponsor", &r.sponsor).map(|_| ()),
            site_text("contact", &r.contact, 200).map(|_| ()),
        ];
        if let Some(v) = Violation::merge(found.into_iter().filter_map(Result::err)) {
            return Err(bad_input(&v));
        }
        let activation = self.activation(&r.activation_id).await?;
        let until = r.until.as_ref().map(|t| instant("until", t)).transpose()?;
        let mut site = Site {
            id: uuid::Uuid::now_v7().to_string(),
            activation_id: activation.id.clone(),
            kind: kind_of(r.kind).map_err(|v| bad_input(&v))?,
            name: site_text("name", &r.name, 100).map_err(|v| bad_input(&v))?,
            municipality: parse_municipality_code("municipality", &r.municipality)
                .map_err(|v| bad_input(&v))?,
            coordinates: parse_coordinates("coordinates", &r.coordinates)
                .map_err(|v| bad_input(&v))?,
            sponsor: parse_facility_code("sponsor", &r.sponsor)
                .map_err(|v| bad_input(&v))?
                .to_string(),
            contact: site_text("contact", &r.contact, 200).map_err(|v| bad_input(&v))?,
            requires_licence: r.requires_licence,
            revisions: Vec::new(),
        };
        let area = Self::area_window_of(&activation, &site)?;
        let window = site_window(now, until, area).map_err(|v| status_of(&v))?;
        site.revisions.push(SiteRevision {
            number: 1,
            recorded_at: now,
            author,
            kind: SiteChangeKind::Register,
            window,
            detail: String::new(),
        });
        Ok((site, activation))
    }
}

/// The operators' view of a site.
pub fn site_view(site: &Site, open: bool) -> proto::SiteView {
    let window = site.window();
    proto::SiteView {
        site_id: site.id.clone(),
        activation_id: site.activation_id.clone(),
        kind: wire_kind(site.kind) as i32,
        name: site.name.clone(),
        municipality: site.municipality.to_string(),
        coordinates: site.coordinates.clone().unwrap_or_default(),
        sponsor: site.sponsor.clone(),
        contact: site.contact.clone(),
        requires_licence: site.requires_licence,
        valid_from: window.map(|w| timestamp(w.start)),
        valid_until: window.map(|w| timestamp(w.end)),
        closed: site.is_closed(),
        open,
        revisions: site
            .revisions
            .iter()
            .map(|r| proto::SiteRevision {
                number: r.number,
                recorded_at: Some(timestamp(r.recorded_at)),
                author: r.author.clone(),
                kind: r.kind.as_str().to_string(),
                valid_from: Some(timestamp(r.window.start)),
                valid_until: Some(timestamp(r.window.end)),
                detail: r.detail.clone(),
            })
            .collect(),
        identity_uri: format!("{SITE_URI_PREFIX}{}", site.id),
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl SiteAdminService for SiteAdmin {
    async fn register_site(
        &self,
        request: Request<proto::RegisterSiteRequest>,
    ) -> Reply<proto::SiteView> {
        let now = self.clock.now();
        let (site, _) = self.new_site(request.get_ref(), now).await?;
        self.store.add_site(&site).await.map_err(store_error)?;
        self.logged(&site, "RegisterSite").await?;
        Ok(Response::new(self.view(&site).await))
    }

    async fn renew_site(
        &self,
        request: Request<proto::RenewSiteRequest>,
    ) -> Reply<proto::SiteView> {
        let r = request.into_inner();
        let author = author(&r.author)?;
        let now = self.clock.now();
        let mut site = self.site(&r.site_id).await?;
        if let Some(v) = site.refusal_at(now) {
            return Err(status_of(&v));
        }
        let until = r
            .until
            .as_ref()
            .map(|t| instant("until", t))
            .transpose()?
            .ok_or_else(|| {
                bad_input(&Violation::new(
                    Reason::SiteWindowInvalid,
                    "until",
                    "give the new end of the site's window",
                ))
            })?;
        let activation = self.activation(&site.activation_id).await?;
        let area = Self::area_window_of(&activation, &site)?;
        let renewed = site_window(now, Some(until), area).map_err(|v| status_of(&v))?;
        let start = site.window().map_or(now, |w| w.start);
        let revision = SiteRevision {
            number: site.latest_revision() + 1,
            recorded_at: now,
            author,
            kind: SiteChangeKind::Renew,
            window: Window {
                start,
                end: renewed.end,
            },
            detail: String::new(),
        };
        self.record(&mut site, "RenewSite", revision).await?;
        Ok(Response::new(self.view(&site).await))
    }

    async fn close_site(
        &self,
        request: Request<proto::CloseSiteRequest>,
    ) -> Reply<proto::SiteView> {
        let r = request.into_inner();
        let author = author(&r.author)?;
        let now = self.clock.now();
        let mut site = self.site(&r.site_id).await?;
        if site.is_closed() {
            return Err(status_of(
                &Violation::new(
                    Reason::SiteNotOpen,
                    "site_id",
                    format!("site {} is already closed", site.id),
                )
                .with("site", site.id.clone()),
            ));
        }
        let start = site.window().map_or(now, |w| w.start);
        // Closed from now on: the window ends here (a site closed at the instant it
        // opened keeps a window of one nanosecond, never an empty one).
        let end = now.max(start + chrono::Duration::nanoseconds(1));
        let revision = SiteRevision {
            number: site.latest_revision() + 1,
            recorded_at: now,
            author,
            kind: SiteChangeKind::Close,
            window: Window { start, end },
            detail: r.reason.trim().chars().take(200).collect(),
        };
        self.record(&mut site, "CloseSite", revision).await?;
        Ok(Response::new(self.view(&site).await))
    }

    async fn get_site(&self, request: Request<proto::GetSiteRequest>) -> Reply<proto::SiteView> {
        let site = self.site(&request.get_ref().site_id).await?;
        Ok(Response::new(self.view(&site).await))
    }

    async fn list_sites(
        &self,
        request: Request<proto::ListSitesRequest>,
    ) -> Reply<proto::ListSitesResponse> {
        let activation = request.get_ref().activation_id.trim().to_string();
        let all = self.store.list_sites().await.map_err(store_error)?;
        let mut sites = Vec::new();
        for site in all
            .iter()
            .filter(|s| activation.is_empty() || s.activation_id == activation)
        {
            sites.push(self.view(site).await);
        }
        Ok(Response::new(proto::ListSitesResponse { sites }))
    }

    async fn issue_site_certificate(
        &self,
        request: Request<proto::IssueSiteCertificateRequest>,
    ) -> Reply<proto::SiteCertificate> {
        let r = request.into_inner();
        let author = author(&r.author)?;
        let ca = self.ca.clone().ok_or_else(|| {
            status_of(&Violation::new(
                Reason::SiteCaUnavailable,
                "",
                "this gateway has no site CA (site-ca.pem and site-ca.key in its TLS directory)",
            ))
        })?;
        let now = self.clock.now();
        let mut site = self.site(&r.site_id).await?;
        // Only a site that may call now gets a certificate: renewal while it is open.
        let index = self.cache.index().await.map_err(store_error)?;
        decide_site(&index, &site, now).map_err(|v| status_of(&v))?;
        let issued = ca
            .issue(&site, &r.csr_pem, r.valid_hours, now)
            .map_err(|v| status_of(&v))?;
        let revision = SiteRevision {
            number: site.latest_revision() + 1,
            recorded_at: now,
            author,
            kind: SiteChangeKind::Certificate,
            window: site.window().unwrap_or(Window {
                start: now,
                end: issued.not_after,
            }),
            detail: issued.detail(),
        };
        self.record(&mut site, "IssueSiteCertificate", revision)
            .await?;
        Ok(Response::new(proto::SiteCertificate {
            certificate_pem: issued.cert_pem,
            ca_pem: ca.cert_pem().to_string(),
            serial: issued.serial,
            not_after: Some(timestamp(issued.not_after)),
        }))
    }

    async fn check_site(
        &self,
        request: Request<proto::CheckSiteRequest>,
    ) -> Reply<proto::SiteDecision> {
        let r = request.into_inner();
        let at = match &r.at {
            Some(t) => instant("at", t)?,
            None => self.clock.now(),
        };
        let site = self.site(&r.site_id).await?;
        // The state known at `at`: the windows and the site's revisions recorded by then.
        let activations = self.store.list_activations().await.map_err(store_error)?;
        let index = AreaIndex::build(&activations, Some(at));
        Ok(Response::new(match decide_site(&index, &site, at) {
            Ok(allowed) => proto::SiteDecision {
                allowed: true,
                activation_id: allowed.coverage.activation_id,
                ..Default::default()
            },
            Err(v) => proto::SiteDecision {
                allowed: false,
                activation_id: site.activation_id.clone(),
                reason: v.reason.as_str().to_string(),
                explanation: v.description,
            },
        }))
    }

    async fn get_site_crl(
        &self,
        _request: Request<proto::GetSiteCrlRequest>,
    ) -> Reply<proto::SiteCrl> {
        let (pem, der) = self.crl().await.map_err(|v| status_of(&v))?;
        Ok(Response::new(proto::SiteCrl {
            crl_pem: pem,
            crl_der: der,
        }))
    }
}

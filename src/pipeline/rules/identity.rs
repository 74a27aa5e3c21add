//! Who is calling: the facility or temporary site (from the transport, never from
//! the request body) and the member of staff the terminal names.
//!
//! A temporary site's calls are recorded under its sponsoring facility (so the
//! sponsor's log includes its sites) with the site's own stamp; the site's area,
//! not the sponsor's, is what the activation rule then checks.

use tonic::Request;

use crate::activation::cache::ActivationCache;
use crate::domain::facility::parse_facility_code;
use crate::domain::site::{Site, parse_licence_number};
use crate::domain::staff::evaluate_staff;
use crate::domain::{Reason, Violation};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::store::SiteStamp;
use crate::tls::identity::{
    Caller, IdentitySource, refuse_other_claim, refuse_site_claim, transport_caller,
};

#[derive(Clone)]
pub struct IdentityRule {
    source: IdentitySource,
    /// Where sites are looked up; without it a site is refused as unknown.
    sites: Option<ActivationCache>,
}

impl IdentityRule {
    pub fn new(source: IdentitySource) -> Self {
        IdentityRule {
            source,
            sites: None,
        }
    }

    /// Recognises the temporary sites registered in `cache`.
    pub fn with_sites(mut self, cache: ActivationCache) -> Self {
        self.sites = Some(cache);
        self
    }

    /// The registered site `id`, stamped on the call with its sponsor as the
    /// call's facility.
    async fn site<M>(&self, req: &mut Request<M>, id: String) -> Result<Site, Violation> {
        let note = Note::of(req);
        note.lock().site.site_id = Some(id.clone());
        refuse_site_claim(req, &id)?;
        let unknown = || {
            Violation::new(
                Reason::SiteNotFound,
                "",
                format!("no temporary site {id} is registered"),
            )
            .with("site", id.clone())
        };
        let cache = self.sites.as_ref().ok_or_else(unknown)?;
        let book = cache.sites().await.map_err(|e| {
            Violation::new(
                Reason::ActivationStoreUnavailable,
                "",
                format!("the site registry cannot be read: {e}"),
            )
        })?;
        let site = book.get(&id).cloned().ok_or_else(unknown)?;
        let sponsor = parse_facility_code("", &site.sponsor)?;
        let mut n = note.lock();
        n.facility = Some(sponsor);
        n.site = SiteStamp {
            site_id: Some(site.id.clone()),
            site_kind: Some(site.kind.as_str().to_string()),
            site_name: Some(site.name.clone()),
            site_sponsor: Some(site.sponsor.clone()),
            licence_number: None,
        };
        Ok(site)
    }
}

impl<M: PatientRequest> Rule<M> for IdentityRule {
    const NAME: &'static str = "rule.identity";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let note = Note::of(req);
        let site = match transport_caller(self.source, req)? {
            Caller::Facility(facility) => {
                note.lock().facility = Some(facility.clone());
                refuse_other_claim(self.source, req, &facility)?;
                None
            }
            Caller::Site(id) => Some(self.site(req, id).await?),
        };

        let access = req.get_ref().access().ok_or_else(|| {
            Violation::new(
                Reason::AccessContextMissing,
                "access",
                "every patient-data request carries an access context (staff, consent, purpose, identification)",
            )
        })?;
        let staff = access.staff.clone().unwrap_or_default();
        let (staff_id, role) = evaluate_staff(&staff.staff_id, staff.role)?;
        let licence = parse_licence_number("access.staff.licence_number", &staff.licence_number)?;
        let mut n = note.lock();
        n.staff_id = Some(staff_id);
        n.staff_role = Some(role.as_str());
        n.site.licence_number.clone_from(&licence);
        if let Some(site) = site.filter(|s| s.requires_licence)
            && licence.is_none()
        {
            return Err(Violation::new(
                Reason::SiteLicenceRequired,
                "access.staff.licence_number",
                format!(
                    "site {} requires the professional's licence registration number on every call",
                    site.id
                ),
            )
            .with("site", site.id));
        }
        Ok(())
    }
}

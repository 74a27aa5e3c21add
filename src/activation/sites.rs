//! Temporary sites as the activation rule sees them: the sites by id, loaded with
//! the activation index, and the decision for a site's call. A site may call only
//! while it is open (registered, not closed, inside its window) and while its own
//! activation covers its municipality (or that municipality's prefecture). The
//! sponsor's area never counts: a DMAT from Tokyo calls under 輪島市's window.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::cache::ActivationCache;
use super::index::{Allowed, AreaIndex};
use crate::domain::jst::{Window, to_jst_string};
use crate::domain::site::Site;
use crate::domain::{Reason, Violation};
use crate::store::Activation;

/// Every registered site, by id.
#[derive(Debug, Default)]
pub struct SiteBook {
    by_id: HashMap<String, Site>,
}

impl SiteBook {
    pub fn new(sites: Vec<Site>) -> SiteBook {
        SiteBook {
            by_id: sites.into_iter().map(|s| (s.id.clone(), s)).collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Site> {
        self.by_id.get(id)
    }

    /// Every site, by id.
    pub fn all(&self) -> Vec<&Site> {
        let mut sites: Vec<&Site> = self.by_id.values().collect();
        sites.sort_by(|a, b| a.id.cmp(&b.id));
        sites
    }

    /// The sites of one activation, by id.
    pub fn of_activation(&self, activation_id: &str) -> Vec<&Site> {
        let mut sites: Vec<&Site> = self
            .by_id
            .values()
            .filter(|s| s.activation_id == activation_id)
            .collect();
        sites.sort_by(|a, b| a.id.cmp(&b.id));
        sites
    }
}

/// Whether `site` may call at `at`, by `index` (the windows known at the instant
/// the question is about).
pub fn decide_site(
    index: &AreaIndex,
    site: &Site,
    at: DateTime<Utc>,
) -> Result<Allowed, Violation> {
    if site.window_at(at).is_none() {
        return Err(Violation::new(
            Reason::SiteNotOpen,
            "",
            format!(
                "site {} was not registered yet at {}",
                site.id,
                to_jst_string(at)
            ),
        )
        .with("site", site.id.clone()));
    }
    if let Some(refused) = site.refusal_at(at) {
        return Err(refused);
    }
    for area in site.areas() {
        if let Some(c) = index
            .coverage(&area)
            .iter()
            .find(|c| c.activation_id == site.activation_id && c.window.contains(at))
        {
            return Ok(Allowed {
                area,
                coverage: c.clone(),
            });
        }
    }
    Err(Violation::new(
        Reason::AreaNotActivated,
        "",
        format!(
            "the emergency function is not active for site {}'s municipality {} under activation {} at {}",
            site.id,
            site.municipality,
            site.activation_id,
            to_jst_string(at)
        ),
    )
    .with("site", site.id.clone())
    .with("municipality", site.municipality.to_string())
    .with("activation", site.activation_id.clone())
    .with("at", to_jst_string(at)))
}

/// Whether site `id` may call at `now`, from the registry cache: checked per call,
/// as facilities are, so a closure refuses at once on the replica that made it and
/// within the refresh bound on the others.
pub async fn site_allowed_now(
    cache: &ActivationCache,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Allowed, Violation> {
    let unavailable = |e: crate::store::StoreError| {
        Violation::new(
            Reason::ActivationStoreUnavailable,
            "",
            format!("the activation registry cannot be read: {e}"),
        )
    };
    let index = cache.index().await.map_err(unavailable)?;
    let sites = cache.sites().await.map_err(unavailable)?;
    let site = sites.get(id).ok_or_else(|| {
        Violation::new(
            Reason::SiteNotFound,
            "",
            format!("no temporary site {id} is registered"),
        )
        .with("site", id.to_string())
    })?;
    decide_site(&index, site, now)
}

/// The activation's current window for a site in `municipality`: the
/// municipality's own, else its prefecture's. `None` if it covers neither.
pub fn area_window(
    activation: &Activation,
    site_areas: &[crate::store::AreaKey],
) -> Option<Window> {
    let areas = activation.areas();
    site_areas
        .iter()
        .find_map(|key| areas.iter().find(|a| &a.area == key).map(|a| a.window))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::activation_change::AreaWindow;
    use crate::domain::activation_change::{ChangeKind, Revision};
    use crate::domain::municipality::parse_municipality_code;
    use crate::domain::site::{SiteChangeKind, SiteKind, SiteRevision};
    use crate::store::AreaKey;
    use chrono::TimeZone;

    fn at(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        crate::domain::jst::jst()
            .with_ymd_and_hms(2024, m, d, h, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn noto(end: DateTime<Utc>) -> Activation {
        Activation {
            id: "noto".into(),
            event: "令和6年能登半島地震".into(),
            notice: "n".into(),
            created_by: "op".into(),
            created_at: at(1, 2, 9),
            revisions: vec![Revision {
                number: 1,
                recorded_at: at(1, 2, 9),
                author: "op".into(),
                notice: "n".into(),
                kind: ChangeKind::Create,
                windows: vec![AreaWindow {
                    area: AreaKey::Municipality("17204".into()),
                    window: Window::new(at(1, 1, 16), end).expect("w"),
                }],
            }],
        }
    }

    fn post(activation: &str, municipality: &str, until: DateTime<Utc>) -> Site {
        Site {
            id: "s1".into(),
            activation_id: activation.into(),
            kind: SiteKind::FirstAidPost,
            name: "輪島中学校 救護所".into(),
            municipality: parse_municipality_code("m", municipality).expect("code"),
            coordinates: None,
            // A Tokyo sponsor: its own area is never activated here.
            sponsor: "1310110015".into(),
            contact: "c".into(),
            requires_licence: false,
            revisions: vec![SiteRevision {
                number: 1,
                recorded_at: at(1, 3, 10),
                author: "op".into(),
                kind: SiteChangeKind::Register,
                window: Window::new(at(1, 3, 10), until).expect("w"),
                detail: String::new(),
            }],
        }
    }

    #[test]
    fn a_site_calls_under_its_municipality_while_both_windows_run() {
        let activation = noto(at(1, 8, 0));
        let index = AreaIndex::build(std::slice::from_ref(&activation), None);
        let site = post("noto", "17204", at(1, 8, 0));
        let allowed = decide_site(&index, &site, at(1, 3, 10)).expect("allowed");
        assert_eq!(allowed.area, AreaKey::Municipality("17204".into()));
        assert!(decide_site(&index, &site, at(1, 7, 23)).is_ok());
        let v = decide_site(&index, &site, at(1, 3, 9)).expect_err("before registration");
        assert_eq!(v.reason, Reason::SiteNotOpen);
        let v = decide_site(&index, &site, at(1, 8, 0)).expect_err("site window over");
        assert_eq!(v.reason, Reason::SiteNotOpen);
    }

    #[test]
    fn the_area_ending_early_refuses_an_open_site() {
        // The area was ended at 5 Jan 12:00 after the site was registered to 8 Jan.
        let activation = noto(at(1, 5, 12));
        let index = AreaIndex::build(std::slice::from_ref(&activation), None);
        let site = post("noto", "17204", at(1, 8, 0));
        assert!(decide_site(&index, &site, at(1, 5, 11)).is_ok());
        let v = decide_site(&index, &site, at(1, 5, 12)).expect_err("area ended");
        assert_eq!(v.reason, Reason::AreaNotActivated);
    }

    #[test]
    fn only_the_sites_own_activation_and_municipality_count() {
        let activation = noto(at(1, 8, 0));
        let index = AreaIndex::build(std::slice::from_ref(&activation), None);
        let elsewhere = post("noto", "17205", at(1, 8, 0));
        let v = decide_site(&index, &elsewhere, at(1, 4, 0)).expect_err("珠洲市 not covered");
        assert_eq!(v.reason, Reason::AreaNotActivated);
        let other = post("another", "17204", at(1, 8, 0));
        assert!(decide_site(&index, &other, at(1, 4, 0)).is_err());
        assert_eq!(
            area_window(&activation, &post("noto", "17204", at(1, 8, 0)).areas()),
            Some(Window::new(at(1, 1, 16), at(1, 8, 0)).expect("w"))
        );
        assert_eq!(area_window(&activation, &elsewhere.areas()), None);
        let book = SiteBook::new(vec![elsewhere.clone()]);
        assert_eq!(book.get("s1"), Some(&elsewhere));
        assert_eq!(book.of_activation("noto").len(), 1);
        assert!(book.of_activation("x").is_empty());
    }
}

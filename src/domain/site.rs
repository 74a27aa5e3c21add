//! Temporary sites: first-aid posts in shelters (救護所), mobile clinics (巡回診療),
//! mobile pharmacies (モバイルファーマシー) and relief teams (DMAT, JMAT, the Red
//! Cross). None has a facility code or a closed-network terminal, so each is
//! registered under one activation, in one municipality, with a sponsoring facility
//! whose head answers for it, and a validity window that cannot outlast its
//! activation's window for that municipality.
//!
//! Like an activation, a site changes by attributed revisions (register, renew,
//! close, and each certificate issued); replaying those recorded up to an instant
//! gives the state known then, so "was site S allowed at T?" has one answer.

use chrono::{DateTime, Utc};

use super::area::AreaKey;
use super::input::{clean, quote};
use super::jst::{Window, to_jst_string};
use super::municipality::MunicipalityCode;
use super::{Reason, Violation};

/// The URI a site certificate names in its SAN: `urn:onshi:site:<id>`.
pub const SITE_URI_PREFIX: &str = "urn:onshi:site:";

/// What kind of temporary site it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteKind {
    FirstAidPost,
    MobileClinic,
    MobilePharmacy,
    ReliefTeam,
}

impl SiteKind {
    pub const ALL: [SiteKind; 4] = [
        SiteKind::FirstAidPost,
        SiteKind::MobileClinic,
        SiteKind::MobilePharmacy,
        SiteKind::ReliefTeam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::FirstAidPost => "first-aid-post",
            SiteKind::MobileClinic => "mobile-clinic",
            SiteKind::MobilePharmacy => "mobile-pharmacy",
            SiteKind::ReliefTeam => "relief-team",
        }
    }

    /// The Japanese name staff and patients read.
    pub fn name_ja(self) -> &'static str {
        match self {
            SiteKind::FirstAidPost => "救護所",
            SiteKind::MobileClinic => "巡回診療",
            SiteKind::MobilePharmacy => "モバイルファーマシー",
            SiteKind::ReliefTeam => "医療救護班",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<SiteKind, Violation> {
        let s = clean(raw).to_ascii_lowercase().replace('_', "-");
        SiteKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Violation::new(
                    Reason::SiteKindUnknown,
                    field,
                    format!(
                        "a site is one of first-aid-post, mobile-clinic, mobile-pharmacy, relief-team; found {}",
                        quote(raw, 40)
                    ),
                )
            })
    }
}

/// What a revision of a site did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteChangeKind {
    Register,
    Renew,
    Close,
    /// A client certificate was issued (or renewed) for the site.
    Certificate,
}

impl SiteChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteChangeKind::Register => "register",
            SiteChangeKind::Renew => "renew",
            SiteChangeKind::Close => "close",
            SiteChangeKind::Certificate => "certificate",
        }
    }

    pub fn parse(s: &str) -> Option<SiteChangeKind> {
        [
            SiteChangeKind::Register,
            SiteChangeKind::Renew,
            SiteChangeKind::Close,
            SiteChangeKind::Certificate,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One attributed change of a site. Every revision states the site's validity
/// window as it stands after it, so the latest one known at an instant is the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRevision {
    pub number: u32,
    pub recorded_at: DateTime<Utc>,
    pub author: String,
    pub kind: SiteChangeKind,
    pub window: Window,
    /// What else the change names: a certificate's serial and expiry, a reason.
    pub detail: String,
}

/// A registered site with its revisions, in number order (the first registers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: String,
    pub activation_id: String,
    pub kind: SiteKind,
    pub name: String,
    pub municipality: MunicipalityCode,
    /// "latitude,longitude" in decimal degrees, when given.
    pub coordinates: Option<String>,
    /// The facility code of the sponsoring facility.
    pub sponsor: String,
    pub contact: String,
    /// Calls must name the professional's licence registration number.
    pub requires_licence: bool,
    pub revisions: Vec<SiteRevision>,
}

impl Site {
    /// The window as known now (after the latest revision).
    pub fn window(&self) -> Option<Window> {
        self.revisions.last().map(|r| r.window)
    }

    /// The window as known at `known_at`: `None` before the registration.
    pub fn window_at(&self, known_at: DateTime<Utc>) -> Option<Window> {
        self.revisions
            .iter()
            .rfind(|r| r.recorded_at <= known_at)
            .map(|r| r.window)
    }

    pub fn is_closed(&self) -> bool {
        self.revisions
            .iter()
            .any(|r| r.kind == SiteChangeKind::Close)
    }

    pub fn latest_revision(&self) -> u32 {
        self.revisions.last().map_or(0, |r| r.number)
    }

    /// The areas whose activation window opens the site, narrowest first: its
    /// municipality, then its prefecture. Never the sponsor's.
    pub fn areas(&self) -> [AreaKey; 2] {
        [
            AreaKey::Municipality(self.municipality.as_str().to_string()),
            AreaKey::Prefecture(self.municipality.prefecture().code()),
        ]
    }

    /// How the place is shown to the patient: "輪島中学校 救護所 (sponsored by …)".
    pub fn place(&self, sponsor_name: Option<&str>) -> String {
        let sponsor = sponsor_name.unwrap_or(&self.sponsor);
        format!("{} (sponsored by {sponsor})", self.name)
    }

    /// Whether the site itself is open at `at` as known at `at`: registered, not
    /// closed and inside its validity window then.
    pub fn open_at(&self, at: DateTime<Utc>) -> bool {
        self.window_at(at).is_some_and(|w| w.contains(at)) && self.closed_at(at).is_none()
    }

    /// When the site was closed, if it was by `at`. A closure refuses from its
    /// instant, even one at the instant the site opened.
    pub fn closed_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.revisions
            .iter()
            .find(|r| r.kind == SiteChangeKind::Close && r.recorded_at <= at)
            .map(|r| r.recorded_at)
    }

    /// Why the site cannot call at `now`, if it cannot (its own window only; the
    /// activation's window for its area is checked beside this).
    pub fn refusal_at(&self, now: DateTime<Utc>) -> Option<Violation> {
        let window = self.window_at(now)?;
        let closed = self.closed_at(now).is_some();
        if window.contains(now) && !closed {
            return None;
        }
        let state = if closed {
            "was closed"
        } else if now < window.start {
            "is not open yet"
        } else {
            "is past its validity"
        };
        Some(
            Violation::new(
                Reason::SiteNotOpen,
                "",
                format!(
                    "site {} ({}) {state}: its window is {} to {}",
                    self.id,
                    self.name,
                    to_jst_string(window.start),
                    to_jst_string(window.end)
                ),
            )
            .with("site", self.id.clone())
            .with("window_end", to_jst_string(window.end)),
        )
    }
}

/// Free text an operator gives (name, contact): NFKC, trimmed, 1..=`max` characters.
pub fn site_text(field: &str, raw: &str, max: usize) -> Result<String, Violation> {
    let s = clean(raw);
    let n = s.chars().count();
    if n == 0 || n > max || s.chars().any(char::is_control) {
        return Err(Violation::new(
            Reason::SiteFieldInvalid,
            field,
            format!("{field} must be 1 to {max} printable characters; found {n}"),
        ));
    }
    Ok(s)
}

/// Optional coordinates as "latitude,longitude" in decimal degrees.
pub fn parse_coordinates(field: &str, raw: &str) -> Result<Option<String>, Violation> {
    let s = clean(raw);
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Violation::new(
            Reason::SiteFieldInvalid,
            field,
            format!(
                "coordinates are \"latitude,longitude\" in decimal degrees, e.g. 37.3906,136.8990; found {}",
                quote(raw, 40)
            ),
        )
    };
    let (lat, lon) = s.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    Ok(Some(format!("{lat},{lon}")))
}

/// A licence registration number (医籍登録番号, 薬剤師名簿登録番号): 1 to 8 digits.
/// Empty is "not given".
pub fn parse_licence_number(field: &str, raw: &str) -> Result<Option<String>, Violation> {
    let s = clean(raw);
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Violation::new(
            Reason::LicenceNumberInvalid,
            field,
            format!(
                "a licence registration number is 1 to 8 digits; found {}",
                quote(raw, 20)
            ),
        ));
    }
    Ok(Some(s))
}

/// The window a site may have inside `area_window` (its activation's window for the
/// site's area): from `now` until `until` (default: the area window's end). The
/// site cannot outlast the area, and cannot be opened outside it.
pub fn site_window(
    now: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    area_window: Window,
) -> Result<Window, Violation> {
    if !area_window.contains(now) {
        return Err(Violation::new(
            Reason::SiteOutsideActivation,
            "",
            format!(
                "the activation's window for the site's area is {} to {}; a site is registered or renewed only inside it",
                to_jst_string(area_window.start),
                to_jst_string(area_window.end)
            ),
        )
        .with("area_window_end", to_jst_string(area_window.end)));
    }
    let until = until.unwrap_or(area_window.end);
    if until > area_window.end {
        return Err(Violation::new(
            Reason::SiteWindowInvalid,
            "until",
            format!(
                "a site cannot outlast its activation: {} is after the area's window ends at {}",
                to_jst_string(until),
                to_jst_string(area_window.end)
            ),
        )
        .with("area_window_end", to_jst_string(area_window.end)));
    }
    Window::new(now, until).map_err(|e| {
        Violation::new(
            Reason::SiteWindowInvalid,
            "until",
            format!("the site's window: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::municipality::parse_municipality_code;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        crate::domain::jst::jst()
            .with_ymd_and_hms(2024, 1, d, h, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn site(revisions: Vec<SiteRevision>) -> Site {
        Site {
            id: "s1".into(),
            activation_id: "a1".into(),
            kind: SiteKind::FirstAidPost,
            name: "輪島中学校 救護所".into(),
            municipality: parse_municipality_code("m", "17204").expect("code"),
            coordinates: None,
            sponsor: "1710110013".into(),
            contact: "0768-00-0000".into(),
            requires_licence: false,
            revisions,
        }
    }

    fn rev(
        number: u32,
        recorded_at: DateTime<Utc>,
        kind: SiteChangeKind,
        w: Window,
    ) -> SiteRevision {
        SiteRevision {
            number,
            recorded_at,
            author: "op".into(),
            kind,
            window: w,
            detail: String::new(),
        }
    }

    #[test]
    fn kinds_parse_in_either_spelling_and_unknown_ones_are_named() {
        assert_eq!(
            SiteKind::parse("kind", "FIRST_AID_POST").expect("kind"),
            SiteKind::FirstAidPost
        );
        assert_eq!(
            SiteKind::parse("kind", "relief-team").expect("kind"),
            SiteKind::ReliefTeam
        );
        let v = SiteKind::parse("kind", "hospital").expect_err("unknown");
        assert_eq!(v.reason, Reason::SiteKindUnknown);
    }

    #[test]
    fn a_site_window_stays_inside_its_area_window() {
        let area = Window::new(at(1, 16), at(8, 0)).expect("area");
        let w = site_window(at(3, 10), None, area).expect("defaults to the area's end");
        assert_eq!((w.start, w.end), (at(3, 10), at(8, 0)));
        let w = site_window(at(3, 10), Some(at(8, 0)), area).expect("up to the end");
        assert_eq!(w.end, at(8, 0));
        let v = site_window(at(3, 10), Some(at(8, 1)), area).expect_err("outlasts");
        assert_eq!(v.reason, Reason::SiteWindowInvalid);
        let v = site_window(at(3, 10), Some(at(3, 10)), area).expect_err("empty");
        assert_eq!(v.reason, Reason::SiteWindowInvalid);
        let v = site_window(at(8, 0), None, area).expect_err("area closed");
        assert_eq!(v.reason, Reason::SiteOutsideActivation);
        let v = site_window(at(1, 15), None, area).expect_err("area not open yet");
        assert_eq!(v.reason, Reason::SiteOutsideActivation);
    }

    #[test]
    fn a_closure_refuses_from_its_instant_and_history_is_kept() {
        let open = Window::new(at(3, 10), at(8, 0)).expect("w");
        let closed = Window::new(at(3, 10), at(5, 12)).expect("w");
        let s = site(vec![
            rev(1, at(3, 10), SiteChangeKind::Register, open),
            rev(2, at(5, 12), SiteChangeKind::Close, closed),
        ]);
        assert!(!s.open_at(at(3, 9)), "before registration");
        assert!(s.open_at(at(3, 10)));
        assert!(s.open_at(at(5, 11)));
        assert!(!s.open_at(at(5, 12)), "closed at once");
        let v = s.refusal_at(at(6, 0)).expect("refused");
        assert_eq!(v.reason, Reason::SiteNotOpen);
        assert!(v.description.contains("was closed"));
        assert!(s.refusal_at(at(4, 0)).is_none());
        assert!(s.is_closed());
        assert_eq!(s.latest_revision(), 2);
        assert_eq!(s.window_at(at(4, 0)), Some(open), "as known before closure");
    }

    #[test]
    fn a_site_closed_at_the_instant_it_opened_is_refused_then() {
        let open = Window::new(at(3, 10), at(8, 0)).expect("w");
        let closed =
            Window::new(at(3, 10), at(3, 10) + chrono::Duration::nanoseconds(1)).expect("w");
        let s = site(vec![
            rev(1, at(3, 10), SiteChangeKind::Register, open),
            rev(2, at(3, 10), SiteChangeKind::Close, closed),
        ]);
        assert!(!s.open_at(at(3, 10)));
        assert_eq!(
            s.refusal_at(at(3, 10)).map(|v| v.reason),
            Some(Reason::SiteNotOpen)
        );
    }

    #[test]
    fn the_place_names_the_site_and_its_sponsor() {
        let s = site(vec![]);
        assert_eq!(
            s.place(Some("市立輪島病院")),
            "輪島中学校 救護所 (sponsored by 市立輪島病院)"
        );
        assert_eq!(
            s.areas(),
            [
                AreaKey::Municipality("17204".into()),
                AreaKey::Prefecture(17)
            ]
        );
    }

    #[test]
    fn free_text_coordinates_and_licence_numbers_are_checked() {
        assert_eq!(site_text("name", " 救護所 ", 10).expect("ok"), "救護所");
        assert_eq!(
            site_text("name", "", 10).expect_err("empty").reason,
            Reason::SiteFieldInvalid
        );
        assert_eq!(
            site_text("name", "abcdefghijk", 10)
                .expect_err("long")
                .reason,
            Reason::SiteFieldInvalid
        );
        assert_eq!(
            parse_coordinates("c", "37.39, 136.899")
                .expect("ok")
                .as_deref(),
            Some("37.39,136.899")
        );
        assert_eq!(parse_coordinates("c", "").expect("none"), None);
        assert!(parse_coordinates("c", "91,0").is_err());
        assert!(parse_coordinates("c", "north").is_err());
        assert_eq!(
            parse_licence_number("l", "１２３４５６")
                .expect("ok")
                .as_deref(),
            Some("123456")
        );
        assert_eq!(parse_licence_number("l", " ").expect("none"), None);
        assert_eq!(
            parse_licence_number("l", "12a").expect_err("digits").reason,
            Reason::LicenceNumberInvalid
        );
        assert!(parse_licence_number("l", "123456789").is_err());
    }
}

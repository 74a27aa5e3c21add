//! Which activation windows cover which area, and the one decision made from them:
//! is this facility allowed at this instant? The activation rule asks it of the
//! state known now; the admin service's `CheckFacility` of the state known at a
//! past instant. Areas are checked from the narrowest: the facility itself, its
//! municipality (from the registry), its prefecture.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::facility::FacilityCode;
use crate::domain::jst::to_jst_string;
use crate::domain::prefecture::Prefecture;
use crate::domain::{Reason, Violation};
use crate::store::{Activation, AreaKey, Coverage, RegisteredFacility};

#[derive(Debug, Default, Clone)]
pub struct AreaIndex {
    by_area: HashMap<AreaKey, Vec<Coverage>>,
    /// Municipality-level windows by prefecture: a facility missing from the
    /// registry may be in one of these municipalities, and nobody can tell.
    municipal: HashMap<u8, Vec<Coverage>>,
}

impl AreaIndex {
    /// The windows of `activations` as known at `known_at` (now: `None`).
    pub fn build(activations: &[Activation], known_at: Option<DateTime<Utc>>) -> AreaIndex {
        let mut index = AreaIndex::default();
        for a in activations {
            let areas = match known_at {
                Some(t) => a.areas_at(t),
                None => a.areas(),
            };
            for w in areas {
                let coverage = Coverage {
                    activation_id: a.id.clone(),
                    event: a.event.clone(),
                    window: w.window,
                };
                if let AreaKey::Municipality(code) = &w.area
                    && let Some(p) = code.get(..2).and_then(|p| p.parse().ok())
                {
                    index.municipal.entry(p).or_default().push(coverage.clone());
                }
                index.by_area.entry(w.area).or_default().push(coverage);
            }
        }
        index
    }

    pub fn coverage(&self, area: &AreaKey) -> &[Coverage] {
        self.by_area.get(area).map_or(&[], Vec::as_slice)
    }
}

/// What allowed a facility: the area and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub area: AreaKey,
    pub coverage: Coverage,
}

/// The areas a facility is in, narrowest first. Without a registry entry its
/// municipality is unknown; its prefecture is the first two digits of its code.
pub fn areas_of(facility: &FacilityCode, registered: Option<&RegisteredFacility>) -> Vec<AreaKey> {
    let mut areas = vec![AreaKey::Facility(facility.to_string())];
    if let Some(r) = registered {
        areas.push(AreaKey::Municipality(r.municipality.clone()));
    }
    areas.push(AreaKey::Prefecture(facility.prefecture().code()));
    areas
}

pub fn decide(
    index: &AreaIndex,
    facility: &FacilityCode,
    registered: Option<&RegisteredFacility>,
    at: DateTime<Utc>,
) -> Result<Allowed, Violation> {
    let mut seen = Vec::new();
    for area in areas_of(facility, registered) {
        let coverages = index.coverage(&area);
        if let Some(c) = coverages.iter().find(|c| c.window.contains(at)) {
            return Ok(Allowed {
                area,
                coverage: c.clone(),
            });
        }
        seen.extend(coverages.iter().cloned());
    }
    let prefecture = facility.prefecture();
    if registered.is_none()
        && let Some(c) = index
            .municipal
            .get(&prefecture.code())
            .and_then(|cs| cs.iter().find(|c| c.window.contains(at)))
    {
        return Err(Violation::new(
            Reason::FacilityNotInRegistry,
            "",
            format!(
                "the emergency function is active for municipalities of {} ({}), but facility {facility} \
                 is not in the facility registry, so its municipality is unknown; ask the operators to register it",
                prefecture.name_ja(),
                c.event
            ),
        )
        .with("facility", facility.to_string())
        .with("prefecture", prefecture.code_str())
        .with("activation", c.activation_id.clone()));
    }
    Err(not_activated(facility, prefecture, registered, &seen, at))
}

fn not_activated(
    facility: &FacilityCode,
    prefecture: Prefecture,
    registered: Option<&RegisteredFacility>,
    seen: &[Coverage],
    at: DateTime<Utc>,
) -> Violation {
    let place = match registered {
        Some(r) => format!("{}, municipality {}", prefecture.name_ja(), r.municipality),
        None => prefecture.name_ja().to_string(),
    };
    let mut v = Violation::new(
        Reason::AreaNotActivated,
        "",
        format!(
            "the emergency function is not active for facility {facility} ({place}) at {}",
            to_jst_string(at)
        ),
    )
    .with("facility", facility.to_string())
    .with("prefecture", prefecture.code_str())
    .with("at", to_jst_string(at));
    if let Some(r) = registered {
        v = v.with("municipality", r.municipality.clone());
    }
    // The window that ended most recently, and the next to open.
    if let Some(c) = seen
        .iter()
        .filter(|c| c.window.end <= at)
        .max_by_key(|c| c.window.end)
    {
        v = v
            .with("last_window_end", to_jst_string(c.window.end))
            .with("last_activation", c.activation_id.clone());
        v.description.push_str(&format!(
            "; the last window ended at {}",
            to_jst_string(c.window.end)
        ));
    }
    if let Some(c) = seen
        .iter()
        .filter(|c| c.window.start > at)
        .min_by_key(|c| c.window.start)
    {
        v = v.with("next_window_start", to_jst_string(c.window.start));
        v.description.push_str(&format!(
            "; the next window opens at {}",
            to_jst_string(c.window.start)
        ));
    }
    v
}

//! What a proposed set of areas would open, and what it would not, counted from the
//! facility registry: per prefecture, the municipalities and facilities opened and
//! those left out; each single facility, registered or not; and the temporary
//! sites registered in those areas.

use std::collections::BTreeSet;

use crate::domain::prefecture::Prefecture;
use crate::proto::{
    AreasPreview, FacilityPreview, MunicipalityCount, PrefecturePreview, SiteInArea,
};
use crate::store::{AreaKey, Store, StoreError};

pub async fn preview(store: &dyn Store, areas: &[AreaKey]) -> Result<AreasPreview, StoreError> {
    let prefecture_of = |area: &AreaKey| -> Option<u8> {
        match area {
            AreaKey::Prefecture(p) => Some(*p),
            AreaKey::Municipality(m) | AreaKey::Facility(m) => m.get(..2)?.parse().ok(),
        }
    };
    let prefectures: BTreeSet<u8> = areas.iter().filter_map(prefecture_of).collect();
    let wanted: Vec<u8> = prefectures.iter().copied().collect();
    let counts = store.facility_counts(&wanted).await?;

    let mut out = AreasPreview::default();
    let mut opened_municipalities = BTreeSet::new();
    for p in &prefectures {
        let whole = areas.contains(&AreaKey::Prefecture(*p));
        let mut view = PrefecturePreview {
            code: format!("{p:02}"),
            name: Prefecture::new(*p)
                .map(|p| p.name_ja().to_string())
                .unwrap_or_default(),
            whole,
            ..PrefecturePreview::default()
        };
        for (m, n) in counts.iter().filter(|(m, _)| m.prefecture == *p) {
            let count = MunicipalityCount {
                code: m.code.clone(),
                name: m.name.clone(),
                facilities: *n,
            };
            if whole || areas.contains(&AreaKey::Municipality(m.code.clone())) {
                view.facilities_opened += n;
                opened_municipalities.insert(m.code.clone());
                view.municipalities_opened.push(count);
            } else {
                view.facilities_not_opened += n;
                view.municipalities_not_opened.push(count);
            }
        }
        out.facilities_opened += view.facilities_opened;
        out.prefectures.push(view);
    }
    for area in areas {
        let AreaKey::Facility(code) = area else {
            continue;
        };
        let registered = store.facility(code).await?;
        let inside = match &registered {
            Some(f) => {
                opened_municipalities.contains(&f.municipality)
                    || areas.contains(&AreaKey::Prefecture(f.prefecture))
            }
            None => prefecture_of(area).is_some_and(|p| areas.contains(&AreaKey::Prefecture(p))),
        };
        if !inside {
            out.facilities_opened += 1;
        }
        out.facilities.push(FacilityPreview {
            code: code.clone(),
            name: registered
                .as_ref()
                .map(|f| f.name.clone())
                .unwrap_or_default(),
            municipality: registered
                .as_ref()
                .map(|f| f.municipality.clone())
                .unwrap_or_default(),
            in_registry: registered.is_some(),
        });
    }
    out.sites = sites_in(store, areas).await?;
    Ok(out)
}

/// The temporary sites whose municipality (or its prefecture) is among `areas`.
async fn sites_in(store: &dyn Store, areas: &[AreaKey]) -> Result<Vec<SiteInArea>, StoreError> {
    Ok(store
        .list_sites()
        .await?
        .into_iter()
        .filter(|s| s.areas().iter().any(|a| areas.contains(a)))
        .map(|s| SiteInArea {
            site_id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind.as_str().to_string(),
            municipality: s.municipality.to_string(),
            sponsor: s.sponsor.clone(),
            activation_id: s.activation_id.clone(),
            closed: s.is_closed(),
        })
        .collect())
}

//! Pharmacies and check-up sites named after the places in the places table.
//!
//! Records store a small id instead of a name, so 100,000 persons with dozens of
//! dispensings each do not allocate a string per record.

use super::places::PREFECTURES;

/// Pharmacies per municipality.
pub const PHARMACIES_PER_MUNICIPALITY: usize = 4;
/// Check-up sites per prefecture.
pub const SITES_PER_PREFECTURE: usize = 3;

const PHARMACY_CHAINS: [&str; PHARMACIES_PER_MUNICIPALITY] =
    ["あおば薬局", "さくら調剤薬局", "ひまわり薬局", "みどり薬局"];

/// Names of every pharmacy and check-up site, addressed by id.
#[derive(Debug, PartialEq)]
pub struct Facilities {
    pharmacies: Vec<String>,
    sites: Vec<String>,
    /// Index of each prefecture's first municipality among all municipalities.
    municipality_offsets: Vec<usize>,
}

/// The name a branch is known by: the ward of a designated city, or the
/// municipality without its 市/区/町 suffix.
fn branch_name(municipality: &str) -> &str {
    let after_city = match municipality.rfind('市') {
        Some(i) if municipality.ends_with('区') => &municipality[i + '市'.len_utf8()..],
        _ => municipality,
    };
    after_city
        .strip_suffix(['市', '区', '町', '村'])
        .filter(|s| !s.is_empty())
        .unwrap_or(after_city)
}

impl Facilities {
    pub fn new() -> Self {
        let mut pharmacies = Vec::new();
        let mut sites = Vec::with_capacity(PREFECTURES.len() * SITES_PER_PREFECTURE);
        let mut municipality_offsets = Vec::with_capacity(PREFECTURES.len());
        for places in &PREFECTURES {
            municipality_offsets.push(pharmacies.len() / PHARMACIES_PER_MUNICIPALITY);
            for muni in places.municipalities {
                let branch = branch_name(muni.name);
                for chain in PHARMACY_CHAINS {
                    pharmacies.push(format!("{chain} {branch}店"));
                }
            }
            let capital = branch_name(places.municipalities[0].name);
            sites.push(format!("{}総合健診センター", places.short_name));
            sites.push(format!("{capital}中央クリニック"));
            sites.push(format!("{}予防医学協会", places.short_name));
        }
        Facilities {
            pharmacies,
            sites,
            municipality_offsets,
        }
    }

    /// Id of pharmacy `k` (taken modulo the count) in a municipality.
    pub fn pharmacy(&self, pref_idx: usize, municipality: usize, k: usize) -> u32 {
        let global = self.municipality_offsets[pref_idx] + municipality;
        (global * PHARMACIES_PER_MUNICIPALITY + k % PHARMACIES_PER_MUNICIPALITY) as u32
    }

    /// Id of check-up site `k` (taken modulo the count) in a prefecture.
    pub fn site(&self, pref_idx: usize, k: usize) -> u32 {
        (pref_idx * SITES_PER_PREFECTURE + k % SITES_PER_PREFECTURE) as u32
    }

    pub fn pharmacy_name(&self, id: u32) -> &str {
        self.pharmacies.get(id as usize).map_or("", String::as_str)
    }

    pub fn site_name(&self, id: u32) -> &str {
        self.sites.get(id as usize).map_or("", String::as_str)
    }
}

impl Default for Facilities {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_places() {
        let f = Facilities::new();
        // Miyagi (index 3): 仙台市青葉区 is municipality 0, 石巻市 is 2.
        assert_eq!(f.pharmacy_name(f.pharmacy(3, 0, 0)), "あおば薬局 青葉店");
        assert_eq!(
            f.pharmacy_name(f.pharmacy(3, 2, 1)),
            "さくら調剤薬局 石巻店"
        );
        assert_eq!(f.pharmacy_name(f.pharmacy(16, 4, 0)), "あおば薬局 野々市店");
        assert_eq!(f.site_name(f.site(3, 0)), "宮城総合健診センター");
        assert_eq!(f.site_name(f.site(3, 1)), "青葉中央クリニック");
        assert_eq!(f.pharmacy_name(u32::MAX), "");
    }
}

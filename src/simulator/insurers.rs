//! The insurers of the synthetic population and how they number their insured.
//!
//! Each prefecture gets the insurers a real one has: the 協会けんぽ branch (law
//! code 01), a few health insurance societies (06), two mutual-aid associations
//! (32 and 34), one national health insurance per municipality (6 digits) and
//! the late-elderly union (39, for age 75 and over, cards without a symbol).
//! Every insurer number carries a valid check digit.

use std::collections::HashSet;

use rand::Rng;

use super::places::{PREFECTURES, PrefecturePlaces};
use crate::domain::check_digit::oqs_check_digit;

/// The insurer number for `body` (all digits) with its check digit appended.
pub fn with_check_digit(body: &str) -> String {
    let check = oqs_check_digit(body).unwrap_or(0);
    let mut number = String::with_capacity(body.len() + 1);
    number.push_str(body);
    number.push(char::from(b'0' + check));
    number
}

/// The kinds of insurer, which decide symbols, numbers and who is a dependant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsurerKind {
    /// 全国健康保険協会 (協会けんぽ), one branch per prefecture.
    KyokaiKenpo,
    /// 健康保険組合 of a company or industry.
    Society,
    /// 共済組合 of public servants and teachers.
    MutualAid,
    /// 市町村国保: every member is insured in their own right, no dependants.
    NationalHealth,
    /// 後期高齢者医療広域連合: one person per number, no symbol.
    LateElderly,
}

impl InsurerKind {
    /// Employee insurance has dependants (被扶養者); the others do not.
    pub fn has_dependants(self) -> bool {
        matches!(self, Self::KyokaiKenpo | Self::Society | Self::MutualAid)
    }
}

#[derive(Debug)]
pub struct Insurer {
    pub number: String,
    pub name: String,
    pub kind: InsurerKind,
    /// Next insured number to hand out; at least 1000 so that hand-written
    /// fixture numbers (all below 1000) never collide with generated ones.
    next: u32,
}

impl Insurer {
    fn new(body: &str, name: String, kind: InsurerKind) -> Self {
        Insurer {
            number: with_check_digit(body),
            name,
            kind,
            next: 1000,
        }
    }

    /// A fresh symbol and number for a new household (or a late-elderly person).
    pub fn issue(&mut self, rng: &mut impl Rng) -> (String, String) {
        self.next += rng.gen_range(1..=9);
        let n = self.next;
        match self.kind {
            InsurerKind::KyokaiKenpo => (
                rng.gen_range(10_000_000u32..60_000_000).to_string(),
                n.to_string(),
            ),
            InsurerKind::Society => (rng.gen_range(1u32..=400).to_string(), n.to_string()),
            InsurerKind::MutualAid => (
                format!("{:04}", rng.gen_range(1u32..=9999)),
                format!("{n:06}"),
            ),
            InsurerKind::NationalHealth => (
                format!("{:02}", rng.gen_range(1u32..=40)),
                format!("{n:07}"),
            ),
            InsurerKind::LateElderly => (String::new(), format!("{:08}", 10_000_000 + n)),
        }
    }
}

/// Company-like words for health insurance society names (all invented combinations).
const SOCIETY_PREFIXES: [&str; 16] = [
    "みらい",
    "あおば",
    "東邦",
    "大和",
    "中央",
    "北斗",
    "昭栄",
    "太陽",
    "日進",
    "共栄",
    "平和",
    "光陽",
    "三洋",
    "富岳",
    "白鷺",
    "瑞穂",
];
const SOCIETY_INDUSTRIES: [&str; 16] = [
    "電機",
    "化学",
    "印刷",
    "運輸",
    "建設",
    "食品",
    "商事",
    "製薬",
    "自動車部品",
    "情報サービス",
    "百貨店",
    "機械",
    "鉄鋼",
    "精密",
    "物流",
    "ソフトウェア",
];

/// A society name not used before: an invented company-like name, or, once those
/// run short, one with the prefecture and the society's own code in it (the code
/// is unique within the prefecture, so this never loops).
fn society_name(
    rng: &mut impl Rng,
    places: &PrefecturePlaces,
    society_code: u32,
    used: &mut std::collections::HashSet<String>,
) -> String {
    for _ in 0..8 {
        let prefix = SOCIETY_PREFIXES[rng.gen_range(0..SOCIETY_PREFIXES.len())];
        let industry = SOCIETY_INDUSTRIES[rng.gen_range(0..SOCIETY_INDUSTRIES.len())];
        let name = format!("{prefix}{industry}健康保険組合");
        if used.insert(name.clone()) {
            return name;
        }
    }
    let industry = SOCIETY_INDUSTRIES[society_code as usize % SOCIETY_INDUSTRIES.len()];
    let name = format!(
        "{}{industry}第{society_code}健康保険組合",
        places.short_name
    );
    used.insert(name.clone());
    name
}

/// All insurers, by prefecture.
#[derive(Debug)]
pub struct Registry {
    pub insurers: Vec<Insurer>,
    by_prefecture: Vec<PrefectureInsurers>,
}

#[derive(Debug, Default)]
struct PrefectureInsurers {
    kyokai: usize,
    societies: Vec<usize>,
    mutual_aid: Vec<usize>,
    /// One per municipality, in the order of the places table.
    national_health: Vec<usize>,
    late_elderly: usize,
}

/// Insurer numbers and names that fixtures use; built the same way as the registry's.
pub fn kyokai_number(pref: u8) -> String {
    with_check_digit(&format!("01{pref:02}001"))
}
pub fn kyokai_name(places: &PrefecturePlaces) -> String {
    format!("全国健康保険協会{}支部", places.short_name)
}
pub fn national_health_number(pref: u8, municipality: usize) -> String {
    with_check_digit(&format!("{pref:02}{:03}", (municipality + 1) * 10))
}
pub fn national_health_name(municipality: &str) -> String {
    format!("{}国民健康保険", insuring_municipality(municipality))
}
/// Wards of a designated city (仙台市青葉区) are insured by the city (仙台市);
/// Tokyo's special wards and every other municipality insure their own.
fn insuring_municipality(municipality: &str) -> &str {
    match municipality.rfind('市') {
        Some(i) if municipality.ends_with('区') => &municipality[..i + '市'.len_utf8()],
        _ => municipality,
    }
}
pub fn late_elderly_number(pref: u8) -> String {
    with_check_digit(&format!("39{pref:02}001"))
}

/// The insurers so far, and the society names already given.
struct Builder {
    insurers: Vec<Insurer>,
    used_names: HashSet<String>,
}

impl Builder {
    fn push(&mut self, insurer: Insurer) -> usize {
        self.insurers.push(insurer);
        self.insurers.len() - 1
    }

    /// One prefecture's insurers: the kyokai branch, societies, two mutual-aid
    /// associations, each municipality's national health insurance and the
    /// late-elderly union.
    fn prefecture(&mut self, rng: &mut impl Rng, places: &PrefecturePlaces) -> PrefectureInsurers {
        let code = places.code;
        let mut entry = PrefectureInsurers {
            kyokai: self.push(Insurer {
                number: kyokai_number(code),
                name: kyokai_name(places),
                kind: InsurerKind::KyokaiKenpo,
                next: 1000,
            }),
            ..PrefectureInsurers::default()
        };
        entry.societies = self.societies(rng, places);
        for (prefix, name) in [
            ("32", format!("{}市町村職員共済組合", places.name)),
            ("34", format!("公立学校共済組合{}支部", places.short_name)),
        ] {
            let association = Insurer::new(
                &format!("{prefix}{code:02}001"),
                name,
                InsurerKind::MutualAid,
            );
            entry.mutual_aid.push(self.push(association));
        }
        entry.national_health = self.national_health(places);
        entry.late_elderly = self.push(Insurer {
            number: late_elderly_number(code),
            name: format!("{}後期高齢者医療広域連合", places.name),
            kind: InsurerKind::LateElderly,
            next: 1000,
        });
        entry
    }

    /// Health insurance societies, more in bigger prefectures, at distinct codes.
    fn societies(&mut self, rng: &mut impl Rng, places: &PrefecturePlaces) -> Vec<usize> {
        let wanted = 2 + (places.weight / 120) as usize;
        let mut societies = Vec::with_capacity(wanted);
        let mut society_codes = HashSet::new();
        while societies.len() < wanted {
            let society_code = rng.gen_range(100u32..=899);
            if !society_codes.insert(society_code) {
                continue;
            }
            let name = society_name(rng, places, society_code, &mut self.used_names);
            let body = format!("06{:02}{society_code:03}", places.code);
            societies.push(self.push(Insurer::new(&body, name, InsurerKind::Society)));
        }
        societies
    }

    /// Each municipality's national health insurer; the wards of a designated city
    /// share the city's.
    fn national_health(&mut self, places: &PrefecturePlaces) -> Vec<usize> {
        let mut national_health: Vec<usize> = Vec::with_capacity(places.municipalities.len());
        for (i, muni) in places.municipalities.iter().enumerate() {
            let city = insuring_municipality(muni.name);
            let same_city = places.municipalities[..i]
                .iter()
                .position(|earlier| insuring_municipality(earlier.name) == city);
            let idx = match same_city {
                Some(first) => national_health[first],
                None => self.push(Insurer {
                    number: national_health_number(places.code, i),
                    name: national_health_name(muni.name),
                    kind: InsurerKind::NationalHealth,
                    next: 1000,
                }),
            };
            national_health.push(idx);
        }
        national_health
    }
}

impl Registry {
    /// Builds every prefecture's insurers. Society codes are drawn from 100..=899;
    /// codes 900 and up are left to fixtures.
    pub fn new(rng: &mut impl Rng) -> Self {
        let mut builder = Builder {
            insurers: Vec::with_capacity(47 * 16),
            used_names: HashSet::new(),
        };
        let mut by_prefecture = Vec::with_capacity(47);
        for places in &PREFECTURES {
            by_prefecture.push(builder.prefecture(rng, places));
        }
        let mut insurers = builder.insurers;
        // Each insurer has handed out numbers for years: start somewhere in its range.
        for insurer in &mut insurers {
            insurer.next = rng.gen_range(1000..200_000);
        }
        Registry {
            insurers,
            by_prefecture,
        }
    }

    /// An employee insurer in the prefecture (index 0-based), chosen with the real
    /// shares: 協会けんぽ about half, societies a third, mutual aid the rest.
    pub fn employee(&self, pref_idx: usize, rng: &mut impl Rng) -> usize {
        let entry = &self.by_prefecture[pref_idx];
        let roll: f32 = rng.r#gen();
        if roll < 0.52 {
            entry.kyokai
        } else if roll < 0.87 {
            entry.societies[rng.gen_range(0..entry.societies.len())]
        } else {
            entry.mutual_aid[rng.gen_range(0..entry.mutual_aid.len())]
        }
    }

    pub fn national_health(&self, pref_idx: usize, municipality: usize) -> usize {
        self.by_prefecture[pref_idx].national_health[municipality]
    }

    pub fn late_elderly(&self, pref_idx: usize) -> usize {
        self.by_prefecture[pref_idx].late_elderly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_insurer_number_has_a_valid_check_digit() {
        let registry = Registry::new(&mut ChaCha8Rng::seed_from_u64(1));
        let mut seen = std::collections::HashSet::new();
        for insurer in &registry.insurers {
            let (body, check) = insurer.number.split_at(insurer.number.len() - 1);
            assert!(matches!(insurer.number.len(), 6 | 8), "{}", insurer.number);
            assert_eq!(
                oqs_check_digit(body).map(|c| c.to_string()),
                Some(check.to_string())
            );
            assert!(seen.insert(insurer.number.clone()), "{}", insurer.number);
        }
        assert_eq!(kyokai_number(13), "01130012");
        assert_eq!(national_health_name("仙台市青葉区"), "仙台市国民健康保険");
        assert_eq!(national_health_name("世田谷区"), "世田谷区国民健康保険");
        assert_eq!(national_health_name("野々市市"), "野々市市国民健康保険");
        // Both Sendai wards share the city's insurer.
        assert_eq!(
            registry.national_health(3, 0),
            registry.national_health(3, 1)
        );
    }
}

//! The synthetic facility registry: about [`SYNTHETIC_FACILITIES`] facilities over
//! the municipality master, spread by population, deterministic for a seed.
//!
//! Codes are built with [`make_facility_code`], so every check digit is valid:
//!
//! - **Fixture facilities**, the same for every seed: one of each kind in every
//!   municipality of the master, in district 90 (91 for a prefecture's 101st
//!   municipality on), numbered kind base + the municipality's index in its
//!   prefecture (medical 1000, dental 3000, pharmacy 4000, home-visit nursing 9000).
//!   [`fixture_facility`] names them.
//! - **Demo facilities**, the ones `crate::demo::facility` builds for the demo and
//!   the tests: [`DEMO_FACILITIES`].
//! - **Generated facilities**: the rest, numbered from kind base + 100 per district,
//!   so they never take a fixture's or a demo facility's code. A municipality's
//!   district number follows its place in the prefecture: several municipalities
//!   share one district in large prefectures, as real 郡市区 numbers do.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::municipalities::{Class, master, prefecture_population, short_name};
use crate::domain::facility::{FacilityKind, make_facility_code};
use crate::domain::municipality::parse_municipality_code;
use crate::domain::prefecture::Prefecture;
use crate::store::{Municipality, RegisteredFacility};

/// Facilities in the synthetic registry, fixtures included.
pub const SYNTHETIC_FACILITIES: usize = 40_000;

/// The facilities `crate::demo::facility(prefecture, kind, number)` builds for the
/// demo and the tests, with the municipality each is registered in: a clinic in
/// 石巻市, a pharmacy in 福島市 and a clinic in 新宿区 (outside the 2022 areas).
pub const DEMO_FACILITIES: [(u8, FacilityKind, u16, &str); 3] = [
    (4, FacilityKind::Medical, 1001, "04202"),
    (7, FacilityKind::Pharmacy, 4001, "07201"),
    (13, FacilityKind::Medical, 1001, "13104"),
];

/// Hospitals with an emergency department, for emergency viewing: one in 石巻市
/// (beside the demo clinic, which has none) and one in 輪島市 for the Noto replay.
/// Each is `(prefecture, facility number, municipality, name)`, district 01.
pub const DEMO_HOSPITALS: [(u8, u16, &str, &str); 2] = [
    (4, 1002, "04202", "石巻みなと総合病院"),
    (17, 1002, "17204", "輪島みなと総合病院"),
];

const DEMO_NAMES: [&str; 3] = [
    "石巻みなと内科クリニック",
    "福島駅前調剤薬局",
    "新宿西口内科クリニック",
];

/// District numbers of fixture facilities (90, then 91 past 100 municipalities).
pub const FIXTURE_DISTRICT: u8 = 90;
/// Highest district number of generated facilities.
const LAST_GENERATED_DISTRICT: usize = 89;
/// Numbers below base + this are fixtures' and demos'; generated ones start here.
const GENERATED_OFFSET: u16 = 100;

/// Share of each kind among generated facilities (clinics and hospitals, dental
/// clinics, pharmacies, home-visit nursing stations), roughly as in Japan.
const KIND_WEIGHTS: [(FacilityKind, u32); 4] = [
    (FacilityKind::Medical, 45),
    (FacilityKind::Dental, 27),
    (FacilityKind::Pharmacy, 22),
    (FacilityKind::VisitingNursing, 6),
];

fn number_base(kind: FacilityKind) -> u16 {
    match kind {
        FacilityKind::Medical => 1000,
        FacilityKind::Dental => 3000,
        FacilityKind::Pharmacy => 4000,
        FacilityKind::VisitingNursing => 9000,
    }
}

/// Numbers available to generated facilities of a kind in one district.
fn generated_capacity(kind: FacilityKind) -> u16 {
    match kind {
        FacilityKind::Medical => 2000 - GENERATED_OFFSET,
        _ => 1000 - GENERATED_OFFSET,
    }
}

static MASTER: LazyLock<Vec<Municipality>> = LazyLock::new(master);

/// The synthetic municipality master (the same for every seed), in code order.
pub fn synthetic_municipalities() -> Vec<Municipality> {
    MASTER.clone()
}

fn prefecture(code: u8) -> Prefecture {
    Prefecture::new(code).expect("the master has only prefectures 01-47")
}

/// (index in its prefecture, municipality) of a code or a name in the master.
fn locate(municipality: &str) -> Option<(usize, &'static Municipality)> {
    let found = match parse_municipality_code("municipality", municipality) {
        Ok(code) => MASTER.iter().find(|m| m.code == code.as_str()),
        Err(_) => {
            let mut named = MASTER.iter().filter(|m| m.name == municipality);
            match (named.next(), named.next()) {
                (Some(m), None) => Some(m),
                _ => None,
            }
        }
    }?;
    let index = MASTER
        .iter()
        .filter(|m| m.prefecture == found.prefecture && m.code < found.code)
        .count();
    Some((index, found))
}

fn fixture_code(prefecture_code: u8, index: usize, kind: FacilityKind) -> String {
    let district = FIXTURE_DISTRICT + (index / 100) as u8;
    let number = number_base(kind) + (index % 100) as u16;
    make_facility_code(prefecture(prefecture_code), kind, district, number).to_string()
}

/// The code of the registered facility of `kind` in `municipality`, for tests and
/// demos that need "a clinic in 輪島市". `municipality` is a code of the synthetic
/// master (5 digits, or 6 with the check digit: "17204", "172049") or a name that
/// only one municipality has ("輪島市"). The same for every seed.
///
/// # Panics
/// If no municipality of the master is named so: a fixture typo should fail loudly.
pub fn fixture_facility(municipality: &str, kind: FacilityKind) -> String {
    let (index, m) = locate(municipality).unwrap_or_else(|| {
        panic!("{municipality:?} is not a municipality of the synthetic master")
    });
    fixture_code(m.prefecture, index, kind)
}

const SURNAMES: [&str; 40] = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "斎藤",
    "清水",
    "山崎",
    "森",
    "池田",
    "橋本",
    "阿部",
    "石川",
    "山下",
    "中島",
    "石井",
    "小川",
    "前田",
    "岡田",
    "長谷川",
    "藤田",
    "後藤",
    "近藤",
    "村上",
    "遠藤",
    "青木",
    "坂本",
    "西村",
];

const QUARTERS: [&str; 16] = [
    "駅前",
    "本町",
    "中央",
    "栄町",
    "緑町",
    "旭町",
    "東口",
    "西口",
    "南",
    "北",
    "新町",
    "桜木町",
    "若葉",
    "松原",
    "東町",
    "元町",
];

const PHARMACY_BRANDS: [&str; 8] = [
    "あおば",
    "さくら",
    "ひまわり",
    "みどり",
    "すずらん",
    "たんぽぽ",
    "つばさ",
    "なのはな",
];

const NURSING_BRANDS: [&str; 6] = [
    "ひだまり",
    "やすらぎ",
    "あおぞら",
    "こころ",
    "ほほえみ",
    "ぬくもり",
];

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// A plausible name for a facility of `kind` in a municipality known as `place`.
fn facility_name(rng: &mut ChaCha8Rng, kind: FacilityKind, place: &str) -> String {
    let surname = pick(rng, &SURNAMES);
    let quarter = pick(rng, &QUARTERS);
    match kind {
        FacilityKind::Medical => match rng.gen_range(0..12) {
            0 => format!("{place}{quarter}クリニック"),
            1 => format!("{surname}内科クリニック"),
            2 => format!("{surname}医院"),
            3 => format!(
                "{place}{}病院",
                pick(rng, &["中央", "記念", "総合", "第一", "協立"])
            ),
            4 => format!("{surname}整形外科"),
            5 => format!("{surname}眼科"),
            6 => format!("{place}{quarter}皮膚科クリニック"),
            7 => format!("{surname}こどもクリニック"),
            8 => format!("{surname}耳鼻咽喉科"),
            9 => format!("{place}{quarter}内科"),
            10 => format!("{surname}内科胃腸科医院"),
            _ => format!("{surname}クリニック"),
        },
        FacilityKind::Dental => match rng.gen_range(0..5) {
            0 => format!("{surname}歯科医院"),
            1 => format!("{place}{quarter}歯科クリニック"),
            2 => format!("{surname}デンタルクリニック"),
            3 => format!("{quarter}こども歯科"),
            _ => format!("{surname}歯科"),
        },
        FacilityKind::Pharmacy => match rng.gen_range(0..4) {
            0 => format!("{}薬局 {place}{quarter}店", pick(rng, &PHARMACY_BRANDS)),
            1 => format!("{place}{quarter}調剤薬局"),
            2 => format!("{surname}薬局"),
            _ => format!("{}調剤薬局 {place}店", pick(rng, &PHARMACY_BRANDS)),
        },
        FacilityKind::VisitingNursing => match rng.gen_range(0..3) {
            0 => format!("{place}訪問看護ステーション"),
            1 => format!("訪問看護ステーション{}", pick(rng, &NURSING_BRANDS)),
            _ => format!("{}訪問看護ステーション {place}", pick(rng, &NURSING_BRANDS)),
        },
    }
}

fn fixture_name(kind: FacilityKind, place: &str) -> String {
    match kind {
        FacilityKind::Medical => format!("{place}中央クリニック"),
        FacilityKind::Dental => format!("{place}中央歯科医院"),
        FacilityKind::Pharmacy => format!("{place}中央薬局"),
        FacilityKind::VisitingNursing => format!("{place}訪問看護ステーション"),
    }
}

/// Splits `total` over `weights` in proportion (largest remainders get the rest).
fn apportion(total: usize, weights: &[u64]) -> Vec<usize> {
    let sum: u64 = weights.iter().sum::<u64>().max(1);
    let exact: Vec<u64> = weights.iter().map(|w| w * total as u64).collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| (e / sum) as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(exact[i] % sum), i));
    let missing = total - shares.iter().sum::<usize>();
    for &i in order.iter().take(missing) {
        shares[i] += 1;
    }
    shares
}

/// The synthetic registry for `seed`: the municipality master (the same for every
/// seed) and about [`SYNTHETIC_FACILITIES`] facilities (fixtures and demo facilities
/// the same for every seed), both in code order.
pub fn synthetic(seed: u64) -> (Vec<Municipality>, Vec<RegisteredFacility>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let municipalities = MASTER.clone();
    let mut out = Builder::default();
    let by_prefecture: Vec<Vec<&Municipality>> = (1..=47u8)
        .map(|p| {
            municipalities
                .iter()
                .filter(|m| m.prefecture == p)
                .collect()
        })
        .collect();
    out.add_fixtures(&by_prefecture);
    out.add_demo_facilities(&municipalities);
    let generated = SYNTHETIC_FACILITIES.saturating_sub(out.facilities.len());
    out.add_generated(&mut rng, &by_prefecture, generated);
    out.add_demo_hospitals(&municipalities);
    let mut facilities = out.facilities;
    facilities.sort_by(|a, b| a.code.cmp(&b.code));
    (municipalities, facilities)
}

/// Facilities so far, and the names already used in each municipality.
#[derive(Default)]
struct Builder {
    facilities: Vec<RegisteredFacility>,
    names: HashMap<String, HashSet<String>>,
}

impl Builder {
    fn add(&mut self, m: &Municipality, code: String, kind: FacilityKind, name: String) {
        self.names
            .entry(m.code.clone())
            .or_default()
            .insert(name.clone());
        // Generated hospitals are taken to have an emergency department; clinics never.
        let emergency_hospital = kind == FacilityKind::Medical && name.ends_with("病院");
        self.facilities.push(RegisteredFacility {
            code,
            name,
            kind,
            prefecture: m.prefecture,
            municipality: m.code.clone(),
            emergency_hospital,
        });
    }

    /// One facility of each kind in every municipality, at fixed codes.
    fn add_fixtures(&mut self, by_prefecture: &[Vec<&Municipality>]) {
        for (pref_munis, pref) in by_prefecture.iter().zip(1..=47u8) {
            for (index, m) in pref_munis.iter().enumerate() {
                let place = short_name(&m.name);
                for kind in FacilityKind::ALL {
                    self.add(
                        m,
                        fixture_code(pref, index, kind),
                        kind,
                        fixture_name(kind, place),
                    );
                }
            }
        }
    }

    /// The hospitals with an emergency department the demo and the tests call from,
    /// added after the generated ones so that those stay as they were.
    fn add_demo_hospitals(&mut self, municipalities: &[Municipality]) {
        for (pref, number, municipality, name) in DEMO_HOSPITALS {
            let m = municipalities
                .iter()
                .find(|m| m.code == municipality)
                .expect("demo municipalities are in the master");
            let kind = FacilityKind::Medical;
            let code = make_facility_code(prefecture(pref), kind, 1, number).to_string();
            self.add(m, code, kind, name.to_string());
        }
    }

    /// The facilities the demo calls from.
    fn add_demo_facilities(&mut self, municipalities: &[Municipality]) {
        for ((pref, kind, number, municipality), name) in
            DEMO_FACILITIES.into_iter().zip(DEMO_NAMES)
        {
            let m = municipalities
                .iter()
                .find(|m| m.code == municipality)
                .expect("demo municipalities are in the master");
            let code = make_facility_code(prefecture(pref), kind, 1, number).to_string();
            self.add(m, code, kind, name.to_string());
        }
    }

    /// `generated` facilities spread over the prefectures by population and over
    /// their municipalities by class, of kinds in their national proportions.
    fn add_generated(
        &mut self,
        rng: &mut ChaCha8Rng,
        by_prefecture: &[Vec<&Municipality>],
        generated: usize,
    ) {
        let populations: Vec<u64> = (1..=47u8)
            .map(|p| u64::from(prefecture_population(p)))
            .collect();
        let kinds = WeightedIndex::new(KIND_WEIGHTS.iter().map(|(_, w)| *w))
            .expect("positive kind weights");
        let mut next_number: HashMap<(u8, FacilityKind, u8), u16> = HashMap::new();
        for ((pref_munis, pref), count) in by_prefecture
            .iter()
            .zip(1..=47u8)
            .zip(apportion(generated, &populations))
        {
            let weights: Vec<u32> = pref_munis
                .iter()
                .map(|m| Class::of(&m.code, &m.name).weight())
                .collect();
            let Ok(where_) = WeightedIndex::new(&weights) else {
                continue;
            };
            let n = pref_munis.len();
            for _ in 0..count {
                let index = where_.sample(rng);
                let m = pref_munis[index];
                let kind = KIND_WEIGHTS[kinds.sample(rng)].0;
                // The municipality's district, or the next with numbers left.
                let home = 1 + index * LAST_GENERATED_DISTRICT / n.max(1);
                let Some((district, used)) = (0..LAST_GENERATED_DISTRICT)
                    .map(|k| ((home - 1 + k) % LAST_GENERATED_DISTRICT + 1) as u8)
                    .map(|d| (d, *next_number.get(&(pref, kind, d)).unwrap_or(&0)))
                    .find(|(_, used)| *used < generated_capacity(kind))
                else {
                    continue;
                };
                next_number.insert((pref, kind, district), used + 1);
                let number = number_base(kind) + GENERATED_OFFSET + used;
                let code = make_facility_code(prefecture(pref), kind, district, number).to_string();
                let name = self.unused_name(rng, m, kind);
                self.add(m, code, kind, name);
            }
        }
    }

    /// A generated name not yet used in `m` (numbered after a few tries).
    fn unused_name(
        &mut self,
        rng: &mut ChaCha8Rng,
        m: &Municipality,
        kind: FacilityKind,
    ) -> String {
        let place = short_name(&m.name);
        let taken = self.names.entry(m.code.clone()).or_default();
        let mut name = facility_name(rng, kind, place);
        for _ in 0..8 {
            if !taken.contains(&name) {
                break;
            }
            name = facility_name(rng, kind, place);
        }
        if taken.contains(&name) {
            name = format!("{name} {}", taken.len() + 1);
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_splits_exactly() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(7, &[0, 5, 2]), vec![0, 5, 2]);
        assert_eq!(apportion(0, &[3]), vec![0]);
    }

    #[test]
    fn fixtures_are_found_by_code_and_name() {
        let by_code = fixture_facility("17204", FacilityKind::Medical);
        assert_eq!(fixture_facility("172049", FacilityKind::Medical), by_code);
        assert_eq!(fixture_facility("輪島市", FacilityKind::Medical), by_code);
        assert_eq!(&by_code[..3], "171");
        assert_eq!(&by_code[3..5], "90");
        assert_ne!(fixture_facility("17204", FacilityKind::Dental), by_code);
        assert_ne!(fixture_facility("17201", FacilityKind::Medical), by_code);
    }

    #[test]
    #[should_panic(expected = "not a municipality")]
    fn unknown_fixture_municipality_panics() {
        fixture_facility("17999", FacilityKind::Medical);
    }

    #[test]
    fn short_names_of_facilities() {
        assert_eq!(short_name("石巻市"), "石巻");
        assert_eq!(short_name("野々市市"), "野々市");
        assert_eq!(short_name("横浜市鶴見区"), "鶴見");
        assert_eq!(short_name("新宿区"), "新宿");
        assert_eq!(short_name("綾町"), "綾");
        assert_eq!(short_name("市"), "市");
    }
}

//! Clinical information of a synthetic person (診療情報: procedures, operations,
//! dialysis, visits), derived when asked for from the population's seed and the
//! person's insured number, so it is deterministic without being stored for every
//! person, and without drawing from the generator's stream (which would change
//! every seed's existing patients).
//!
//! Dialysis: about 0.17 % of adults under 65 and 0.64 % from 65 (some 350,000
//! patients in Japan, two thirds of them 65 or older: about 0.3 % of adults);
//! the demo patient is always on dialysis, so the demo can show it.

use chrono::{Datelike, NaiveDate, TimeDelta};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fixtures::DEMO_PATIENT;
use super::person::Person;
use super::places::PREFECTURES;

/// Records reach a bit further back than the 5-year look-back, so the default
/// period visibly cuts something off.
const HISTORY_DAYS: i64 = 6 * 366;

const DIALYSIS_UNDER_65: f64 = 0.0017;
const DIALYSIS_FROM_65: f64 = 0.0064;

/// A procedure or operation: receipt-shaped 9-digit code and name.
pub type Coded = (&'static str, &'static str);

#[rustfmt::skip]
const PROCEDURES: [Coded; 8] = [
    ("112007410", "再診料"),
    ("160008010", "末梢血液一般検査"),
    ("160010010", "HbA1c"),
    ("170000410", "単純撮影(胸部)"),
    ("160072110", "心電図検査(12誘導)"),
    ("113001810", "特定疾患療養管理料"),
    ("130003510", "点滴注射"),
    ("170011810", "CT撮影(16列以上64列未満)"),
];

const DIALYSIS_PROCEDURE: Coded = ("140007310", "人工腎臓(慢性維持透析)");

#[rustfmt::skip]
const OPERATIONS: [Coded; 6] = [
    ("150263310", "水晶体再建術(眼内レンズ挿入)"),
    ("150147910", "腹腔鏡下胆嚢摘出術"),
    ("150052610", "人工関節置換術(膝)"),
    ("150359310", "経皮的冠動脈ステント留置術"),
    ("150154110", "虫垂切除術"),
    ("150285010", "内視鏡的大腸ポリープ切除術"),
];

const DEPARTMENTS: [&str; 8] = [
    "内科",
    "整形外科",
    "眼科",
    "皮膚科",
    "外科",
    "循環器内科",
    "耳鼻咽喉科",
    "泌尿器科",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Procedure {
    pub date: NaiveDate,
    pub coded: Coded,
    pub facility: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub date: NaiveDate,
    pub facility: String,
    pub department: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DialysisCourse {
    pub since: NaiveDate,
    pub facility: String,
    pub method: &'static str,
    /// The latest session: today or up to two days before (three sessions a week).
    pub latest: NaiveDate,
}

/// The clinical records of one person, each list oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clinical {
    pub procedures: Vec<Procedure>,
    pub operations: Vec<Procedure>,
    pub visits: Vec<Visit>,
    pub dialysis: Option<DialysisCourse>,
    /// The clinic the person sees regularly (and which issues their prescriptions).
    pub home_clinic: String,
}

/// FNV-1a: a stable hash (the standard library's may change between releases).
pub fn stable_hash(seed: u64, text: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The person's own random stream for `what`, from the seed and their insured number.
pub fn person_rng(seed: u64, person: &Person, what: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(stable_hash(seed, &format!("{what}|{}", person.key())))
}

fn facility_names(person: &Person) -> [String; 3] {
    let pref = PREFECTURES
        .iter()
        .find(|p| p.code == person.prefecture)
        .unwrap_or(&PREFECTURES[0]);
    let town = pref.municipalities[0].name;
    [
        format!("{town}ファミリークリニック"),
        format!("{}中央病院", pref.short_name),
        format!("{}腎クリニック", pref.short_name),
    ]
}

/// The clinical records of `person` as of `today`.
pub fn clinical(seed: u64, person: &Person, today: NaiveDate) -> Clinical {
    let mut rng = person_rng(seed, person, "clinical");
    let [clinic, hospital, kidney] = facility_names(person);
    let age = person.age_on(today);
    let start = today - TimeDelta::days(HISTORY_DAYS);
    let regular = !person.drugs.is_empty();
    let mut out = Clinical {
        home_clinic: clinic.clone(),
        ..Clinical::default()
    };
    visits_and_procedures(&mut rng, &mut out, start, today, regular, &hospital);
    operations(&mut rng, &mut out, start, today, age, &hospital);
    let p = if age >= 65 {
        DIALYSIS_FROM_65
    } else {
        DIALYSIS_UNDER_65
    };
    let demo = person.key() == DEMO_PATIENT.person_key();
    if age >= 18 && (demo || rng.gen_bool(p)) {
        dialysis(&mut rng, &mut out, today, kidney);
    }
    out
}

/// Regular patients see their clinic about every four weeks; others a few times.
fn visits_and_procedures(
    rng: &mut ChaCha8Rng,
    out: &mut Clinical,
    start: NaiveDate,
    today: NaiveDate,
    regular: bool,
    hospital: &str,
) {
    let mut day = start + TimeDelta::days(rng.gen_range(0..40));
    while day <= today {
        let (facility, department) = if regular || rng.gen_bool(0.7) {
            (out.home_clinic.clone(), "内科")
        } else {
            (
                hospital.to_string(),
                DEPARTMENTS[rng.gen_range(1..DEPARTMENTS.len())],
            )
        };
        out.visits.push(Visit {
            date: day,
            facility: facility.clone(),
            department,
        });
        out.procedures.push(Procedure {
            date: day,
            coded: PROCEDURES[0],
            facility: facility.clone(),
        });
        if rng.gen_bool(0.4) {
            out.procedures.push(Procedure {
                date: day,
                coded: PROCEDURES[rng.gen_range(1..PROCEDURES.len())],
                facility,
            });
        }
        let gap = if regular {
            rng.gen_range(21..36)
        } else {
            rng.gen_range(60..420)
        };
        day += TimeDelta::days(gap);
    }
}

/// Operations grow likelier with age: about one person in ten over the history at
/// 40, more than one in three at 80.
fn operations(
    rng: &mut ChaCha8Rng,
    out: &mut Clinical,
    start: NaiveDate,
    today: NaiveDate,
    age: i32,
    hospital: &str,
) {
    let p = (0.02 + f64::from(age.max(0)) * 0.004).min(0.5);
    let span = (today - start).num_days();
    for _ in 0..2 {
        if rng.gen_bool(p) {
            let date = start + TimeDelta::days(rng.gen_range(0..=span));
            out.operations.push(Procedure {
                date,
                coded: OPERATIONS[rng.gen_range(0..OPERATIONS.len())],
                facility: hospital.to_string(),
            });
        }
    }
    out.operations.sort_by_key(|o| o.date);
}

/// Haemodialysis (peritoneal for about one in twenty), claimed once a month.
fn dialysis(rng: &mut ChaCha8Rng, out: &mut Clinical, today: NaiveDate, facility: String) {
    let since = today - TimeDelta::days(rng.gen_range(200..3000));
    let method = if rng.gen_bool(0.05) {
        "腹膜透析"
    } else {
        "血液透析"
    };
    let mut month = NaiveDate::from_ymd_opt(since.year(), since.month(), 1).unwrap_or(since);
    while month <= today {
        let date = month.max(since);
        out.procedures.push(Procedure {
            date,
            coded: DIALYSIS_PROCEDURE,
            facility: facility.clone(),
        });
        month = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
    }
    out.procedures.sort_by_key(|p| p.date);
    out.dialysis = Some(DialysisCourse {
        since,
        facility,
        method,
        latest: today - TimeDelta::days(rng.gen_range(0..3)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::Population;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    #[test]
    fn same_seed_same_records_and_sorted() {
        let population = Population::generate_at(3, 500, today());
        for person in population.persons().iter().take(50) {
            let a = clinical(3, person, today());
            assert_eq!(a, clinical(3, person, today()));
            assert!(a.visits.windows(2).all(|w| w[0].date <= w[1].date));
            assert!(a.procedures.windows(2).all(|w| w[0].date <= w[1].date));
            assert!(a.visits.iter().all(|v| v.date <= today()));
        }
    }

    #[test]
    fn dialysis_is_rare_more_so_under_65_and_the_demo_patient_has_it() {
        let population = Population::generate_at(11, 20_000, today());
        let (mut young, mut young_on, mut old, mut old_on) = (0u32, 0u32, 0u32, 0u32);
        for person in population.persons() {
            let age = person.age_on(today());
            if age < 18 {
                assert!(clinical(11, person, today()).dialysis.is_none());
                continue;
            }
            let on = clinical(11, person, today()).dialysis.is_some();
            if age >= 65 {
                old += 1;
                old_on += u32::from(on);
            } else {
                young += 1;
                young_on += u32::from(on);
            }
        }
        let rate = |on: u32, all: u32| f64::from(on) / f64::from(all.max(1));
        let all = rate(young_on + old_on, young + old);
        assert!((0.001..0.008).contains(&all), "adult rate {all}");
        assert!(rate(old_on, old) > rate(young_on, young));
        let demo = population.find_insured(&DEMO_PATIENT.insured()).unwrap();
        let course = clinical(11, demo, today())
            .dialysis
            .expect("demo on dialysis");
        assert!(course.since < today() && course.latest <= today());
    }
}

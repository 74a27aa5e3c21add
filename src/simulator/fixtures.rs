//! Persons present in every generated population, whatever the seed or size,
//! so that tests and demos can rely on them.
//!
//! | fixture | exercises |
//! |---|---|
//! | [`DEMO_PATIENT`] 山田 太郎, Ishinomaki (Miyagi) | lookup, drug history, check-ups in an area of the 2022 activation |
//! | [`DEMO_SPOUSE`] 山田 恵子, same card, branch 01 | dependants sharing the insured number |
//! | [`SAME_NAME_FUKUSHIMA`], [`SAME_NAME_TOKYO`] 佐藤 花子 1990-01-01 | same name and birth date under two insurers |
//! | [`LOST_QUALIFICATION`] 高橋 健一 | status 2 with a loss date |
//! | [`CHANGED_INSURER_OLD`] / [`CHANGED_INSURER_NEW`] 伊藤 美咲 | status 3 beside the valid new record |
//! | [`VALID_UNREGISTERED`] 小林 翔太 | status 6 |
//! | [`VARIANT_KANJI`] 髙橋 美穂, Wajima (Noto) | 髙/高 folding; born 29 February |
//! | [`CROWD_SIZE`] × 鈴木 一郎 1980-01-01 in Tokyo | more matches than the candidate bound |
//!
//! Hand-written numbers are all below 1000, generated ones start above it, so
//! they never collide. Relative dates (loss, recent starts, dispensings) follow
//! the population's reference day.

use chrono::{NaiveDate, TimeDelta};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::drugs::Condition;
use super::facilities::Facilities;
use super::insurers::{InsurerKind, national_health_name, national_health_number};
use super::medical::{self, Checkup, Conditions, Dispensing};
use super::person::Person;
use super::places::PREFECTURES;
use crate::proto::{InsuredNumber, Sex};

/// A fixture person's identity, as tests and demos type it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixture {
    pub insurer_number: &'static str,
    pub insurer_name: &'static str,
    pub symbol: &'static str,
    pub number: &'static str,
    pub branch: &'static str,
    pub name: &'static str,
    pub name_kana: &'static str,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub prefecture: u8,
    pub address: &'static str,
    pub postcode: &'static str,
}

impl Fixture {
    pub fn insured(&self) -> InsuredNumber {
        InsuredNumber {
            insurer_number: self.insurer_number.to_string(),
            symbol: self.symbol.to_string(),
            number: self.number.to_string(),
            branch: self.branch.to_string(),
        }
    }

    /// The key the population finds the person by.
    pub fn person_key(&self) -> String {
        super::person::insured_key(self.insurer_number, self.symbol, self.number, self.branch)
    }
}

const fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(date) => date,
        None => panic!("fixture date out of range"),
    }
}

/// The demo patient: 協会けんぽ宮城支部, lives in 石巻市, on warfarin among others.
#[rustfmt::skip]
pub const DEMO_PATIENT: Fixture = Fixture {
    insurer_number: "01040013", insurer_name: "全国健康保険協会宮城支部", symbol: "40250311", number: "152", branch: "00",
    name: "山田 太郎", name_kana: "ヤマダ タロウ", birth_date: ymd(1958, 4, 12), sex: Sex::Male,
    prefecture: 4, address: "宮城県石巻市中央二丁目3番5号", postcode: "986-0822",
};

/// The demo patient's wife, his dependant on the same card (branch 01).
#[rustfmt::skip]
pub const DEMO_SPOUSE: Fixture = Fixture {
    branch: "01",
    name: "山田 恵子", name_kana: "ヤマダ ケイコ", birth_date: ymd(1961, 9, 3), sex: Sex::Female,
    ..DEMO_PATIENT
};

/// 佐藤 花子 in Koriyama, 協会けんぽ福島支部.
#[rustfmt::skip]
pub const SAME_NAME_FUKUSHIMA: Fixture = Fixture {
    insurer_number: "01070010", insurer_name: "全国健康保険協会福島支部", symbol: "21030507", number: "884", branch: "00",
    name: "佐藤 花子", name_kana: "サトウ ハナコ", birth_date: ymd(1990, 1, 1), sex: Sex::Female,
    prefecture: 7, address: "福島県郡山市駅前一丁目8番2号", postcode: "963-8002",
};

/// Another 佐藤 花子 born the same day, in Tokyo, with a health insurance society.
#[rustfmt::skip]
pub const SAME_NAME_TOKYO: Fixture = Fixture {
    insurer_number: "06139018", insurer_name: "東都情報サービス健康保険組合", symbol: "27", number: "431",
    prefecture: 13, address: "東京都練馬区旭町三丁目12番7号", postcode: "179-0071",
    ..SAME_NAME_FUKUSHIMA
};

/// Left his job: qualification lost 40 days before the reference day (status 2).
#[rustfmt::skip]
pub const LOST_QUALIFICATION: Fixture = Fixture {
    insurer_number: "06049019", insurer_name: "杜の都運輸健康保険組合", symbol: "3", number: "218", branch: "00",
    name: "高橋 健一", name_kana: "タカハシ ケンイチ", birth_date: ymd(1972, 11, 23), sex: Sex::Male,
    prefecture: 4, address: "宮城県仙台市宮城野区栄町四丁目1番9号", postcode: "983-0014",
};
/// Days before the reference day on which [`LOST_QUALIFICATION`] lost it.
pub const LOST_QUALIFICATION_DAYS_AGO: i64 = 40;

/// Old record of a person who moved to national health insurance 20 days before
/// the reference day (status 3: a newer qualification exists).
#[rustfmt::skip]
pub const CHANGED_INSURER_OLD: Fixture = Fixture {
    insurer_number: "01040013", insurer_name: "全国健康保険協会宮城支部", symbol: "40250377", number: "96", branch: "00",
    name: "伊藤 美咲", name_kana: "イトウ ミサキ", birth_date: ymd(1985, 6, 15), sex: Sex::Female,
    prefecture: 4, address: "宮城県仙台市青葉区本町二丁目6番1号", postcode: "980-0014",
};

/// The valid new record of [`CHANGED_INSURER_OLD`].
#[rustfmt::skip]
pub const CHANGED_INSURER_NEW: Fixture = Fixture {
    insurer_number: "040105", insurer_name: "仙台市国民健康保険", symbol: "07", number: "0000318",
    ..CHANGED_INSURER_OLD
};
/// Days before the reference day on which [`CHANGED_INSURER_OLD`] changed insurer.
pub const CHANGED_INSURER_DAYS_AGO: i64 = 20;

/// Joined three days before the reference day; not yet registered (status 6).
#[rustfmt::skip]
pub const VALID_UNREGISTERED: Fixture = Fixture {
    insurer_number: "01130012", insurer_name: "全国健康保険協会東京支部", symbol: "52014411", number: "77", branch: "00",
    name: "小林 翔太", name_kana: "コバヤシ ショウタ", birth_date: ymd(2001, 8, 20), sex: Sex::Male,
    prefecture: 13, address: "東京都新宿区若葉町二丁目4番11号", postcode: "160-0011",
};

/// Registered with the variant kanji 髙; a search for 高橋 美穂 must find her.
#[rustfmt::skip]
pub const VARIANT_KANJI: Fixture = Fixture {
    insurer_number: "170308", insurer_name: "輪島市国民健康保険", symbol: "11", number: "0000542", branch: "00",
    name: "髙橋 美穂", name_kana: "タカハシ ミホ", birth_date: ymd(1976, 2, 29), sex: Sex::Female,
    prefecture: 17, address: "石川県輪島市河井町一丁目5番3号", postcode: "928-0001",
};

/// The crowd: this many men named 鈴木 一郎 born 1980-01-01 live in Tokyo, so a
/// search with the address fragment [`CROWD_ADDRESS_FRAGMENT`] alone returns more
/// candidates than any sensible bound. Each of the ten Tokyo municipalities of the
/// places table has three of them, under three different insurers.
pub const CROWD_SIZE: usize = 30;
pub const CROWD_NAME: &str = "鈴木 一郎";
pub const CROWD_NAME_KANA: &str = "スズキ イチロウ";
pub const CROWD_BIRTH_DATE: NaiveDate = ymd(1980, 1, 1);
pub const CROWD_SEX: Sex = Sex::Male;
pub const CROWD_ADDRESS_FRAGMENT: &str = "東京都";
/// A ward of the crowd narrowing it to three candidates.
pub const CROWD_WARD: &str = "世田谷区";
/// How many of the crowd are insured by 協会けんぽ東京支部.
pub const CROWD_KYOKAI_TOKYO: usize = CROWD_SIZE / 3;
const CROWD_SOCIETY: (&str, &str) = ("06139026", "東都精機健康保険組合");

/// Every fixture with its own card (the crowd aside).
pub const ALL: [Fixture; 9] = [
    DEMO_PATIENT,
    DEMO_SPOUSE,
    SAME_NAME_FUKUSHIMA,
    SAME_NAME_TOKYO,
    LOST_QUALIFICATION,
    CHANGED_INSURER_OLD,
    CHANGED_INSURER_NEW,
    VALID_UNREGISTERED,
    VARIANT_KANJI,
];

/// Seed for the fixtures' own medical records, independent of the population's.
const FIXTURE_SEED: u64 = 0x4f4e_5348_495f_4658;

/// Whether a generated person would share a fixture's name (kanji or kana), birth
/// date and sex, which would change the outcome of the searches tests rely on.
pub(crate) fn is_reserved(name: &str, name_kana: &str, birth: NaiveDate, sex: Sex) -> bool {
    let crowd = birth == CROWD_BIRTH_DATE
        && sex == CROWD_SEX
        && (name == CROWD_NAME || name_kana == CROWD_NAME_KANA);
    crowd
        || ALL.iter().any(|f| {
            f.birth_date == birth && f.sex == sex && (f.name == name || f.name_kana == name_kana)
        })
}

fn copayment(age: i32) -> &'static str {
    match age {
        ..6 => "020",
        6..=69 => "030",
        70..=74 => "020",
        _ => "010",
    }
}

fn person(f: &Fixture, today: NaiveDate, start: NaiveDate, status: i32) -> Person {
    let age = super::person::age_on(f.birth_date, today);
    Person {
        insurer_number: f.insurer_number.to_string(),
        insurer_name: f.insurer_name.to_string(),
        symbol: f.symbol.to_string(),
        number: f.number.to_string(),
        branch: f.branch.to_string(),
        dependant: f.branch != "00",
        name: f.name.to_string(),
        name_kana: f.name_kana.to_string(),
        sex: f.sex,
        birth_date: f.birth_date,
        prefecture: f.prefecture,
        address: f.address.to_string(),
        postcode: f.postcode.to_string(),
        qualification_start: start.min(today),
        qualification_end: None,
        card_valid_until: None,
        copayment_ratio: copayment(age),
        certificates: if (70..75).contains(&age) {
            vec!["高齢受給者証"]
        } else {
            Vec::new()
        },
        status,
        drugs: Vec::new(),
        checkups: Vec::new(),
    }
}

/// The demo patient's regimen: refilled every 28 days at his usual pharmacy.
fn demo_drugs(today: NaiveDate, pharmacy: u32) -> Vec<Dispensing> {
    let regimen = [
        "アムロジピン錠5mg",
        "メトホルミン塩酸塩錠250mg",
        "ワルファリンカリウム錠1mg",
    ];
    let mut out = Vec::with_capacity(medical::MAX_DISPENSINGS);
    for visit in 0..9 {
        let date = today - TimeDelta::days(9 + visit * 28);
        for name in regimen {
            if let Some(drug) = medical::drug_named(name) {
                out.push(Dispensing {
                    date,
                    drug,
                    days: 28,
                    pharmacy,
                });
            }
        }
    }
    if let Some(drug) = medical::drug_named("ロキソプロフェンナトリウム錠60mg") {
        out.push(Dispensing {
            date: today - TimeDelta::days(400),
            drug,
            days: 5,
            pharmacy,
        });
    }
    out
}

/// The demo patient's check-ups: one a year, blood pressure and HbA1c creeping up.
fn demo_checkups(today: NaiveDate, site: u32) -> Vec<Checkup> {
    (0..5)
        .map(|years_ago: i64| {
            let y = years_ago as f32;
            Checkup {
                date: today - TimeDelta::days(years_ago * 365 + 60),
                site,
                height_cm: 168.2,
                weight_kg: 71.5 - y * 0.6,
                waist_cm: 89.0 - y * 0.5,
                systolic_mmhg: 142 - years_ago as u16 * 3,
                diastolic_mmhg: 88 - years_ago as u16,
                hba1c_percent: 7.1 - y * 0.2,
                triglycerides_mg_dl: 168,
                hdl_mg_dl: 48,
                ldl_mg_dl: 131,
                ast_u_l: 24,
                alt_u_l: 27,
                ggt_u_l: 41,
            }
        })
        .collect()
}

/// Index of a municipality in the places table, by name.
fn municipality(pref: u8, name: &str) -> usize {
    PREFECTURES[usize::from(pref) - 1]
        .municipalities
        .iter()
        .position(|m| m.name == name)
        .unwrap_or(0)
}

/// Random but seed-independent medical records for a fixture.
fn medical_records(
    rng: &mut ChaCha8Rng,
    p: &mut Person,
    today: NaiveDate,
    facilities: &Facilities,
    muni: usize,
    extra: Conditions,
) {
    let pref_idx = usize::from(p.prefecture) - 1;
    let female = p.sex == Sex::Female;
    let conditions = extra;
    p.drugs = medical::drug_history(
        rng,
        conditions,
        p.birth_date,
        today,
        [
            facilities.pharmacy(pref_idx, muni, 0),
            facilities.pharmacy(pref_idx, muni, 1),
        ],
    );
    p.checkups = medical::checkups(
        rng,
        conditions,
        p.birth_date,
        female,
        today,
        [facilities.site(pref_idx, 0), facilities.site(pref_idx, 1)],
    );
}

/// All fixture persons, demo patient first.
pub(crate) fn persons(today: NaiveDate, facilities: &Facilities) -> Vec<Person> {
    let mut rng = ChaCha8Rng::seed_from_u64(FIXTURE_SEED);
    let none = Conditions::default();
    let mut out = Vec::with_capacity(ALL.len() + CROWD_SIZE);

    let ishinomaki = municipality(4, "石巻市");
    let mut demo = person(&DEMO_PATIENT, today, ymd(1981, 4, 1), 1);
    demo.drugs = demo_drugs(today, facilities.pharmacy(3, ishinomaki, 0));
    demo.checkups = demo_checkups(today, facilities.site(3, 0));
    out.push(demo);

    let mut spouse = person(&DEMO_SPOUSE, today, ymd(1986, 6, 1), 1);
    let lipids = none.with(Condition::Dyslipidemia);
    medical_records(&mut rng, &mut spouse, today, facilities, ishinomaki, lipids);
    out.push(spouse);

    for (f, muni, start) in [
        (
            &SAME_NAME_FUKUSHIMA,
            municipality(7, "郡山市"),
            ymd(2012, 4, 1),
        ),
        (
            &SAME_NAME_TOKYO,
            municipality(13, "練馬区"),
            ymd(2014, 10, 1),
        ),
    ] {
        let mut p = person(f, today, start, 1);
        medical_records(&mut rng, &mut p, today, facilities, muni, none);
        out.push(p);
    }

    let mut lost = person(&LOST_QUALIFICATION, today, ymd(1995, 4, 1), 2);
    lost.qualification_end = Some(today - TimeDelta::days(LOST_QUALIFICATION_DAYS_AGO));
    let hypertension = none.with(Condition::Hypertension);
    let miyagino = municipality(4, "仙台市宮城野区");
    medical_records(
        &mut rng,
        &mut lost,
        today,
        facilities,
        miyagino,
        hypertension,
    );
    out.push(lost);

    let changed = today - TimeDelta::days(CHANGED_INSURER_DAYS_AGO);
    let aoba = municipality(4, "仙台市青葉区");
    let mut old = person(&CHANGED_INSURER_OLD, today, ymd(2008, 4, 1), 3);
    old.qualification_end = Some(changed);
    let mut new = person(&CHANGED_INSURER_NEW, today, changed, 1);
    new.card_valid_until = super::population::next_month_end(today, 9);
    let asthma = none.with(Condition::Asthma);
    medical_records(&mut rng, &mut new, today, facilities, aoba, asthma);
    old.drugs = new.drugs.clone();
    old.checkups = new.checkups.clone();
    out.push(old);
    out.push(new);

    let mut joined = person(&VALID_UNREGISTERED, today, today - TimeDelta::days(3), 6);
    let shinjuku = municipality(13, "新宿区");
    medical_records(&mut rng, &mut joined, today, facilities, shinjuku, none);
    out.push(joined);

    let mut variant = person(&VARIANT_KANJI, today, ymd(2001, 4, 1), 1);
    variant.card_valid_until = super::population::next_month_end(today, 9);
    let wajima = municipality(17, "輪島市");
    let thyroid = none.with(Condition::Hypothyroidism);
    medical_records(&mut rng, &mut variant, today, facilities, wajima, thyroid);
    out.push(variant);

    out.extend(crowd(&mut rng, today, facilities));
    out
}

/// The crowd of 鈴木 一郎, see [`CROWD_SIZE`].
fn crowd(rng: &mut ChaCha8Rng, today: NaiveDate, facilities: &Facilities) -> Vec<Person> {
    let tokyo = &PREFECTURES[12];
    let wards = tokyo.municipalities;
    let towns = ["本町", "栄町", "緑町", "幸町", "元町", "錦町"];
    let mut out = Vec::with_capacity(CROWD_SIZE);
    for i in 0..CROWD_SIZE {
        let ward_idx = i % wards.len();
        let ward = &wards[ward_idx];
        let (insurer_number, insurer_name, symbol, number, kind) = match i % 3 {
            0 => (
                super::insurers::kyokai_number(13),
                super::insurers::kyokai_name(tokyo),
                format!("3100{i:04}"),
                (100 + i).to_string(),
                InsurerKind::KyokaiKenpo,
            ),
            1 => (
                national_health_number(13, ward_idx),
                national_health_name(ward.name),
                "01".to_string(),
                format!("{:07}", 200 + i),
                InsurerKind::NationalHealth,
            ),
            _ => (
                CROWD_SOCIETY.0.to_string(),
                CROWD_SOCIETY.1.to_string(),
                "5".to_string(),
                (300 + i).to_string(),
                InsurerKind::Society,
            ),
        };
        let town = towns[i % towns.len()];
        let chome = ["一", "二", "三", "四"][i % 4];
        let fixture = Fixture {
            insurer_number: "",
            insurer_name: "",
            symbol: "",
            number: "",
            branch: "00",
            name: CROWD_NAME,
            name_kana: CROWD_NAME_KANA,
            birth_date: CROWD_BIRTH_DATE,
            sex: CROWD_SEX,
            prefecture: 13,
            address: "",
            postcode: "",
        };
        let mut p = person(&fixture, today, ymd(2003 + (i % 15) as i32, 4, 1), 1);
        p.insurer_number = insurer_number;
        p.insurer_name = insurer_name;
        p.symbol = symbol;
        p.number = number;
        p.address = format!(
            "東京都{}{town}{chome}丁目{}番{}号",
            ward.name,
            1 + i % 17,
            1 + i % 9
        );
        p.postcode = format!("{}-{:04}", ward.postcode_prefix, 31 * i + 11);
        if kind == InsurerKind::NationalHealth {
            p.card_valid_until = super::population::next_month_end(today, 9);
        }
        medical_records(
            rng,
            &mut p,
            today,
            facilities,
            ward_idx,
            Conditions::default(),
        );
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::check_digit::oqs_check_digit;
    use crate::simulator::insurers;

    #[test]
    fn fixture_insurer_numbers_are_valid_and_consistent() {
        for f in ALL {
            let (body, check) = f.insurer_number.split_at(f.insurer_number.len() - 1);
            assert_eq!(
                oqs_check_digit(body).map(|c| c.to_string()).as_deref(),
                Some(check),
                "{}",
                f.name
            );
        }
        assert_eq!(DEMO_PATIENT.insurer_number, insurers::kyokai_number(4));
        assert_eq!(
            SAME_NAME_FUKUSHIMA.insurer_number,
            insurers::kyokai_number(7)
        );
        assert_eq!(
            VALID_UNREGISTERED.insurer_number,
            insurers::kyokai_number(13)
        );
        assert_eq!(
            CHANGED_INSURER_NEW.insurer_number,
            national_health_number(4, municipality(4, "仙台市青葉区"))
        );
        assert_eq!(
            VARIANT_KANJI.insurer_number,
            national_health_number(17, municipality(17, "輪島市"))
        );
        assert_eq!(VARIANT_KANJI.insurer_name, national_health_name("輪島市"));
    }

    #[test]
    fn fixtures_do_not_depend_on_anything_but_the_day() {
        let today = ymd(2025, 6, 1);
        let f = Facilities::new();
        let a = persons(today, &f);
        assert_eq!(a, persons(today, &f));
        assert_eq!(a.len(), ALL.len() + CROWD_SIZE);
        assert!(a[0].drugs.len() >= 20 && a[0].checkups.len() == 5);
        assert_eq!(
            a[0].drugs
                .iter()
                .filter(|d| d.drug.name.contains("ワルファリン"))
                .count(),
            9
        );
        let keys: std::collections::HashSet<_> = a.iter().map(Person::key).collect();
        assert_eq!(keys.len(), a.len());
    }
}

//! Medical records of a synthetic person: drug dispensings and yearly specific
//! health check-ups, both driven by the same conditions so that a patient on
//! antihypertensives also shows higher blood pressure.
//!
//! Records are small `Copy` values (a drug is a reference into the static table,
//! a facility a numeric id) so that generating 100,000 persons stays cheap.

use chrono::{NaiveDate, TimeDelta};
use rand::Rng;

use super::drugs::{self, Condition, DRUGS, Drug};
use super::person::age_on;

/// Records reach a bit further back than the default look-backs (3 and 5 years),
/// so that the default period visibly cuts something off.
const DRUG_HISTORY_DAYS: i64 = 1200;
const CHECKUP_YEARS: i64 = 6;
/// At most this many dispensings per person, newest kept.
pub const MAX_DISPENSINGS: usize = 30;

/// One dispensed drug (薬剤情報 row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dispensing {
    pub date: NaiveDate,
    pub drug: &'static Drug,
    /// Days supplied.
    pub days: u16,
    /// Pharmacy id, see [`super::Population::pharmacy_name`].
    pub pharmacy: u32,
}

/// One specific health check-up (特定健診) with its measured values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checkup {
    pub date: NaiveDate,
    /// Check-up site id, see [`super::Population::checkup_site_name`].
    pub site: u32,
    pub height_cm: f32,
    pub weight_kg: f32,
    pub waist_cm: f32,
    pub systolic_mmhg: u16,
    pub diastolic_mmhg: u16,
    pub hba1c_percent: f32,
    pub triglycerides_mg_dl: u16,
    pub hdl_mg_dl: u16,
    pub ldl_mg_dl: u16,
    pub ast_u_l: u16,
    pub alt_u_l: u16,
    pub ggt_u_l: u16,
}

/// A check-up item as reported: JLAC10 code, name, value and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckupValue {
    pub code: &'static str,
    pub name: &'static str,
    pub value: String,
    pub unit: &'static str,
}

impl Checkup {
    pub fn bmi(&self) -> f32 {
        let m = self.height_cm / 100.0;
        self.weight_kg / (m * m)
    }

    /// The items in the order of the check-up result form.
    pub fn values(&self) -> [CheckupValue; 13] {
        ITEMS.map(|item| CheckupValue {
            code: item.code,
            name: item.name,
            value: (item.value)(self),
            unit: item.unit,
        })
    }
}

/// A check-up item of the result form: JLAC10 code, name, unit, and how its value
/// is read and written.
struct Item {
    code: &'static str,
    name: &'static str,
    unit: &'static str,
    value: fn(&Checkup) -> String,
}

const fn item(
    code: &'static str,
    name: &'static str,
    unit: &'static str,
    value: fn(&Checkup) -> String,
) -> Item {
    Item {
        code,
        name,
        unit,
        value,
    }
}

#[rustfmt::skip]
const ITEMS: [Item; 13] = [
    item("9N001000000000001", "身長", "cm", |c| format!("{:.1}", c.height_cm)),
    item("9N006000000000001", "体重", "kg", |c| format!("{:.1}", c.weight_kg)),
    item("9N011000000000001", "BMI", "kg/m2", |c| format!("{:.1}", c.bmi())),
    item("9N016160100000001", "腹囲(実測)", "cm", |c| format!("{:.1}", c.waist_cm)),
    item("9A755000000000001", "収縮期血圧", "mmHg", |c| c.systolic_mmhg.to_string()),
    item("9A765000000000001", "拡張期血圧", "mmHg", |c| c.diastolic_mmhg.to_string()),
    item("3D046000001906202", "HbA1c(NGSP値)", "%", |c| format!("{:.1}", c.hba1c_percent)),
    item("3F015000002327101", "中性脂肪(トリグリセリド)", "mg/dL", |c| c.triglycerides_mg_dl.to_string()),
    item("3F070000002327101", "HDLコレステロール", "mg/dL", |c| c.hdl_mg_dl.to_string()),
    item("3F077000002327101", "LDLコレステロール", "mg/dL", |c| c.ldl_mg_dl.to_string()),
    item("3B035000002327201", "AST(GOT)", "U/L", |c| c.ast_u_l.to_string()),
    item("3B045000002327201", "ALT(GPT)", "U/L", |c| c.alt_u_l.to_string()),
    item("3B090000002327101", "γ-GT(γ-GTP)", "U/L", |c| c.ggt_u_l.to_string()),
];

/// A set of chronic conditions, as a bit mask (no allocation per person).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions(u32);

const CHRONIC: [Condition; 14] = [
    Condition::Hypertension,
    Condition::Diabetes,
    Condition::Dyslipidemia,
    Condition::AtrialFibrillation,
    Condition::IschemicHeart,
    Condition::HeartFailure,
    Condition::Gerd,
    Condition::Insomnia,
    Condition::Hypothyroidism,
    Condition::Gout,
    Condition::ProstaticHyperplasia,
    Condition::Dementia,
    Condition::Asthma,
    Condition::Constipation,
];

impl Conditions {
    fn bit(c: Condition) -> u32 {
        CHRONIC.iter().position(|x| *x == c).map_or(0, |i| 1 << i)
    }
    pub fn with(mut self, c: Condition) -> Self {
        self.0 |= Self::bit(c);
        self
    }
    pub fn has(self, c: Condition) -> bool {
        self.0 & Self::bit(c) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Condition> {
        CHRONIC.into_iter().filter(move |c| self.has(*c))
    }

    /// Draws conditions with prevalences that rise with age, roughly as in Japan.
    pub fn draw(rng: &mut impl Rng, age: u32, female: bool) -> Self {
        let a = age as f32;
        let over = |from: f32, per_year: f32, cap: f32| ((a - from) * per_year).clamp(0.0, cap);
        let male = !female;
        let table = [
            (Condition::Hypertension, 0.01 + over(30.0, 0.014, 0.7)),
            (
                Condition::Diabetes,
                over(35.0, 0.004, 0.2) * if male { 1.4 } else { 1.0 },
            ),
            (Condition::Dyslipidemia, over(35.0, 0.008, 0.35)),
            (Condition::AtrialFibrillation, over(60.0, 0.003, 0.1)),
            (Condition::IschemicHeart, over(50.0, 0.002, 0.08)),
            (Condition::HeartFailure, over(70.0, 0.005, 0.12)),
            (Condition::Gerd, if age >= 30 { 0.05 } else { 0.0 }),
            (
                Condition::Insomnia,
                0.02 + if age >= 65 { 0.05 } else { 0.0 },
            ),
            (
                Condition::Hypothyroidism,
                if female { 0.015 } else { 0.002 },
            ),
            (Condition::Gout, if male && age >= 30 { 0.03 } else { 0.0 }),
            (
                Condition::ProstaticHyperplasia,
                if male { over(55.0, 0.01, 0.3) } else { 0.0 },
            ),
            (Condition::Dementia, over(75.0, 0.01, 0.25)),
            (Condition::Asthma, 0.03),
            (Condition::Constipation, if age >= 70 { 0.12 } else { 0.01 }),
        ];
        let mut set = Conditions::default();
        for (condition, p) in table {
            if rng.r#gen::<f32>() < p {
                set = set.with(condition);
            }
        }
        set
    }
}

fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn nth_drug(rng: &mut impl Rng, condition: Condition) -> Option<&'static Drug> {
    let count = drugs::for_condition(condition).count();
    if count == 0 {
        return None;
    }
    drugs::for_condition(condition).nth(rng.gen_range(0..count))
}

/// Dispensings over the last ~3.3 years, newest first, at most [`MAX_DISPENSINGS`]:
/// a regimen for the chronic conditions refilled every 4, 8 or 12 weeks, plus a
/// few one-off episodes. `pharmacies` are the person's usual pharmacy and another.
pub fn drug_history(
    rng: &mut impl Rng,
    conditions: Conditions,
    birth: NaiveDate,
    today: NaiveDate,
    pharmacies: [u32; 2],
) -> Vec<Dispensing> {
    let mut regimen: [Option<&'static Drug>; 8] = [None; 8];
    let mut n = 0;
    for condition in conditions.iter() {
        let extra = condition == Condition::Hypertension && rng.gen_bool(0.25);
        for _ in 0..if extra { 2 } else { 1 } {
            if let Some(drug) = nth_drug(rng, condition)
                && n < regimen.len()
                && !regimen[..n].contains(&Some(drug))
            {
                regimen[n] = Some(drug);
                n += 1;
            }
        }
    }
    let episodes = rng.gen_range(0..=3u32);
    if n == 0 && episodes == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(MAX_DISPENSINGS + 3);
    if n > 0 {
        let interval: i64 = *pick(rng, &[28, 28, 56, 84]);
        let started = rng.gen_range(60..=DRUG_HISTORY_DAYS + 400);
        let mut back = rng.gen_range(0..interval);
        while back <= started.min(DRUG_HISTORY_DAYS) && out.len() < MAX_DISPENSINGS {
            let date = today - TimeDelta::days(back);
            for drug in regimen[..n].iter().flatten() {
                out.push(Dispensing {
                    date,
                    drug,
                    days: interval as u16,
                    pharmacy: pharmacies[0],
                });
            }
            back += interval + rng.gen_range(-3..=3);
        }
    }
    let acute = drugs::acute();
    for _ in 0..episodes {
        let date = today - TimeDelta::days(rng.gen_range(0..DRUG_HISTORY_DAYS));
        let pharmacy = pharmacies[usize::from(rng.gen_bool(0.3))];
        let days = rng.gen_range(3..=7);
        let first = rng.gen_range(0..acute.len());
        for k in 0..rng.gen_range(1..=3) {
            out.push(Dispensing {
                date,
                drug: &acute[(first + k * 3) % acute.len()],
                days,
                pharmacy,
            });
        }
    }
    // Infants have no history from before they were born.
    out.retain(|d| d.date >= birth);
    // Stable: drugs of one visit keep their order.
    out.sort_by_key(|d| std::cmp::Reverse(d.date));
    out.truncate(MAX_DISPENSINGS);
    out
}

/// A normal deviate (Box-Muller), enough for plausible lab values.
fn normal(rng: &mut impl Rng, mean: f32, sd: f32) -> f32 {
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.r#gen();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Yearly specific health check-ups, newest first, for the years in which the
/// person was 40 to 74 (the ages 特定健診 covers); about two years in three.
pub fn checkups(
    rng: &mut impl Rng,
    conditions: Conditions,
    birth: NaiveDate,
    female: bool,
    today: NaiveDate,
    sites: [u32; 2],
) -> Vec<Checkup> {
    let age_now = age_on(birth, today);
    if !(40..=74 + CHECKUP_YEARS as i32).contains(&age_now) {
        return Vec::new();
    }
    let has = |c| conditions.has(c);
    let a = (age_now - 40).max(0) as f32;
    let height = if female {
        normal(rng, 158.5 - a * 0.12, 5.3)
    } else {
        normal(rng, 171.5 - a * 0.12, 5.8)
    };
    let mut bmi = if female {
        normal(rng, 22.3, 3.4)
    } else {
        normal(rng, 23.8, 3.1)
    };
    bmi += if has(Condition::Diabetes) { 1.5 } else { 0.0 };
    bmi += if has(Condition::Hypertension) {
        1.0
    } else {
        0.0
    };
    let bmi = bmi.clamp(16.0, 42.0);
    let sbp = 118.0
        + a * 0.45
        + (bmi - 22.0) * 1.1
        + if has(Condition::Hypertension) {
            12.0
        } else {
            0.0
        }
        + normal(rng, 0.0, 9.0);
    let hba1c = 5.4
        + a * 0.01
        + (bmi - 22.0) * 0.03
        + if has(Condition::Diabetes) { 1.6 } else { 0.0 }
        + normal(rng, 0.0, 0.25);
    let ldl = normal(
        rng,
        118.0
            + if female && age_now > 50 { 12.0 } else { 0.0 }
            + if has(Condition::Dyslipidemia) {
                15.0
            } else {
                0.0
            },
        26.0,
    );
    let hdl = normal(rng, if female { 66.0 } else { 54.0 }, 12.0) - (bmi - 22.0);
    let tg_log = normal(
        rng,
        95f32.ln() + (bmi - 22.0) * 0.04 + if female { 0.0 } else { 0.15 },
        0.4,
    );
    let ggt_log = normal(rng, if female { 19f32 } else { 32f32 }.ln(), 0.45);
    let sites = [sites[0], sites[usize::from(rng.gen_bool(0.2))]];

    let mut out = Vec::new();
    for years_ago in 0..CHECKUP_YEARS {
        let date = today - TimeDelta::days(years_ago * 365 + rng.gen_range(20..340));
        let age = age_on(birth, date);
        if !(40..=74).contains(&age) || rng.r#gen::<f32>() > 0.65 {
            continue;
        }
        let y = years_ago as f32;
        let bmi_y = (bmi - y * 0.08 + normal(rng, 0.0, 0.4)).clamp(15.0, 45.0);
        let h = height / 100.0;
        let sbp_y = sbp - y * 0.5 + normal(rng, 0.0, 6.0);
        let round = |x: f32, lo: f32, hi: f32| x.round().clamp(lo, hi) as u16;
        out.push(Checkup {
            date,
            site: sites[0],
            height_cm: (height * 10.0).round() / 10.0,
            weight_kg: (bmi_y * h * h * 10.0).round() / 10.0,
            waist_cm: ((if female { 80.0 } else { 84.0 })
                + (bmi_y - if female { 22.3 } else { 23.8 }) * 2.5
                + normal(rng, 0.0, 2.0))
            .clamp(55.0, 140.0),
            systolic_mmhg: round(sbp_y, 85.0, 210.0),
            diastolic_mmhg: round(sbp_y * 0.6 + normal(rng, 2.0, 6.0), 45.0, 130.0),
            hba1c_percent: (hba1c - y * 0.04 + normal(rng, 0.0, 0.12)).clamp(4.2, 13.5),
            triglycerides_mg_dl: round(normal(rng, tg_log, 0.2).exp(), 25.0, 900.0),
            hdl_mg_dl: round(hdl + normal(rng, 0.0, 4.0), 25.0, 130.0),
            ldl_mg_dl: round(ldl + normal(rng, 0.0, 10.0), 40.0, 280.0),
            ast_u_l: round(
                normal(rng, 21.0 + (bmi_y - 22.0).max(0.0) * 0.8, 5.0),
                10.0,
                200.0,
            ),
            alt_u_l: round(
                normal(rng, 18.0 + (bmi_y - 22.0).max(0.0) * 2.0, 6.0),
                6.0,
                250.0,
            ),
            ggt_u_l: round(normal(rng, ggt_log, 0.15).exp(), 8.0, 600.0),
        });
    }
    out
}

/// Every drug in the table, for tests and fixtures that need a specific one.
pub fn drug_named(name: &str) -> Option<&'static Drug> {
    DRUGS.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    #[test]
    fn drug_history_is_newest_first_bounded_and_in_the_past() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let conditions = Conditions::default()
            .with(Condition::Hypertension)
            .with(Condition::Diabetes)
            .with(Condition::AtrialFibrillation);
        for _ in 0..50 {
            let birth = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
            let h = drug_history(&mut rng, conditions, birth, today(), [1, 2]);
            assert!(!h.is_empty() && h.len() <= MAX_DISPENSINGS);
            assert!(h.windows(2).all(|w| w[0].date >= w[1].date));
            assert!(h.iter().all(|d| d.date <= today()));
            assert!(
                h.iter()
                    .all(|d| (today() - d.date).num_days() <= DRUG_HISTORY_DAYS)
            );
        }
    }

    #[test]
    fn checkups_only_between_40_and_74() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let none = Conditions::default();
        let young = NaiveDate::from_ymd_opt(1995, 1, 1).unwrap();
        let old = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap();
        assert!(checkups(&mut rng, none, young, true, today(), [0, 1]).is_empty());
        assert!(checkups(&mut rng, none, old, true, today(), [0, 1]).is_empty());
        let birth = NaiveDate::from_ymd_opt(1960, 5, 5).unwrap();
        let mut total = 0;
        for _ in 0..20 {
            let c = checkups(&mut rng, none, birth, false, today(), [0, 1]);
            assert!(c.windows(2).all(|w| w[0].date > w[1].date));
            for checkup in &c {
                assert!((40..=74).contains(&age_on(birth, checkup.date)));
                assert!((15.0..=45.5).contains(&checkup.bmi()), "{}", checkup.bmi());
                assert_eq!(checkup.values().len(), 13);
            }
            total += c.len();
        }
        assert!(total > 20);
    }

    #[test]
    fn conditions_set_round_trips() {
        let c = Conditions::default().with(Condition::Gout);
        assert!(c.has(Condition::Gout) && !c.has(Condition::Asthma));
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![Condition::Gout]);
        assert!(drug_named("アムロジピン錠5mg").is_some());
    }
}

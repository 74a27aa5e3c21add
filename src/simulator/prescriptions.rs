//! E-prescriptions (電子処方箋, from 2023-01-26) of a synthetic person, derived when
//! asked for: each dispensing day since then was an e-prescription, dispensed; a
//! regular patient may also have one issued and not yet dispensed, one partly
//! dispensed, or one cancelled. Clinics often prescribe by brand: such an item shows
//! a brand name whose ingredient group is the generic the pharmacy dispensed.

use chrono::{NaiveDate, TimeDelta};
use rand::Rng;

use super::clinical::person_rng;
use super::drugs::{self, Drug};
use super::person::Person;

/// The first day e-prescriptions were issued.
pub const E_PRESCRIPTION_START: NaiveDate = match NaiveDate::from_ymd_opt(2023, 1, 26) {
    Some(d) => d,
    None => panic!("valid date"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Issued,
    Dispensed,
    PartlyDispensed,
    Cancelled,
}

/// One prescribed item: the product as prescribed (a brand or the generic).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub drug: &'static Drug,
    pub name: &'static str,
    pub code: &'static str,
    pub days: u16,
    pub substitution_allowed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prescription {
    pub id: String,
    pub issued: NaiveDate,
    pub state: State,
    pub dispensed: Option<NaiveDate>,
    /// Pharmacy id, see [`super::Population::pharmacy_name`].
    pub pharmacy: Option<u32>,
    pub items: Vec<Item>,
}

fn item(rng: &mut impl Rng, drug: &'static Drug, days: u16) -> Item {
    let brand = drugs::brands_of(drug).nth(rng.gen_range(0..3));
    let (name, code) = match brand {
        Some(b) if rng.gen_bool(0.5) => (b.name, b.code),
        _ => (drug.name, drug.code),
    };
    Item {
        drug,
        name,
        code,
        days,
        substitution_allowed: !rng.gen_bool(0.1),
    }
}

/// The e-prescriptions of `person` as of `today`, oldest first.
pub fn prescriptions(seed: u64, person: &Person, today: NaiveDate) -> Vec<Prescription> {
    let mut rng = person_rng(seed, person, "prescriptions");
    let key = person.key();
    let mut out: Vec<Prescription> = Vec::new();
    let mut days: Vec<NaiveDate> = person
        .drugs
        .iter()
        .map(|d| d.date)
        .filter(|d| *d >= E_PRESCRIPTION_START && *d <= today)
        .collect();
    days.sort_unstable();
    days.dedup();
    for day in &days {
        let on_day = person.drugs.iter().filter(|d| d.date == *day);
        let items = on_day.map(|d| item(&mut rng, d.drug, d.days)).collect();
        let pharmacy = person
            .drugs
            .iter()
            .find(|d| d.date == *day)
            .map(|d| d.pharmacy);
        out.push(Prescription {
            id: prescription_id(&key, out.len()),
            issued: *day,
            state: State::Dispensed,
            dispensed: Some(*day),
            pharmacy,
            items,
        });
    }
    open_ones(&mut rng, &key, person, today, &mut out);
    out.sort_by_key(|p| p.issued);
    out
}

/// For a patient with a recent dispensing: an issued one, a partly dispensed one
/// (the pharmacy ran out of one item) and a cancelled one, each now and then.
fn open_ones(
    rng: &mut impl Rng,
    key: &str,
    person: &Person,
    today: NaiveDate,
    out: &mut Vec<Prescription>,
) {
    let recent = today - TimeDelta::days(120);
    let Some(latest) = person
        .drugs
        .iter()
        .map(|d| d.date)
        .filter(|d| *d >= recent)
        .max()
    else {
        return;
    };
    let latest_drugs: Vec<&'static Drug> = person
        .drugs
        .iter()
        .filter(|d| d.date == latest)
        .map(|d| d.drug)
        .collect();
    let pharmacy = person
        .drugs
        .iter()
        .find(|d| d.date == latest)
        .map(|d| d.pharmacy);
    for (state, p, within) in [
        (State::Issued, 0.4, 0..7),
        (State::PartlyDispensed, 0.1, 3..20),
        (State::Cancelled, 0.05, 5..40),
    ] {
        if !rng.gen_bool(p) {
            continue;
        }
        let issued = (today - TimeDelta::days(rng.gen_range(within))).max(E_PRESCRIPTION_START);
        let items = latest_drugs.iter().map(|d| item(rng, d, 28)).collect();
        let dispensed = (state == State::PartlyDispensed).then_some(issued);
        out.push(Prescription {
            id: prescription_id(key, out.len()),
            issued,
            state,
            dispensed,
            pharmacy: dispensed.and(pharmacy),
            items,
        });
    }
}

/// A stable identifier, without the insured number in clear.
fn prescription_id(key: &str, n: usize) -> String {
    let h = super::clinical::stable_hash(n as u64, key);
    format!("EP{h:016X}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::Population;
    use crate::simulator::fixtures::DEMO_PATIENT;

    #[test]
    fn prescriptions_follow_dispensings_and_some_are_open() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let population = Population::generate_at(5, 2000, today);
        let (mut open, mut brand_items) = (0, 0);
        for person in population.persons() {
            let all = prescriptions(5, person, today);
            assert_eq!(all, prescriptions(5, person, today));
            for p in &all {
                assert!(p.issued >= E_PRESCRIPTION_START && p.issued <= today);
                assert!(!p.items.is_empty());
                assert_eq!(p.dispensed.is_some(), p.pharmacy.is_some());
                if matches!(p.state, State::Issued | State::PartlyDispensed) {
                    open += 1;
                }
                for i in &p.items {
                    assert_eq!(
                        drugs::ingredient_group(i.code),
                        drugs::ingredient_group(i.drug.code)
                    );
                    brand_items += usize::from(i.code != i.drug.code);
                }
            }
        }
        assert!(open > 10, "{open} open prescriptions");
        assert!(brand_items > 10, "{brand_items} brand items");
        let demo = population.find_insured(&DEMO_PATIENT.insured()).unwrap();
        assert!(!prescriptions(5, demo, today).is_empty());
    }
}

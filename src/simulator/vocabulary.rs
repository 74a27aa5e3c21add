//! The OQS vocabulary as types, beside the text the qualification already carries:
//! personal or family (本人・家族の別), the limit-certificate class (限度額適用認定証
//! 区分), specified-disease certificates (特定疾病療養受療証) and public-expense
//! recipients (公費負担医療). Derived per person from the seed, like the clinical
//! records: a patient on dialysis holds the dialysis certificate (人工透析を要する慢性
//! 腎不全, monthly self-pay limit 10,000 yen) and the 更生医療 public expense (law 15).

use chrono::NaiveDate;
use rand::Rng;

use super::clinical::{Clinical, person_rng};
use super::person::Person;
use crate::domain::check_digit::oqs_check_digit;
use crate::proto::{
    LimitCertificateClass, PersonalFamily, PublicExpense, Qualification, SpecifiedDisease,
    SpecifiedDiseaseCertificate,
};

pub const LIMIT_CERTIFICATE: &str = "限度額適用認定証";
pub const SPECIFIED_DISEASE_CERTIFICATE: &str = "特定疾病療養受療証";

/// 更生医療 (障害者総合支援法): the public expense of dialysis, law code 15.
const REHABILITATION_LAW: &str = "15";

/// Under 70 the classes ア to オ by income; from 70 現役並み I, II and 低所得 I, II
/// (一般 and 現役並み III need no certificate). Weighted towards the middle incomes.
fn limit_class(rng: &mut impl Rng, age: i32) -> LimitCertificateClass {
    use LimitCertificateClass::*;
    if age < 70 {
        [
            Under70A, Under70I, Under70U, Under70U, Under70U, Under70E, Under70E, Under70O,
        ][rng.gen_range(0..8)]
    } else {
        [
            Over70ActiveI,
            Over70ActiveIi,
            Over70LowIncomeI,
            Over70LowIncomeIi,
            Over70LowIncomeIi,
        ][rng.gen_range(0..5)]
    }
}

/// A number with its check digit (the insurer numbers' rule, which 公費負担者番号 and
/// 受給者番号 share).
fn with_check(body: &str) -> String {
    let check = oqs_check_digit(body).unwrap_or(0);
    format!("{body}{check}")
}

/// The 更生医療 recipient record of a dialysis patient of `prefecture`.
fn rehabilitation(rng: &mut impl Rng, prefecture: u8) -> PublicExpense {
    let payer = format!(
        "{REHABILITATION_LAW}{prefecture:02}{:03}",
        rng.gen_range(1..200)
    );
    PublicExpense {
        law_code: REHABILITATION_LAW.to_string(),
        payer_number: with_check(&payer),
        recipient_number: with_check(&format!("{:06}", rng.gen_range(0..1_000_000))),
        name: "自立支援医療(更生医療)".to_string(),
    }
}

/// Adds the typed fields to `q`, and the certificates' names to its text list where
/// the typed ones imply them.
pub fn type_qualification(
    seed: u64,
    person: &Person,
    clinical: &Clinical,
    today: NaiveDate,
    q: &mut Qualification,
) {
    let mut rng = person_rng(seed, person, "vocabulary");
    q.personal_family = if person.dependant {
        PersonalFamily::Family
    } else {
        PersonalFamily::Personal
    } as i32;
    if person.certificates.contains(&LIMIT_CERTIFICATE) {
        q.limit_certificate_class = limit_class(&mut rng, person.age_on(today)) as i32;
    }
    let dialysis = clinical.dialysis.is_some();
    if dialysis || person.certificates.contains(&SPECIFIED_DISEASE_CERTIFICATE) {
        q.specified_diseases.push(SpecifiedDiseaseCertificate {
            disease: SpecifiedDisease::ChronicRenalFailureDialysis as i32,
            monthly_limit_yen: 10_000,
        });
        if !q
            .certificates
            .iter()
            .any(|c| c == SPECIFIED_DISEASE_CERTIFICATE)
        {
            q.certificates
                .push(SPECIFIED_DISEASE_CERTIFICATE.to_string());
        }
    }
    if dialysis {
        q.public_expenses
            .push(rehabilitation(&mut rng, person.prefecture));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::Population;
    use crate::simulator::clinical::clinical;
    use crate::simulator::fixtures::{DEMO_PATIENT, DEMO_SPOUSE};

    fn typed(population: &Population, person: &Person) -> Qualification {
        let today = population.today();
        let c = clinical(population.seed(), person, today);
        let mut q = person.qualification();
        type_qualification(population.seed(), person, &c, today, &mut q);
        q
    }

    #[test]
    fn the_demo_patient_on_dialysis_holds_its_certificate_and_public_expense() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let population = Population::generate_at(7, 500, today);
        let demo = population.find_insured(&DEMO_PATIENT.insured()).unwrap();
        let q = typed(&population, demo);
        assert_eq!(q.personal_family, PersonalFamily::Personal as i32);
        assert_eq!(
            q.specified_diseases,
            [SpecifiedDiseaseCertificate {
                disease: SpecifiedDisease::ChronicRenalFailureDialysis as i32,
                monthly_limit_yen: 10_000,
            }]
        );
        assert!(
            q.certificates
                .iter()
                .any(|c| c == SPECIFIED_DISEASE_CERTIFICATE)
        );
        let expense = &q.public_expenses[0];
        assert_eq!(expense.law_code, "15");
        assert_eq!(expense.payer_number.len(), 8);
        assert!(expense.payer_number.starts_with("1504"));
        let (body, check) = expense.payer_number.split_at(7);
        assert_eq!(
            oqs_check_digit(body).map(|d| d.to_string()).as_deref(),
            Some(check)
        );
        assert_eq!(expense.recipient_number.len(), 7);
        let spouse = population.find_insured(&DEMO_SPOUSE.insured()).unwrap();
        assert_eq!(
            typed(&population, spouse).personal_family,
            PersonalFamily::Family as i32
        );
    }

    #[test]
    fn a_limit_class_only_with_the_certificate_and_by_age() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let population = Population::generate_at(3, 5000, today);
        let mut seen = 0;
        for person in population.persons() {
            let q = typed(&population, person);
            let holds = person.certificates.contains(&LIMIT_CERTIFICATE);
            assert_eq!(q.limit_certificate_class != 0, holds, "{}", person.name);
            if holds {
                seen += 1;
                let class = LimitCertificateClass::try_from(q.limit_certificate_class).unwrap();
                let name = class.as_str_name();
                let expected = if person.age_on(today) < 70 {
                    "UNDER_70"
                } else {
                    "OVER_70"
                };
                assert!(
                    name.contains(expected),
                    "{name} at {}",
                    person.age_on(today)
                );
            }
        }
        assert!(seen > 10, "{seen}");
    }
}

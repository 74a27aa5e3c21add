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
    InsuredCardClassification, LimitCertificateClass, LossReason, PersonalFamily, PublicExpense,
    Qualification, SpecifiedDisease, SpecifiedDiseaseCertificate,
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

/// The first day no insurance card was newly issued (2024-12-02), and the first
/// day none issued before was valid any more (2025-12-02).
fn card_days() -> (NaiveDate, NaiveDate) {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    (day(2024, 12, 2), day(2025, 12, 2))
}

/// The document the insurer issued: a card for a qualification begun while cards
/// were issued, as long as such cards are valid; otherwise mostly the notice (the
/// My Number card's insurance use), some a qualification certificate. A few
/// national-insurance members hold a short-term card or a proof.
fn card_classification(
    rng: &mut impl Rng,
    national: bool,
    start: NaiveDate,
    today: NaiveDate,
) -> InsuredCardClassification {
    use InsuredCardClassification::*;
    let (abolished, expired) = card_days();
    let card = start < abolished && today < expired;
    match (national, card, rng.gen_range(0..100)) {
        (true, _, 0..2) => ShortTermCard,
        (true, _, 2) => QualificationProof,
        (_, true, _) => InsuranceCard,
        (_, false, 0..25) => QualificationCertificate,
        _ => QualificationNotice,
    }
}

/// Why a qualification that ended did: 75 reached, a dependant removed, or one of
/// the usual reasons of working age.
fn loss_reason(rng: &mut impl Rng, age_at_end: i32, dependant: bool) -> LossReason {
    use LossReason::*;
    if age_at_end == 75 {
        return LateElderly;
    }
    if dependant && rng.gen_range(0..3) == 0 {
        return DependantRemoved;
    }
    [
        EmploymentEnded,
        EmploymentEnded,
        OtherInsurance,
        OtherInsurance,
        OtherInsurance,
        MovedOut,
        PublicAssistance,
        Death,
    ][rng.gen_range(0..8)]
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
    // Drawn last, so the values drawn before these existed stay as they were.
    // National health insurance: 6-digit insurer numbers.
    let national = person.insurer_number.len() == 6;
    q.card_classification =
        card_classification(&mut rng, national, person.qualification_start, today) as i32;
    if let Some(end) = person.qualification_end {
        q.loss_reason = loss_reason(&mut rng, person.age_on(end), person.dependant) as i32;
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

    #[test]
    fn the_card_follows_its_abolition_and_a_loss_has_its_reason() {
        use InsuredCardClassification as Card;
        for (today, card_possible) in [
            (NaiveDate::from_ymd_opt(2024, 1, 3).unwrap(), true),
            (NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(), true),
            (NaiveDate::from_ymd_opt(2025, 12, 2).unwrap(), false),
        ] {
            let population = Population::generate_at(5, 3000, today);
            let (mut cards, mut ended) = (0, 0);
            for person in population.persons() {
                let q = typed(&population, person);
                let card = Card::try_from(q.card_classification).unwrap();
                assert_ne!(card, Card::Unspecified, "{}", person.name);
                if card == Card::InsuranceCard {
                    cards += 1;
                    assert!(card_possible, "a card on {today}");
                    assert!(person.qualification_start < card_days().0);
                }
                let national = person.insurer_number.len() == 6;
                if matches!(card, Card::ShortTermCard | Card::QualificationProof) {
                    assert!(national, "{card:?} outside national insurance");
                }
                assert_eq!(
                    q.loss_reason != 0,
                    person.qualification_end.is_some(),
                    "{}",
                    person.name
                );
                ended += usize::from(q.loss_reason != 0);
            }
            assert_eq!(cards > 0, card_possible, "cards on {today}: {cards}");
            assert!(ended > 0, "no ended qualification on {today}");
        }
    }
}

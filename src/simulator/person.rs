//! One insured person as the upstream holds them, and their API views.

use chrono::{Datelike, NaiveDate};

use super::medical::{Checkup, Dispensing};
use crate::proto::{Candidate, InsuredNumber, Qualification, Sex};

/// An insured person (one qualification record). A person who changed insurer
/// has two records: the old one with status 3, the new one valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// 保険者番号, 8 digits (6 for national health insurance), valid check digit.
    pub insurer_number: String,
    pub insurer_name: String,
    /// 記号; empty for late-elderly cards.
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番: "00" for the insured person, "01", "02", ... for family members.
    pub branch: String,
    /// 被扶養者 (dependant) rather than 本人.
    pub dependant: bool,
    /// Kanji name, family and given name separated by one ASCII space.
    pub name: String,
    /// Full-width katakana, separated like `name`.
    pub name_kana: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    /// JIS X 0401 prefecture code of the address.
    pub prefecture: u8,
    pub address: String,
    /// "NNN-NNNN".
    pub postcode: String,
    pub qualification_start: NaiveDate,
    pub qualification_end: Option<NaiveDate>,
    pub card_valid_until: Option<NaiveDate>,
    /// "010", "020" or "030".
    pub copayment_ratio: &'static str,
    pub certificates: Vec<&'static str>,
    /// OQS result code 1..=6, as proto `QualificationStatus`.
    pub status: i32,
    /// Newest first.
    pub drugs: Vec<Dispensing>,
    /// Newest first.
    pub checkups: Vec<Checkup>,
}

/// The lookup key of an insured number: the four parts, trimmed, joined by a
/// separator that cannot occur in them.
pub fn insured_key(insurer_number: &str, symbol: &str, number: &str, branch: &str) -> String {
    let parts = [insurer_number, symbol, number, branch].map(str::trim);
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        key.push_str(part);
    }
    key
}

/// Age in completed years on `day`.
pub fn age_on(birth: NaiveDate, day: NaiveDate) -> i32 {
    let mut age = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

fn date_or_empty(date: Option<NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}

impl Person {
    pub fn key(&self) -> String {
        insured_key(
            &self.insurer_number,
            &self.symbol,
            &self.number,
            &self.branch,
        )
    }

    pub fn insured_number(&self) -> InsuredNumber {
        InsuredNumber {
            insurer_number: self.insurer_number.clone(),
            symbol: self.symbol.clone(),
            number: self.number.clone(),
            branch: self.branch.clone(),
        }
    }

    pub fn age_on(&self, day: NaiveDate) -> i32 {
        age_on(self.birth_date, day)
    }

    pub fn qualification(&self) -> Qualification {
        Qualification {
            insured: Some(self.insured_number()),
            insurer_name: self.insurer_name.clone(),
            dependant: self.dependant,
            name: self.name.clone(),
            name_kana: self.name_kana.clone(),
            sex: self.sex as i32,
            birth_date: self.birth_date.to_string(),
            address: self.address.clone(),
            postcode: self.postcode.clone(),
            qualification_start: self.qualification_start.to_string(),
            qualification_end: date_or_empty(self.qualification_end),
            card_valid_until: date_or_empty(self.card_valid_until),
            copayment_ratio: self.copayment_ratio.to_string(),
            certificates: self
                .certificates
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            // The typed vocabulary is added by the service (`vocabulary`).
            ..Qualification::default()
        }
    }

    pub fn candidate(&self) -> Candidate {
        Candidate {
            insured: Some(self.insured_number()),
            name: self.name.clone(),
            name_kana: self.name_kana.clone(),
            birth_date: self.birth_date.to_string(),
            sex: self.sex as i32,
            insurer_name: self.insurer_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_trims_and_separates() {
        assert_eq!(
            insured_key(" 01040013", "1 ", "2", "00"),
            insured_key("01040013", "1", "2", "00")
        );
        assert_ne!(
            insured_key("1", "23", "4", "00"),
            insured_key("1", "2", "34", "00")
        );
    }

    #[test]
    fn age_counts_completed_years() {
        let birth = NaiveDate::from_ymd_opt(1958, 4, 12).unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        assert_eq!(age_on(birth, day(4, 11)), 66);
        assert_eq!(age_on(birth, day(4, 12)), 67);
    }
}

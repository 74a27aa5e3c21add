//! Municipality codes (JIS X 0402, 全国地方公共団体コード): since 2023 activations
//! name municipalities, not whole prefectures. 5 digits (prefecture 2 + 3); the
//! 6-digit form adds a check digit, which is verified and then dropped so both forms
//! name the same area.

use std::fmt;

use super::input::{clean, quote};
use super::prefecture::Prefecture;
use super::{Reason, Violation};

/// A validated 5-digit municipality code with a prefecture part in 01..=47.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MunicipalityCode(String);

impl MunicipalityCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn prefecture(&self) -> Prefecture {
        self.0
            .get(0..2)
            .and_then(Prefecture::parse)
            .expect("a MunicipalityCode is only built with a valid prefecture")
    }

    /// The 6-digit form with its check digit (01100 → 011002).
    pub fn with_check_digit(&self) -> String {
        let d = municipality_check_digit(&self.0).unwrap_or(0);
        format!("{}{d}", self.0)
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The JIS X 0402 check digit of a 5-digit code: weights 6, 5, 4, 3, 2; sum mod 11;
/// the check is the last digit of 11 − remainder. `None` unless exactly 5 ASCII digits.
pub fn municipality_check_digit(five: &str) -> Option<u8> {
    let bytes = five.as_bytes();
    if bytes.len() != 5 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip([6u32, 5, 4, 3, 2])
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(((11 - sum % 11) % 10) as u8)
}

/// Validates a municipality code given as 5 digits, or 6 digits whose last is the
/// check digit. `field` is the dotted path reported with a violation.
pub fn parse_municipality_code(field: &str, raw: &str) -> Result<MunicipalityCode, Violation> {
    let s = clean(raw);
    let len = s.chars().count();
    if !(len == 5 || len == 6) || !s.bytes().all(|b| b.is_ascii_digit()) {
        let found = if s.is_empty() {
            "nothing".to_owned()
        } else {
            quote(&s, 20)
        };
        return Err(Violation::new(
            Reason::MunicipalityCodeFormat,
            field,
            format!(
                "a municipality code is 5 digits (or 6 with the JIS X 0402 check digit), e.g. 17201 or 172014; found {found}"
            ),
        )
        .with("found_length", len.to_string()));
    }
    let five = s.get(0..5).unwrap_or_default();
    let pref = five.get(0..2).unwrap_or_default();
    if Prefecture::parse(pref).is_none() {
        return Err(Violation::new(
            Reason::MunicipalityCodeFormat,
            field,
            format!("{s}: the first two digits {pref} are not a prefecture code (01-47)"),
        )
        .with("prefecture_digits", pref));
    }
    // The right digit is never named: it would turn a mistyped code into another
    // municipality's valid one.
    if let Some(check) = s.get(5..6)
        && municipality_check_digit(five)
            .map(|d| d.to_string())
            .as_deref()
            != Some(check)
    {
        return Err(Violation::new(
            Reason::MunicipalityCodeCheckDigit,
            field,
            "the municipality code does not match its check digit (the sixth digit): a digit is mistyped; check the code in the municipality list",
        ));
    }
    Ok(MunicipalityCode(five.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "areas.municipality_code";

    #[test]
    fn check_digits_from_the_domain() {
        assert_eq!(municipality_check_digit("01100"), Some(2));
        assert_eq!(municipality_check_digit("17201"), Some(4));
        let sapporo = parse_municipality_code(F, "01100").unwrap();
        assert_eq!(sapporo.with_check_digit(), "011002");
        let kanazawa = parse_municipality_code(F, "17201").unwrap();
        assert_eq!(kanazawa.with_check_digit(), "172014");
        assert_eq!(kanazawa.prefecture().name_ja(), "石川県");
    }

    #[test]
    fn remainders_zero_and_one() {
        // Remainder 0 → 11 → 1; remainder 1 → 10 → 0.
        assert_eq!(municipality_check_digit("00000"), Some(1));
        // 0*6+0*5+0*4+0*3+6*2 = 12 → 12 mod 11 = 1 → 0.
        assert_eq!(municipality_check_digit("00006"), Some(0));
        assert_eq!(municipality_check_digit("0100"), None);
        assert_eq!(municipality_check_digit("0110a"), None);
    }

    #[test]
    fn six_digit_form_is_checked_and_reduced() {
        let c = parse_municipality_code(F, "172014").unwrap();
        assert_eq!(c.as_str(), "17201");
        assert_eq!(c, parse_municipality_code(F, "17201").unwrap());
        let v = parse_municipality_code(F, "172015").unwrap_err();
        assert_eq!(v.reason, Reason::MunicipalityCodeCheckDigit);
        assert_eq!(v.field, F);
        assert!(
            v.description.contains("does not match its check digit"),
            "{}",
            v.description
        );
        // 4 is the right check digit of 17201; neither it nor the 5-digit form is named.
        assert!(!v.description.contains('4'), "{}", v.description);
        assert!(!v.description.contains("17201"), "{}", v.description);
        assert!(v.metadata.is_empty(), "{:?}", v.metadata);
        for last in [0, 1, 2, 3, 5, 6, 7, 8, 9] {
            let w = parse_municipality_code(F, &format!("17201{last}")).unwrap_err();
            assert_eq!(
                (w.description, w.metadata),
                (v.description.clone(), Vec::new())
            );
        }
    }

    #[test]
    fn noto_examples() {
        for (five, six) in [
            ("17204", "172049"),
            ("17205", "172057"),
            ("17212", "172120"),
            ("17324", "173240"),
        ] {
            let c = parse_municipality_code(F, five).unwrap();
            assert_eq!(c.with_check_digit(), six);
            assert_eq!(parse_municipality_code(F, six).unwrap(), c);
        }
    }

    #[test]
    fn format_and_prefecture_errors() {
        for raw in ["", "1720", "1720144", "17-01", "abcde", "17２０1x"] {
            let v = parse_municipality_code(F, raw).unwrap_err();
            assert_eq!(v.reason, Reason::MunicipalityCodeFormat, "{raw}");
        }
        for raw in ["00100", "48201", "99999"] {
            let v = parse_municipality_code(F, raw).unwrap_err();
            assert_eq!(v.reason, Reason::MunicipalityCodeFormat, "{raw}");
            assert!(v.description.contains("01-47"), "{}", v.description);
        }
        assert!(parse_municipality_code(F, "47201").is_ok());
        assert_eq!(
            parse_municipality_code(F, "１７２０１").unwrap().as_str(),
            "17201"
        );
    }

    #[test]
    fn ordered_for_stable_listings() {
        let a = parse_municipality_code(F, "17201").unwrap();
        let b = parse_municipality_code(F, "17204").unwrap();
        assert!(a < b);
    }
}

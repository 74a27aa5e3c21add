//! Insurer numbers (保険者番号): 8 digits (law code 2, prefecture 2, insurer 3,
//! check 1) or 6 digits for national health insurance (prefecture 2, insurer 3,
//! check 1). A typo here sends the query to the wrong insurer, so the check digit is
//! verified and each failure gets its own reason.

use std::fmt;

use super::check_digit::oqs_check_digit;
use super::input::{clean, quote};
use super::prefecture::Prefecture;
use super::{Reason, Violation};

/// A validated insurer number: 6 or 8 ASCII digits, a valid prefecture part and a
/// correct check digit. Only [`parse_insurer_number`] builds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InsurerNumber(String);

impl InsurerNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefecture the insurer belongs to; numbers issued in the overflow range
    /// 51..=97 belong to prefecture code − 50.
    pub fn prefecture(&self) -> Prefecture {
        prefecture_part(&self.0)
            .and_then(prefecture_of)
            .expect("an InsurerNumber is only built with a valid prefecture part")
    }

    /// National health insurance numbers are the 6-digit ones (no law code).
    pub fn is_national_health_insurance(&self) -> bool {
        self.0.len() == 6
    }
}

impl fmt::Display for InsurerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two prefecture digits: positions 3-4 of 8 digits, 1-2 of 6.
fn prefecture_part(digits: &str) -> Option<&str> {
    match digits.len() {
        8 => digits.get(2..4),
        6 => digits.get(0..2),
        _ => None,
    }
}

/// 01..=47 directly, 51..=97 as code + 50 (issued where a prefecture's range ran out).
fn prefecture_of(part: &str) -> Option<Prefecture> {
    let n: u8 = part.parse().ok()?;
    match n {
        1..=47 => Prefecture::new(n),
        51..=97 => Prefecture::new(n - 50),
        _ => None,
    }
}

/// Validates an insurer number typed or sent by a terminal. `field` is the dotted
/// request path reported with any violation.
pub fn parse_insurer_number(field: &str, raw: &str) -> Result<InsurerNumber, Violation> {
    let s = clean(raw);
    if s.is_empty() {
        return Err(Violation::new(
            Reason::InsuredNumberMissing,
            field,
            "the insurer number (保険者番号) is required",
        ));
    }
    let len = s.chars().count();
    if let Some(bad) = s.chars().find(|c| !c.is_ascii_digit()) {
        return Err(Violation::new(
            Reason::InsurerNumberFormat,
            field,
            format!(
                "the insurer number must be 8 digits (6 for national health insurance); {} contains {:?}, which is not a digit",
                quote(&s, 20),
                bad
            ),
        )
        .with("found_length", len.to_string()));
    }
    if len != 8 && len != 6 {
        return Err(Violation::new(
            Reason::InsurerNumberFormat,
            field,
            format!(
                "the insurer number must be 8 digits (6 for national health insurance); {} has {len}",
                quote(&s, 20)
            ),
        )
        .with("found_length", len.to_string()));
    }
    let part = prefecture_part(&s).unwrap_or_default();
    if prefecture_of(part).is_none() {
        return Err(Violation::new(
            Reason::InsurerNumberPrefecture,
            field,
            format!(
                "{s}: the prefecture digits {part} are not a prefecture code (01-47, or 51-97 for overflow ranges)"
            ),
        )
        .with("prefecture_digits", part));
    }
    let (body, check) = s.split_at(len - 1);
    // The right digit is never named: it would invite "correcting" a mistyped number
    // into another insurer's valid one instead of reading the card again.
    if oqs_check_digit(body).map(|d| d.to_string()).as_deref() != Some(check) {
        return Err(Violation::new(
            Reason::InsurerNumberCheckDigit,
            field,
            "the insurer number does not match its check digit (the last digit): a digit is mistyped; check the number on the card",
        ));
    }
    Ok(InsurerNumber(s))
}

/// `body` with its check digit appended, for generators and fixtures. A body that is
/// empty or not all ASCII digits is returned unchanged, which no parser accepts.
pub fn make_insurer_number(body: &str) -> String {
    match oqs_check_digit(body) {
        Some(d) => format!("{body}{d}"),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "insured.insurer_number";

    fn reason(raw: &str) -> Reason {
        match parse_insurer_number(F, raw) {
            Ok(n) => panic!("{raw} accepted as {n}"),
            Err(v) => v.reason,
        }
    }

    #[test]
    fn valid_examples_from_the_domain() {
        for raw in ["33120015", "01130012", "06130488"] {
            let n = parse_insurer_number(F, raw).expect(raw);
            assert_eq!(n.as_str(), raw);
            assert_eq!(n.to_string(), raw);
            assert!(!n.is_national_health_insurance());
        }
        let n = parse_insurer_number(F, "06130488").unwrap();
        assert_eq!(n.prefecture().code(), 13);
        assert_eq!(
            parse_insurer_number(F, "33120015")
                .unwrap()
                .prefecture()
                .code(),
            12
        );
        assert_eq!(
            parse_insurer_number(F, "01130012")
                .unwrap()
                .prefecture()
                .code(),
            13
        );
    }

    #[test]
    fn sample_number_fails_check_digit_without_naming_the_right_one() {
        let v = parse_insurer_number(F, "01234567").unwrap_err();
        assert_eq!(v.reason, Reason::InsurerNumberCheckDigit);
        assert_eq!(v.field, F);
        assert!(
            v.description.contains("does not match its check digit"),
            "{}",
            v.description
        );
        let right = oqs_check_digit("0123456").unwrap();
        assert_eq!(right, 6);
        assert!(
            !v.description.contains(char::from(b'0' + right)),
            "{}",
            v.description
        );
        assert!(v.metadata.is_empty(), "{:?}", v.metadata);
        // Every wrong last digit gets the same answer, whichever digit is right.
        for last in (0..=9).filter(|d| *d != right) {
            let w = parse_insurer_number(F, &format!("0123456{last}")).unwrap_err();
            assert_eq!(
                (w.description, w.metadata),
                (v.description.clone(), Vec::new())
            );
        }
    }

    #[test]
    fn six_digit_national_health_insurance() {
        // Chiyoda-ku, Tokyo: 13101 + check 1.
        assert_eq!(make_insurer_number("13101"), "131011");
        let n = parse_insurer_number(F, "131011").unwrap();
        assert!(n.is_national_health_insurance());
        assert_eq!(n.prefecture().code(), 13);
        assert_eq!(reason("131012"), Reason::InsurerNumberCheckDigit);
    }

    #[test]
    fn overflow_prefecture_range_is_accepted() {
        let n = parse_insurer_number(F, &make_insurer_number("0151001")).unwrap();
        assert_eq!(n.prefecture().code(), 1);
        let n = parse_insurer_number(F, &make_insurer_number("0197001")).unwrap();
        assert_eq!(n.prefecture().code(), 47);
        let n = parse_insurer_number(F, &make_insurer_number("54001")).unwrap();
        assert_eq!(n.prefecture().code(), 4);
        assert!(n.is_national_health_insurance());
    }

    #[test]
    fn prefecture_digits_out_of_range_are_refused() {
        for body in [
            "0100001", "0148001", "0150001", "0198001", "0199001", "00001", "48001",
        ] {
            let raw = make_insurer_number(body);
            let v = parse_insurer_number(F, &raw).unwrap_err();
            assert_eq!(v.reason, Reason::InsurerNumberPrefecture, "{raw}");
            assert!(v.description.contains("01-47"), "{}", v.description);
        }
        assert!(parse_insurer_number(F, &make_insurer_number("0147001")).is_ok());
        assert!(parse_insurer_number(F, &make_insurer_number("0101001")).is_ok());
    }

    #[test]
    fn full_width_and_padding_are_normalised() {
        let n = parse_insurer_number(F, "０６１３０４８８").unwrap();
        assert_eq!(n.as_str(), "06130488");
        let n = parse_insurer_number(F, " \u{3000}06130488\t").unwrap();
        assert_eq!(n.as_str(), "06130488");
    }

    #[test]
    fn empty_is_missing() {
        assert_eq!(reason(""), Reason::InsuredNumberMissing);
        assert_eq!(reason(" \u{3000} "), Reason::InsuredNumberMissing);
    }

    #[test]
    fn format_errors_say_what_was_found() {
        let v = parse_insurer_number(F, "0613048").unwrap_err();
        assert_eq!(v.reason, Reason::InsurerNumberFormat);
        assert!(v.description.contains("8 digits"), "{}", v.description);
        assert!(v.description.contains("has 7"), "{}", v.description);
        for raw in [
            "12345",
            "1234567",
            "123456789",
            "0613048a",
            "06-130488",
            "0613 0488",
            "٠٦١٣٠٤٨٨",
        ] {
            assert_eq!(reason(raw), Reason::InsurerNumberFormat, "{raw}");
        }
        let v = parse_insurer_number(F, "0613O488").unwrap_err();
        assert!(v.description.contains("'O'"), "{}", v.description);
    }

    #[test]
    fn huge_input_does_not_echo_everything() {
        let raw = "9".repeat(10_000);
        let v = parse_insurer_number(F, &raw).unwrap_err();
        assert_eq!(v.reason, Reason::InsurerNumberFormat);
        assert!(v.description.len() < 300);
    }

    #[test]
    fn make_appends_check_digit() {
        assert_eq!(make_insurer_number("3312001"), "33120015");
        assert_eq!(make_insurer_number("0113001"), "01130012");
        assert_eq!(make_insurer_number("0613048"), "06130488");
        assert_eq!(make_insurer_number(""), "");
        assert_eq!(make_insurer_number("12x"), "12x");
    }
}

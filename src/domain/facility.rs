//! Facility codes (医療機関等コード): 10 digits = prefecture 2 + fee table 1 +
//! district 2 + facility number 4 + check 1. The code is the caller's identity and
//! decides whether its prefecture is activated, so it is validated strictly.

use std::fmt;

use super::check_digit::oqs_check_digit;
use super::input::{clean, quote};
use super::prefecture::Prefecture;
use super::{Reason, Violation};

/// The fee table (点数表) digit: which kind of facility the code names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FacilityKind {
    /// 1: medical (医科).
    Medical,
    /// 3: dental (歯科).
    Dental,
    /// 4: pharmacy (調剤).
    Pharmacy,
    /// 6: home-visit nursing (訪問看護).
    VisitingNursing,
}

impl FacilityKind {
    pub const ALL: [FacilityKind; 4] = [
        FacilityKind::Medical,
        FacilityKind::Dental,
        FacilityKind::Pharmacy,
        FacilityKind::VisitingNursing,
    ];

    /// The kind for a fee-table digit; `None` for digits no facility code uses.
    pub fn from_digit(d: u8) -> Option<FacilityKind> {
        match d {
            1 => Some(FacilityKind::Medical),
            3 => Some(FacilityKind::Dental),
            4 => Some(FacilityKind::Pharmacy),
            6 => Some(FacilityKind::VisitingNursing),
            _ => None,
        }
    }

    pub fn digit(self) -> u8 {
        match self {
            FacilityKind::Medical => 1,
            FacilityKind::Dental => 3,
            FacilityKind::Pharmacy => 4,
            FacilityKind::VisitingNursing => 6,
        }
    }

    /// Stable lowercase name for logs and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            FacilityKind::Medical => "medical",
            FacilityKind::Dental => "dental",
            FacilityKind::Pharmacy => "pharmacy",
            FacilityKind::VisitingNursing => "visiting_nursing",
        }
    }
}

/// A validated 10-digit facility code. Only [`parse_facility_code`] and
/// [`make_facility_code`] build one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FacilityCode(String);

impl FacilityCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn prefecture(&self) -> Prefecture {
        self.0
            .get(0..2)
            .and_then(Prefecture::parse)
            .expect("a FacilityCode is only built with a valid prefecture")
    }

    pub fn kind(&self) -> FacilityKind {
        self.0
            .as_bytes()
            .get(2)
            .and_then(|b| FacilityKind::from_digit(b.wrapping_sub(b'0')))
            .expect("a FacilityCode is only built with a valid fee-table digit")
    }

    /// The 2-digit district (郡市区) number. It does not identify a municipality:
    /// municipality-level decisions need a facility registry.
    pub fn district(&self) -> &str {
        self.0.get(3..5).unwrap_or_default()
    }

    /// The 4-digit facility number within the district.
    pub fn number(&self) -> &str {
        self.0.get(5..9).unwrap_or_default()
    }
}

impl fmt::Display for FacilityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a facility code. `field` is the dotted request path for violations
/// (empty when the code comes from the connection rather than a request field).
///
/// The facility-number ranges (medical 1000–2999, dental 3000–3999, pharmacy
/// 4000–4999) are numbering conventions of the regional bureaus, not validity rules,
/// so they are not enforced.
pub fn parse_facility_code(field: &str, raw: &str) -> Result<FacilityCode, Violation> {
    let s = clean(raw);
    let len = s.chars().count();
    if len != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        let found = if s.is_empty() {
            "nothing".to_owned()
        } else if let Some(c) = s.chars().find(|c| !c.is_ascii_digit()) {
            format!("{} containing {c:?}", quote(&s, 20))
        } else {
            format!("{} with {len} digits", quote(&s, 20))
        };
        return Err(Violation::new(
            Reason::FacilityCodeFormat,
            field,
            format!("the facility code must be 10 digits; found {found}"),
        )
        .with("found_length", len.to_string()));
    }
    let pref = s.get(0..2).unwrap_or_default();
    if Prefecture::parse(pref).is_none() {
        return Err(Violation::new(
            Reason::FacilityCodePrefecture,
            field,
            format!("{s}: the first two digits {pref} are not a prefecture code (01-47)"),
        )
        .with("prefecture_digits", pref));
    }
    let fee = s.get(2..3).unwrap_or_default();
    if fee
        .parse::<u8>()
        .ok()
        .and_then(FacilityKind::from_digit)
        .is_none()
    {
        return Err(Violation::new(
            Reason::FacilityCodeFeeTable,
            field,
            format!(
                "{s}: the third digit {fee} is not a fee table (1 medical, 3 dental, 4 pharmacy, 6 home-visit nursing)"
            ),
        )
        .with("fee_table_digit", fee));
    }
    let (body, check) = s.split_at(9);
    // The right digit is never named: it would turn a mistyped code into another
    // facility's valid one.
    if oqs_check_digit(body).map(|d| d.to_string()).as_deref() != Some(check) {
        return Err(Violation::new(
            Reason::FacilityCodeCheckDigit,
            field,
            "the facility code does not match its check digit (the last digit): a digit is wrong",
        ));
    }
    Ok(FacilityCode(s))
}

/// Builds a valid code, for generators and fixtures. `district` is taken modulo 100
/// and `number` modulo 10,000 so every input gives a well-formed code.
pub fn make_facility_code(
    prefecture: Prefecture,
    kind: FacilityKind,
    district: u8,
    number: u16,
) -> FacilityCode {
    let body = format!(
        "{:02}{}{:02}{:04}",
        prefecture.code(),
        kind.digit(),
        district % 100,
        number % 10_000
    );
    let check = oqs_check_digit(&body).unwrap_or(0);
    FacilityCode(format!("{body}{check}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "facility_code";

    fn reason(raw: &str) -> Reason {
        match parse_facility_code(F, raw) {
            Ok(c) => panic!("{raw} accepted as {c}"),
            Err(v) => v.reason,
        }
    }

    #[test]
    fn valid_examples_from_the_domain() {
        let c = parse_facility_code(F, "0110113719").unwrap();
        assert_eq!(c.as_str(), "0110113719");
        assert_eq!(c.prefecture().code(), 1);
        assert_eq!(c.kind(), FacilityKind::Medical);
        assert_eq!(c.district(), "01");
        assert_eq!(c.number(), "1371");

        let c = parse_facility_code(F, "3410712362").unwrap();
        assert_eq!(c.prefecture().name_en(), "Hiroshima");
        assert_eq!(c.kind(), FacilityKind::Medical);
        assert_eq!(c.district(), "07");
        assert_eq!(c.to_string(), "3410712362");
    }

    #[test]
    fn full_width_and_spaces_are_normalised() {
        let c = parse_facility_code(F, " ０１１０１１３７１９　").unwrap();
        assert_eq!(c.as_str(), "0110113719");
    }

    #[test]
    fn wrong_check_digit_is_refused_without_naming_the_right_one() {
        let v = parse_facility_code(F, "0110113718").unwrap_err();
        assert_eq!(v.reason, Reason::FacilityCodeCheckDigit);
        assert_eq!(v.field, F);
        assert!(
            v.description.contains("does not match its check digit"),
            "{}",
            v.description
        );
        // 9 is the right check digit of 011011371.
        assert!(!v.description.contains('9'), "{}", v.description);
        assert!(v.metadata.is_empty(), "{:?}", v.metadata);
        for last in 0..=8 {
            let w = parse_facility_code(F, &format!("011011371{last}")).unwrap_err();
            assert_eq!(
                (w.description, w.metadata),
                (v.description.clone(), Vec::new())
            );
        }
    }

    #[test]
    fn format_errors() {
        let v = parse_facility_code(F, "011011371").unwrap_err();
        assert_eq!(v.reason, Reason::FacilityCodeFormat);
        assert!(v.description.contains("9 digits"), "{}", v.description);
        let v = parse_facility_code(F, "01101137AB").unwrap_err();
        assert_eq!(v.reason, Reason::FacilityCodeFormat);
        assert!(v.description.contains("'A'"), "{}", v.description);
        let v = parse_facility_code("", "").unwrap_err();
        assert!(v.description.contains("nothing"), "{}", v.description);
        assert_eq!(v.field, "");
        for raw in [
            "01101137190",
            "0110-113719",
            "abcdefghij",
            "0110113719\u{0}",
        ] {
            assert_eq!(reason(raw), Reason::FacilityCodeFormat, "{raw}");
        }
    }

    #[test]
    fn prefecture_out_of_range() {
        for body in ["001011371", "481011371", "991011371"] {
            let raw = format!("{body}{}", oqs_check_digit(body).unwrap());
            assert_eq!(reason(&raw), Reason::FacilityCodePrefecture, "{raw}");
        }
        let okinawa = format!("471011371{}", oqs_check_digit("471011371").unwrap());
        assert_eq!(
            parse_facility_code(F, &okinawa)
                .unwrap()
                .prefecture()
                .code(),
            47
        );
    }

    #[test]
    fn fee_table_digit() {
        for d in [0u8, 2, 5, 7, 8, 9] {
            let body = format!("01{d}011371");
            let raw = format!("{body}{}", oqs_check_digit(&body).unwrap());
            let v = parse_facility_code(F, &raw).unwrap_err();
            assert_eq!(v.reason, Reason::FacilityCodeFeeTable, "{raw}");
        }
        for kind in FacilityKind::ALL {
            let body = format!("01{}011371", kind.digit());
            let raw = format!("{body}{}", oqs_check_digit(&body).unwrap());
            assert_eq!(parse_facility_code(F, &raw).unwrap().kind(), kind);
        }
    }

    #[test]
    fn kinds_round_trip() {
        for kind in FacilityKind::ALL {
            assert_eq!(FacilityKind::from_digit(kind.digit()), Some(kind));
        }
        assert_eq!(FacilityKind::Pharmacy.as_str(), "pharmacy");
        assert_eq!(FacilityKind::VisitingNursing.as_str(), "visiting_nursing");
        assert_eq!(FacilityKind::from_digit(2), None);
    }

    #[test]
    fn make_round_trips_through_parse() {
        let miyagi = Prefecture::new(4).unwrap();
        let c = make_facility_code(miyagi, FacilityKind::Pharmacy, 12, 4001);
        assert_eq!(&c.as_str()[..9], "044124001");
        let parsed = parse_facility_code(F, c.as_str()).unwrap();
        assert_eq!(parsed, c);
        assert_eq!(parsed.prefecture(), miyagi);
        assert_eq!(parsed.kind(), FacilityKind::Pharmacy);
        assert_eq!(parsed.district(), "12");
        assert_eq!(parsed.number(), "4001");
        let hokkaido = Prefecture::new(1).unwrap();
        assert_eq!(
            make_facility_code(hokkaido, FacilityKind::Medical, 1, 1371).as_str(),
            "0110113719"
        );
        // Out-of-range parts wrap instead of producing an 11-digit code.
        let c = make_facility_code(miyagi, FacilityKind::Dental, 255, 65_535);
        assert!(parse_facility_code(F, c.as_str()).is_ok());
    }
}

//! Why consent could not be obtained, as a category: the structured reason reviews,
//! statistics and the patient's notice rely on, with free text beside it. Free text
//! is required for "other", and, while older clients send nothing else, accepted
//! alone (recorded as `unstated`).

use super::names::validate_text;
use super::{Reason, Violation};

pub const FIELD_EXEMPTION_CATEGORY: &str = "access.consent.exemption_category";

/// The reason's category (wire enum `ExemptionCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExemptionCategory {
    ImpairedConsciousness,
    UnableToCommunicate,
    CognitiveImpairment,
    MinorWithoutGuardian,
    LifeThreateningUrgency,
    Other,
    /// An older client gave only free text: accepted, and visible as such in reviews.
    Unstated,
}

/// The wire numbers 1-6, in order; 0 is "not given".
const WIRE: [ExemptionCategory; 6] = [
    ExemptionCategory::ImpairedConsciousness,
    ExemptionCategory::UnableToCommunicate,
    ExemptionCategory::CognitiveImpairment,
    ExemptionCategory::MinorWithoutGuardian,
    ExemptionCategory::LifeThreateningUrgency,
    ExemptionCategory::Other,
];

impl ExemptionCategory {
    /// From the wire enum number 1-6; `None` for 0 (not given) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<ExemptionCategory> {
        let index = usize::try_from(n).ok()?.checked_sub(1)?;
        WIRE.get(index).copied()
    }

    /// Stable name for audit records, notices and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ExemptionCategory::ImpairedConsciousness => "impaired_consciousness",
            ExemptionCategory::UnableToCommunicate => "unable_to_communicate",
            ExemptionCategory::CognitiveImpairment => "cognitive_impairment",
            ExemptionCategory::MinorWithoutGuardian => "minor_without_guardian",
            ExemptionCategory::LifeThreateningUrgency => "life_threatening_urgency",
            ExemptionCategory::Other => "other",
            ExemptionCategory::Unstated => "unstated",
        }
    }

    /// From a stored name.
    pub fn parse(s: &str) -> Option<ExemptionCategory> {
        WIRE.into_iter()
            .chain([ExemptionCategory::Unstated])
            .find(|c| c.as_str() == s)
    }

    /// The wire number; `Unstated` is 0, as it was sent.
    pub fn wire(self) -> i32 {
        WIRE.iter()
            .position(|c| *c == self)
            .map_or(0, |i| i32::try_from(i + 1).unwrap_or(0))
    }
}

/// The exemption's stated grounds: the category and the free text, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemptionGrounds {
    pub category: ExemptionCategory,
    /// NFKC-normalised and trimmed; `None` when none was given.
    pub text: Option<String>,
}

/// Judges the category (wire number) and the free text given with the exemption:
/// - a known category with or without text;
/// - `Other` only with text (`EXEMPTION_OTHER_REASON_MISSING`);
/// - no category (0) with text: an older client, recorded as `Unstated`; with
///   neither, `EXEMPTION_REASON_MISSING`;
/// - an unknown number: `EXEMPTION_CATEGORY_UNKNOWN`.
///
/// The text, when given, must be valid (`invalid`, at most `max_chars`) whatever
/// the category.
pub fn exemption_grounds(
    category: i32,
    raw_text: &str,
    text_field: &str,
    max_chars: usize,
) -> Result<ExemptionGrounds, Violation> {
    let text = validate_text(
        text_field,
        raw_text,
        max_chars,
        Reason::ExemptionReasonInvalid,
    )?;
    let text = (!text.is_empty()).then_some(text);
    let category = match (category, &text) {
        (0, Some(_)) => ExemptionCategory::Unstated,
        (0, None) => {
            // Named by the text field: the one an older client knows.
            return Err(Violation::new(
                Reason::ExemptionReasonMissing,
                text_field,
                "viewing without consent requires why consent could not be obtained: \
                 an exemption_category (1-6), with exemption_reason text for 6 (other)",
            ));
        }
        (n, _) => ExemptionCategory::from_wire(n).ok_or_else(|| {
            Violation::new(
                Reason::ExemptionCategoryUnknown,
                FIELD_EXEMPTION_CATEGORY,
                format!(
                    "exemption category {n} is not known; use 1 (impaired consciousness), \
                     2 (unable to communicate), 3 (cognitive impairment), 4 (minor without a \
                     guardian), 5 (life-threatening urgency) or 6 (other, with text)"
                ),
            )
            .with("category", n.to_string())
        })?,
    };
    if category == ExemptionCategory::Other && text.is_none() {
        return Err(Violation::new(
            Reason::ExemptionOtherReasonMissing,
            text_field,
            "the exemption category \"other\" needs exemption_reason text saying why consent could not be obtained",
        ));
    }
    Ok(ExemptionGrounds { category, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "access.consent.exemption_reason";

    fn grounds(n: i32, text: &str) -> Result<ExemptionGrounds, Violation> {
        exemption_grounds(n, text, TEXT, 500)
    }

    fn refused(n: i32, text: &str) -> (Reason, String) {
        let v = grounds(n, text).expect_err("should be refused");
        (v.reason, v.field)
    }

    #[test]
    fn every_known_category_stands_without_text() {
        for n in 1..=5 {
            let g = grounds(n, "").expect("a category alone is enough");
            assert_eq!(g.category.wire(), n);
            assert_eq!(g.text, None);
        }
        let g = grounds(1, " 意識不明で搬送 ").expect("with text too");
        assert_eq!(g.category, ExemptionCategory::ImpairedConsciousness);
        assert_eq!(g.text.as_deref(), Some("意識不明で搬送"));
    }

    #[test]
    fn other_needs_text() {
        assert_eq!(
            refused(6, ""),
            (Reason::ExemptionOtherReasonMissing, TEXT.into())
        );
        assert_eq!(
            refused(6, " \u{3000}\n"),
            (Reason::ExemptionOtherReasonMissing, TEXT.into())
        );
        let g = grounds(6, "言語が通じず家族も不在").expect("other with text");
        assert_eq!(g.category, ExemptionCategory::Other);
    }

    #[test]
    fn unknown_numbers_are_refused() {
        for n in [7, -1, 100, i32::MAX, i32::MIN] {
            assert_eq!(
                refused(n, "text"),
                (
                    Reason::ExemptionCategoryUnknown,
                    FIELD_EXEMPTION_CATEGORY.into()
                )
            );
        }
    }

    #[test]
    fn an_old_client_with_only_text_is_recorded_as_unstated() {
        let g = grounds(0, "意識不明").expect("free text alone, as before");
        assert_eq!(g.category, ExemptionCategory::Unstated);
        assert_eq!(g.category.wire(), 0);
        assert_eq!(
            refused(0, "  "),
            (Reason::ExemptionReasonMissing, TEXT.into())
        );
    }

    #[test]
    fn text_is_judged_whatever_the_category() {
        assert!(grounds(1, &"あ".repeat(500)).is_ok());
        for n in [0, 1, 6] {
            assert_eq!(
                refused(n, &"あ".repeat(501)),
                (Reason::ExemptionReasonInvalid, TEXT.into())
            );
            assert_eq!(refused(n, "a\u{1b}b").0, Reason::ExemptionReasonInvalid);
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=6 {
            let c = ExemptionCategory::from_wire(n).expect("known");
            assert_eq!(ExemptionCategory::parse(c.as_str()), Some(c));
        }
        assert_eq!(
            ExemptionCategory::parse("unstated"),
            Some(ExemptionCategory::Unstated)
        );
        assert_eq!(ExemptionCategory::from_wire(0), None);
        assert_eq!(ExemptionCategory::parse("nope"), None);
    }
}

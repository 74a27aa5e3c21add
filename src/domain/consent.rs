//! Consent and purpose, decided before any view. The default is the patient's
//! consent (oral is enough); the exception (APPI art. 20(2)(ii), protection of life,
//! body or property when consent is hard to obtain) needs a stated reason and how
//! the patient was identified, and is flagged for the operator's review.

use super::exemption_category::{ExemptionCategory, exemption_grounds};
use super::input::WireEnum;
use super::{Gather, Reason, Violation};

/// At most this many characters in the exemption reason: a sentence or two.
pub const EXEMPTION_REASON_MAX_CHARS: usize = 500;

pub const FIELD_BASIS: &str = "access.consent.basis";
pub const FIELD_EXEMPTION_REASON: &str = "access.consent.exemption_reason";
pub const FIELD_EXEMPTION_IDENTIFICATION: &str = "access.consent.exemption_identification";
pub const FIELD_PURPOSE: &str = "access.purpose";

/// On what ground the view is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentBasis {
    /// The patient consented, orally or otherwise.
    PatientConsent,
    /// No consent: needed to protect life, body or property and consent is hard to
    /// obtain (an unconscious patient, say).
    LifeOrBodyExemption,
}

impl ConsentBasis {
    /// From the wire enum number: 1 patient consent, 2 exemption; `None` otherwise.
    pub fn from_wire(n: i32) -> Option<ConsentBasis> {
        match n {
            1 => Some(ConsentBasis::PatientConsent),
            2 => Some(ConsentBasis::LifeOrBodyExemption),
            _ => None,
        }
    }

    /// Stable name for audit records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentBasis::PatientConsent => "patient_consent",
            ConsentBasis::LifeOrBodyExemption => "life_or_body_exemption",
        }
    }

    /// The provision relied on, for audit text. The 2022 notice cites art. 17(2)(ii),
    /// the numbering before April 2022.
    pub fn legal_basis(self) -> &'static str {
        match self {
            ConsentBasis::PatientConsent => "patient consent",
            ConsentBasis::LifeOrBodyExemption => {
                "Act on the Protection of Personal Information art. 20(2)(ii)"
            }
        }
    }
}

/// How a patient who could not consent was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExemptionIdentification {
    /// From an identity document the patient carries.
    IdDocument,
    /// From information given by the patient's family.
    FamilyInformation,
}

impl ExemptionIdentification {
    /// From the wire enum number: 1 id document, 2 family information.
    pub fn from_wire(n: i32) -> Option<ExemptionIdentification> {
        match n {
            1 => Some(ExemptionIdentification::IdDocument),
            2 => Some(ExemptionIdentification::FamilyInformation),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExemptionIdentification::IdDocument => "id_document",
            ExemptionIdentification::FamilyInformation => "family_information",
        }
    }
}

/// The accepted consent, as recorded with the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDecision {
    pub basis: ConsentBasis,
    /// The stated reason, NFKC-normalised and trimmed; only with the exemption, and
    /// only when text was given.
    pub exemption_reason: Option<String>,
    /// The reason's category; only with the exemption.
    pub exemption_category: Option<ExemptionCategory>,
    /// Only with the exemption.
    pub exemption_identification: Option<ExemptionIdentification>,
    /// Views without consent are flagged for the operator's log review.
    pub needs_review: bool,
}

const BASIS: WireEnum<ConsentBasis> = WireEnum {
    field: FIELD_BASIS,
    decode: ConsentBasis::from_wire,
    missing: (
        Reason::ConsentBasisMissing,
        "state the basis for viewing: the patient's consent (oral is enough), or the life-or-body exemption",
    ),
    unknown: (Reason::ConsentBasisUnknown, |n| {
        format!(
            "consent basis {n} is not known; use 1 (patient consent) or 2 (life-or-body exemption)"
        )
    }),
};

const PURPOSE: WireEnum<()> = WireEnum {
    field: FIELD_PURPOSE,
    decode: |n| (n == 1).then_some(()),
    missing: (
        Reason::PurposeMissing,
        "state the purpose of viewing: 1 (the patient's medical care)",
    ),
    unknown: (Reason::PurposeNotPermitted, |n| {
        format!(
            "viewing is permitted only for the medical care given to this patient; any other use is forbidden (purpose {n})"
        )
    }),
};

/// Decides consent and purpose from the wire values:
/// - `basis`: 0 unspecified, 1 patient consent, 2 life-or-body exemption;
/// - `exemption_identification`: 0 unspecified, 1 id document, 2 family information;
/// - `purpose`: 0 unspecified, 1 medical care.
///
/// With patient consent the exemption fields are ignored (terminals may leave them
/// filled in) and not recorded; with a basis that is missing or unknown they are not
/// judged, since whether they are needed is not known. Every field at fault is
/// named, in the order basis, exemption reason, exemption identification, purpose;
/// the first gives the reason.
pub fn evaluate_consent(
    basis: i32,
    exemption_reason: &str,
    exemption_identification: i32,
    purpose: i32,
) -> Result<ConsentDecision, Violation> {
    evaluate_consent_with_category(
        basis,
        0,
        exemption_reason,
        exemption_identification,
        purpose,
    )
}

/// As [`evaluate_consent`], with the exemption's reason category (wire numbers of
/// `ExemptionCategory`; 0 not given), judged by
/// [`exemption_grounds`](super::exemption_category::exemption_grounds).
pub fn evaluate_consent_with_category(
    basis: i32,
    exemption_category: i32,
    exemption_reason: &str,
    exemption_identification: i32,
    purpose: i32,
) -> Result<ConsentDecision, Violation> {
    let decision = BASIS.parse(basis).and_then(|basis| {
        decide(
            basis,
            exemption_category,
            exemption_reason,
            exemption_identification,
        )
    });
    let (decision, ()) = decision.gather(PURPOSE.parse(purpose))?;
    Ok(decision)
}

/// The decision on a known basis: the exemption needs a reason and how the patient
/// was identified, and is flagged for review.
fn decide(
    basis: ConsentBasis,
    exemption_category: i32,
    exemption_reason: &str,
    exemption_identification: i32,
) -> Result<ConsentDecision, Violation> {
    if basis == ConsentBasis::PatientConsent {
        return Ok(ConsentDecision {
            basis,
            exemption_reason: None,
            exemption_category: None,
            exemption_identification: None,
            needs_review: false,
        });
    }
    let grounds = exemption_grounds(
        exemption_category,
        exemption_reason,
        FIELD_EXEMPTION_REASON,
        EXEMPTION_REASON_MAX_CHARS,
    );
    let (grounds, identification) =
        grounds.gather(exemption_identification_of(exemption_identification))?;
    Ok(ConsentDecision {
        basis,
        exemption_reason: grounds.text,
        exemption_category: Some(grounds.category),
        exemption_identification: Some(identification),
        needs_review: true,
    })
}

fn exemption_identification_of(n: i32) -> Result<ExemptionIdentification, Violation> {
    ExemptionIdentification::from_wire(n).ok_or_else(|| {
        let found = if n == 0 {
            "none was given".to_owned()
        } else {
            format!("{n} is not known")
        };
        Violation::new(
            Reason::ExemptionIdentificationMissing,
            FIELD_EXEMPTION_IDENTIFICATION,
            format!(
                "viewing without consent requires how the patient was identified: 1 (an identity document) or 2 (information from family); {found}"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(r: Result<ConsentDecision, Violation>) -> (Reason, String) {
        let v = r.expect_err("should be refused");
        (v.reason, v.field)
    }

    #[test]
    fn patient_consent_for_care() {
        let d = evaluate_consent(1, "", 0, 1).unwrap();
        assert_eq!(d.basis, ConsentBasis::PatientConsent);
        assert_eq!(d.exemption_reason, None);
        assert_eq!(d.exemption_identification, None);
        assert!(!d.needs_review);
    }

    #[test]
    fn patient_consent_ignores_stray_exemption_fields() {
        let d = evaluate_consent(1, "意識不明", 2, 1).unwrap();
        assert_eq!(d.exemption_reason, None);
        assert_eq!(d.exemption_identification, None);
        assert!(!d.needs_review);
        // Even invalid stray text does not block a consented view.
        assert!(evaluate_consent(1, "a\u{0}b", 9, 1).is_ok());
    }

    #[test]
    fn exemption_with_reason_and_identification() {
        let d = evaluate_consent(2, " 意識不明で搬送 ", 1, 1).unwrap();
        assert_eq!(d.basis, ConsentBasis::LifeOrBodyExemption);
        assert_eq!(d.exemption_reason.as_deref(), Some("意識不明で搬送"));
        assert_eq!(
            d.exemption_identification,
            Some(ExemptionIdentification::IdDocument)
        );
        assert!(d.needs_review);
        let d = evaluate_consent(2, "x", 2, 1).unwrap();
        assert_eq!(
            d.exemption_identification,
            Some(ExemptionIdentification::FamilyInformation)
        );
    }

    #[test]
    fn basis_refusals() {
        assert_eq!(
            reason_of(evaluate_consent(0, "", 0, 1)),
            (Reason::ConsentBasisMissing, FIELD_BASIS.into())
        );
        for n in [3, -1, i32::MAX, i32::MIN] {
            assert_eq!(
                reason_of(evaluate_consent(n, "", 0, 1)),
                (Reason::ConsentBasisUnknown, FIELD_BASIS.into())
            );
        }
    }

    #[test]
    fn exemption_reason_refusals() {
        for blank in ["", "  ", "\u{3000}", "\n"] {
            assert_eq!(
                reason_of(evaluate_consent(2, blank, 1, 1)),
                (
                    Reason::ExemptionReasonMissing,
                    FIELD_EXEMPTION_REASON.into()
                )
            );
        }
        assert!(evaluate_consent(2, &"あ".repeat(500), 1, 1).is_ok());
        let v = evaluate_consent(2, &"あ".repeat(501), 1, 1).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str()),
            (Reason::ExemptionReasonInvalid, FIELD_EXEMPTION_REASON)
        );
        assert!(v.description.contains("limit is 500"), "{}", v.description);
        let v = evaluate_consent(2, "意識\u{1b}[2J不明", 1, 1).unwrap_err();
        assert_eq!(v.reason, Reason::ExemptionReasonInvalid);
        assert!(v.description.contains("control"), "{}", v.description);
    }

    #[test]
    fn exemption_identification_refusals() {
        for n in [0, 3, -1] {
            assert_eq!(
                reason_of(evaluate_consent(2, "意識不明", n, 1)),
                (
                    Reason::ExemptionIdentificationMissing,
                    FIELD_EXEMPTION_IDENTIFICATION.into()
                )
            );
        }
    }

    #[test]
    fn purpose_rules() {
        assert_eq!(
            reason_of(evaluate_consent(1, "", 0, 0)),
            (Reason::PurposeMissing, FIELD_PURPOSE.into())
        );
        for n in [2, 99, -1] {
            let v = evaluate_consent(1, "", 0, n).unwrap_err();
            assert_eq!(
                (v.reason, v.field.as_str()),
                (Reason::PurposeNotPermitted, FIELD_PURPOSE)
            );
            assert!(
                v.description.contains("only for the medical care"),
                "{}",
                v.description
            );
        }
        assert_eq!(
            reason_of(evaluate_consent(2, "意識不明", 1, 0)).0,
            Reason::PurposeMissing
        );
    }

    fn named(r: Result<ConsentDecision, Violation>) -> Vec<(Reason, String)> {
        r.expect_err("should be refused")
            .all()
            .map(|v| (v.reason, v.field.clone()))
            .collect()
    }

    #[test]
    fn every_field_at_fault_is_named_in_order() {
        assert_eq!(
            named(evaluate_consent(2, "", 0, 0)),
            [
                (
                    Reason::ExemptionReasonMissing,
                    FIELD_EXEMPTION_REASON.into()
                ),
                (
                    Reason::ExemptionIdentificationMissing,
                    FIELD_EXEMPTION_IDENTIFICATION.into()
                ),
                (Reason::PurposeMissing, FIELD_PURPOSE.into()),
            ]
        );
        assert_eq!(
            named(evaluate_consent(0, "", 0, 7)),
            [
                (Reason::ConsentBasisMissing, FIELD_BASIS.into()),
                (Reason::PurposeNotPermitted, FIELD_PURPOSE.into()),
            ]
        );
        assert_eq!(
            named(evaluate_consent(2, "意識不明", 9, 1)),
            [(
                Reason::ExemptionIdentificationMissing,
                FIELD_EXEMPTION_IDENTIFICATION.into()
            )]
        );
        // An unknown basis does not say whether the exemption fields are needed.
        assert_eq!(
            named(evaluate_consent(5, "", 0, 1)),
            [(Reason::ConsentBasisUnknown, FIELD_BASIS.into())]
        );
    }

    #[test]
    fn names_are_stable() {
        assert_eq!(ConsentBasis::PatientConsent.as_str(), "patient_consent");
        assert_eq!(
            ConsentBasis::LifeOrBodyExemption.as_str(),
            "life_or_body_exemption"
        );
        assert_eq!(ExemptionIdentification::IdDocument.as_str(), "id_document");
        assert_eq!(
            ExemptionIdentification::FamilyInformation.as_str(),
            "family_information"
        );
        assert!(
            ConsentBasis::LifeOrBodyExemption
                .legal_basis()
                .contains("20(2)(ii)")
        );
        assert_eq!(ConsentBasis::from_wire(0), None);
        assert_eq!(ExemptionIdentification::from_wire(0), None);
    }
}

//! Why a request is refused: a stable reason code, the field at fault and a sentence.

use std::fmt;

/// A stable, machine-readable denial reason. The string form (UPPER_SNAKE) is part
/// of the API: terminals switch on it. Never rename one; add new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // identity
    FacilityUnidentified,
    FacilityCodeFormat,
    FacilityCodePrefecture,
    FacilityCodeFeeTable,
    FacilityCodeCheckDigit,
    AccessContextMissing,
    StaffIdMissing,
    StaffIdInvalid,
    StaffRoleMissing,
    StaffRoleUnknown,
    // activation
    AreaNotActivated,
    ActivationStoreUnavailable,
    MunicipalityCodeFormat,
    MunicipalityCodeCheckDigit,
    SearchLedgerUnavailable,
    // identification
    InsuredNumberMissing,
    InsurerNumberFormat,
    InsurerNumberPrefecture,
    InsurerNumberCheckDigit,
    SymbolInvalid,
    NumberMissing,
    NumberInvalid,
    BranchInvalid,
    NameMissing,
    NameInvalid,
    BirthDateMissing,
    BirthDateInvalid,
    SexMissing,
    InsurerOrAddressMissing,
    InsurerNameInvalid,
    AddressFragmentInvalid,
    PeriodInvalid,
    IdentificationMissing,
    SearchIdMissing,
    SearchNotFound,
    SearchExpired,
    SearchFacilityMismatch,
    PatientNotInSearch,
    // consent and purpose
    ConsentBasisMissing,
    ConsentBasisUnknown,
    ExemptionReasonMissing,
    ExemptionReasonInvalid,
    ExemptionIdentificationMissing,
    PurposeMissing,
    PurposeNotPermitted,
    // audit and upstream
    AuditUnavailable,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamError,
    PatientNotFound,
    /// The caller's deadline passed before the rules and the upstream were done.
    CallDeadlineExceeded,
    // load
    RateLimited,
    Overloaded,
    // audit queries
    QueryTimeRangeInvalid,
    QueryFilterInvalid,
    PageSizeInvalid,
    PageTokenInvalid,
    // activation administration
    ActivationEventMissing,
    ActivationAreasMissing,
    ActivationAreaDuplicate,
    ActivationAreaAlreadyIncluded,
    ActivationAreaNotIncluded,
    ActivationRevisionContradicts,
    ActivationWindowInvalid,
    ActivationNotFound,
    ActivationRevisionConflict,
    PrefectureCodeUnknown,
    MunicipalityUnknown,
    FacilityNotInRegistry,
    ChangeAuthorMissing,
    FacilityMismatch,
    OperatorRoleRequired,
    // clinical information, consent per kind, emergency viewing
    ConsentKindUnknown,
    ConsentKindNotGiven,
    AccessModeUnknown,
    EmergencyViewingFacilityNotEligible,
    EmergencyViewingSummaryOnly,
    EmergencyViewingRequiresExemption,
    ClinicalCategoryUnknown,
    // temporary sites
    SiteNotFound,
    SiteNotOpen,
    SiteOutsideActivation,
    SiteWindowInvalid,
    SiteKindUnknown,
    SiteFieldInvalid,
    SiteLicenceRequired,
    LicenceNumberInvalid,
    SiteCsrInvalid,
    SiteCertificateValidity,
    SiteNotPermitted,
    SiteCaUnavailable,
    // exemption reason taxonomy and reviews
    ExemptionCategoryUnknown,
    ExemptionOtherReasonMissing,
    ReviewOutcomeInvalid,
    ReviewNoteInvalid,
    ReviewSubjectNotFound,
    ReviewSubjectNotFlagged,
    // transparency
    ChainNotServedHere,
    TreeSizeInvalid,
    TreePruned,
    TreeUnavailable,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::FacilityUnidentified,
        Reason::FacilityCodeFormat,
        Reason::FacilityCodePrefecture,
        Reason::FacilityCodeFeeTable,
        Reason::FacilityCodeCheckDigit,
        Reason::AccessContextMissing,
        Reason::StaffIdMissing,
        Reason::StaffIdInvalid,
        Reason::StaffRoleMissing,
        Reason::StaffRoleUnknown,
        Reason::AreaNotActivated,
        Reason::ActivationStoreUnavailable,
        Reason::MunicipalityCodeFormat,
        Reason::MunicipalityCodeCheckDigit,
        Reason::SearchLedgerUnavailable,
        Reason::InsuredNumberMissing,
        Reason::InsurerNumberFormat,
        Reason::InsurerNumberPrefecture,
        Reason::InsurerNumberCheckDigit,
        Reason::SymbolInvalid,
        Reason::NumberMissing,
        Reason::NumberInvalid,
        Reason::BranchInvalid,
        Reason::NameMissing,
        Reason::NameInvalid,
        Reason::BirthDateMissing,
        Reason::BirthDateInvalid,
        Reason::SexMissing,
        Reason::InsurerOrAddressMissing,
        Reason::InsurerNameInvalid,
        Reason::AddressFragmentInvalid,
        Reason::PeriodInvalid,
        Reason::IdentificationMissing,
        Reason::SearchIdMissing,
        Reason::SearchNotFound,
        Reason::SearchExpired,
        Reason::SearchFacilityMismatch,
        Reason::PatientNotInSearch,
        Reason::ConsentBasisMissing,
        Reason::ConsentBasisUnknown,
        Reason::ExemptionReasonMissing,
        Reason::ExemptionReasonInvalid,
        Reason::ExemptionIdentificationMissing,
        Reason::PurposeMissing,
        Reason::PurposeNotPermitted,
        Reason::AuditUnavailable,
        Reason::UpstreamUnavailable,
        Reason::UpstreamTimeout,
        Reason::UpstreamError,
        Reason::PatientNotFound,
        Reason::CallDeadlineExceeded,
        Reason::RateLimited,
        Reason::Overloaded,
        Reason::QueryTimeRangeInvalid,
        Reason::QueryFilterInvalid,
        Reason::PageSizeInvalid,
        Reason::PageTokenInvalid,
        Reason::ActivationEventMissing,
        Reason::ActivationAreasMissing,
        Reason::ActivationAreaDuplicate,
        Reason::ActivationAreaAlreadyIncluded,
        Reason::ActivationAreaNotIncluded,
        Reason::ActivationRevisionContradicts,
        Reason::ActivationWindowInvalid,
        Reason::ActivationNotFound,
        Reason::ActivationRevisionConflict,
        Reason::PrefectureCodeUnknown,
        Reason::MunicipalityUnknown,
        Reason::FacilityNotInRegistry,
        Reason::ChangeAuthorMissing,
        Reason::FacilityMismatch,
        Reason::OperatorRoleRequired,
        Reason::ConsentKindUnknown,
        Reason::ConsentKindNotGiven,
        Reason::AccessModeUnknown,
        Reason::EmergencyViewingFacilityNotEligible,
        Reason::EmergencyViewingSummaryOnly,
        Reason::EmergencyViewingRequiresExemption,
        Reason::ClinicalCategoryUnknown,
        Reason::SiteNotFound,
        Reason::SiteNotOpen,
        Reason::SiteOutsideActivation,
        Reason::SiteWindowInvalid,
        Reason::SiteKindUnknown,
        Reason::SiteFieldInvalid,
        Reason::SiteLicenceRequired,
        Reason::LicenceNumberInvalid,
        Reason::SiteCsrInvalid,
        Reason::SiteCertificateValidity,
        Reason::SiteNotPermitted,
        Reason::SiteCaUnavailable,
        Reason::ExemptionCategoryUnknown,
        Reason::ExemptionOtherReasonMissing,
        Reason::ReviewOutcomeInvalid,
        Reason::ReviewNoteInvalid,
        Reason::ReviewSubjectNotFound,
        Reason::ReviewSubjectNotFlagged,
        Reason::ChainNotServedHere,
        Reason::TreeSizeInvalid,
        Reason::TreePruned,
        Reason::TreeUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FacilityUnidentified => "FACILITY_UNIDENTIFIED",
            Reason::FacilityCodeFormat => "FACILITY_CODE_FORMAT",
            Reason::FacilityCodePrefecture => "FACILITY_CODE_PREFECTURE",
            Reason::FacilityCodeFeeTable => "FACILITY_CODE_FEE_TABLE",
            Reason::FacilityCodeCheckDigit => "FACILITY_CODE_CHECK_DIGIT",
            Reason::AccessContextMissing => "ACCESS_CONTEXT_MISSING",
            Reason::StaffIdMissing => "STAFF_ID_MISSING",
            Reason::StaffIdInvalid => "STAFF_ID_INVALID",
            Reason::StaffRoleMissing => "STAFF_ROLE_MISSING",
            Reason::StaffRoleUnknown => "STAFF_ROLE_UNKNOWN",
            Reason::AreaNotActivated => "AREA_NOT_ACTIVATED",
            Reason::ActivationStoreUnavailable => "ACTIVATION_STORE_UNAVAILABLE",
            Reason::MunicipalityCodeFormat => "MUNICIPALITY_CODE_FORMAT",
            Reason::MunicipalityCodeCheckDigit => "MUNICIPALITY_CODE_CHECK_DIGIT",
            Reason::SearchLedgerUnavailable => "SEARCH_LEDGER_UNAVAILABLE",
            Reason::InsuredNumberMissing => "INSURED_NUMBER_MISSING",
            Reason::InsurerNumberFormat => "INSURER_NUMBER_FORMAT",
            Reason::InsurerNumberPrefecture => "INSURER_NUMBER_PREFECTURE",
            Reason::InsurerNumberCheckDigit => "INSURER_NUMBER_CHECK_DIGIT",
            Reason::SymbolInvalid => "SYMBOL_INVALID",
            Reason::NumberMissing => "NUMBER_MISSING",
            Reason::NumberInvalid => "NUMBER_INVALID",
            Reason::BranchInvalid => "BRANCH_INVALID",
            Reason::NameMissing => "NAME_MISSING",
            Reason::NameInvalid => "NAME_INVALID",
            Reason::BirthDateMissing => "BIRTH_DATE_MISSING",
            Reason::BirthDateInvalid => "BIRTH_DATE_INVALID",
            Reason::SexMissing => "SEX_MISSING",
            Reason::InsurerOrAddressMissing => "INSURER_OR_ADDRESS_MISSING",
            Reason::InsurerNameInvalid => "INSURER_NAME_INVALID",
            Reason::AddressFragmentInvalid => "ADDRESS_FRAGMENT_INVALID",
            Reason::PeriodInvalid => "PERIOD_INVALID",
            Reason::IdentificationMissing => "IDENTIFICATION_MISSING",
            Reason::SearchIdMissing => "SEARCH_ID_MISSING",
            Reason::SearchNotFound => "SEARCH_NOT_FOUND",
            Reason::SearchExpired => "SEARCH_EXPIRED",
            Reason::SearchFacilityMismatch => "SEARCH_FACILITY_MISMATCH",
            Reason::PatientNotInSearch => "PATIENT_NOT_IN_SEARCH",
            Reason::ConsentBasisMissing => "CONSENT_BASIS_MISSING",
            Reason::ConsentBasisUnknown => "CONSENT_BASIS_UNKNOWN",
            Reason::ExemptionReasonMissing => "EXEMPTION_REASON_MISSING",
            Reason::ExemptionReasonInvalid => "EXEMPTION_REASON_INVALID",
            Reason::ExemptionIdentificationMissing => "EXEMPTION_IDENTIFICATION_MISSING",
            Reason::PurposeMissing => "PURPOSE_MISSING",
            Reason::PurposeNotPermitted => "PURPOSE_NOT_PERMITTED",
            Reason::AuditUnavailable => "AUDIT_UNAVAILABLE",
            Reason::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Reason::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Reason::UpstreamError => "UPSTREAM_ERROR",
            Reason::PatientNotFound => "PATIENT_NOT_FOUND",
            Reason::RateLimited => "RATE_LIMITED",
            Reason::Overloaded => "OVERLOADED",
            Reason::CallDeadlineExceeded => "CALL_DEADLINE_EXCEEDED",
            Reason::QueryTimeRangeInvalid => "QUERY_TIME_RANGE_INVALID",
            Reason::QueryFilterInvalid => "QUERY_FILTER_INVALID",
            Reason::PageSizeInvalid => "PAGE_SIZE_INVALID",
            Reason::PageTokenInvalid => "PAGE_TOKEN_INVALID",
            Reason::FacilityNotInRegistry => "FACILITY_NOT_IN_REGISTRY",
            Reason::ChangeAuthorMissing => "CHANGE_AUTHOR_MISSING",
            Reason::FacilityMismatch => "FACILITY_MISMATCH",
            Reason::OperatorRoleRequired => "OPERATOR_ROLE_REQUIRED",
            other => other
                .clinical_str()
                .or_else(|| other.site_str())
                .or_else(|| other.accountability_str())
                .or_else(|| other.transparency_str())
                .or_else(|| other.activation_str())
                .unwrap_or(UNNAMED),
        }
    }

    /// The names of the reasons of the exemption's category and of reviews.
    fn accountability_str(self) -> Option<&'static str> {
        Some(match self {
            Reason::ExemptionCategoryUnknown => "EXEMPTION_CATEGORY_UNKNOWN",
            Reason::ExemptionOtherReasonMissing => "EXEMPTION_OTHER_REASON_MISSING",
            Reason::ReviewOutcomeInvalid => "REVIEW_OUTCOME_INVALID",
            Reason::ReviewNoteInvalid => "REVIEW_NOTE_INVALID",
            Reason::ReviewSubjectNotFound => "REVIEW_SUBJECT_NOT_FOUND",
            Reason::ReviewSubjectNotFlagged => "REVIEW_SUBJECT_NOT_FLAGGED",
            _ => return None,
        })
    }
}

/// What `as_str` would answer for a reason named nowhere: no reason is (a test says so).
const UNNAMED: &str = "UNNAMED_REASON";

impl Reason {
    /// The reasons of the operators' activation changes.
    fn activation_str(self) -> Option<&'static str> {
        Some(match self {
            Reason::ActivationEventMissing => "ACTIVATION_EVENT_MISSING",
            Reason::ActivationAreasMissing => "ACTIVATION_AREAS_MISSING",
            Reason::ActivationAreaDuplicate => "ACTIVATION_AREA_DUPLICATE",
            Reason::ActivationAreaAlreadyIncluded => "ACTIVATION_AREA_ALREADY_INCLUDED",
            Reason::ActivationAreaNotIncluded => "ACTIVATION_AREA_NOT_INCLUDED",
            Reason::ActivationRevisionContradicts => "ACTIVATION_REVISION_CONTRADICTS",
            Reason::ActivationWindowInvalid => "ACTIVATION_WINDOW_INVALID",
            Reason::ActivationNotFound => "ACTIVATION_NOT_FOUND",
            Reason::ActivationRevisionConflict => "ACTIVATION_REVISION_CONFLICT",
            Reason::PrefectureCodeUnknown => "PREFECTURE_CODE_UNKNOWN",
            Reason::MunicipalityUnknown => "MUNICIPALITY_UNKNOWN",
            _ => return None,
        })
    }

    /// The reasons of checkpoints and proofs.
    fn transparency_str(self) -> Option<&'static str> {
        Some(match self {
            Reason::ChainNotServedHere => "CHAIN_NOT_SERVED_HERE",
            Reason::TreeSizeInvalid => "TREE_SIZE_INVALID",
            Reason::TreePruned => "TREE_PRUNED",
            Reason::TreeUnavailable => "TREE_UNAVAILABLE",
            _ => return None,
        })
    }

    /// The temporary sites' reasons.
    fn site_str(self) -> Option<&'static str> {
        Some(match self {
            Reason::SiteNotFound => "SITE_NOT_FOUND",
            Reason::SiteNotOpen => "SITE_NOT_OPEN",
            Reason::SiteOutsideActivation => "SITE_OUTSIDE_ACTIVATION",
            Reason::SiteWindowInvalid => "SITE_WINDOW_INVALID",
            Reason::SiteKindUnknown => "SITE_KIND_UNKNOWN",
            Reason::SiteFieldInvalid => "SITE_FIELD_INVALID",
            Reason::SiteLicenceRequired => "SITE_LICENCE_REQUIRED",
            Reason::LicenceNumberInvalid => "LICENCE_NUMBER_INVALID",
            Reason::SiteCsrInvalid => "SITE_CSR_INVALID",
            Reason::SiteCertificateValidity => "SITE_CERTIFICATE_VALIDITY",
            Reason::SiteNotPermitted => "SITE_NOT_PERMITTED",
            Reason::SiteCaUnavailable => "SITE_CA_UNAVAILABLE",
            _ => return None,
        })
    }

    /// The reasons of clinical information, consent per kind and emergency viewing.
    fn clinical_str(self) -> Option<&'static str> {
        Some(match self {
            Reason::ConsentKindUnknown => "CONSENT_KIND_UNKNOWN",
            Reason::ConsentKindNotGiven => "CONSENT_KIND_NOT_GIVEN",
            Reason::AccessModeUnknown => "ACCESS_MODE_UNKNOWN",
            Reason::EmergencyViewingFacilityNotEligible => {
                "EMERGENCY_VIEWING_FACILITY_NOT_ELIGIBLE"
            }
            Reason::EmergencyViewingSummaryOnly => "EMERGENCY_VIEWING_SUMMARY_ONLY",
            Reason::EmergencyViewingRequiresExemption => "EMERGENCY_VIEWING_REQUIRES_EXEMPTION",
            Reason::ClinicalCategoryUnknown => "CLINICAL_CATEGORY_UNKNOWN",
            _ => return None,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused input or rule: the reason, the request field at fault (dotted proto
/// path such as `insured.insurer_number`, empty when no single field is at fault),
/// a sentence for the user, and extra explanatory key/values.
///
/// A check that finds several fields at fault answers with one violation carrying
/// the others in `also`: the first gives the refusal its reason, and every one names
/// its field, so the user can correct them all before trying again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: Reason,
    pub field: String,
    pub description: String,
    pub metadata: Vec<(String, String)>,
    /// Further faults found by the same check in the same request, in order.
    pub also: Vec<Violation>,
}

impl Violation {
    pub fn new(reason: Reason, field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            reason,
            field: field.into(),
            description: description.into(),
            metadata: Vec::new(),
            also: Vec::new(),
        }
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// This violation, then `other` and whatever `other` carried, in one flat list.
    #[must_use]
    pub fn and(mut self, mut other: Violation) -> Self {
        let further = std::mem::take(&mut other.also);
        self.also.push(other);
        self.also.extend(further);
        self
    }

    /// This violation and every further one, in the order found.
    pub fn all(&self) -> impl Iterator<Item = &Violation> {
        std::iter::once(self).chain(&self.also)
    }

    /// One violation holding every one of `found` (the first gives the reason);
    /// `None` when nothing was found.
    pub fn merge(found: impl IntoIterator<Item = Violation>) -> Option<Violation> {
        found.into_iter().reduce(Violation::and)
    }
}

/// Checking on past a fault, so that one refusal names every field at fault: the
/// values of two checks, or the violations of both (this one's first).
pub trait Gather<A> {
    fn gather<B>(self, other: Result<B, Violation>) -> Result<(A, B), Violation>;
}

impl<A> Gather<A> for Result<A, Violation> {
    fn gather<B>(self, other: Result<B, Violation>) -> Result<(A, B), Violation> {
        match (self, other) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(v), Ok(_)) | (Ok(_), Err(v)) => Err(v),
            (Err(first), Err(second)) => Err(first.and(second)),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.description)?;
        for v in &self.also {
            write!(f, "; {}: {}", v.reason, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(reason: Reason, field: &str) -> Violation {
        Violation::new(reason, field, format!("{field} is wrong"))
    }

    fn fields(v: &Violation) -> Vec<&str> {
        v.all().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn and_keeps_the_first_reason_and_a_flat_order() {
        let joined = v(Reason::NameMissing, "name")
            .and(v(Reason::BirthDateInvalid, "birth_date").and(v(Reason::SexMissing, "sex")));
        assert_eq!(joined.reason, Reason::NameMissing);
        assert_eq!(fields(&joined), ["name", "birth_date", "sex"]);
        assert!(joined.also.iter().all(|v| v.also.is_empty()));
        let shown = joined.to_string();
        assert!(
            shown.starts_with("NAME_MISSING: name is wrong; BIRTH_DATE_INVALID"),
            "{shown}"
        );
        assert!(shown.ends_with("SEX_MISSING: sex is wrong"), "{shown}");
    }

    #[test]
    fn every_reason_has_its_own_name() {
        let names: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
        assert!(!names.contains(UNNAMED));
    }

    #[test]
    fn merge_of_nothing_is_nothing() {
        assert_eq!(Violation::merge(Vec::new()), None);
        let one = Violation::merge([v(Reason::SexMissing, "sex")]).unwrap();
        assert_eq!(fields(&one), ["sex"]);
        let two = Violation::merge([v(Reason::SexMissing, "sex"), v(Reason::NameMissing, "name")])
            .unwrap();
        assert_eq!(
            (two.reason, fields(&two)),
            (Reason::SexMissing, vec!["sex", "name"])
        );
    }

    #[test]
    fn gather_collects_both_faults_in_order() {
        let ok: Result<u8, Violation> = Ok(1);
        let bad: Result<u8, Violation> = Err(v(Reason::NumberMissing, "number"));
        let worse: Result<u8, Violation> = Err(v(Reason::BranchInvalid, "branch"));
        assert_eq!(ok.clone().gather(Ok::<_, Violation>("x")), Ok((1, "x")));
        assert_eq!(
            ok.clone().gather(bad.clone()).unwrap_err().reason,
            Reason::NumberMissing
        );
        assert_eq!(
            bad.clone().gather(ok).unwrap_err().reason,
            Reason::NumberMissing
        );
        let both = bad.gather(worse).unwrap_err();
        assert_eq!(both.reason, Reason::NumberMissing);
        assert_eq!(fields(&both), ["number", "branch"]);
    }
}

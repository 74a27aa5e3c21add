//! The options a request carries besides who and what patient: the clinical
//! categories asked for and paging. Judged before anything is read, so that a
//! malformed page token is the caller's error, not the upstream's.

use crate::domain::consent_kind::InfoKind;
use crate::domain::{Reason, Violation};
use crate::proto::{ClinicalCategory, GetClinicalInformationRequest};

/// The most items a page may ask for.
pub const MAX_PAGE_SIZE: i32 = 500;
/// Page tokens are short opaque ASCII strings the upstream issued.
pub const MAX_PAGE_TOKEN_CHARS: usize = 64;

/// The consent kinds the categories need: operations need OPERATIONS; procedures,
/// dialysis and visits need CLINICAL_INFORMATION. None named means all four.
pub fn clinical_kinds(categories: &[i32]) -> Vec<InfoKind> {
    let wants = |c: ClinicalCategory| categories.is_empty() || categories.contains(&(c as i32));
    let mut kinds = Vec::new();
    if [
        ClinicalCategory::Procedures,
        ClinicalCategory::Dialysis,
        ClinicalCategory::Visits,
    ]
    .into_iter()
    .any(wants)
    {
        kinds.push(InfoKind::ClinicalInformation);
    }
    if wants(ClinicalCategory::Operations) {
        kinds.push(InfoKind::Operations);
    }
    kinds
}

/// Categories known, page size in range, page token well formed; every fault named.
pub fn check_clinical_options(r: &GetClinicalInformationRequest) -> Result<(), Violation> {
    let mut faults = Vec::new();
    for &c in &r.categories {
        if !(1..=4).contains(&c) {
            faults.push(Violation::new(
                Reason::ClinicalCategoryUnknown,
                "categories",
                format!(
                    "clinical category {c} is not known; use 1 (procedures), 2 (operations), 3 (dialysis) or 4 (visits)"
                ),
            ));
        }
    }
    if !(0..=MAX_PAGE_SIZE).contains(&r.page_size) {
        faults.push(Violation::new(
            Reason::PageSizeInvalid,
            "page_size",
            format!(
                "page_size must be 0 (the default, 100) to {MAX_PAGE_SIZE}, not {}",
                r.page_size
            ),
        ));
    }
    let token = &r.page_token;
    if token.len() > MAX_PAGE_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        faults.push(Violation::new(
            Reason::PageTokenInvalid,
            "page_token",
            "page_token must be the next_page_token of a previous page, or empty",
        ));
    }
    Violation::merge(faults).map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_need_their_own_kind() {
        use ClinicalCategory::*;
        assert_eq!(
            clinical_kinds(&[]),
            [InfoKind::ClinicalInformation, InfoKind::Operations]
        );
        assert_eq!(
            clinical_kinds(&[Visits as i32, Dialysis as i32]),
            [InfoKind::ClinicalInformation]
        );
        assert_eq!(clinical_kinds(&[Operations as i32]), [InfoKind::Operations]);
    }

    #[test]
    fn options_at_their_edges() {
        let ok = |page_size: i32, token: &str| GetClinicalInformationRequest {
            page_size,
            page_token: token.into(),
            categories: vec![1, 4],
            ..Default::default()
        };
        assert!(check_clinical_options(&ok(0, "")).is_ok());
        assert!(check_clinical_options(&ok(500, "p100")).is_ok());
        let refused = check_clinical_options(&ok(501, "p 1")).unwrap_err();
        assert_eq!(refused.reason, Reason::PageSizeInvalid);
        assert_eq!(refused.all().count(), 2);
        assert_eq!(
            check_clinical_options(&ok(-1, "")).unwrap_err().reason,
            Reason::PageSizeInvalid
        );
        let long = "a".repeat(MAX_PAGE_TOKEN_CHARS + 1);
        assert_eq!(
            check_clinical_options(&ok(10, &long)).unwrap_err().reason,
            Reason::PageTokenInvalid
        );
        let unknown = GetClinicalInformationRequest {
            categories: vec![0, 5],
            ..Default::default()
        };
        let refused = check_clinical_options(&unknown).unwrap_err();
        assert_eq!(refused.reason, Reason::ClinicalCategoryUnknown);
        assert_eq!(refused.all().count(), 2);
    }
}

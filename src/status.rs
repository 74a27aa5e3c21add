//! The one mapping from a refused rule to a gRPC status with `ErrorInfo` and `BadRequest`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{Reason, Violation};

/// `ErrorInfo.domain` of every denial.
pub const ERROR_DOMAIN: &str = "onshi.gateway";

/// Violation metadata naming how long the caller should wait before trying again
/// (milliseconds); a denial that carries it also carries a `google.rpc.RetryInfo`.
pub const RETRY_AFTER_MS: &str = "retry_after_ms";

pub fn code_of(reason: Reason) -> Code {
    use Reason::*;
    match reason {
        FacilityUnidentified
        | FacilityCodeFormat
        | FacilityCodePrefecture
        | FacilityCodeFeeTable
        | FacilityCodeCheckDigit => Code::Unauthenticated,
        AreaNotActivated
        | FacilityMismatch
        | OperatorRoleRequired
        | FacilityNotInRegistry
        | SearchFacilityMismatch
        | PatientNotInSearch
        | PurposeNotPermitted
        | ConsentKindNotGiven
        | EmergencyViewingFacilityNotEligible
        | EmergencyViewingSummaryOnly
        | EmergencyViewingRequiresExemption
        | SiteNotOpen
        | SiteNotPermitted
        | SiteLicenceRequired => Code::PermissionDenied,
        ActivationNotFound | SiteNotFound | ReviewSubjectNotFound | ChainNotServedHere => {
            Code::NotFound
        }
        SiteOutsideActivation | ReviewSubjectNotFlagged | TreePruned => Code::FailedPrecondition,
        TreeUnavailable => Code::Unavailable,
        ActivationRevisionConflict => Code::Aborted,
        SearchExpired => Code::FailedPrecondition,
        SearchNotFound | PatientNotFound => Code::NotFound,
        ActivationStoreUnavailable
        | SearchLedgerUnavailable
        | AuditUnavailable
        | UpstreamUnavailable
        | SiteCaUnavailable => Code::Unavailable,
        UpstreamTimeout | CallDeadlineExceeded => Code::DeadlineExceeded,
        RateLimited | Overloaded => Code::ResourceExhausted,
        UpstreamError => Code::Internal,
        _ => Code::InvalidArgument,
    }
}

/// The refusal as a gRPC status with `code`. The status and its details are built
/// from that one code, so `grpc-status` and the `code` of the `google.rpc.Status` in
/// `grpc-status-details-bin` always agree (grpcio-status refuses a status where they
/// differ). `ErrorInfo` carries the first violation's reason, metadata and field;
/// `BadRequest` lists every field at fault.
pub fn status_with_code(v: &Violation, code: Code) -> Status {
    let mut metadata: HashMap<String, String> = v.metadata.iter().cloned().collect();
    if !v.field.is_empty() {
        metadata.insert("field".into(), v.field.clone());
    }
    let retry_after_ms: Option<u64> = metadata.get(RETRY_AFTER_MS).and_then(|ms| ms.parse().ok());
    let mut details = ErrorDetails::with_error_info(v.reason.as_str(), ERROR_DOMAIN, metadata);
    for fault in v.all().filter(|f| !f.field.is_empty()) {
        details.add_bad_request_violation(fault.field.clone(), fault.description.clone());
    }
    if let Some(ms) = retry_after_ms {
        details.set_retry_info(Some(std::time::Duration::from_millis(ms)));
    }
    let message = v
        .all()
        .map(|f| f.description.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Status::with_error_details(code, message, details)
}

/// The refusal with its reason's own code. A reason that is an identity failure on
/// the terminals' path (a bad facility code) is bad input when an operator types it:
/// such callers use [`status_with_code`].
pub fn status_of(v: &Violation) -> Status {
    status_with_code(v, code_of(v.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `google.rpc.Status` a client decodes from `grpc-status-details-bin`.
    fn details_of(status: &Status) -> tonic_types::Status {
        prost::Message::decode(status.details()).expect("a google.rpc.Status")
    }

    #[test]
    fn carries_reason_field_and_code() {
        let v = Violation::new(
            Reason::InsurerNumberFormat,
            "insured.insurer_number",
            "the insurer number must be 8 digits",
        )
        .with("found_length", "7");
        let status = status_of(&v);
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "INSURER_NUMBER_FORMAT");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata.get("found_length").map(String::as_str),
            Some("7")
        );
        let bad = status.get_details_bad_request().expect("bad request");
        assert_eq!(bad.field_violations.len(), 1);
        assert_eq!(bad.field_violations[0].field, "insured.insurer_number");
    }

    #[test]
    fn every_field_at_fault_is_in_bad_request_and_the_first_gives_the_reason() {
        let v = Violation::new(Reason::BirthDateInvalid, "birth_date", "not a date")
            .with("rule", "format")
            .and(Violation::new(Reason::SexMissing, "sex", "sex is required"))
            .and(Violation::new(
                Reason::SearchLedgerUnavailable,
                "",
                "no field",
            ));
        let status = status_of(&v);
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "BIRTH_DATE_INVALID");
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some("birth_date")
        );
        assert_eq!(
            info.metadata.get("rule").map(String::as_str),
            Some("format")
        );
        let bad = status.get_details_bad_request().expect("bad request");
        let fields: Vec<(&str, &str)> = bad
            .field_violations
            .iter()
            .map(|f| (f.field.as_str(), f.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("birth_date", "not a date"), ("sex", "sex is required")]
        );
        assert_eq!(status.message(), "not a date; sex is required; no field");
        assert_eq!(details_of(&status).message, status.message());
    }

    #[test]
    fn status_and_details_carry_one_code() {
        for r in Reason::ALL {
            let v = Violation::new(*r, "f", "why");
            let status = status_of(&v);
            assert_eq!(status.code(), code_of(*r), "{r}");
            assert_eq!(details_of(&status).code, code_of(*r) as i32, "{r}");
            for code in [
                Code::InvalidArgument,
                Code::PermissionDenied,
                Code::Unauthenticated,
            ] {
                let status = status_with_code(&v, code);
                assert_eq!(status.code(), code, "{r} as {code:?}");
                assert_eq!(details_of(&status).code, code as i32, "{r} as {code:?}");
                assert_eq!(details_of(&status).message, status.message());
                let info = status.get_details_error_info().expect("error info");
                assert_eq!(info.reason, r.as_str());
            }
        }
    }

    #[test]
    fn a_retry_delay_becomes_retry_info() {
        let v = Violation::new(Reason::RateLimited, "", "slow down").with(RETRY_AFTER_MS, "1250");
        let status = status_of(&v);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(
            retry.retry_delay,
            Some(std::time::Duration::from_millis(1250))
        );
        assert!(status.get_details_bad_request().is_none());
        let plain = status_of(&Violation::new(Reason::UpstreamTimeout, "", "late"));
        assert!(plain.get_details_retry_info().is_none());
    }

    #[test]
    fn every_reason_has_a_distinct_upper_snake_name() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
            assert!(seen.insert(s), "duplicate {s}");
        }
    }
}

#[cfg(test)]
mod docs {
    use super::*;

    #[test]
    fn every_reason_is_documented_with_its_code() {
        let doc = include_str!("../docs/reasons.md");
        for r in Reason::ALL {
            let code = format!("{:?}", code_of(*r));
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", r.as_str())))
                .unwrap_or_else(|| panic!("{} is not in docs/reasons.md", r.as_str()));
            let documented: String = row.split('|').nth(2).unwrap_or("").trim().replace('_', "");
            assert!(
                documented.eq_ignore_ascii_case(&code),
                "{}: documented {documented}, actual {code}",
                r.as_str()
            );
        }
    }
}

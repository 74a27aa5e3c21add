//! The small trait through which the rules read a patient-data request, whatever its message.

use crate::domain::Violation;
use crate::domain::consent_kind::InfoKind;
use crate::proto::{
    AccessContext, GetClinicalInformationRequest, GetClinicalInformationResponse,
    GetDrugHistoryRequest, GetDrugHistoryResponse, GetEmergencySummaryRequest,
    GetEmergencySummaryResponse, GetHealthCheckupsRequest, GetHealthCheckupsResponse,
    GetPrescriptionsRequest, GetPrescriptionsResponse, InsuredNumber, LookupQualificationRequest,
    LookupQualificationResponse, Period, QualificationStatus, SearchOutcome, SearchPatientsRequest,
    SearchPatientsResponse,
};

use super::request_options::{check_clinical_options, clinical_kinds};
use super::summary::summary_of;

/// What the request identifies the patient by, mutable so rules can write back the
/// normalised form that is forwarded upstream.
pub enum Subject<'a> {
    /// By insured number, with an optional birth-date cross-check and an optional period.
    Insured {
        insured: &'a mut Option<InsuredNumber>,
        birth_date: Option<&'a mut String>,
        period: Option<PeriodField<'a>>,
    },
    /// By the notice's four attributes.
    Attributes(&'a mut SearchPatientsRequest),
}

pub struct PeriodField<'a> {
    pub period: &'a mut Option<Period>,
    pub lookback_years: u32,
}

/// Medical-information requests: an insured number and a period with a default look-back.
fn insured_over_period<'a>(
    insured: &'a mut Option<InsuredNumber>,
    period: &'a mut Option<Period>,
    lookback_years: u32,
) -> Subject<'a> {
    Subject::Insured {
        insured,
        birth_date: None,
        period: Some(PeriodField {
            period,
            lookback_years,
        }),
    }
}

pub trait PatientRequest: Send + Sync + 'static {
    type Reply: prost::Message + Send + Sync + 'static;
    /// The RPC name, as recorded in the access log.
    const METHOD: &'static str;
    /// The items shown by this RPC, as recorded in the access log.
    const ITEMS: &'static str;

    fn access(&self) -> Option<&AccessContext>;
    fn subject(&mut self) -> Subject<'_>;
    /// A short, identifier-free summary of the upstream's answer for the access log.
    fn summarize(reply: &Self::Reply) -> String;

    /// The kinds of information the call shows, which the patient's consent must cover.
    fn kinds(&self) -> Vec<InfoKind> {
        Vec::new()
    }

    /// Whether the call may be made in the emergency-viewing mode (only the summary).
    const EMERGENCY_VIEWABLE: bool = false;

    /// The request's own options (paging, categories), judged before any data is read.
    fn check_options(&self) -> Result<(), Violation> {
        Ok(())
    }
}

impl PatientRequest for LookupQualificationRequest {
    type Reply = LookupQualificationResponse;
    const METHOD: &'static str = "LookupQualification";
    const ITEMS: &'static str = "qualification";

    fn access(&self) -> Option<&AccessContext> {
        self.access.as_ref()
    }
    fn subject(&mut self) -> Subject<'_> {
        Subject::Insured {
            insured: &mut self.insured,
            birth_date: Some(&mut self.birth_date),
            period: None,
        }
    }
    fn summarize(reply: &Self::Reply) -> String {
        let status = QualificationStatus::try_from(reply.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("QUALIFICATION_STATUS_")
                    .to_string()
            })
            .unwrap_or_else(|_| reply.status.to_string());
        format!("status={status}")
    }
}

impl PatientRequest for SearchPatientsRequest {
    type Reply = SearchPatientsResponse;
    const METHOD: &'static str = crate::store::SEARCH_METHOD;
    const ITEMS: &'static str = "candidates";

    fn access(&self) -> Option<&AccessContext> {
        self.access.as_ref()
    }
    fn subject(&mut self) -> Subject<'_> {
        Subject::Attributes(self)
    }
    fn summarize(reply: &Self::Reply) -> String {
        let outcome = SearchOutcome::try_from(reply.outcome)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("SEARCH_OUTCOME_")
                    .to_string()
            })
            .unwrap_or_else(|_| reply.outcome.to_string());
        format!("outcome={outcome} candidates={}", reply.candidates.len())
    }
}

/// The medical-information requests differ only in their names, their default
/// look-back and the list their reply counts.
macro_rules! over_period {
    ($request:ty, $reply:ty, $method:literal, $items:literal, $years:literal, $list:ident, $kind:expr) => {
        impl PatientRequest for $request {
            type Reply = $reply;
            const METHOD: &'static str = $method;
            const ITEMS: &'static str = $items;

            fn access(&self) -> Option<&AccessContext> {
                self.access.as_ref()
            }
            fn subject(&mut self) -> Subject<'_> {
                insured_over_period(&mut self.insured, &mut self.period, $years)
            }
            fn summarize(reply: &Self::Reply) -> String {
                format!(concat!(stringify!($list), "={}"), reply.$list.len())
            }

            fn kinds(&self) -> Vec<InfoKind> {
                vec![$kind]
            }
        }
    };
}

over_period!(
    GetDrugHistoryRequest,
    GetDrugHistoryResponse,
    "GetDrugHistory",
    "drug_history",
    3,
    dispensings,
    InfoKind::Drugs
);
over_period!(
    GetHealthCheckupsRequest,
    GetHealthCheckupsResponse,
    "GetHealthCheckups",
    "health_checkups",
    5,
    checkups,
    InfoKind::Checkups
);

over_period!(
    GetPrescriptionsRequest,
    GetPrescriptionsResponse,
    "GetPrescriptions",
    "prescriptions",
    3,
    prescriptions,
    InfoKind::Drugs
);

impl PatientRequest for GetClinicalInformationRequest {
    type Reply = GetClinicalInformationResponse;
    const METHOD: &'static str = "GetClinicalInformation";
    const ITEMS: &'static str = "clinical_information";

    fn access(&self) -> Option<&AccessContext> {
        self.access.as_ref()
    }

    fn subject(&mut self) -> Subject<'_> {
        insured_over_period(&mut self.insured, &mut self.period, 5)
    }

    fn summarize(reply: &Self::Reply) -> String {
        format!("items={} total={}", reply.items.len(), reply.total_items)
    }

    fn kinds(&self) -> Vec<InfoKind> {
        clinical_kinds(&self.categories)
    }

    fn check_options(&self) -> Result<(), Violation> {
        check_clinical_options(self)
    }
}

impl PatientRequest for GetEmergencySummaryRequest {
    type Reply = GetEmergencySummaryResponse;
    const METHOD: &'static str = "GetEmergencySummary";
    const ITEMS: &'static str = "emergency_summary";
    const EMERGENCY_VIEWABLE: bool = true;

    fn access(&self) -> Option<&AccessContext> {
        self.access.as_ref()
    }

    fn subject(&mut self) -> Subject<'_> {
        Subject::Insured {
            insured: &mut self.insured,
            birth_date: None,
            period: None,
        }
    }

    fn summarize(reply: &Self::Reply) -> String {
        summary_of(reply)
    }

    /// Qualification, drugs and e-prescriptions, clinical information, operations
    /// and the latest check-up: every kind.
    fn kinds(&self) -> Vec<InfoKind> {
        InfoKind::ALL.to_vec()
    }
}

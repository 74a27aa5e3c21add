//! Step 6 of the demo: calls the gateway refuses, each with its reason.

use tonic::Request;
use tonic_types::StatusExt;

use crate::demo::search::Found;
use crate::demo::terminals::{Terminals, access, consented_by_search};
use crate::proto::{
    Consent, ConsentBasis, ExemptionIdentification, GetDrugHistoryRequest, Identification,
    InsuredNumber, LookupQualificationRequest, SearchPatientsRequest, Sex,
};

pub async fn denials(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    println!("\n6. What is refused, and why:");
    area_check_digit_and_exemption(t, found).await?;
    search_and_consent(t, found).await
}

fn known() -> Option<Identification> {
    Some(Identification::insured_number_known())
}

/// Prints the denial's code, reason and message; an answer is a failure of the demo.
pub(super) fn show_denial<T: std::fmt::Debug>(
    label: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
) -> anyhow::Result<()> {
    match result {
        Ok(r) => anyhow::bail!("{label}: expected a denial, got {:?}", r.get_ref()),
        Err(status) => {
            let reason = status
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_else(|| "-".into());
            println!(
                "  DENIED  {label}\n          {:?} {reason}: {}",
                status.code(),
                status.message()
            );
            Ok(())
        }
    }
}

async fn area_check_digit_and_exemption(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    let patient = &found.patient;
    show_denial(
        &format!(
            "a clinic in Tokyo ({}) outside the activated prefectures",
            t.tokyo
        ),
        t.qualification_tokyo
            .lookup_qualification(Request::new(LookupQualificationRequest {
                access: access(Consent::patient(), known()),
                insured: Some(patient.clone()),
                birth_date: String::new(),
            }))
            .await,
    )?;
    show_denial(
        "an insurer number with a wrong check digit (01234567)",
        t.qualification_miyagi
            .lookup_qualification(Request::new(LookupQualificationRequest {
                access: access(Consent::patient(), known()),
                insured: Some(InsuredNumber {
                    insurer_number: "01234567".into(),
                    ..patient.clone()
                }),
                birth_date: String::new(),
            }))
            .await,
    )?;
    show_denial(
        "the exemption without a reason",
        t.medical_miyagi
            .get_drug_history(Request::new(GetDrugHistoryRequest {
                access: access(
                    Consent {
                        basis: ConsentBasis::LifeOrBodyExemption as i32,
                        exemption_reason: String::new(),
                        exemption_identification: ExemptionIdentification::FamilyInformation as i32,
                        exemption_category: 0,
                        ..Default::default()
                    },
                    known(),
                ),
                insured: Some(patient.clone()),
                period: None,
                ..Default::default()
            }))
            .await,
    )
}

async fn search_and_consent(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    show_denial(
        &format!(
            "a pharmacy in Fukushima ({}) naming the Miyagi clinic's search",
            t.fukushima
        ),
        t.medical_fukushima
            .get_drug_history(Request::new(GetDrugHistoryRequest {
                access: consented_by_search(&found.search_id),
                insured: Some(found.patient.clone()),
                period: None,
                ..Default::default()
            }))
            .await,
    )?;
    show_denial(
        "a search without insurer name or address",
        t.qualification_miyagi
            .search_patients(Request::new(SearchPatientsRequest {
                access: access(Consent::patient(), None),
                name: "山田太郎".into(),
                birth_date: "1958-04-12".into(),
                sex: Sex::Male as i32,
                insurer_name: String::new(),
                address_fragment: String::new(),
            }))
            .await,
    )?;
    show_denial(
        "no consent basis given",
        t.qualification_miyagi
            .lookup_qualification(Request::new(LookupQualificationRequest {
                access: access(Consent::default(), known()),
                insured: Some(found.patient.clone()),
                birth_date: String::new(),
            }))
            .await,
    )
}

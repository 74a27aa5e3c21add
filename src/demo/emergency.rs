//! Step 6b: outside any disaster, 救急時医療情報閲覧 at a hospital with an emergency
//! department: the one-call emergency summary of an unconscious dialysis patient,
//! each section with its state; then the same call from a clinic, refused.

use tonic::Request;

use crate::demo::search::Found;
use crate::demo::terminals::Terminals;
use crate::proto::{
    AccessContext, AccessMode, Consent, ConsentBasis, ExemptionIdentification,
    GetEmergencySummaryRequest, GetEmergencySummaryResponse, Identification, SectionInfo,
    SectionStatus, StaffRole,
};

fn emergency_viewing() -> Option<AccessContext> {
    let consent = Consent {
        basis: ConsentBasis::LifeOrBodyExemption as i32,
        exemption_reason: "意識不明で救急搬送、透析患者手帳で本人確認".into(),
        exemption_identification: ExemptionIdentification::IdDocument as i32,
        ..Consent::default()
    };
    Some(AccessContext {
        mode: AccessMode::EmergencyViewing as i32,
        ..AccessContext::for_care(
            "er-0001",
            StaffRole::Doctor,
            consent,
            Some(Identification::insured_number_known()),
        )
    })
}

fn state(info: &Option<SectionInfo>) -> String {
    let Some(info) = info else {
        return "-".into();
    };
    match SectionStatus::try_from(info.status) {
        Ok(SectionStatus::Unavailable) => format!("UNAVAILABLE ({})", info.unavailable_reason),
        Ok(s) => s
            .as_str_name()
            .trim_start_matches("SECTION_STATUS_")
            .to_string(),
        Err(_) => info.status.to_string(),
    }
}

pub(super) fn print_summary(s: &GetEmergencySummaryResponse) {
    let dialysis = s.dialysis.clone().unwrap_or_default();
    let lines = [
        ("visits (3 months)", &s.visits_section, s.visits.len()),
        (
            "e-prescriptions (45 days)",
            &s.prescriptions_section,
            s.prescriptions.len(),
        ),
        (
            "drugs (3 months)",
            &s.dispensings_section,
            s.dispensings.len(),
        ),
        (
            "operations (5 years)",
            &s.operations_section,
            s.operations.len(),
        ),
        (
            "procedures (3 months)",
            &s.procedures_section,
            s.procedures.len(),
        ),
    ];
    for (name, info, count) in lines {
        println!("    {name:<26} {:<12} {count} item(s)", state(info));
    }
    println!(
        "    {:<26} {:<12} {}",
        "dialysis (3 months)",
        state(&s.dialysis_section),
        if dialysis.on_dialysis {
            format!(
                "{} since {} at {}",
                dialysis.method, dialysis.since, dialysis.facility
            )
        } else {
            "not on dialysis".into()
        }
    );
    let checkup = s.latest_checkup.clone().unwrap_or_default();
    println!(
        "    {:<26} {:<12} {}",
        "latest check-up",
        state(&s.checkup_section),
        checkup.checkup_date
    );
}

pub async fn emergency_summary(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    println!(
        "\n6b. Outside any disaster, 救急時医療情報閲覧 at {} (a hospital with an emergency department):",
        t.hospital
    );
    println!("   the emergency summary of an unconscious patient, with no activation:");
    let request = |access| GetEmergencySummaryRequest {
        access,
        insured: Some(found.patient.clone()),
    };
    let summary = t
        .medical_hospital
        .get_emergency_summary(Request::new(request(emergency_viewing())))
        .await?
        .into_inner();
    print_summary(&summary);
    println!("   (flagged for review and marked as emergency viewing in the access log)");
    super::denials::show_denial(
        &format!(
            "the same from the clinic {} (no emergency department)",
            t.miyagi
        ),
        t.medical_miyagi
            .get_emergency_summary(Request::new(request(emergency_viewing())))
            .await,
    )
}

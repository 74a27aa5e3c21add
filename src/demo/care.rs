//! Steps 2 to 5 of the demo: what the clinic sees of the patient it found, and an
//! access under the life-or-body exemption.

use tonic::Request;

use crate::demo::search::Found;
use crate::demo::terminals::{Terminals, access, consented_by_search};
use crate::proto::{
    Consent, ConsentBasis, ExemptionCategory, ExemptionIdentification, GetDrugHistoryRequest,
    GetHealthCheckupsRequest, GetHealthCheckupsResponse, Identification,
    LookupQualificationRequest, QualificationStatus,
};

pub async fn qualification(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    println!("\n2. The clinic looks up the qualification of the chosen candidate:");
    let q = t
        .qualification_miyagi
        .lookup_qualification(Request::new(LookupQualificationRequest {
            access: consented_by_search(&found.search_id),
            insured: Some(found.patient.clone()),
            birth_date: String::new(),
        }))
        .await?
        .into_inner();
    let status = QualificationStatus::try_from(q.status).unwrap_or_default();
    if let Some(d) = q.qualification {
        println!(
            "  {status:?}: {} {} 負担割合 {} 資格取得 {} {}",
            d.name, d.insurer_name, d.copayment_ratio, d.qualification_start, d.address
        );
    }
    Ok(())
}

/// Steps 3 and 4: the drug history and check-ups, for the search's patient.
pub async fn medical_information(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    let access = consented_by_search(&found.search_id);
    let insured = Some(found.patient.clone());
    println!("\n3. Drug history (薬剤情報), last 3 years:");
    let drugs = t
        .medical_miyagi
        .get_drug_history(Request::new(GetDrugHistoryRequest {
            access: access.clone(),
            insured: insured.clone(),
            period: None,
            ..Default::default()
        }))
        .await?
        .into_inner();
    println!("  {} dispensing(s)", drugs.dispensings.len());
    for d in drugs.dispensings.iter().take(5) {
        println!(
            "    {} {} {} {} × {}日 ({})",
            d.dispensing_date, d.drug_name, d.dose, d.quantity, d.days, d.dispensing_facility
        );
    }
    println!("\n4. Specific health check-ups (特定健診情報), last 5 years:");
    let request = GetHealthCheckupsRequest {
        access,
        insured,
        period: None,
    };
    let checkups = t.medical_miyagi.get_health_checkups(request).await?;
    print_checkups(&checkups.into_inner());
    Ok(())
}

fn print_checkups(checkups: &GetHealthCheckupsResponse) {
    println!("  {} check-up(s)", checkups.checkups.len());
    if let Some(c) = checkups.checkups.first() {
        let items: Vec<String> = c
            .items
            .iter()
            .take(6)
            .map(|i| format!("{} {}{}", i.name, i.value, i.unit))
            .collect();
        println!("    {}: {}", c.checkup_date, items.join(", "));
    }
}

pub async fn exemption(t: &mut Terminals, found: &Found) -> anyhow::Result<()> {
    println!(
        "\n5. An unconscious patient: the life-or-body exemption, identified from an ID document:"
    );
    let exempt = t
        .qualification_miyagi
        .lookup_qualification(Request::new(LookupQualificationRequest {
            access: access(
                Consent {
                    basis: ConsentBasis::LifeOrBodyExemption as i32,
                    exemption_reason: "意識不明で救急搬送、家族と連絡がつかない".into(),
                    exemption_identification: ExemptionIdentification::IdDocument as i32,
                    exemption_category: ExemptionCategory::ImpairedConsciousness as i32,
                    ..Default::default()
                },
                Some(Identification::insured_number_known()),
            ),
            insured: Some(found.patient.clone()),
            birth_date: "1958-04-12".into(),
        }))
        .await?
        .into_inner();
    println!(
        "  ALLOWED {:?} (recorded with basis life_or_body_exemption, flagged for review)",
        QualificationStatus::try_from(exempt.status).unwrap_or_default()
    );
    Ok(())
}

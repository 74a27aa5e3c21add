//! A short scenario against a running gateway (mutual TLS, development PKI), printing
//! what a terminal would see: a search, a lookup, drug history, check-ups, an
//! exemption access, and denials with their reasons.

pub mod audit;
pub mod operator;
pub mod tls;

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use tonic::Request;
use tonic_types::StatusExt;

use crate::demo::tls::DemoPki;
use crate::domain::facility::{FacilityCode, FacilityKind, make_facility_code};
use crate::domain::jst::{Window, to_jst_string, today_jst};
use crate::domain::prefecture::Prefecture;
use crate::proto::medical_information_service_client::MedicalInformationServiceClient;
use crate::proto::qualification_service_client::QualificationServiceClient;
use crate::proto::*;
use crate::store::{Activation, ActivationStore, AreaKey};

const DEMO_EVENT: &str = "デモ: 令和4年福島沖地震の再現";

/// A facility of the given prefecture and kind, with a valid check digit.
pub fn facility(prefecture: u8, kind: FacilityKind, number: u16) -> FacilityCode {
    let p = Prefecture::new(prefecture)
        .unwrap_or_else(|| Prefecture::all().next().expect("47 prefectures"));
    make_facility_code(p, kind, 1, number)
}

/// The demo's activation: Miyagi and Fukushima, one week from today (JST), like the
/// 2022 notice. Reuses one that is active now.
pub async fn ensure_demo_activation(
    store: &dyn ActivationStore,
    now: DateTime<Utc>,
) -> anyhow::Result<Activation> {
    if let Some(a) = store
        .list_activations()
        .await?
        .into_iter()
        .find(|a| a.event == DEMO_EVENT && a.is_open_at(now))
    {
        return Ok(a);
    }
    let new = crate::store::NewActivation {
        event: DEMO_EVENT.into(),
        notice: "デモ用（令和4年3月17日付事務連絡に倣う）".into(),
        areas: vec![AreaKey::Prefecture(4), AreaKey::Prefecture(7)],
        window: Window::one_week_from(today_jst(now)),
        created_by: "demo".into(),
        at: now,
    };
    Ok(store.add_activation(&new).await?)
}

fn access(consent: Consent, identification: Option<Identification>) -> Option<AccessContext> {
    Some(AccessContext::for_care(
        "dr-0001",
        StaffRole::Doctor,
        consent,
        identification,
    ))
}

fn patient_consent() -> Consent {
    Consent::patient()
}

fn by_search(search_id: &str) -> Option<Identification> {
    Some(Identification::by_search(search_id))
}

fn show_denial<T: std::fmt::Debug>(
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

pub async fn run(addr: SocketAddr, activation: &Activation, pki: &DemoPki) -> anyhow::Result<()> {
    let miyagi = facility(4, FacilityKind::Medical, 1001);
    let fukushima = facility(7, FacilityKind::Pharmacy, 4001);
    let tokyo = facility(13, FacilityKind::Medical, 1001);
    // Each facility calls with its own certificate: the gateway knows it by that alone.
    let mut medical_fukushima = MedicalInformationServiceClient::new(
        pki.channel(addr, &format!("facility-{fukushima}")).await?,
    );
    let mut medical_miyagi = MedicalInformationServiceClient::new(
        pki.channel(addr, &format!("facility-{miyagi}")).await?,
    );
    let mut qualification_miyagi =
        QualificationServiceClient::new(pki.channel(addr, &format!("facility-{miyagi}")).await?);
    let mut qualification_tokyo =
        QualificationServiceClient::new(pki.channel(addr, &format!("facility-{tokyo}")).await?);

    println!(
        "onshi-gateway demo against {addr}, over mutual TLS: each client presents its facility's certificate ({})",
        pki.dir().display()
    );
    let window = activation
        .span()
        .ok_or_else(|| anyhow::anyhow!("the demo activation has no area"))?;
    println!(
        "activation: {} — prefectures 04 宮城県, 07 福島県 — [{} .. {})\n",
        activation.event,
        to_jst_string(window.start),
        to_jst_string(window.end)
    );

    println!(
        "1. A clinic in Miyagi ({miyagi}) searches by the four attributes (kana, spaces as typed):"
    );
    let search = qualification_miyagi
        .search_patients(Request::new(SearchPatientsRequest {
            access: access(patient_consent(), None),
            name: "やまだ　たろう".into(),
            birth_date: "1958-04-12".into(),
            sex: Sex::Male as i32,
            insurer_name: String::new(),
            address_fragment: "石巻".into(),
        }))
        .await?
        .into_inner();
    println!(
        "  {:?}: {} candidate(s), search_id {}",
        SearchOutcome::try_from(search.outcome).unwrap_or_default(),
        search.candidates.len(),
        search.search_id
    );
    for c in &search.candidates {
        let i = c.insured.clone().unwrap_or_default();
        println!(
            "    {} ({}) {} {} — {} 記号 {} 番号 {} 枝番 {}",
            c.name,
            c.name_kana,
            c.birth_date,
            c.insurer_name,
            i.insurer_number,
            i.symbol,
            i.number,
            i.branch
        );
    }
    let patient = search
        .candidates
        .first()
        .and_then(|c| c.insured.clone())
        .ok_or_else(|| anyhow::anyhow!("the demo patient was not found"))?;

    println!("\n2. The clinic looks up the qualification of the chosen candidate:");
    let q = qualification_miyagi
        .lookup_qualification(Request::new(LookupQualificationRequest {
            access: access(patient_consent(), by_search(&search.search_id)),
            insured: Some(patient.clone()),
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

    println!("\n3. Drug history (薬剤情報), last 3 years:");
    let drugs = medical_miyagi
        .get_drug_history(Request::new(GetDrugHistoryRequest {
            access: access(patient_consent(), by_search(&search.search_id)),
            insured: Some(patient.clone()),
            period: None,
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
    let checkups = medical_miyagi
        .get_health_checkups(Request::new(GetHealthCheckupsRequest {
            access: access(patient_consent(), by_search(&search.search_id)),
            insured: Some(patient.clone()),
            period: None,
        }))
        .await?
        .into_inner();
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

    println!(
        "\n5. An unconscious patient: the life-or-body exemption, identified from an ID document:"
    );
    let exempt = qualification_miyagi
        .lookup_qualification(Request::new(LookupQualificationRequest {
            access: access(
                Consent {
                    basis: ConsentBasis::LifeOrBodyExemption as i32,
                    exemption_reason: "意識不明で救急搬送、家族と連絡がつかない".into(),
                    exemption_identification: ExemptionIdentification::IdDocument as i32,
                },
                Some(Identification::insured_number_known()),
            ),
            insured: Some(patient.clone()),
            birth_date: "1958-04-12".into(),
        }))
        .await?
        .into_inner();
    println!(
        "  ALLOWED {:?} (recorded with basis life_or_body_exemption, flagged for review)",
        QualificationStatus::try_from(exempt.status).unwrap_or_default()
    );

    println!("\n6. What is refused, and why:");
    let known = || Some(Identification::insured_number_known());
    show_denial(
        &format!("a clinic in Tokyo ({tokyo}) outside the activated prefectures"),
        qualification_tokyo
            .lookup_qualification(Request::new(LookupQualificationRequest {
                access: access(patient_consent(), known()),
                insured: Some(patient.clone()),
                birth_date: String::new(),
            }))
            .await,
    )?;
    show_denial(
        "an insurer number with a wrong check digit (01234567)",
        qualification_miyagi
            .lookup_qualification(Request::new(LookupQualificationRequest {
                access: access(patient_consent(), known()),
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
        medical_miyagi
            .get_drug_history(Request::new(GetDrugHistoryRequest {
                access: access(
                    Consent {
                        basis: ConsentBasis::LifeOrBodyExemption as i32,
                        exemption_reason: String::new(),
                        exemption_identification: ExemptionIdentification::FamilyInformation as i32,
                    },
                    known(),
                ),
                insured: Some(patient.clone()),
                period: None,
            }))
            .await,
    )?;
    show_denial(
        &format!("a pharmacy in Fukushima ({fukushima}) naming the Miyagi clinic's search"),
        medical_fukushima
            .get_drug_history(Request::new(GetDrugHistoryRequest {
                access: access(patient_consent(), by_search(&search.search_id)),
                insured: Some(patient.clone()),
                period: None,
            }))
            .await,
    )?;
    show_denial(
        "a search without insurer name or address",
        qualification_miyagi
            .search_patients(Request::new(SearchPatientsRequest {
                access: access(patient_consent(), None),
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
        qualification_miyagi
            .lookup_qualification(Request::new(LookupQualificationRequest {
                access: access(Consent::default(), known()),
                insured: Some(patient),
                birth_date: String::new(),
            }))
            .await,
    )?;
    println!(
        "\nEvery call above, allowed or denied, is in the access log: `onshi-gateway audit list`."
    );
    Ok(())
}

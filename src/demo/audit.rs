//! The end of the demo: the access log read back through the operators' audit
//! service, as the patient and as an auditor would see it, and verified.

use std::net::SocketAddr;

use tokio_stream::StreamExt;

use crate::audit::verify::verify_store;
use crate::demo::tls::DemoPki;
use crate::domain::jst::to_jst_string;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::{
    ConsentBasis, InsuredNumber, ListExemptionReviewsRequest, QueryPatientAccessesRequest,
};
use crate::simulator::fixtures::DEMO_PATIENT;
use crate::store::AuditStore;

pub async fn show(admin: SocketAddr, pki: &DemoPki, store: &dyn AuditStore) -> anyhow::Result<()> {
    let channel = pki.channel(admin, "operator-auditor").await?;
    let mut audit = AuditServiceClient::new(channel);

    println!(
        "\n7. The patient asks, through an operator portal, who viewed their data (audit service on {admin}):"
    );
    let mut pages = audit
        .query_patient_accesses(QueryPatientAccessesRequest {
            patient: Some(InsuredNumber {
                insurer_number: DEMO_PATIENT.insurer_number.into(),
                symbol: DEMO_PATIENT.symbol.into(),
                number: DEMO_PATIENT.number.into(),
                branch: DEMO_PATIENT.branch.into(),
            }),
            time: None,
            paging: None,
        })
        .await?
        .into_inner();
    while let Some(page) = pages.next().await {
        for a in page?.accesses {
            let at =
                a.at.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                    .map(to_jst_string)
                    .unwrap_or_default();
            let basis = match ConsentBasis::try_from(a.consent_basis) {
                Ok(ConsentBasis::LifeOrBodyExemption) => "life-or-body exemption",
                Ok(ConsentBasis::PatientConsent) => "patient consent",
                _ => "-",
            };
            let mark = if a.emergency_viewing {
                ", emergency viewing"
            } else {
                ""
            };
            println!(
                "  {at}  facility {}  {:<17} ({basis}{mark})",
                a.facility_code, a.items
            );
        }
    }

    println!("\n8. The operators' review queue: accesses under the life-or-body exemption:");
    let mut pages = audit
        .list_exemption_reviews(ListExemptionReviewsRequest::default())
        .await?
        .into_inner();
    while let Some(page) = pages.next().await {
        for e in page?.entries {
            println!(
                "  facility {} staff {} ({}) {}: {:?}",
                e.facility_code, e.staff_id, e.staff_role, e.method, e.exemption_reason
            );
        }
    }

    println!("\n9. The access log verifies (hash chain and signed checkpoints):");
    for r in verify_store(store, &[]).await? {
        println!(
            "  chain {}: {} records verified, {}",
            r.chain_id,
            r.records_verified,
            match &r.first_break {
                None => "intact".to_string(),
                Some(b) => format!("BROKEN at {}: {}", b.seq, b.detail),
            }
        );
    }
    println!(
        "\nExport it with `onshi-gateway audit export --format csv`; check it with `onshi-gateway audit verify`."
    );
    Ok(())
}

//! The demo's operator part: through the activation admin service, preview opening
//! two Noto municipalities, activate them, and check facilities inside and outside.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};

use crate::activation::registry::fixture_facility;
use crate::demo::tls::DemoPki;
use crate::domain::facility::FacilityKind;
use crate::domain::jst::today_jst;
use crate::proto::activation_admin_service_client::ActivationAdminServiceClient;
use crate::proto::{
    ActivationView, Areas, ChangeContext, CheckFacilityRequest, CreateActivationRequest,
    PreviewAreasRequest, WindowSpec, window_spec,
};

type Operators = ActivationAdminServiceClient<tonic::transport::Channel>;

/// Steps 10 and 11: an operator previews, activates and checks two Noto
/// municipalities, then is told how an auditor reads the change.
/// Returns the Noto activation's id.
pub async fn show(admin: SocketAddr, pki: &DemoPki, now: DateTime<Utc>) -> anyhow::Result<String> {
    let channel = pki.channel(admin, "operator-activation-manager").await?;
    let mut operators = ActivationAdminServiceClient::new(channel);
    let noto = Areas {
        municipalities: vec!["17204".into(), "17205".into()],
        ..Areas::default()
    };
    preview(&mut operators, &noto).await?;
    println!("\n11. …activates them for one week, and checks two facilities:");
    let created = activate(&mut operators, noto, now).await?;
    for (label, municipality) in [("輪島市", "17204"), ("金沢市", "17201")] {
        check(&mut operators, label, municipality).await?;
    }
    let file = |name: &str| pki.dir().join(name).display().to_string();
    println!(
        "\nEvery change is a revision, which an auditor reads over mutual TLS:\n  \
         onshi-gateway activation history {} --admin https://{admin} \\\n    \
         --ca {} --cert {} --key {}",
        created.id,
        file("server-ca.pem"),
        file("operator-auditor.pem"),
        file("operator-auditor.key")
    );
    Ok(created.id)
}

async fn preview(operators: &mut Operators, noto: &Areas) -> anyhow::Result<()> {
    println!(
        "\n10. An operator previews opening 輪島市 and 珠洲市 (municipalities, as since 2023):"
    );
    let preview = operators
        .preview_areas(PreviewAreasRequest {
            areas: Some(noto.clone()),
        })
        .await?
        .into_inner();
    for p in &preview.prefectures {
        let opened: Vec<String> = p
            .municipalities_opened
            .iter()
            .map(|m| format!("{} {} ({} facilities)", m.code, m.name, m.facilities))
            .collect();
        println!(
            "  {} {}: opens {}; leaves {} municipalities ({} facilities) closed",
            p.code,
            p.name,
            opened.join(", "),
            p.municipalities_not_opened.len(),
            p.facilities_not_opened
        );
    }
    Ok(())
}

async fn activate(
    operators: &mut Operators,
    noto: Areas,
    now: DateTime<Utc>,
) -> anyhow::Result<ActivationView> {
    let created = operators
        .create_activation(CreateActivationRequest {
            event: "デモ: 令和6年能登半島地震の再現".into(),
            areas: Some(noto),
            window: Some(WindowSpec {
                form: Some(window_spec::Form::OneWeekFrom(today_jst(now).to_string())),
            }),
            change: Some(ChangeContext {
                author: "demo-operator".into(),
                notice: "デモ用".into(),
                expected_revision: 0,
            }),
        })
        .await?
        .into_inner();
    println!(
        "  activation {} (revision {})",
        created.id, created.revision
    );
    Ok(created)
}

/// Whether the registry's clinic in `municipality` is allowed now.
async fn check(operators: &mut Operators, label: &str, municipality: &str) -> anyhow::Result<()> {
    let code = fixture_facility(municipality, FacilityKind::Medical);
    let d = operators
        .check_facility(CheckFacilityRequest {
            facility_code: code.clone(),
            at: None,
            as_known_at: None,
        })
        .await?
        .into_inner();
    if d.allowed {
        println!(
            "  {label} clinic {code}: ALLOWED through {}",
            d.area
                .map(|a| format!("{} {}", a.kind, a.name))
                .unwrap_or_default()
        );
    } else {
        println!("  {label} clinic {code}: refused, {}", d.reason);
    }
    Ok(())
}

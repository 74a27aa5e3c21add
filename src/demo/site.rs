//! Step 12: during the Noto replay, the prefecture opens a first-aid post in a
//! Wajima shelter, sponsored by a Tokyo clinic's relief team. The post makes its own
//! key and sends only a CSR; with the certificate issued from it, the post reads the
//! emergency summary of a dialysis patient who has come in from the shelter.

use std::net::SocketAddr;

use tonic::Request;
use tonic::transport::Channel;

use crate::demo::search::Found;
use crate::demo::tls::DemoPki;
use crate::domain::facility::FacilityKind;
use crate::proto::medical_information_service_client::MedicalInformationServiceClient;
use crate::proto::site_admin_service_client::SiteAdminServiceClient;
use crate::proto::{
    AccessContext, Consent, GetEmergencySummaryRequest, Identification,
    IssueSiteCertificateRequest, RegisterSiteRequest, SiteKind, SiteView, StaffRole,
};
use crate::tls::OperatorRole;
use crate::tls::pki_dir::operator_stem;

const AUTHOR: &str = "ishikawa-health-demo";

pub async fn first_aid_post(
    gateway: SocketAddr,
    admin: SocketAddr,
    pki: &DemoPki,
    activation_id: &str,
    found: &Found,
) -> anyhow::Result<()> {
    println!(
        "\n12. The prefecture opens a first-aid post (救護所) in a Wajima shelter under that activation:"
    );
    let channel = pki
        .channel(admin, &operator_stem(OperatorRole::PrefectureHealth))
        .await?;
    let mut sites = SiteAdminServiceClient::new(channel);
    let site = register(&mut sites, activation_id).await?;
    let stem = issue_certificate(&mut sites, pki, &site).await?;
    let mut post = MedicalInformationServiceClient::new(pki.channel(gateway, &stem).await?);
    println!(
        "  a dialysis patient from the shelter, identified by their dialysis handbook, consents:"
    );
    let summary = post
        .get_emergency_summary(Request::new(GetEmergencySummaryRequest {
            access: Some(AccessContext::for_care(
                "jmat-dr-01",
                StaffRole::Doctor,
                Consent::patient(),
                Some(Identification::insured_number_known()),
            )),
            insured: Some(found.patient.clone()),
        }))
        .await?
        .into_inner();
    super::emergency::print_summary(&summary);
    println!(
        "  (the access log names the site {} and its sponsor {})",
        site.site_id, site.sponsor
    );
    Ok(())
}

async fn register(
    sites: &mut SiteAdminServiceClient<Channel>,
    activation_id: &str,
) -> anyhow::Result<SiteView> {
    let sponsor = super::facility(13, FacilityKind::Medical, 1001);
    let site = sites
        .register_site(RegisterSiteRequest {
            activation_id: activation_id.into(),
            kind: SiteKind::FirstAidPost as i32,
            name: "輪島中学校 救護所".into(),
            municipality: "17204".into(),
            coordinates: "37.3906,136.8990".into(),
            sponsor: sponsor.to_string(),
            contact: "090-0000-0000".into(),
            until: None,
            requires_licence: false,
            author: AUTHOR.into(),
        })
        .await?
        .into_inner();
    println!(
        "  site {} 「{}」 in 17204 輪島市, sponsored by {} (a Tokyo clinic's relief team), open: {}",
        site.site_id, site.name, site.sponsor, site.open
    );
    Ok(site)
}

/// The post's key is made here, as it would be on the post's own laptop; only the
/// CSR goes to the gateway. Returns the file stem of the key and certificate.
async fn issue_certificate(
    sites: &mut SiteAdminServiceClient<Channel>,
    pki: &DemoPki,
    site: &SiteView,
) -> anyhow::Result<String> {
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let issued = sites
        .issue_site_certificate(IssueSiteCertificateRequest {
            site_id: site.site_id.clone(),
            csr_pem: csr,
            valid_hours: 0,
            author: AUTHOR.into(),
        })
        .await?
        .into_inner();
    let stem = format!("site-{}", site.site_id);
    std::fs::write(pki.dir().join(format!("{stem}.key")), key.serialize_pem())?;
    std::fs::write(
        pki.dir().join(format!("{stem}.pem")),
        &issued.certificate_pem,
    )?;
    println!(
        "  certificate {} issued from the post's CSR for 72 hours; its key never left the post ({stem}.key)",
        issued.serial
    );
    Ok(stem)
}

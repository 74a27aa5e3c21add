//! The demo's facilities and their clients, each over mutual TLS with the
//! facility's own certificate, and the access context their staff send.

use std::net::SocketAddr;

use tonic::transport::Channel;

use crate::demo::facility;
use crate::demo::tls::DemoPki;
use crate::domain::facility::{FacilityCode, FacilityKind};
use crate::proto::medical_information_service_client::MedicalInformationServiceClient;
use crate::proto::qualification_service_client::QualificationServiceClient;
use crate::proto::{AccessContext, Consent, Identification, StaffRole};

/// A clinic in Miyagi and a pharmacy in Fukushima (both activated), and a clinic in
/// Tokyo (not).
pub struct Terminals {
    pub miyagi: FacilityCode,
    pub fukushima: FacilityCode,
    pub tokyo: FacilityCode,
    pub qualification_miyagi: QualificationServiceClient<Channel>,
    pub qualification_tokyo: QualificationServiceClient<Channel>,
    pub medical_miyagi: MedicalInformationServiceClient<Channel>,
    pub medical_fukushima: MedicalInformationServiceClient<Channel>,
    /// A hospital with an emergency department in 石巻市, for emergency viewing.
    pub hospital: FacilityCode,
    pub medical_hospital: MedicalInformationServiceClient<Channel>,
}

impl Terminals {
    /// Each facility calls with its own certificate: the gateway knows it by that alone.
    pub async fn connect(addr: SocketAddr, pki: &DemoPki) -> anyhow::Result<Terminals> {
        let miyagi = facility(4, FacilityKind::Medical, 1001);
        let fukushima = facility(7, FacilityKind::Pharmacy, 4001);
        let tokyo = facility(13, FacilityKind::Medical, 1001);
        let hospital = facility(4, FacilityKind::Medical, 1002);
        let medical_hospital =
            MedicalInformationServiceClient::new(channel(pki, addr, &hospital).await?);
        let medical_fukushima =
            MedicalInformationServiceClient::new(channel(pki, addr, &fukushima).await?);
        let medical_miyagi =
            MedicalInformationServiceClient::new(channel(pki, addr, &miyagi).await?);
        let qualification_miyagi =
            QualificationServiceClient::new(channel(pki, addr, &miyagi).await?);
        let qualification_tokyo =
            QualificationServiceClient::new(channel(pki, addr, &tokyo).await?);
        Ok(Terminals {
            miyagi,
            fukushima,
            tokyo,
            qualification_miyagi,
            qualification_tokyo,
            medical_miyagi,
            medical_fukushima,
            hospital,
            medical_hospital,
        })
    }
}

async fn channel(pki: &DemoPki, addr: SocketAddr, code: &FacilityCode) -> anyhow::Result<Channel> {
    pki.channel(addr, &format!("facility-{code}")).await
}

/// A doctor viewing for the patient's care, on `consent`.
pub fn access(consent: Consent, identification: Option<Identification>) -> Option<AccessContext> {
    Some(AccessContext::for_care(
        "dr-0001",
        StaffRole::Doctor,
        consent,
        identification,
    ))
}

/// The patient's consent with the insured number taken from search `search_id`.
pub fn consented_by_search(search_id: &str) -> Option<AccessContext> {
    access(
        Consent::patient(),
        Some(Identification::by_search(search_id)),
    )
}

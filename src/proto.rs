//! The generated API types (package `onshi.v1`).
#![allow(clippy::all)]

tonic::include_proto!("onshi.v1");

/// Encoded descriptor set of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("onshi_descriptor");

// Conveniences for clients (demo, tests, benchmark): the common access context.
impl Identification {
    /// The facility knows the insured number.
    pub fn insured_number_known() -> Self {
        Identification {
            method: IdentificationMethod::InsuredNumberKnown as i32,
            search_id: String::new(),
        }
    }

    /// The insured number came from this facility's search `search_id`.
    pub fn by_search(search_id: impl Into<String>) -> Self {
        Identification {
            method: IdentificationMethod::AttributeSearch as i32,
            search_id: search_id.into(),
        }
    }
}

impl Consent {
    /// The patient consented (orally is enough).
    pub fn patient() -> Self {
        Consent {
            basis: ConsentBasis::PatientConsent as i32,
            ..Default::default()
        }
    }
}

impl AccessContext {
    /// Staff viewing for the patient's medical care, on `consent`.
    pub fn for_care(
        staff_id: impl Into<String>,
        role: StaffRole,
        consent: Consent,
        identification: Option<Identification>,
    ) -> Self {
        AccessContext {
            staff: Some(Staff {
                staff_id: staff_id.into(),
                role: role as i32,
                licence_number: String::new(),
            }),
            consent: Some(consent),
            purpose: Purpose::MedicalCare as i32,
            identification,
            ..Default::default()
        }
    }
}

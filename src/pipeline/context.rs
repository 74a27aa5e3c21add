//! The per-call context: what is known about one call, written as the rules pass and
//! read by the audit layer once the call is over (allowed, denied or failed).
//!
//! It starts with what the request *states* (staff, consent, purpose), so that a call
//! refused early is still recorded with everything that was known when it was
//! refused; each rule then replaces the statement with what it established. The
//! caller's facility is set by the identity rule alone, from the transport.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OwnedSemaphorePermit;

use crate::domain::consent::{ConsentBasis, ExemptionIdentification};
use crate::domain::consent_kind::AccessMode;
use crate::domain::exemption_category::ExemptionCategory;
use crate::domain::facility::FacilityCode;
use crate::domain::staff::StaffRole;
use crate::domain::{Reason, Violation};
use crate::proto::{AccessContext, Purpose};
use crate::store::SiteStamp;

/// Stated text longer than this is cut before it is recorded: the rules refuse it,
/// and the access log keeps a recognisable prefix, not an arbitrary payload.
const STATED_TEXT_LIMIT: usize = 128;

#[derive(Debug, Default, Clone)]
pub struct AccessNote {
    /// The caller's facility, from its certificate (or, in development, metadata).
    pub facility: Option<FacilityCode>,
    pub staff_id: Option<String>,
    pub staff_role: Option<&'static str>,
    pub activation_id: Option<String>,
    pub patient_key: Option<String>,
    pub identification: Option<&'static str>,
    pub search_id: Option<String>,
    pub consent_basis: Option<&'static str>,
    pub exemption_reason: Option<String>,
    pub exemption_identification: Option<&'static str>,
    /// With the exemption: the reason's category (`ExemptionCategory::as_str`).
    pub exemption_category: Option<&'static str>,
    pub purpose: Option<&'static str>,
    pub needs_review: bool,
    /// The reason of the denial or failure, if any.
    pub reason: Option<Reason>,
    /// Set once the call has been sent upstream: errors after that are failures, not denials.
    pub forwarded: bool,
    pub upstream_result: Option<String>,
    /// The patients the reply showed besides `patient_key` (a search's candidates),
    /// by the same key.
    pub disclosed_patients: Vec<String>,
    /// The access mode the request states (`disaster`, `emergency_viewing`), if any.
    pub access_mode: Option<&'static str>,
    /// Set by the emergency-viewing rule once it accepted the call in that mode.
    pub emergency_viewing: bool,
    /// The kinds the patient's consent covered (`all` or e.g. `drugs,checkups`).
    pub consent_kinds: Option<String>,
    /// The temporary site that called (set by the identity rule), and the stated
    /// licence registration number.
    pub site: SiteStamp,
}

impl AccessNote {
    /// What the request states about who is looking and why, before any rule has
    /// judged it. Values outside the vocabulary are left out.
    pub fn stated(access: Option<&AccessContext>) -> AccessNote {
        let Some(access) = access else {
            return AccessNote::default();
        };
        let staff = access.staff.clone().unwrap_or_default();
        let consent = access.consent.clone().unwrap_or_default();
        AccessNote {
            staff_id: stated_text(&staff.staff_id),
            staff_role: StaffRole::from_wire(staff.role).map(StaffRole::as_str),
            consent_basis: ConsentBasis::from_wire(consent.basis).map(ConsentBasis::as_str),
            exemption_reason: stated_text(&consent.exemption_reason),
            exemption_identification: ExemptionIdentification::from_wire(
                consent.exemption_identification,
            )
            .map(ExemptionIdentification::as_str),
            exemption_category: ExemptionCategory::from_wire(consent.exemption_category)
                .map(ExemptionCategory::as_str),
            purpose: (access.purpose == Purpose::MedicalCare as i32).then_some("medical_care"),
            access_mode: AccessMode::from_wire(access.mode)
                .ok()
                .filter(|_| access.mode != 0)
                .map(AccessMode::as_str),
            ..AccessNote::default()
        }
    }
}

fn stated_text(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(STATED_TEXT_LIMIT).collect())
}

/// Shared handle to the context of one call, carried in the request's extensions.
#[derive(Debug, Default, Clone)]
pub struct Note {
    note: Arc<Mutex<AccessNote>>,
    /// What the call holds until its record is committed: its in-flight slot, so the
    /// bound covers calls waiting for the access log too.
    held: Arc<Mutex<Vec<OwnedSemaphorePermit>>>,
}

impl Note {
    pub fn new(note: AccessNote) -> Note {
        Note {
            note: Arc::new(Mutex::new(note)),
            held: Arc::default(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, AccessNote> {
        // A panic elsewhere must not stop the access record being written.
        self.note
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `permit` until [`Note::release`], which the audit layer calls once the
    /// call's record is committed.
    pub fn hold_until_recorded(&self, permit: OwnedSemaphorePermit) {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(permit);
    }

    pub fn release(&self) {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The note of this request, created when a rule runs without the audit layer (unit tests).
    pub fn of<M>(req: &mut tonic::Request<M>) -> Note {
        req.extensions_mut().get_or_insert_default::<Note>().clone()
    }

    /// The caller's facility as the identity rule established it: the one way every
    /// later stage asks for it. Without it the call is refused, never guessed.
    pub fn facility(&self) -> Result<FacilityCode, Violation> {
        self.lock().facility.clone().ok_or_else(|| {
            Violation::new(
                Reason::FacilityUnidentified,
                "",
                "the caller's facility was not established",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Consent, ConsentBasis as WireBasis, Staff, StaffRole as WireRole};

    #[test]
    fn a_statement_is_kept_in_the_vocabulary_of_the_log() {
        let access = AccessContext {
            staff: Some(Staff {
                staff_id: " dr-0001 ".into(),
                role: WireRole::Doctor as i32,
                licence_number: String::new(),
            }),
            consent: Some(Consent {
                basis: WireBasis::LifeOrBodyExemption as i32,
                exemption_reason: "x".repeat(500),
                ..Consent::default()
            }),
            purpose: Purpose::MedicalCare as i32,
            ..AccessContext::default()
        };
        let note = AccessNote::stated(Some(&access));
        assert_eq!(note.staff_id.as_deref(), Some("dr-0001"));
        assert_eq!(note.staff_role, Some("doctor"));
        assert_eq!(note.consent_basis, Some("life_or_body_exemption"));
        assert_eq!(
            note.exemption_reason.map(|r| r.len()),
            Some(STATED_TEXT_LIMIT)
        );
        assert_eq!(note.purpose, Some("medical_care"));
        assert_eq!(note.facility, None);
    }

    #[test]
    fn values_outside_the_vocabulary_are_left_out() {
        let access = AccessContext {
            staff: Some(Staff {
                staff_id: "  ".into(),
                role: 99,
                licence_number: String::new(),
            }),
            purpose: 7,
            ..AccessContext::default()
        };
        let note = AccessNote::stated(Some(&access));
        assert_eq!(
            (
                note.staff_id,
                note.staff_role,
                note.consent_basis,
                note.purpose
            ),
            (None, None, None, None)
        );
        assert!(AccessNote::stated(None).staff_id.is_none());
    }

    #[test]
    fn a_missing_facility_is_refused_as_unidentified() {
        let note = Note::default();
        let refused = note.facility().expect_err("no facility established");
        assert_eq!(refused.reason, Reason::FacilityUnidentified);
    }
}

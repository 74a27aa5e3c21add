//! What the rules learn about one call, written as they pass and read by the audit
//! layer once the call is over (allowed, denied or failed).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::Reason;

#[derive(Debug, Default, Clone)]
pub struct AccessNote {
    pub facility: Option<String>,
    pub staff_id: Option<String>,
    pub staff_role: Option<&'static str>,
    pub activation_id: Option<String>,
    pub patient_key: Option<String>,
    pub identification: Option<&'static str>,
    pub search_id: Option<String>,
    pub consent_basis: Option<&'static str>,
    pub exemption_reason: Option<String>,
    pub exemption_identification: Option<&'static str>,
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
}

/// Shared handle to the note of one call, carried in the request's extensions.
#[derive(Debug, Default, Clone)]
pub struct Note(Arc<Mutex<AccessNote>>);

impl Note {
    pub fn lock(&self) -> MutexGuard<'_, AccessNote> {
        // A panic elsewhere must not stop the access record being written.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The note of this request, created when a rule runs without the audit layer (unit tests).
    pub fn of<M>(req: &mut tonic::Request<M>) -> Note {
        req.extensions_mut().get_or_insert_default::<Note>().clone()
    }
}

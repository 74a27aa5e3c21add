//! The access log must be able to take the call's record. After a failed commit the
//! writer keeps retrying on its own; until one succeeds, calls are refused here, at
//! once, before anything reads a store or fetches patient data that could not be
//! delivered. The refusal is recorded like any other (kept by the writer until the
//! store takes writes again).

use std::time::Duration;

use rand::Rng;
use tonic::Request;

use crate::audit::AuditWriter;
use crate::domain::{Reason, Violation};
use crate::pipeline::{PatientRequest, Rule};
use crate::status::RETRY_AFTER_MS;

/// The retry hint of AUDIT_UNAVAILABLE lies in `[RETRY_HINT, 2 × RETRY_HINT)`.
pub const RETRY_HINT: Duration = Duration::from_millis(1000);

#[derive(Clone)]
pub struct AuditReadyRule {
    writer: AuditWriter,
}

impl AuditReadyRule {
    pub fn new(writer: AuditWriter) -> Self {
        AuditReadyRule { writer }
    }
}

impl<M: PatientRequest> Rule<M> for AuditReadyRule {
    const NAME: &'static str = "rule.audit_ready";

    async fn check(&self, _req: &mut Request<M>) -> Result<(), Violation> {
        match self.writer.failing() {
            None => Ok(()),
            Some(why) => Err(audit_unavailable(&why)),
        }
    }
}

/// The refusal of a call whose record cannot be committed, with a randomised retry
/// hint so that refused terminals do not all come back together.
pub fn audit_unavailable(why: &str) -> Violation {
    let hint = RETRY_HINT.as_millis() as u64;
    let ms = rand::thread_rng().gen_range(hint..2 * hint);
    Violation::new(
        Reason::AuditUnavailable,
        "",
        format!("{why}; no patient data is served without an access record; try again in {ms} ms"),
    )
    .with(RETRY_AFTER_MS, ms.to_string())
}

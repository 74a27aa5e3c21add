//! The required behaviours the faults share, one assertion each, whose message says
//! what was seen instead.

use std::time::{Duration, Instant};

use tonic::Code;

use crate::audit::AuditCheck;
use crate::gateway::Gateway;
use crate::health::HealthWatch;
use crate::load::{Calls, Outcome};

/// The calls among `outcomes` that were not served.
pub fn refusals<'a>(outcomes: &[&'a Outcome]) -> Vec<&'a Outcome> {
    outcomes.iter().copied().filter(|o| !o.ok()).collect()
}

/// Some calls of `during` were refused, and every refusal was `code` with `reason`.
#[track_caller]
pub fn refused_as(during: &[&Outcome], code: Code, reason: &str, while_: &str) {
    let refused = refusals(during);
    assert!(!refused.is_empty(), "no call was refused while {while_}");
    let other: Vec<&Outcome> = refused
        .iter()
        .copied()
        .filter(|o| o.code != Some(code) || o.reason.as_deref() != Some(reason))
        .collect();
    assert!(
        other.is_empty(),
        "{} of {} refusals while {while_} were not {code:?}/{reason}: {}",
        other.len(),
        refused.len(),
        Calls::examples(other)
    );
}

/// Every call ended by its deadline plus the slack.
#[track_caller]
pub fn none_hung(calls: &Calls) {
    let hung: Vec<&Outcome> = calls.outcomes.iter().filter(|o| o.hung()).collect();
    assert!(
        hung.is_empty(),
        "{} calls hung: {}",
        hung.len(),
        Calls::examples(hung)
    );
}

/// Service came back, and within `within`.
#[track_caller]
pub fn recovered(after: Option<Duration>, within: Duration, once: &str) {
    let after = after.unwrap_or_else(|| panic!("not served again by the end of the run {once}"));
    assert!(
        after <= within,
        "served again only {after:?} {once} (required: {within:?})"
    );
}

/// The gateway process is still the one started: the fault did not bring it down.
#[track_caller]
pub fn still_running(gateway: &mut Gateway) {
    assert!(
        gateway.serving.process.exited().is_none(),
        "the gateway exited:\n{}",
        gateway.log()
    );
}

/// Readiness (or the access-log writer's health) said NOT_SERVING in `[from,
/// until)`, and readiness said SERVING again within `within` of `until`.
#[track_caller]
pub fn health_dipped_and_returned(
    ready: &HealthWatch,
    writer: &HealthWatch,
    (from, until): (Instant, Instant),
    within: Duration,
) {
    assert!(
        ready.not_serving_between(from, until) || writer.not_serving_between(from, until),
        "health stayed SERVING through the fault: \"\" {} / onshi.audit_writer {}",
        ready.story(from),
        writer.story(from)
    );
    let back = ready
        .serving_again(until)
        .unwrap_or_else(|| panic!("health not SERVING again: {}", ready.story(from)));
    assert!(
        back <= within,
        "SERVING again only {back:?} after the fault ended (required: {within:?})"
    );
}

/// An outage of the access log's store, from `fault.0` until `fault.1`: what every
/// such fault must show once the run is over.
pub struct StoreOutage<'a> {
    pub name: &'a str,
    /// "while …" and "after …" in the failure messages.
    pub while_: &'a str,
    pub after: &'a str,
    pub fault: (Instant, Instant),
    /// The calls sent while the store was known to be away.
    pub during: Vec<&'a Outcome>,
    pub recovered: Option<Duration>,
    pub within: Duration,
}

/// The gateway stayed up, the store kept its promise to every answer, no call hung,
/// the calls during the outage were refused as AUDIT_UNAVAILABLE, and service and
/// health came back within `within`. Then the gateway is stopped.
#[track_caller]
pub fn audit_store_outage_handled(
    gateway: &mut Gateway,
    check: &AuditCheck,
    calls: &Calls,
    outage: StoreOutage<'_>,
    (ready, writer): (&HealthWatch, &HealthWatch),
) {
    still_running(gateway);
    check.assert_kept(outage.name);
    none_hung(calls);
    refused_as(
        &outage.during,
        Code::Unavailable,
        "AUDIT_UNAVAILABLE",
        outage.while_,
    );
    recovered(outage.recovered, outage.within, outage.after);
    health_dipped_and_returned(ready, writer, outage.fault, outage.within);
    gateway.kill();
}

//! Reads of the access log, logged: every call an operator makes to the audit
//! service leaves a record of its own on the chain (who, which query, how many
//! records, which patient), so the auditors are audited too.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::writer::{AuditError, AuditWriter};
use crate::clock::SharedClock;
use crate::store::{AccessRecord, Accountability, KIND_AUDIT_READ};
use crate::tls::{Peer, peer_of};

/// The operator named when no certificate is presented (development, loopback).
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// Where reads and review outcomes are committed: this replica's writer.
#[derive(Clone)]
pub struct LogWriter {
    pub writer: AuditWriter,
    pub clock: SharedClock,
}

impl LogWriter {
    pub fn new(writer: AuditWriter, clock: SharedClock) -> LogWriter {
        LogWriter { writer, clock }
    }

    pub async fn commit(&self, record: AccessRecord) -> Result<(), AuditError> {
        self.writer.commit(record).await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// One read, as it is described before its records are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRead {
    /// `<role>:<id>` from the certificate.
    pub operator: String,
    /// The RPC, e.g. `QueryAccessLog`.
    pub method: &'static str,
    /// The RPC and its filters, without identifiers in clear.
    pub query: String,
    /// The patient asked about, by insured-number key.
    pub patient_key: Option<String>,
}

impl AuditRead {
    /// The read's record, once `count` records were returned.
    pub fn record(&self, count: u64, at: DateTime<Utc>) -> AccessRecord {
        AccessRecord {
            patient_key: self.patient_key.clone(),
            accountability: Some(Accountability {
                kind: Some(KIND_AUDIT_READ.into()),
                operator: Some(self.operator.clone()),
                audit_query: Some(self.query.clone()),
                result_count: Some(i64::try_from(count).unwrap_or(i64::MAX)),
                ..Accountability::default()
            }),
            ..AccessRecord::operators(self.method, "access_log", at)
        }
    }
}

/// The operator calling, as their (verified) certificate names them.
pub fn operator_of<T>(request: &tonic::Request<T>) -> String {
    let peer = request
        .peer_certs()
        .and_then(|certs: Arc<Vec<_>>| certs.first().map(|c| peer_of(c.as_ref())));
    match peer {
        Some(Ok(Peer::Operator { role, id })) => format!("{}:{id}", role.as_str()),
        Some(Ok(Peer::Facility(f))) => format!("facility:{f}"),
        _ => UNAUTHENTICATED.to_string(),
    }
}

/// `name=value` for each filter that is set, after the method: what was asked,
/// never a patient's identifiers (the patient is kept as the record's patient key).
pub fn describe(method: &str, filters: &[(&str, String)]) -> String {
    let mut out = method.to_string();
    for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(' ');
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Decision;

    #[test]
    fn a_read_is_described_by_its_filters_only() {
        assert_eq!(
            describe(
                "QueryAccessLog",
                &[
                    ("facility", "0411234567".into()),
                    ("staff_id", String::new())
                ]
            ),
            "QueryAccessLog facility=0411234567"
        );
        let read = AuditRead {
            operator: "auditor:a".into(),
            method: "QueryAccessLog",
            query: "QueryAccessLog patient=given".into(),
            patient_key: Some("04110017||123|00".into()),
        };
        let r = read.record(7, chrono::Utc::now());
        let a = r.accountability.expect("section");
        assert_eq!(a.kind.as_deref(), Some(KIND_AUDIT_READ));
        assert_eq!(a.result_count, Some(7));
        assert_eq!(r.patient_key.as_deref(), Some("04110017||123|00"));
        assert_eq!(r.decision, Decision::Allowed);
    }

    #[test]
    fn without_a_certificate_the_operator_is_unauthenticated() {
        assert_eq!(operator_of(&tonic::Request::new(())), UNAUTHENTICATED);
    }
}

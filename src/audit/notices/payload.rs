//! The notice as the receiver gets it: the webhook's JSON body and the spool's
//! line, one contract (docs/notices.md).

use serde::Serialize;

use crate::store::OutboxNotice;

/// `schema` of every notice: a receiver checks it before reading the rest.
pub const NOTICE_SCHEMA: &str = "onshi.patient-notice.v1";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NoticePayload {
    pub schema: &'static str,
    /// The access record's id: the idempotency key (also in the header).
    pub notice_id: String,
    /// When the data was viewed, RFC 3339 in Japan time.
    pub accessed_at: String,
    /// The patient, by insured-number key `insurer|symbol|number|branch`.
    pub patient_key: String,
    /// The facility's 10-digit code and, when the registry knows it, its name.
    pub facility_code: String,
    pub facility_name: Option<String>,
    /// What was shown: `qualification`, `drug_history`, `health_checkups`, ...
    pub items: String,
    pub method: String,
    /// `life_or_body_exemption` or `patient_consent`.
    pub consent_basis: String,
    /// With the exemption: the reason category, e.g. `impaired_consciousness`.
    pub reason_category: Option<String>,
    /// Where to cite the access: chain and position in the access log.
    pub chain_id: String,
    pub seq: u64,
}

impl NoticePayload {
    pub fn of(n: &OutboxNotice, facility_name: Option<String>) -> NoticePayload {
        let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| {
            chrono::FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("UTC is an offset"))
        });
        NoticePayload {
            schema: NOTICE_SCHEMA,
            notice_id: n.record_id.clone(),
            accessed_at: n.at.with_timezone(&jst).to_rfc3339(),
            patient_key: n.patient_key.clone(),
            facility_code: n.facility.clone().unwrap_or_default(),
            facility_name,
            items: n.items.clone(),
            method: n.method.clone(),
            consent_basis: n.consent_basis.clone().unwrap_or_default(),
            reason_category: n.exemption_category.clone(),
            chain_id: n.chain_id.clone(),
            seq: n.seq,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_the_documented_one() {
        let n = OutboxNotice {
            record_id: "r-1".into(),
            chain_id: "c1".into(),
            seq: 3,
            at: chrono::DateTime::from_timestamp_nanos(1_647_529_200_000_000_000),
            facility: Some("0411234567".into()),
            method: "GetDrugHistory".into(),
            items: "drug_history".into(),
            consent_basis: Some("life_or_body_exemption".into()),
            exemption_category: Some("impaired_consciousness".into()),
            patient_key: "04110017|a|1|00".into(),
            attempts: 0,
        };
        let json: serde_json::Value =
            serde_json::from_str(&NoticePayload::of(&n, Some("仙台病院".into())).to_json())
                .expect("json");
        assert_eq!(json["schema"], NOTICE_SCHEMA);
        assert_eq!(json["notice_id"], "r-1");
        assert_eq!(json["accessed_at"], "2022-03-18T00:00:00+09:00");
        assert_eq!(json["facility_name"], "仙台病院");
        assert_eq!(json["reason_category"], "impaired_consciousness");
        assert_eq!(json["items"], "drug_history");
        assert_eq!(json["seq"], 3);
    }
}

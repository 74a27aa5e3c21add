//! The access log as JSON lines or CSV, for auditors' own tools. One row per record,
//! with its chain position so an export can be checked against `audit verify`.

use std::io::Write;

use chrono::SecondsFormat;
use serde::Serialize;

use crate::domain::jst::jst;
use crate::store::{AccessRecord, Accountability, StoredRecord};

/// One exported record; field names are the column names of the CSV.
#[derive(Debug, Default, Serialize)]
pub struct ExportRow<'a> {
    /// RFC 3339 in Japan time, to the nanosecond.
    pub at: String,
    pub id: &'a str,
    pub method: &'a str,
    pub items: &'a str,
    pub decision: &'a str,
    pub reason: Option<&'a str>,
    pub grpc_code: i32,
    pub facility: Option<&'a str>,
    pub staff_id: Option<&'a str>,
    pub staff_role: Option<&'a str>,
    pub patient_key: Option<&'a str>,
    /// The keys of the patients the reply showed besides (an attribute search's
    /// candidates), in the order shown, joined by spaces (a key holds none).
    pub disclosed_patients: String,
    pub identification: Option<&'a str>,
    pub search_id: Option<&'a str>,
    pub consent_basis: Option<&'a str>,
    pub exemption_reason: Option<&'a str>,
    pub exemption_identification: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub activation_id: Option<&'a str>,
    pub upstream_result: Option<&'a str>,
    pub needs_review: bool,
    pub chain_id: &'a str,
    pub seq: u64,
    pub prev_hash: &'a str,
    pub hash: &'a str,
    /// `emergency_viewing` for 救急時医療情報閲覧, `disaster` when stated so.
    pub access_mode: Option<&'a str>,
    /// The kinds the patient's consent covered: `all`, or e.g. `drugs,checkups`.
    pub consent_kinds: Option<&'a str>,
    /// A temporary site's call: the site, its kind, name and sponsor.
    pub site_id: Option<&'a str>,
    pub site_kind: Option<&'a str>,
    pub site_name: Option<&'a str>,
    pub site_sponsor: Option<&'a str>,
    /// The professional's licence registration number, when the call named one.
    pub licence_number: Option<&'a str>,
    /// With the exemption: the reason's category.
    pub exemption_category: Option<&'a str>,
    /// Empty for a terminal's call; `review_outcome` or `audit_read` otherwise.
    pub record_kind: Option<&'a str>,
    /// Of a review outcome: the access reviewed, the outcome and its note.
    pub subject_record: Option<&'a str>,
    pub review_outcome: Option<&'a str>,
    pub review_note: Option<&'a str>,
    /// Of a review outcome or a read of the log: the operator.
    pub operator: Option<&'a str>,
    /// Of a read of the log: the query and how many records it returned.
    pub audit_query: Option<&'a str>,
    pub result_count: Option<i64>,
    /// A notice to the patient was queued with this record.
    pub patient_notice: bool,
}

impl<'a> From<&'a StoredRecord> for ExportRow<'a> {
    fn from(s: &'a StoredRecord) -> Self {
        let r = &s.record;
        ExportRow {
            at: r
                .at
                .with_timezone(&jst())
                .to_rfc3339_opts(SecondsFormat::AutoSi, false),
            id: &r.id,
            method: &r.method,
            items: &r.items,
            decision: r.decision.as_str(),
            reason: r.reason.as_deref(),
            grpc_code: r.grpc_code,
            facility: r.facility.as_deref(),
            staff_id: r.staff_id.as_deref(),
            staff_role: r.staff_role.as_deref(),
            patient_key: r.patient_key.as_deref(),
            disclosed_patients: r.disclosed_patients.join(" "),
            identification: r.identification.as_deref(),
            search_id: r.search_id.as_deref(),
            consent_basis: r.consent_basis.as_deref(),
            exemption_reason: r.exemption_reason.as_deref(),
            exemption_identification: r.exemption_identification.as_deref(),
            purpose: r.purpose.as_deref(),
            activation_id: r.activation_id.as_deref(),
            upstream_result: r.upstream_result.as_deref(),
            needs_review: r.needs_review,
            chain_id: &s.chain_id,
            seq: s.seq,
            prev_hash: &s.prev_hash,
            hash: &s.hash,
            access_mode: r.clinical.as_ref().and_then(|c| c.access_mode.as_deref()),
            consent_kinds: r.clinical.as_ref().and_then(|c| c.consent_kinds.as_deref()),
            ..Self::later_sections(r)
        }
    }
}

impl<'a> ExportRow<'a> {
    /// The site's and the accountability sections' columns; the rest empty.
    fn later_sections(r: &'a AccessRecord) -> Self {
        let a = r.accountability.as_ref();
        let text =
            |f: fn(&'a Accountability) -> &'a Option<String>| a.and_then(|a| f(a).as_deref());
        ExportRow {
            site_id: r.site.site_id.as_deref(),
            site_kind: r.site.site_kind.as_deref(),
            site_name: r.site.site_name.as_deref(),
            site_sponsor: r.site.site_sponsor.as_deref(),
            licence_number: r.site.licence_number.as_deref(),
            exemption_category: text(|a| &a.exemption_category),
            record_kind: text(|a| &a.kind),
            subject_record: text(|a| &a.subject_record),
            review_outcome: text(|a| &a.outcome),
            review_note: text(|a| &a.note),
            operator: text(|a| &a.operator),
            audit_query: text(|a| &a.audit_query),
            result_count: a.and_then(|a| a.result_count),
            patient_notice: a.is_some_and(|a| a.patient_notice),
            ..ExportRow::default()
        }
    }
}

/// Writes pages of records in one format; the CSV header comes once, first.
pub enum Exporter<W: Write> {
    Jsonl(W),
    Csv(Box<csv::Writer<W>>),
    /// FHIR R4 AuditEvents, one per line (`crate::audit::fhir`).
    Fhir(W),
}

impl<W: Write> Exporter<W> {
    pub fn jsonl(out: W) -> Self {
        Exporter::Jsonl(out)
    }

    pub fn csv(out: W) -> Self {
        Exporter::Csv(Box::new(csv::Writer::from_writer(out)))
    }

    pub fn fhir(out: W) -> Self {
        Exporter::Fhir(out)
    }

    pub fn write(&mut self, record: &StoredRecord) -> std::io::Result<()> {
        let row = ExportRow::from(record);
        match self {
            Exporter::Fhir(out) => {
                serde_json::to_writer(&mut *out, &super::fhir::audit_event(record))?;
                out.write_all(b"\n")
            }
            Exporter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")
            }
            Exporter::Csv(out) => out.serialize(row).map_err(std::io::Error::other),
        }
    }

    pub fn finish(self) -> std::io::Result<()> {
        match self {
            Exporter::Jsonl(mut out) | Exporter::Fhir(mut out) => out.flush(),
            Exporter::Csv(mut out) => out.flush(),
        }
    }
}

//! "Review queue" (auditors, reviewers): the flagged accesses not yet reviewed,
//! oldest first with their age and context, each with a form to record an outcome;
//! a facility's or a patient's accesses (auditors); and a selection exported as CSV
//! or FHIR AuditEvents with the same writer as `audit export`. Every read goes
//! through the audit service, which logs it; an export is logged as a read too.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};

use super::Console;
use super::caller::Caller;
use super::error::PageError;
use super::form::Posted;
use super::page::{bilingual, csrf_field, esc, instant, jst, layout, message};
use super::paths;
use crate::audit::export::Exporter;
use crate::audit::read_log::{AuditRead, describe};
use crate::audit::review::Outcome;
use crate::proto::audit_service_server::AuditService;
use crate::proto::{
    AccessLogEntry, InsuredNumber, ListUnreviewedRequest, Paging, QueryAccessLogRequest,
    QueryPatientAccessesRequest, RecordReviewOutcomeRequest,
};

pub const OUTCOME: &str = "/console/review/outcome";
pub const EXPORT: &str = "/console/review/export";
/// At most this many records on a page.
const PAGE: u32 = 200;

fn paging() -> Option<Paging> {
    Some(Paging {
        page_size: 100,
        max_records: PAGE,
        page_token: String::new(),
    })
}

#[derive(serde::Deserialize, Default)]
pub struct Asked {
    facility: Option<String>,
    patient: Option<String>,
    done: Option<String>,
}

pub async fn page(
    State(console): State<Console>,
    caller: Caller,
    Query(q): Query<Asked>,
) -> Result<Html<String>, PageError> {
    caller
        .may(paths::LIST_UNREVIEWED)
        .map_err(PageError::Refused)?;
    let mut body = String::new();
    if let Some(id) = &q.done {
        body.push_str(&message(
            "ok",
            &format!("レビュー結果を記録しました / outcome recorded: {id}"),
        ));
    }
    let facility = q.facility.clone().unwrap_or_default().trim().to_string();
    let request = caller.request(ListUnreviewedRequest {
        facility_code: facility.clone(),
        paging: paging(),
    });
    let mut pages = console.audit.list_unreviewed(request).await?.into_inner();
    let mut queue = Vec::new();
    while let Some(page) = pages.next().await {
        queue.extend(page?.entries);
    }
    queue.sort_by_key(|e| e.at.as_ref().map(|t| t.seconds));
    body.push_str(&format!(
        "<h2 id=\"queue-heading\" data-count=\"{}\">{}</h2>",
        queue.len(),
        bilingual(
            &format!("未レビュー {} 件（古い順）", queue.len()),
            "unreviewed, oldest first"
        )
    ));
    body.push_str(&entries_table(&console, &caller, &queue, true));
    if caller.can(paths::QUERY_ACCESS_LOG) {
        body.push_str(&lookup_form(&q));
        body.push_str(
            &accesses(
                &console,
                &caller,
                &facility,
                q.patient.as_deref().unwrap_or_default(),
            )
            .await?,
        );
        body.push_str(&export_form(&console, &caller));
    }
    Ok(layout(
        &caller,
        "review",
        ("アクセスのレビュー", "Review queue"),
        &body,
    ))
}

fn lookup_form(q: &Asked) -> String {
    format!(
        "<h2>{}</h2><form method=\"get\" action=\"/console/review\" id=\"lookup\">\
         <label>施設コード <span class=\"en\">facility</span> <input name=\"facility\" value=\"{}\"></label> \
         <label>被保険者 <span class=\"en\">patient INSURER|SYMBOL|NUMBER|BRANCH</span> <input name=\"patient\" value=\"{}\"></label> \
         <button>検索 <span class=\"en\">Find</span></button></form>",
        bilingual(
            "施設・患者のアクセス",
            "A facility's or a patient's accesses"
        ),
        esc(q.facility.as_deref().unwrap_or_default()),
        esc(q.patient.as_deref().unwrap_or_default()),
    )
}

fn age(seconds: u64) -> String {
    let (d, h) = (seconds / 86_400, (seconds % 86_400) / 3600);
    format!("{d}日 {h}時間 <span class=\"en\">{d} d {h} h</span>")
}

/// The entries, each with a checkbox for export and, in the queue, an outcome form.
fn entries_table(
    console: &Console,
    caller: &Caller,
    entries: &[AccessLogEntry],
    queue: bool,
) -> String {
    if entries.is_empty() {
        return format!(
            "<p>{}</p>",
            bilingual("該当するアクセスはありません", "No accesses")
        );
    }
    let review = queue && caller.can(paths::RECORD_REVIEW_OUTCOME);
    let export = caller.can(paths::QUERY_ACCESS_LOG);
    let mut rows = String::new();
    for e in entries {
        let tick = if export {
            format!(
                "<input type=\"checkbox\" name=\"record\" form=\"export\" value=\"{}\">",
                esc(&e.record_id)
            )
        } else {
            String::new()
        };
        let outcome = if review {
            outcome_form(console, caller, &e.record_id)
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr data-record=\"{}\"><td>{tick}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{outcome}</td></tr>",
            esc(&e.record_id), if queue { age(e.age_seconds) } else { String::new() },
            jst(instant(e.at.as_ref())), esc(&e.facility_code), esc(&e.staff_id), esc(&e.staff_role),
            esc(&e.method), esc(&e.exemption_reason), esc(&e.exemption_category), esc(&e.patient_key),
        ));
    }
    format!(
        "<table class=\"entries\"><tr><th></th><th>経過 <span class=\"en\">age</span></th><th>日時 <span class=\"en\">at</span></th>\
         <th>施設 <span class=\"en\">facility</span></th><th>職員 <span class=\"en\">staff</span></th><th>操作 <span class=\"en\">method</span></th>\
         <th>理由 <span class=\"en\">reason</span></th><th>区分 <span class=\"en\">category</span></th><th>患者 <span class=\"en\">patient</span></th>\
         <th>結果 <span class=\"en\">outcome</span></th></tr>{rows}</table>"
    )
}

fn outcome_form(console: &Console, caller: &Caller, record: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{OUTCOME}\" class=\"outcome\">{}<input type=\"hidden\" name=\"record\" value=\"{}\">\
         <select name=\"outcome\"><option value=\"justified\">正当 / justified</option><option value=\"not_justified\">不当 / not justified</option>\
         <option value=\"needs_follow_up\">要確認 / needs follow-up</option></select> <input name=\"note\" placeholder=\"メモ / note\"> \
         <button>記録 <span class=\"en\">Record</span></button></form>",
        csrf_field(console, caller, OUTCOME),
        esc(record)
    )
}

fn export_form(console: &Console, caller: &Caller) -> String {
    format!(
        "<form method=\"post\" action=\"{EXPORT}\" id=\"export\">{}<label>{} <select name=\"format\"><option value=\"csv\">CSV</option>\
         <option value=\"fhir\">FHIR AuditEvent (NDJSON)</option></select></label> <button>書き出し <span class=\"en\">Export</span></button></form>",
        csrf_field(console, caller, EXPORT),
        bilingual(
            "選択したアクセスを書き出す",
            "Export the selected accesses as"
        ),
    )
}

/// The accesses of a facility (QueryAccessLog) or of a patient (QueryPatientAccesses).
async fn accesses(
    console: &Console,
    caller: &Caller,
    facility: &str,
    patient: &str,
) -> Result<String, PageError> {
    let patient = patient.trim();
    if !patient.is_empty() {
        caller
            .may(paths::QUERY_PATIENT_ACCESSES)
            .map_err(PageError::Refused)?;
        let parts: Vec<&str> = patient.split('|').map(str::trim).collect();
        let [insurer, symbol, number, branch] = parts[..] else {
            return Err(PageError::BadInput(
                "the patient is INSURER|SYMBOL|NUMBER|BRANCH".into(),
            ));
        };
        let insured = InsuredNumber {
            insurer_number: insurer.into(),
            symbol: symbol.into(),
            number: number.into(),
            branch: branch.into(),
        };
        let request = caller.request(QueryPatientAccessesRequest {
            patient: Some(insured),
            time: None,
            paging: paging(),
        });
        let mut pages = console
            .audit
            .query_patient_accesses(request)
            .await?
            .into_inner();
        let mut rows = String::new();
        while let Some(page) = pages.next().await {
            for a in page?.accesses {
                rows.push_str(&format!(
                    "<tr><td><input type=\"checkbox\" name=\"record\" form=\"export\" value=\"{}\"></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&a.record_id), jst(instant(a.at.as_ref())), esc(&a.facility_code), esc(&a.method), esc(&a.items)
                ));
            }
        }
        return Ok(format!(
            "<table id=\"patient-accesses\"><tr><th></th><th>日時 <span class=\"en\">at</span></th><th>施設 <span class=\"en\">facility</span></th>\
             <th>操作 <span class=\"en\">method</span></th><th>項目 <span class=\"en\">items</span></th></tr>{rows}</table>"
        ));
    }
    if facility.is_empty() {
        return Ok(String::new());
    }
    let request = caller.request(QueryAccessLogRequest {
        facility_code: facility.to_string(),
        paging: paging(),
        ..QueryAccessLogRequest::default()
    });
    let mut pages = console.audit.query_access_log(request).await?.into_inner();
    let mut entries = Vec::new();
    while let Some(page) = pages.next().await {
        entries.extend(page?.entries);
    }
    Ok(entries_table(console, caller, &entries, false))
}

pub async fn outcome(
    State(console): State<Console>,
    posted: Posted,
) -> Result<Response, PageError> {
    let caller = &posted.caller;
    caller
        .may(paths::RECORD_REVIEW_OUTCOME)
        .map_err(PageError::Refused)?;
    let outcome = Outcome::parse(posted.get("outcome")).ok_or_else(|| {
        PageError::BadInput(format!("unknown outcome {:?}", posted.get("outcome")))
    })?;
    let request = RecordReviewOutcomeRequest {
        record_id: posted.get("record").to_string(),
        outcome: outcome.wire(),
        note: posted.get("note").to_string(),
    };
    let done = console
        .audit
        .record_review_outcome(caller.request(request))
        .await?
        .into_inner();
    let id: String =
        url::form_urlencoded::byte_serialize(done.outcome_record_id.as_bytes()).collect();
    Ok(Redirect::to(&format!("/console/review?done={id}")).into_response())
}

/// The selected records in the chosen format, as a download; the read is logged.
pub async fn export(State(console): State<Console>, posted: Posted) -> Result<Response, PageError> {
    let caller = &posted.caller;
    caller
        .may(paths::QUERY_ACCESS_LOG)
        .map_err(PageError::Refused)?;
    let ids = posted.all("record");
    if ids.is_empty() {
        return Err(PageError::BadInput(
            "select at least one access to export".into(),
        ));
    }
    let format = posted.get("format");
    let mut out = Vec::new();
    let mut exporter = match format {
        "csv" => Exporter::csv(&mut out),
        "fhir" => Exporter::fhir(&mut out),
        other => {
            return Err(PageError::BadInput(format!(
                "unknown format {other:?}: csv or fhir"
            )));
        }
    };
    let unavailable =
        |e: &dyn std::fmt::Display| PageError::Service(tonic::Status::unavailable(e.to_string()));
    let mut count = 0u64;
    for id in ids {
        if let Some(record) = console
            .store
            .record_by_id(id.trim())
            .await
            .map_err(|e| unavailable(&e))?
        {
            exporter.write(&record).map_err(|e| unavailable(&e))?;
            count += 1;
        }
    }
    exporter.finish().map_err(|e| unavailable(&e))?;
    let read = AuditRead {
        operator: caller.actor(),
        method: "ConsoleExport",
        query: describe(
            "ConsoleExport",
            &[
                ("format", format.to_string()),
                ("records", ids.len().to_string()),
            ],
        ),
        patient_key: None,
    };
    console
        .log
        .commit(read.record(count, console.log.now()))
        .await
        .map_err(|e| unavailable(&e))?;
    let (kind, name) = if format == "csv" {
        ("text/csv; charset=utf-8", "accesses.csv")
    } else {
        ("application/fhir+ndjson", "accesses.ndjson")
    };
    Ok((
        [
            (CONTENT_TYPE, kind.to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response())
}

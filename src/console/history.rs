//! "History": an activation's revisions on a timeline (who, when, under which notice,
//! what the areas' windows became), and "was facility F allowed at T?" answered by
//! the activation service's own check, with the revision that decided it.

use axum::extract::{Query, State};
use axum::response::Html;

use super::Console;
use super::caller::Caller;
use super::error::{PageError, describe};
use super::page::{bilingual, esc, instant, jst, layout, message, timestamp, typed_instant};
use super::paths;
use crate::proto::activation_admin_service_server::ActivationAdminService;
use crate::proto::{
    ActivationHistory, CheckFacilityRequest, FacilityDecision, GetHistoryRequest,
    ListActivationsRequest,
};

#[derive(serde::Deserialize, Default)]
pub struct Asked {
    activation: Option<String>,
    facility: Option<String>,
    at: Option<String>,
    done: Option<String>,
}

pub async fn page(
    State(console): State<Console>,
    caller: Caller,
    Query(q): Query<Asked>,
) -> Result<Html<String>, PageError> {
    caller.may(paths::GET_HISTORY).map_err(PageError::Refused)?;
    let list = console
        .admin
        .list_activations(caller.request(ListActivationsRequest {}))
        .await?
        .into_inner();
    let chosen = q
        .activation
        .clone()
        .filter(|a| !a.is_empty())
        .or_else(|| list.activations.last().map(|a| a.id.clone()));
    let mut body = String::new();
    match q.done.as_deref() {
        Some("created") => body.push_str(&message(
            "ok",
            "発動を記録しました / activation recorded and in force",
        )),
        Some("revised") => body.push_str(&message(
            "ok",
            "改訂を記録しました / revision recorded and in force",
        )),
        _ => {}
    }
    let options: String = list
        .activations
        .iter()
        .map(|a| {
            let selected = if Some(&a.id) == chosen.as_ref() {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{}\"{selected}>{}</option>",
                esc(&a.id),
                esc(&a.event)
            )
        })
        .collect();
    body.push_str(&format!(
        "<form method=\"get\" action=\"/console/history\"><label>発動 <span class=\"en\">activation</span> \
         <select name=\"activation\">{options}</select></label> <button>表示 <span class=\"en\">Show</span></button></form>"
    ));
    let history = match &chosen {
        Some(id) => Some(
            console
                .admin
                .get_history(caller.request(GetHistoryRequest {
                    activation_id: id.clone(),
                }))
                .await?
                .into_inner(),
        ),
        None => None,
    };
    body.push_str(&question(&console, &caller, &q).await?);
    if let Some(h) = &history {
        body.push_str(&timeline(h));
    }
    Ok(layout(&caller, "history", ("発動の履歴", "History"), &body))
}

fn timeline(h: &ActivationHistory) -> String {
    let mut items = String::new();
    for r in &h.revisions {
        let windows: String = r
            .windows
            .iter()
            .map(|w| {
                format!(
                    "<li>{} {} {} : {} → {}</li>",
                    esc(&w.kind),
                    esc(&w.code),
                    esc(&w.name),
                    jst(instant(w.start.as_ref())),
                    jst(instant(w.end.as_ref()))
                )
            })
            .collect();
        items.push_str(&format!(
            "<li data-revision=\"{}\"><strong>rev {} · {}</strong> {} — {} {}<details><summary>{} {}</summary><ul>{windows}</ul></details></li>",
            r.number, r.number, esc(&r.kind), jst(instant(r.recorded_at.as_ref())), esc(&r.author),
            if r.notice.is_empty() { String::new() } else { format!("（{}）", esc(&r.notice)) },
            r.windows.len(), bilingual("地域", "areas"),
        ));
    }
    format!(
        "<h2>{}</h2><ol class=\"timeline\" id=\"timeline\">{items}</ol>",
        bilingual("改訂の経過", "Revisions")
    )
}

/// The question form, and its answer when asked.
async fn question(console: &Console, caller: &Caller, q: &Asked) -> Result<String, PageError> {
    let mut out = format!(
        "<h2>{}</h2><form method=\"get\" action=\"/console/history\" id=\"allowed\">\
         <input type=\"hidden\" name=\"activation\" value=\"{}\">\
         <label>施設コード <span class=\"en\">facility code</span> <input name=\"facility\" id=\"facility\" value=\"{}\"></label> \
         <label>時点 <span class=\"en\">at</span> <input name=\"at\" id=\"allowed-at\" placeholder=\"2024-01-10 10:03\" value=\"{}\"></label> \
         <button id=\"ask\">確認 <span class=\"en\">Ask</span></button></form>",
        bilingual(
            "この時点でこの施設は利用できたか",
            "Was this facility allowed at this instant?"
        ),
        esc(q.activation.as_deref().unwrap_or_default()),
        esc(q.facility.as_deref().unwrap_or_default()),
        esc(q.at.as_deref().unwrap_or_default()),
    );
    let Some(facility) = q
        .facility
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    else {
        return Ok(out);
    };
    caller
        .may(paths::CHECK_FACILITY)
        .map_err(PageError::Refused)?;
    let at = typed_instant("at", q.at.as_deref())
        .map_err(PageError::BadInput)?
        .unwrap_or_else(|| console.clock.now());
    let request = caller.request(CheckFacilityRequest {
        facility_code: facility.to_string(),
        at: Some(timestamp(at)),
        as_known_at: None,
    });
    let decision = match console.admin.check_facility(request).await {
        Ok(d) => d.into_inner(),
        Err(s) => {
            out.push_str(&message("error", &describe(&s)));
            return Ok(out);
        }
    };
    // The revisions of the activation that allowed it, to name the deciding one.
    let history = if decision.allowed {
        let request = caller.request(GetHistoryRequest {
            activation_id: decision.activation_id.clone(),
        });
        Some(console.admin.get_history(request).await?.into_inner())
    } else {
        None
    };
    out.push_str(&answer(&decision, facility, at, history.as_ref()));
    Ok(out)
}

fn answer(
    d: &FacilityDecision,
    facility: &str,
    at: chrono::DateTime<chrono::Utc>,
    history: Option<&ActivationHistory>,
) -> String {
    if !d.allowed {
        return format!(
            "<p class=\"answer no\" id=\"answer\" data-allowed=\"false\">{} — {}: {}</p>",
            bilingual(
                &format!("{facility} は {} に利用できませんでした", jst(at)),
                "not allowed"
            ),
            esc(&d.reason),
            esc(&d.explanation)
        );
    }
    let area = d.area.clone().unwrap_or_default();
    let deciding = history.and_then(|h| deciding_revision(h, &area));
    format!(
        "<p class=\"answer yes\" id=\"answer\" data-allowed=\"true\" data-revision=\"{}\">{} — {} {} {} ({} → {}){}</p>",
        deciding.unwrap_or(0),
        bilingual(
            &format!("{facility} は {} に利用できました", jst(at)),
            "allowed"
        ),
        esc(&d.event),
        esc(&area.kind),
        esc(&area.name),
        jst(instant(area.start.as_ref())),
        jst(instant(area.end.as_ref())),
        deciding
            .map(|r| format!("; {} rev {r}", bilingual("決定した改訂", "decided by")))
            .unwrap_or_default(),
    )
}

/// The latest revision that gave `area` the window it had: the one that decided.
fn deciding_revision(h: &ActivationHistory, area: &crate::proto::AreaWindow) -> Option<u32> {
    h.revisions
        .iter()
        .filter(|r| {
            r.windows.iter().any(|w| {
                w.kind == area.kind
                    && w.code == area.code
                    && w.end == area.end
                    && w.start == area.start
            })
        })
        .map(|r| r.number)
        .min()
}

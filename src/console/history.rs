//! "History": an activation's revisions on a timeline (who, when, under which notice,
//! what the areas' windows became), and "was facility F (or temporary site S)
//! allowed at T?" answered by the operators' services' own checks, with the revision
//! that decided it.

use axum::extract::{Query, State};
use axum::response::Html;

use super::Console;
use super::caller::Caller;
use super::error::{PageError, describe};
use super::page::{bilingual, esc, instant, jst, layout, message, timestamp, typed_instant};
use super::paths;
use crate::proto::activation_admin_service_server::ActivationAdminService;
use crate::proto::site_admin_service_server::SiteAdminService;
use crate::proto::{
    ActivationHistory, CheckFacilityRequest, CheckSiteRequest, FacilityDecision, GetHistoryRequest,
    GetSiteRequest, ListActivationsRequest, SiteDecision,
};

#[derive(serde::Deserialize, Default)]
pub struct Asked {
    activation: Option<String>,
    facility: Option<String>,
    site: Option<String>,
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
    let (asked, decided) = question(&console, &caller, &q).await?;
    // The activation asked for; else the one that allowed the facility; else the last.
    let history = match (q.activation.as_deref().filter(|a| !a.is_empty()), decided) {
        (None, Some(h)) => Some(h),
        (chosen, _) => match chosen.or_else(|| list.activations.last().map(|a| a.id.as_str())) {
            Some(id) => {
                let request = caller.request(GetHistoryRequest {
                    activation_id: id.to_string(),
                });
                Some(console.admin.get_history(request).await?.into_inner())
            }
            None => None,
        },
    };
    let shown = history
        .as_ref()
        .and_then(|h| h.activation.as_ref())
        .map(|a| a.id.as_str());
    let mut body = done_message(q.done.as_deref());
    body.push_str(&chooser(&list.activations, shown));
    body.push_str(&asked);
    if let Some(h) = &history {
        body.push_str(&timeline(h));
    }
    Ok(layout(&caller, "history", ("発動の履歴", "History"), &body))
}

fn done_message(done: Option<&str>) -> String {
    match done {
        Some("created") => message(
            "ok",
            "発動を記録しました / activation recorded and in force",
        ),
        Some("revised") => message("ok", "改訂を記録しました / revision recorded and in force"),
        _ => String::new(),
    }
}

/// The form choosing which activation's revisions to show.
fn chooser(activations: &[crate::proto::ActivationView], shown: Option<&str>) -> String {
    let options: String = activations
        .iter()
        .map(|a| {
            let selected = if Some(a.id.as_str()) == shown {
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
    format!(
        "<form method=\"get\" action=\"/console/history\"><label>発動 <span class=\"en\">activation</span> \
         <select name=\"activation\">{options}</select></label> <button>表示 <span class=\"en\">Show</span></button></form>"
    )
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

/// The question form and its answer when asked, with the history of the activation
/// that allowed the facility.
async fn question(
    console: &Console,
    caller: &Caller,
    q: &Asked,
) -> Result<(String, Option<ActivationHistory>), PageError> {
    let mut out = format!(
        "<h2>{}</h2><form method=\"get\" action=\"/console/history\" id=\"allowed\">\
         <input type=\"hidden\" name=\"activation\" value=\"{}\">\
         <label>施設コード <span class=\"en\">facility code</span> <input name=\"facility\" id=\"facility\" value=\"{}\"></label> \
         <label>または臨時拠点 ID <span class=\"en\">or temporary site id</span> <input name=\"site\" id=\"site\" value=\"{}\"></label> \
         <label>時点 <span class=\"en\">at</span> <input name=\"at\" id=\"allowed-at\" placeholder=\"2024-01-10 10:03\" value=\"{}\"></label> \
         <button id=\"ask\">確認 <span class=\"en\">Ask</span></button></form>",
        bilingual(
            "この時点でこの施設は利用できたか",
            "Was this facility allowed at this instant?"
        ),
        esc(q.activation.as_deref().unwrap_or_default()),
        esc(q.facility.as_deref().unwrap_or_default()),
        esc(q.site.as_deref().unwrap_or_default()),
        esc(q.at.as_deref().unwrap_or_default()),
    );
    let asked_site = q.site.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(site) = asked_site {
        let at = typed_instant("at", q.at.as_deref()).map_err(PageError::BadInput)?;
        return site_question(console, caller, site, at, out).await;
    }
    let Some(facility) = q
        .facility
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    else {
        return Ok((out, None));
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
            return Ok((out, None));
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
    Ok((out, history))
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

/// "Was site S allowed at T?", by the site service's own check (the state known
/// then), with the site's revision in force at T and its activation's history.
async fn site_question(
    console: &Console,
    caller: &Caller,
    site: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
    mut out: String,
) -> Result<(String, Option<ActivationHistory>), PageError> {
    caller.may(paths::CHECK_SITE).map_err(PageError::Refused)?;
    let at = at.unwrap_or_else(|| console.clock.now());
    let request = caller.request(CheckSiteRequest {
        site_id: site.to_string(),
        at: Some(timestamp(at)),
    });
    let decision = match console.sites.check_site(request).await {
        Ok(d) => d.into_inner(),
        Err(s) => {
            out.push_str(&message("error", &describe(&s)));
            return Ok((out, None));
        }
    };
    let revision = if caller.can(paths::GET_SITE) {
        let request = caller.request(GetSiteRequest {
            site_id: site.to_string(),
        });
        let view = console.sites.get_site(request).await?.into_inner();
        view.revisions
            .iter()
            .filter(|r| instant(r.recorded_at.as_ref()) <= at)
            .map(|r| r.number)
            .max()
    } else {
        None
    };
    let history = if decision.activation_id.is_empty() {
        None
    } else {
        let request = caller.request(GetHistoryRequest {
            activation_id: decision.activation_id.clone(),
        });
        Some(console.admin.get_history(request).await?.into_inner())
    };
    out.push_str(&site_answer(&decision, site, at, revision));
    Ok((out, history))
}

fn site_answer(
    d: &SiteDecision,
    site: &str,
    at: chrono::DateTime<chrono::Utc>,
    revision: Option<u32>,
) -> String {
    let state = revision
        .map(|r| format!("; {} rev {r}", bilingual("拠点の改訂", "site revision")))
        .unwrap_or_default();
    if d.allowed {
        return format!(
            "<p class=\"answer yes\" id=\"answer\" data-allowed=\"true\" data-site-revision=\"{}\">{}{state}</p>",
            revision.unwrap_or(0),
            bilingual(
                &format!("臨時拠点 {} は {} に利用できました", esc(site), jst(at)),
                "allowed"
            ),
        );
    }
    format!(
        "<p class=\"answer no\" id=\"answer\" data-allowed=\"false\" data-site-revision=\"{}\">{} — {}: {}{state}</p>",
        revision.unwrap_or(0),
        bilingual(
            &format!(
                "臨時拠点 {} は {} に利用できませんでした",
                esc(site),
                jst(at)
            ),
            "not allowed"
        ),
        esc(&d.reason),
        esc(&d.explanation)
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

//! "Now": the areas in force at an instant (now, or "as it stood at T": as the
//! operators knew it then), on the map and in a table, each with its window and the
//! time left; temporary sites as points.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{DateTime, Utc};

use super::Console;
use super::caller::Caller;
use super::error::PageError;
use super::map::{Layers, Shade, render_with_close_up};
use super::page::{bilingual, esc, instant, jst, layout, time_left, timestamp, typed_instant};
use super::paths;
use crate::proto::activation_admin_service_server::ActivationAdminService;
use crate::proto::{ActivationView, GetActivationRequest, ListActivationsRequest};

/// One area in force: activation, kind, code, name, window.
pub struct InForce {
    pub event: String,
    pub activation_id: String,
    pub kind: String,
    pub code: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The activations as known at `at` (now: as known now).
pub async fn activations_at(
    console: &Console,
    caller: &Caller,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<ActivationView>, PageError> {
    caller
        .may(paths::LIST_ACTIVATIONS)
        .map_err(PageError::Refused)?;
    let all = console
        .admin
        .list_activations(caller.request(ListActivationsRequest {}))
        .await?
        .into_inner()
        .activations;
    let Some(t) = at else {
        return Ok(all);
    };
    let mut known = Vec::new();
    for a in all.iter().filter(|a| instant(a.created_at.as_ref()) <= t) {
        let request = caller.request(GetActivationRequest {
            activation_id: a.id.clone(),
            as_known_at: Some(timestamp(t)),
        });
        known.push(console.admin.get_activation(request).await?.into_inner());
    }
    Ok(known)
}

/// The areas whose window contains `t`.
pub fn in_force(activations: &[ActivationView], t: DateTime<Utc>) -> Vec<InForce> {
    let mut out = Vec::new();
    for a in activations {
        for w in &a.areas {
            let (start, end) = (instant(w.start.as_ref()), instant(w.end.as_ref()));
            if start <= t && t < end {
                out.push(InForce {
                    event: a.event.clone(),
                    activation_id: a.id.clone(),
                    kind: w.kind.clone(),
                    code: w.code.clone(),
                    name: w.name.clone(),
                    start,
                    end,
                });
            }
        }
    }
    out
}

#[derive(serde::Deserialize)]
pub struct At {
    at: Option<String>,
}

pub async fn page(
    State(console): State<Console>,
    caller: Caller,
    Query(q): Query<At>,
) -> Result<Html<String>, PageError> {
    let asked = typed_instant("at", q.at.as_deref()).map_err(PageError::BadInput)?;
    let t = asked.unwrap_or_else(|| console.clock.now());
    let activations = activations_at(&console, &caller, asked).await?;
    let areas = in_force(&activations, t);
    let mut layers = Layers::default();
    place_areas(&console, &areas, &mut layers, Shade::InForce).await;
    let sites = sites_at(&console, &caller, t, &mut layers).await;
    let heading = match asked {
        Some(t) => bilingual(
            &format!("{} 時点（当時の記録）", jst(t)),
            &format!("as it stood at {}", jst(t)),
        ),
        None => bilingual(&format!("現在 {}", jst(t)), &format!("now, {}", jst(t))),
    };
    let body = format!(
        "<form method=\"get\" action=\"/console/now\">\
         <label>時点 <span class=\"en\">as it stood at</span> \
         <input name=\"at\" id=\"at\" placeholder=\"2024-01-05 10:03\" value=\"{}\"></label> \
         <button>表示 <span class=\"en\">Show</span></button> <a href=\"/console/now\">現在 <span class=\"en\">now</span></a></form>\
         <h2 id=\"instant\">{heading}</h2><div class=\"cols\"><div>{}{}</div><div>{}{}</div></div>",
        esc(q.at.as_deref().unwrap_or_default()),
        render_with_close_up(&layers, "有効な地域 / areas in force"),
        legend(),
        areas_table(&areas, t, asked.is_none()),
        sites,
    );
    Ok(layout(
        &caller,
        "now",
        ("現在の有効地域", "Areas in force"),
        &body,
    ))
}

fn legend() -> String {
    "<p class=\"legend\"><span class=\"on\"></span>有効 <span class=\"en\">in force</span>\
     <span class=\"site\"></span>臨時拠点 <span class=\"en\">temporary site</span></p>"
        .into()
}

/// Draws each area: prefectures shaded, municipalities and single facilities (at
/// their registered municipality) as points.
pub async fn place_areas(console: &Console, areas: &[InForce], layers: &mut Layers, shade: Shade) {
    for a in areas {
        let label = format!("{} {} — {} → {}", a.name, a.code, jst(a.start), jst(a.end));
        match a.kind.as_str() {
            "prefecture" => {
                if let Ok(p) = a.code.parse() {
                    layers.prefectures.insert(p, shade);
                }
            }
            "municipality" => {
                let p = a.code.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
                layers.points.push((p, a.name.clone(), shade, label));
            }
            _ => {
                if let Ok(Some(f)) = console.store.facility(&a.code).await
                    && let Ok(Some(m)) = console.store.municipality(&f.municipality).await
                {
                    layers.points.push((m.prefecture, m.name, shade, label));
                }
            }
        }
    }
}

fn areas_table(areas: &[InForce], t: DateTime<Utc>, live: bool) -> String {
    if areas.is_empty() {
        return format!(
            "<p id=\"none-in-force\">{}</p>",
            bilingual("有効な地域はありません", "No area is in force")
        );
    }
    let mut by_event: HashMap<&str, usize> = HashMap::new();
    for a in areas {
        *by_event.entry(a.event.as_str()).or_default() += 1;
    }
    let mut rows = String::new();
    for a in areas {
        let left = if live {
            format!(
                "<td data-live-end=\"{}\">{}</td>",
                a.end.timestamp_millis(),
                time_left(a.end, t)
            )
        } else {
            format!("<td>{}</td>", time_left(a.end, t))
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"/console/history?activation={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{left}</tr>",
            url::form_urlencoded::byte_serialize(a.activation_id.as_bytes()).collect::<String>(),
            esc(&a.event),
            esc(&a.kind),
            esc(&a.code),
            esc(&a.name),
            jst(a.start),
            jst(a.end),
        ));
    }
    let summary: Vec<String> = by_event
        .iter()
        .map(|(e, n)| format!("{} ({n})", esc(e)))
        .collect();
    format!(
        "<p id=\"in-force-count\" data-count=\"{}\">{}: {}</p><table id=\"in-force\"><tr><th>発動 <span class=\"en\">activation</span></th>\
         <th>種別 <span class=\"en\">kind</span></th><th>コード <span class=\"en\">code</span></th><th>名称 <span class=\"en\">name</span></th>\
         <th>開始 <span class=\"en\">from</span></th><th>終了 <span class=\"en\">until</span></th><th>残り <span class=\"en\">left</span></th></tr>{rows}</table>",
        areas.len(),
        bilingual(&format!("有効な地域 {} 件", areas.len()), "areas in force"),
        summary.join(", ")
    )
}

/// The temporary sites open at `t`, as points and a list, for callers whose role
/// may read sites.
async fn sites_at(
    console: &Console,
    caller: &Caller,
    t: DateTime<Utc>,
    layers: &mut Layers,
) -> String {
    if !caller.can(paths::LIST_SITES) {
        return String::new();
    }
    let Ok(sites) = console.store.list_sites().await else {
        return super::page::message("error", "臨時拠点を読めません / the sites cannot be read");
    };
    let mut rows = String::new();
    for s in &sites {
        let Some(w) = s.window_at(t).filter(|w| w.contains(t)) else {
            continue;
        };
        let m = console
            .store
            .municipality(s.municipality.as_str())
            .await
            .ok()
            .flatten();
        let name = m
            .as_ref()
            .map_or_else(|| s.municipality.to_string(), |m| m.name.clone());
        if let Some(m) = &m {
            layers.points.push((
                m.prefecture,
                m.name.clone(),
                Shade::Site,
                format!("{} ({})", s.name, s.kind.name_ja()),
            ));
        }
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.id),
            esc(&s.name),
            esc(s.kind.name_ja()),
            esc(&name),
            jst(w.end)
        ));
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "<h2>{}</h2><table id=\"sites\"><tr><th>ID</th><th>名称 <span class=\"en\">name</span></th><th>種別 <span class=\"en\">kind</span></th>\
         <th>市区町村 <span class=\"en\">municipality</span></th><th>終了 <span class=\"en\">until</span></th></tr>{rows}</table>",
        bilingual("臨時拠点", "Temporary sites")
    )
}

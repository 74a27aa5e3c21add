//! "A notice, previewed": the notice's text (or a list of names or codes) resolved
//! against the municipality master, what it would open shown on the map and in a
//! table with facility counts, what could not be resolved listed; then, and only
//! then, a new activation or a revision of one (extend or add areas), through the
//! activation service as any operator's change, attributed to the certificate.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::Console;
use super::caller::Caller;
use super::error::PageError;
use super::form::Posted;
use super::map::{Layers, Shade, render_with_close_up};
use super::page::{bilingual, csrf_field, esc, layout};
use super::paths;
use super::resolve::{Resolution, resolve};
use crate::domain::facility::FacilityKind;
use crate::proto::activation_admin_service_server::ActivationAdminService;
use crate::proto::{
    AddAreasRequest, Areas, AreasPreview, ChangeContext, CreateActivationRequest, Days,
    ExtendWindowRequest, ListActivationsRequest, PreviewAreasRequest, WindowEnd, WindowSpec,
    window_end, window_spec,
};

pub const PREVIEW: &str = "/console/notice/preview";
pub const CREATE: &str = "/console/notice/create";
pub const REVISE: &str = "/console/notice/revise";

pub async fn form_page(
    State(console): State<Console>,
    caller: Caller,
) -> Result<Html<String>, PageError> {
    caller
        .may(paths::PREVIEW_AREAS)
        .map_err(PageError::Refused)?;
    Ok(layout(
        &caller,
        "notice",
        ("通知のプレビュー", "Notice preview"),
        &paste_form(&console, &caller, ""),
    ))
}

fn paste_form(console: &Console, caller: &Caller, text: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{PREVIEW}\" id=\"paste\">{}\
         <label for=\"text\">{}</label><textarea name=\"text\" id=\"text\">{}</textarea>\
         <p><button id=\"preview\">プレビュー <span class=\"en\">Preview</span></button></p></form>",
        csrf_field(console, caller, PREVIEW),
        bilingual(
            "通知の本文、または市区町村名・コード（検査数字の有無を問わない）を貼り付けてください",
            "Paste the notice, or municipality names or codes (with or without the check digit)"
        ),
        esc(text)
    )
}

pub async fn preview(
    State(console): State<Console>,
    posted: Posted,
) -> Result<Html<String>, PageError> {
    let caller = &posted.caller;
    caller
        .may(paths::PREVIEW_AREAS)
        .map_err(PageError::Refused)?;
    let text = posted.get("text");
    let prefectures: Vec<u8> = (1..=47).collect();
    let master: Vec<_> = console
        .store
        .facility_counts(&prefectures)
        .await
        .map_err(|e| PageError::Service(tonic::Status::unavailable(e.to_string())))?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let resolution = resolve(text, &master);
    let areas = areas_of(&resolution);
    let counts = console
        .admin
        .preview_areas(caller.request(PreviewAreasRequest {
            areas: Some(areas.clone()),
        }))
        .await?
        .into_inner();
    let opened: Vec<String> = counts
        .prefectures
        .iter()
        .flat_map(|p| p.municipalities_opened.iter().map(|m| m.code.clone()))
        .collect();
    let kinds = console
        .store
        .facility_kind_counts(&opened)
        .await
        .map_err(|e| PageError::Service(tonic::Status::unavailable(e.to_string())))?;
    let mut body = paste_form(&console, caller, text);
    body.push_str(&format!(
        "<h2 id=\"resolved\" data-municipalities=\"{}\" data-facilities=\"{}\">{}</h2>",
        areas.municipalities.len(),
        counts.facilities_opened,
        bilingual(
            &format!(
                "{} 市区町村・{} 都道府県全域を認識、{} 施設が対象",
                areas.municipalities.len(),
                areas.prefectures.len(),
                counts.facilities_opened
            ),
            &format!(
                "{} municipalities and {} whole prefectures resolved; {} facilities would open",
                areas.municipalities.len(),
                areas.prefectures.len(),
                counts.facilities_opened
            ),
        )
    ));
    body.push_str(&kind_totals(&kinds));
    body.push_str(&unresolved_table(&resolution));
    body.push_str(&format!(
        "<div class=\"cols\"><div>{}</div><div>{}</div></div>",
        render_with_close_up(&preview_layers(&counts), "対象になる地域 / what would open"),
        counts_table(&counts, &kinds)
    ));
    if !areas.municipalities.is_empty() || !areas.prefectures.is_empty() {
        body.push_str(&change_forms(&console, caller, &areas).await?);
    }
    Ok(layout(
        caller,
        "notice",
        ("通知のプレビュー", "Notice preview"),
        &body,
    ))
}

fn areas_of(r: &Resolution) -> Areas {
    Areas {
        prefectures: r.prefectures.iter().map(|p| format!("{p:02}")).collect(),
        municipalities: r.codes(),
        facilities: Vec::new(),
    }
}

fn preview_layers(p: &AreasPreview) -> Layers {
    let mut layers = Layers::default();
    for pref in &p.prefectures {
        let Ok(code) = pref.code.parse() else {
            continue;
        };
        if pref.whole {
            layers.prefectures.insert(code, Shade::WouldOpen);
        }
        for m in &pref.municipalities_opened {
            let label = format!("{} {} — {} 施設 / facilities", m.name, m.code, m.facilities);
            layers
                .points
                .push((code, m.name.clone(), Shade::WouldOpen, label));
        }
    }
    layers
}

type KindCounts = [(String, FacilityKind, u64)];

fn kind_name(kind: FacilityKind) -> &'static str {
    match kind {
        FacilityKind::Medical => "医科",
        FacilityKind::Dental => "歯科",
        FacilityKind::Pharmacy => "薬局",
        FacilityKind::VisitingNursing => "訪問看護",
    }
}

/// "医科 12 · 薬局 3" for one municipality (all of them with `None`).
fn by_kind(kinds: &KindCounts, municipality: Option<&str>) -> String {
    FacilityKind::ALL
        .iter()
        .filter_map(|k| {
            let n: u64 = kinds
                .iter()
                .filter(|(m, kind, _)| kind == k && municipality.is_none_or(|c| c == m))
                .map(|(_, _, n)| n)
                .sum();
            (n > 0).then(|| format!("{} {n}", kind_name(*k)))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn kind_totals(kinds: &KindCounts) -> String {
    format!(
        "<p id=\"by-kind\">{}: {}</p>",
        bilingual(
            "種別ごとの施設数",
            "facilities by kind (medical, dental, pharmacy, home-visit nursing)"
        ),
        esc(&by_kind(kinds, None))
    )
}

fn counts_table(p: &AreasPreview, kinds: &KindCounts) -> String {
    let mut rows = String::new();
    for pref in &p.prefectures {
        rows.push_str(&format!(
            "<tr class=\"prefecture\"><th colspan=\"2\">{} {}{}</th><td class=\"num\">{}</td><td></td></tr>",
            esc(&pref.code),
            esc(&pref.name),
            if pref.whole {
                " 全域 <span class=\"en\">whole</span>"
            } else {
                ""
            },
            pref.facilities_opened
        ));
        for m in &pref.municipalities_opened {
            rows.push_str(&format!(
                "<tr class=\"municipality\" data-code=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&m.code), esc(&m.code), esc(&m.name), m.facilities, esc(&by_kind(kinds, Some(&m.code)))
            ));
        }
    }
    format!(
        "<table id=\"opened\"><tr><th>コード <span class=\"en\">code</span></th><th>市区町村 <span class=\"en\">municipality</span></th>\
         <th>施設数 <span class=\"en\">facilities</span></th><th>種別 <span class=\"en\">by kind</span></th></tr>{rows}</table>"
    )
}

fn unresolved_table(r: &Resolution) -> String {
    if r.unresolved.is_empty() {
        return format!(
            "<p id=\"unresolved-none\">{}</p>",
            bilingual(
                "認識できなかった語はありません",
                "Everything named was resolved"
            )
        );
    }
    let rows: String = r
        .unresolved
        .iter()
        .map(|(t, why)| format!("<tr><td>{}</td><td>{}</td></tr>", esc(t), esc(why)))
        .collect();
    format!(
        "<h2>{}</h2><table id=\"unresolved\"><tr><th>記載 <span class=\"en\">written</span></th><th>理由 <span class=\"en\">why</span></th></tr>{rows}</table>",
        bilingual("認識できなかったもの", "Not resolved")
    )
}

fn hidden_areas(areas: &Areas) -> String {
    format!(
        "<input type=\"hidden\" name=\"municipalities\" value=\"{}\"><input type=\"hidden\" name=\"prefectures\" value=\"{}\">",
        esc(&areas.municipalities.join(" ")),
        esc(&areas.prefectures.join(" "))
    )
}

/// The forms that make the previewed areas take effect, for a caller who may.
async fn change_forms(
    console: &Console,
    caller: &Caller,
    areas: &Areas,
) -> Result<String, PageError> {
    let mut out = String::new();
    if caller.can(paths::CREATE_ACTIVATION) {
        out.push_str(&format!(
            "<form method=\"post\" action=\"{CREATE}\" id=\"create\" data-confirm=\"この内容で発動しますか？ / Activate these areas?\">\
             <fieldset><legend>{}</legend>{}{}\
             <label>事象 <span class=\"en\">event</span> <input name=\"event\" id=\"event\" required></label> \
             <label>通知 <span class=\"en\">notice</span> <input name=\"notice\" id=\"notice-ref\"></label><br>\
             <label>初日 <span class=\"en\">first day</span> <input name=\"first_day\" id=\"first-day\" type=\"date\" required></label> \
             <label>最終日 <span class=\"en\">last day (empty: one week)</span> <input name=\"last_day\" id=\"last-day\" type=\"date\"></label> \
             <button id=\"activate\">発動 <span class=\"en\">Activate</span></button></fieldset></form>",
            bilingual("新しい発動", "New activation"),
            csrf_field(console, caller, CREATE),
            hidden_areas(areas),
        ));
    }
    if caller.can(paths::EXTEND_WINDOW) {
        let list = console
            .admin
            .list_activations(caller.request(ListActivationsRequest {}))
            .await?
            .into_inner();
        let options: String = list
            .activations
            .iter()
            .map(|a| {
                format!(
                    "<option value=\"{}\">{} (rev {})</option>",
                    esc(&a.id),
                    esc(&a.event),
                    a.revision
                )
            })
            .collect();
        out.push_str(&format!(
            "<form method=\"post\" action=\"{REVISE}\" id=\"revise\" data-confirm=\"この改訂を記録しますか？ / Record this revision?\">\
             <fieldset><legend>{}</legend>{}{}\
             <label>発動 <span class=\"en\">activation</span> <select name=\"activation\" id=\"activation\">{options}</select></label><br>\
             <label><input type=\"radio\" name=\"op\" value=\"extend\" checked> 延長 <span class=\"en\">extend until the end of</span></label> \
             <input name=\"until\" id=\"until\" type=\"date\"><br>\
             <label><input type=\"radio\" name=\"op\" value=\"add\" id=\"op-add\"> 地域追加 <span class=\"en\">add areas, from</span></label> \
             <input name=\"first_day\" type=\"date\"> – <input name=\"last_day\" type=\"date\"> \
             <label>通知 <span class=\"en\">notice</span> <input name=\"notice\"></label> \
             <button id=\"record-revision\">改訂を記録 <span class=\"en\">Record revision</span></button></fieldset></form>",
            bilingual("既存の発動を改訂", "Revise an activation"),
            csrf_field(console, caller, REVISE),
            hidden_areas(areas),
        ));
    }
    Ok(out)
}

fn posted_areas(posted: &Posted) -> Areas {
    let words = |name: &str| {
        posted
            .get(name)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    Areas {
        prefectures: words("prefectures"),
        municipalities: words("municipalities"),
        facilities: Vec::new(),
    }
}

fn change(posted: &Posted) -> Option<ChangeContext> {
    Some(ChangeContext {
        author: posted.caller.actor(),
        notice: posted.get("notice").to_string(),
        expected_revision: 0,
    })
}

fn days(first: &str, last: &str) -> Option<WindowSpec> {
    let form = if last.is_empty() {
        window_spec::Form::OneWeekFrom(first.to_string())
    } else {
        window_spec::Form::Days(Days {
            first_day: first.to_string(),
            last_day: last.to_string(),
        })
    };
    Some(WindowSpec { form: Some(form) })
}

/// Where a change is shown once recorded: the activation's history.
fn recorded(id: &str, what: &str) -> Response {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    Redirect::to(&format!("/console/history?activation={id}&done={what}")).into_response()
}

pub async fn create(State(console): State<Console>, posted: Posted) -> Result<Response, PageError> {
    posted
        .caller
        .may(paths::CREATE_ACTIVATION)
        .map_err(PageError::Refused)?;
    let request = CreateActivationRequest {
        event: posted.get("event").to_string(),
        areas: Some(posted_areas(&posted)),
        window: days(posted.get("first_day"), posted.get("last_day")),
        change: change(&posted),
    };
    let view = console
        .admin
        .create_activation(posted.caller.request(request))
        .await?
        .into_inner();
    Ok(recorded(&view.id, "created"))
}

pub async fn revise(State(console): State<Console>, posted: Posted) -> Result<Response, PageError> {
    let caller = &posted.caller;
    let activation_id = posted.get("activation").to_string();
    let view = match posted.get("op") {
        "add" => {
            caller.may(paths::ADD_AREAS).map_err(PageError::Refused)?;
            let request = AddAreasRequest {
                activation_id,
                areas: Some(posted_areas(&posted)),
                window: days(posted.get("first_day"), posted.get("last_day")),
                change: change(&posted),
            };
            console.admin.add_areas(caller.request(request)).await?
        }
        "extend" => {
            caller
                .may(paths::EXTEND_WINDOW)
                .map_err(PageError::Refused)?;
            let request = ExtendWindowRequest {
                activation_id,
                areas: Some(posted_areas(&posted)),
                until: Some(WindowEnd {
                    form: Some(window_end::Form::EndOfDay(posted.get("until").to_string())),
                }),
                change: change(&posted),
            };
            console.admin.extend_window(caller.request(request)).await?
        }
        other => {
            return Err(PageError::BadInput(format!(
                "unknown change {other:?}: extend or add"
            )));
        }
    };
    Ok(recorded(&view.into_inner().id, "revised"))
}

//! The HTML around every page: escaping, the navigation, the operator's name, and
//! the hidden CSRF field of a form. Japanese first, English beside it.

use axum::response::Html;
use chrono::{DateTime, TimeDelta, Utc};

use super::Console;
use super::caller::Caller;
use super::paths;

/// Text made safe for an HTML element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// "日本語 / English", the English smaller.
pub fn bilingual(ja: &str, en: &str) -> String {
    format!("{} <span class=\"en\">{}</span>", esc(ja), esc(en))
}

const NAV: [(&str, &str, &str, &str); 4] = [
    ("now", "現在", "Now", paths::LIST_ACTIVATIONS),
    (
        "notice",
        "通知のプレビュー",
        "Notice preview",
        paths::PREVIEW_AREAS,
    ),
    ("history", "履歴", "History", paths::GET_HISTORY),
    ("review", "レビュー", "Review queue", paths::LIST_UNREVIEWED),
];

/// A whole page: `current` names the navigation entry shown as selected.
pub fn layout(caller: &Caller, current: &str, title: (&str, &str), body: &str) -> Html<String> {
    let nav: String = NAV
        .iter()
        .filter(|(_, _, _, method)| caller.can(method))
        .map(|(id, ja, en, _)| {
            let selected = if *id == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!(
                "<a href=\"/console/{id}\"{selected}>{}</a>",
                bilingual(ja, en)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{ja} — onshi-gateway</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <header><strong>オン資 緊急時機能 運用コンソール <span class=\"en\">Operators' console</span></strong>\
         <nav>{nav}</nav><span class=\"who\">{who}</span></header>\
         <main><h1>{title}</h1>{body}</main></body></html>",
        ja = esc(title.0),
        title = bilingual(title.0, title.1),
        who = esc(&caller.actor()),
    ))
}

/// The hidden field carrying the form's CSRF token.
pub fn csrf_field(console: &Console, caller: &Caller, action: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&console
            .csrf
            .token(action, &caller.fingerprint, console.clock.now()))
    )
}

/// An instant in Japan time, minutes precision: what the pages show.
pub fn jst(at: DateTime<Utc>) -> String {
    at.with_timezone(&crate::domain::jst::jst())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// What is left of a window at `now`: "残り 3日 4時間 / 3 d 4 h left".
pub fn time_left(end: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = end - now;
    if left <= TimeDelta::zero() {
        return bilingual("終了", "ended");
    }
    let (d, h, m) = (
        left.num_days(),
        left.num_hours() % 24,
        left.num_minutes() % 60,
    );
    if d > 0 {
        bilingual(&format!("残り {d}日 {h}時間"), &format!("{d} d {h} h left"))
    } else {
        bilingual(
            &format!("残り {h}時間 {m}分"),
            &format!("{h} h {m} min left"),
        )
    }
}

/// A message box: `kind` is `ok` or `error`.
pub fn message(kind: &str, text: &str) -> String {
    format!("<p class=\"msg {kind}\" role=\"status\">{}</p>", esc(text))
}

/// A protobuf instant as chrono's (the epoch if absent or out of range).
pub fn instant(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_default()
}

/// An instant as the operators' API takes it.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

/// The instant an operator typed (`parse_instant`'s forms), or none if left empty.
pub fn typed_instant(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => crate::domain::jst::parse_instant(field, s).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn time_left_counts_down_and_says_when_ended() {
        let now = Utc::now();
        assert!(time_left(now + TimeDelta::hours(50), now).contains("2日 2時間"));
        assert!(time_left(now + TimeDelta::minutes(90), now).contains("1時間 30分"));
        assert!(time_left(now, now).contains("終了"));
    }
}

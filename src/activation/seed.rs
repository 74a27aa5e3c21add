//! A new activation from the operators' text forms, for seeding a store without the
//! admin service (tests, the benchmark). Operators go through the admin service,
//! which validates the same way (`activation_admin`).

use crate::domain::facility::parse_facility_code;
use crate::domain::jst::{Window, parse_instant};
use crate::domain::prefecture::Prefecture;
use crate::store::{AreaKey, NewActivation};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdminError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The window from the operator's forms: `until` (exclusive instant), `last_day`
/// (inclusive day, to 24:00 JST) or `one_week` (the notice's default: seven days from
/// the first report, e.g. 17 March to the end of 23 March).
pub fn window_from(
    from: &str,
    until: Option<&str>,
    last_day: Option<&str>,
    one_week: bool,
) -> Result<Window, AdminError> {
    let day = |field: &str, s: &str| {
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| invalid(field, format!("`{s}` is not a date YYYY-MM-DD")))
    };
    let window = match (until, last_day, one_week) {
        (Some(until), None, false) => {
            let start = parse_instant("from", from).map_err(|m| invalid("from", m))?;
            let end = parse_instant("until", until).map_err(|m| invalid("until", m))?;
            Window::new(start, end).map_err(|e| invalid("until", e.to_string()))?
        }
        (None, Some(last), false) => Window::days(day("from", from)?, day("last_day", last)?)
            .map_err(|e| invalid("last_day", e.to_string()))?,
        (None, None, true) => Window::one_week_from(day("from", from)?),
        _ => {
            return Err(invalid(
                "until",
                "give exactly one of: until (exclusive instant), last_day (inclusive day), one_week",
            ));
        }
    };
    Ok(window)
}

/// A validated new activation.
pub fn new_activation(
    event: &str,
    notice: &str,
    prefectures: &[String],
    facilities: &[String],
    window: Window,
    by: &str,
) -> Result<NewActivation, AdminError> {
    let event = event.trim();
    if event.is_empty() {
        return Err(invalid("event", "name the event, e.g. 令和4年福島沖地震"));
    }
    let mut areas = Vec::new();
    for p in prefectures
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    {
        let prefecture = Prefecture::parse(p).ok_or_else(|| {
            invalid(
                "prefecture",
                format!("`{p}` is not a prefecture code 01-47"),
            )
        })?;
        areas.push(AreaKey::Prefecture(prefecture.code()));
    }
    for f in facilities
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
    {
        let code =
            parse_facility_code("facility", f).map_err(|v| invalid("facility", v.description))?;
        areas.push(AreaKey::Facility(code.to_string()));
    }
    if areas.is_empty() {
        return Err(invalid("areas", "name at least one prefecture or facility"));
    }
    areas.dedup();
    Ok(NewActivation {
        event: event.to_string(),
        notice: notice.trim().to_string(),
        areas,
        window,
        created_by: by.to_string(),
        at: chrono::Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jst::jst;
    use chrono::TimeZone;

    #[test]
    fn fukushima_2022_in_all_three_forms_is_the_same_window() {
        let expected_end = jst()
            .with_ymd_and_hms(2022, 3, 24, 0, 0, 0)
            .single()
            .expect("valid");
        let a = window_from("2022-03-17", None, Some("2022-03-23"), false).expect("last day");
        let b = window_from("2022-03-17", None, None, true).expect("one week");
        let c = window_from("2022-03-17", Some("2022-03-23 24:00"), None, false).expect("until");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.end, expected_end);
    }

    #[test]
    fn refuses_end_before_start_unknown_prefecture_and_no_area() {
        assert!(window_from("2022-03-17", Some("2022-03-16"), None, false).is_err());
        assert!(window_from("2022-03-17", None, None, false).is_err());
        let w = window_from("2022-03-17", None, None, true).expect("window");
        let err = new_activation("e", "", &["48".into()], &[], w, "t").expect_err("48");
        assert!(matches!(err, AdminError::Invalid { ref field, .. } if field == "prefecture"));
        assert!(new_activation("e", "", &[], &[], w, "t").is_err());
        assert!(new_activation(" ", "", &["04".into()], &[], w, "t").is_err());
        assert!(new_activation("e", "", &[], &["0410110018".into()], w, "t").is_err());
        assert!(new_activation("e", "", &[], &["0410110019".into()], w, "t").is_ok());
    }
}

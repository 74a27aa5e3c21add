//! Japan time. Notices state windows in JST calendar days ("until the end of 23
//! March") and times of day ("10 July at 16:00", "7 March at 24:00"); the gateway
//! stores and compares UTC instants, and shows them back in JST.

use std::fmt;

use chrono::{
    DateTime, Days, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta,
    TimeZone, Utc,
};
use unicode_normalization::UnicodeNormalization;

const JST_OFFSET_SECS: i32 = 9 * 3600;

/// UTC+09:00. Japan has no daylight saving time, so a fixed offset is exact.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(JST_OFFSET_SECS).expect("+09:00 is a valid offset")
}

/// Why a window cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("a window must end after it starts (start {start}, end {end})")]
    EndNotAfterStart { start: String, end: String },
    #[error("the last day {last} is before the first day {first}")]
    LastDayBeforeFirst { first: NaiveDate, last: NaiveDate },
    #[error("{0} is outside the supported date range")]
    OutOfRange(NaiveDate),
}

/// A half-open interval [start, end) of instants. Half-open so that a window ending
/// at 00:00 on 24 March and one starting then neither overlap nor leave a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Window, WindowError> {
        if end <= start {
            return Err(WindowError::EndNotAfterStart {
                start: to_jst_string(start),
                end: to_jst_string(end),
            });
        }
        Ok(Window { start, end })
    }

    /// Whether `at` is in [start, end).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// Whole JST days: from 00:00 JST of `first` to 00:00 JST of the day after
    /// `last_inclusive`, so "until the end of 23 March" ends at 24 March 00:00 JST.
    pub fn days(first: NaiveDate, last_inclusive: NaiveDate) -> Result<Window, WindowError> {
        if last_inclusive < first {
            return Err(WindowError::LastDayBeforeFirst {
                first,
                last: last_inclusive,
            });
        }
        let start = midnight_jst(first).ok_or(WindowError::OutOfRange(first))?;
        let end = last_inclusive
            .checked_add_days(Days::new(1))
            .and_then(midnight_jst)
            .ok_or(WindowError::OutOfRange(last_inclusive))?;
        Window::new(start, end)
    }

    /// The default activation: one week from the first report that the Disaster
    /// Relief Act applies, i.e. 00:00 JST of that day to 00:00 JST seven days later
    /// (2022-03-17 → until the end of 2022-03-23). At the ends of chrono's date range
    /// the bounds saturate rather than fail.
    pub fn one_week_from(first_report: NaiveDate) -> Window {
        let start = midnight_jst(first_report).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let end = first_report
            .checked_add_days(Days::new(7))
            .and_then(midnight_jst)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Window { start, end }
    }
}

impl fmt::Display for Window {
    /// `[start, end)` in JST RFC 3339.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            to_jst_string(self.start),
            to_jst_string(self.end)
        )
    }
}

/// 00:00 JST of `date` as a UTC instant; `None` only at the ends of chrono's range.
pub fn midnight_jst(date: NaiveDate) -> Option<DateTime<Utc>> {
    jst_to_utc(date.and_time(NaiveTime::MIN))
}

fn jst_to_utc(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    jst()
        .from_local_datetime(&local)
        .single()
        .map(|d| d.with_timezone(&Utc))
}

/// RFC 3339 in JST, e.g. `2022-03-24T00:00:00+09:00` (fractional seconds only when
/// present): what staff read in notices, denials and audit views.
pub fn to_jst_string(at: DateTime<Utc>) -> String {
    if at.naive_utc().checked_add_signed(jst_delta()).is_none() {
        // The JST wall time of the last instants chrono knows does not exist in
        // chrono's range (formatting it would panic); show UTC instead.
        return at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    }
    at.with_timezone(&jst())
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn jst_delta() -> TimeDelta {
    TimeDelta::seconds(i64::from(JST_OFFSET_SECS))
}

/// The JST calendar date at `now`: "today" for birth dates and look-back periods.
pub fn today_jst(now: DateTime<Utc>) -> NaiveDate {
    // Offset by hand: chrono's local view panics at the very end of its range.
    now.naive_utc()
        .checked_add_signed(jst_delta())
        .map_or(NaiveDate::MAX, |local| local.date())
}

/// Parses an instant as operators write them:
/// - RFC 3339 with an offset: `2024-03-07T16:00:00+09:00`, `2024-03-07T07:00:00Z`;
/// - `YYYY-MM-DD`: 00:00 JST that day;
/// - `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD HH:MM` (seconds optional): JST.
///
/// `24:00` (seconds, if any, zero) means 00:00 of the next day, as in "closing
/// 7 March 2024 at 24:00". Full-width digits and colons are accepted (NFKC).
pub fn parse_instant(field: &str, s: &str) -> Result<DateTime<Utc>, String> {
    let cleaned: String = s.nfkc().collect();
    let cleaned = cleaned.trim();
    parse_instant_inner(cleaned).ok_or_else(|| {
        format!(
            "{field}: {} is not an instant; use RFC 3339 with an offset (2024-03-07T16:00:00+09:00), \
             YYYY-MM-DD (00:00 JST), or YYYY-MM-DDTHH:MM / YYYY-MM-DD HH:MM in JST (24:00 is the end of that day)",
            super::input::quote(cleaned, 40)
        )
    })
}

fn parse_instant_inner(s: &str) -> Option<DateTime<Utc>> {
    let date = parse_ymd(s.get(..10)?)?;
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return midnight_jst(date);
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))?;
    let (time, offset) = split_offset(rest)?;
    let (date, time) = parse_hms(date, time)?;
    let local = date.and_time(time);
    match offset {
        None => jst_to_utc(local),
        Some(offset) => offset
            .from_local_datetime(&local)
            .single()
            .map(|d| d.with_timezone(&Utc)),
    }
}

/// Strict `YYYY-MM-DD` (ASCII digits, real date).
pub(crate) fn parse_ymd(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let y = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(y, num(5..7)?, num(8..10)?)
}

/// Splits a trailing `Z` or `±HH:MM` off the time.
fn split_offset(rest: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(time) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
        return Some((time, Some(FixedOffset::east_opt(0)?)));
    }
    let Some(pos) = rest.find(['+', '-']) else {
        return Some((rest, None));
    };
    let (time, off) = rest.split_at(pos);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let hm = off.get(1..)?;
    let b = hm.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !hm
            .bytes()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return None;
    }
    let h: i32 = hm.get(0..2)?.parse().ok()?;
    let m: i32 = hm.get(3..5)?.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    Some((
        time,
        Some(FixedOffset::east_opt(sign * (h * 3600 + m * 60))?),
    ))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction`; 24:00 rolls over to the next day;
/// a leap second (:60) is accepted as RFC 3339 allows.
fn parse_hms(date: NaiveDate, t: &str) -> Option<(NaiveDate, NaiveTime)> {
    let two = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = t.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if t.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let h = two(0..2)?;
    let m = two(3..5)?;
    let (s, nanos) = match t.len() {
        5 => (0, 0),
        8.. if t.as_bytes().get(5) == Some(&b':') => {
            let s = two(6..8)?;
            let frac = t.get(8..)?;
            let nanos = if frac.is_empty() {
                0
            } else {
                let digits = frac.strip_prefix('.')?;
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                // Keep nanosecond precision; further digits are truncated.
                digits
                    .bytes()
                    .chain(std::iter::repeat(b'0'))
                    .take(9)
                    .fold(0u32, |n, c| n * 10 + u32::from(c - b'0'))
            };
            (s, nanos)
        }
        _ => return None,
    };
    if h == 24 {
        if m != 0 || s != 0 || nanos != 0 {
            return None;
        }
        return Some((date.checked_add_days(Days::new(1))?, NaiveTime::MIN));
    }
    let time = if s == 60 {
        NaiveTime::from_hms_nano_opt(h, m, 59, 1_000_000_000 + nanos)?
    } else {
        NaiveTime::from_hms_nano_opt(h, m, s, nanos)?
    };
    Some((date, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn offset_is_plus_nine() {
        assert_eq!(jst().local_minus_utc(), 9 * 3600);
    }

    #[test]
    fn fukushima_2022_window_exact() {
        let w = Window::days(d(2022, 3, 17), d(2022, 3, 23)).unwrap();
        assert_eq!(w.start, utc("2022-03-17T00:00:00+09:00"));
        assert_eq!(w.end, utc("2022-03-24T00:00:00+09:00"));
        assert_eq!(w.start, utc("2022-03-16T15:00:00Z"));
        assert_eq!(Window::one_week_from(d(2022, 3, 17)), w);
        assert_eq!(
            w.to_string(),
            "[2022-03-17T00:00:00+09:00, 2022-03-24T00:00:00+09:00)"
        );
    }

    #[test]
    fn half_open_edges() {
        let w = Window::days(d(2022, 3, 17), d(2022, 3, 23)).unwrap();
        assert!(w.contains(w.start));
        assert!(!w.contains(w.start - Duration::nanoseconds(1)));
        assert!(w.contains(w.end - Duration::nanoseconds(1)));
        assert!(!w.contains(w.end));
        assert!(w.contains(utc("2022-03-23T23:59:59.999999999+09:00")));
        assert!(!w.contains(utc("2022-03-24T00:00:00+09:00")));
    }

    #[test]
    fn single_day_and_bad_windows() {
        let w = Window::days(d(2024, 3, 7), d(2024, 3, 7)).unwrap();
        assert_eq!(w.end - w.start, Duration::days(1));
        assert!(matches!(
            Window::days(d(2024, 3, 8), d(2024, 3, 7)),
            Err(WindowError::LastDayBeforeFirst { .. })
        ));
        let t = utc("2024-03-07T00:00:00+09:00");
        assert!(matches!(
            Window::new(t, t),
            Err(WindowError::EndNotAfterStart { .. })
        ));
        assert!(Window::new(t, t - Duration::seconds(1)).is_err());
        assert!(Window::new(t, t + Duration::nanoseconds(1)).is_ok());
        let e = Window::new(t, t).unwrap_err().to_string();
        assert!(e.contains("2024-03-07T00:00:00+09:00"), "{e}");
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let w = Window::one_week_from(NaiveDate::MAX);
        assert!(w.start < w.end);
        let w = Window::one_week_from(NaiveDate::MIN);
        assert!(w.start < w.end);
        assert!(Window::days(NaiveDate::MIN, NaiveDate::MIN).is_err());
        assert!(Window::days(NaiveDate::MAX, NaiveDate::MAX).is_err());
        let _ = Window::one_week_from(NaiveDate::MAX).to_string();
        let _ = to_jst_string(DateTime::<Utc>::MIN_UTC);
        let _ = to_jst_string(DateTime::<Utc>::MAX_UTC);
        let _ = today_jst(DateTime::<Utc>::MAX_UTC);
        assert!(parse_instant("f", "+262142-12-31T24:00").is_err());
    }

    #[test]
    fn one_week_crosses_month_and_year() {
        let w = Window::one_week_from(d(2023, 12, 28));
        assert_eq!(w.end, utc("2024-01-04T00:00:00+09:00"));
        let w = Window::one_week_from(d(2024, 8, 27));
        assert_eq!(w.end, utc("2024-09-03T00:00:00+09:00"));
    }

    #[test]
    fn parse_instant_forms() {
        let f = "window.end";
        assert_eq!(
            parse_instant(f, "2024-03-07T16:00:00+09:00"),
            Ok(utc("2024-03-07T07:00:00Z"))
        );
        assert_eq!(
            parse_instant(f, "2024-03-07T07:00:00Z"),
            Ok(utc("2024-03-07T16:00:00+09:00"))
        );
        assert_eq!(
            parse_instant(f, "2024-03-07T07:00:00.5-01:30"),
            Ok(utc("2024-03-07T08:30:00.5Z"))
        );
        assert_eq!(
            parse_instant(f, "2024-03-07"),
            Ok(utc("2024-03-07T00:00:00+09:00"))
        );
        assert_eq!(
            parse_instant(f, "2023-07-10T16:00"),
            Ok(utc("2023-07-10T16:00:00+09:00"))
        );
        assert_eq!(
            parse_instant(f, "2023-07-10 19:30"),
            Ok(utc("2023-07-10T19:30:00+09:00"))
        );
        assert_eq!(
            parse_instant(f, "2023-07-10 19:30:15"),
            Ok(utc("2023-07-10T19:30:15+09:00"))
        );
        assert_eq!(
            parse_instant(f, " ２０２３－０７－１０　１９：３０ "),
            Ok(utc("2023-07-10T19:30:00+09:00"))
        );
    }

    #[test]
    fn hour_24_is_next_midnight() {
        let f = "window.end";
        let end = utc("2024-03-08T00:00:00+09:00");
        assert_eq!(parse_instant(f, "2024-03-07T24:00"), Ok(end));
        assert_eq!(parse_instant(f, "2024-03-07 24:00:00"), Ok(end));
        assert_eq!(parse_instant(f, "2024-03-07T24:00:00+09:00"), Ok(end));
        assert_eq!(
            parse_instant(f, "2024-12-31T24:00"),
            Ok(utc("2025-01-01T00:00:00+09:00"))
        );
        assert_eq!(
            parse_instant(f, "2024-02-28T24:00"),
            Ok(utc("2024-02-29T00:00:00+09:00"))
        );
        assert!(parse_instant(f, "2024-03-07T24:01").is_err());
        assert!(parse_instant(f, "2024-03-07T24:00:01").is_err());
        assert!(parse_instant(f, "2024-03-07T24:00:00.1").is_err());
        assert!(parse_instant(f, "2024-03-07T25:00").is_err());
    }

    #[test]
    fn parse_instant_refusals_name_field_and_forms() {
        for bad in [
            "",
            "2024-3-7",
            "2024/03/07",
            "2024-02-30",
            "2024-03-07T",
            "2024-03-07T7:00",
            "2024-03-07T07:60",
            "2024-03-07X07:00",
            "2024-03-07T07:00+9",
            "2024-03-07T07:00+24:00",
            "2024-03-07T07:00:00.",
            "2024-03-07T07:00:00.x",
            "now",
            "２０２４年３月７日",
            "+2024-03-07",
        ] {
            let e = parse_instant("activation.start", bad).expect_err(bad);
            assert!(e.starts_with("activation.start:"), "{e}");
            assert!(e.contains("RFC 3339") && e.contains("YYYY-MM-DD"), "{e}");
        }
    }

    #[test]
    fn leap_second_and_long_fraction() {
        assert!(parse_instant("f", "2016-12-31T23:59:60Z").is_ok());
        assert_eq!(
            parse_instant("f", "2024-03-07T07:00:00.1234567891Z"),
            Ok(utc("2024-03-07T07:00:00.123456789Z"))
        );
    }

    #[test]
    fn display_and_today() {
        let t = utc("2022-03-16T15:00:00Z");
        assert_eq!(to_jst_string(t), "2022-03-17T00:00:00+09:00");
        assert_eq!(
            to_jst_string(t + Duration::milliseconds(5)),
            "2022-03-17T00:00:00.005+09:00"
        );
        assert_eq!(today_jst(utc("2022-03-16T14:59:59Z")), d(2022, 3, 16));
        assert_eq!(today_jst(utc("2022-03-16T15:00:00Z")), d(2022, 3, 17));
    }
}

//! Calendar dates in requests: the date of birth (OQS cross-checks every
//! qualification query against it) and the look-back period for medical information.

use chrono::{Months, NaiveDate};

use super::input::{clean, field_path, quote};
use super::jst::parse_ymd;
use super::{Gather, Reason, Violation};

/// The earliest date of birth accepted; anything earlier is a typing error.
pub const EARLIEST_BIRTH_DATE: (i32, u32, u32) = (1900, 1, 1);

fn earliest_birth_date() -> NaiveDate {
    let (y, m, d) = EARLIEST_BIRTH_DATE;
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Parses a strict `YYYY-MM-DD` date (after NFKC, so full-width digits pass) and
/// refuses with `reason` on `field`. Impossible dates such as 2023-02-30 are named in
/// the description rather than silently moved to another day.
pub fn parse_date(field: &str, raw: &str, reason: Reason) -> Result<NaiveDate, Violation> {
    let s = clean(raw);
    if let Some(date) = parse_ymd(&s) {
        return Ok(date);
    }
    let description = match impossible_date(&s) {
        Some(why) => format!("{s} is not a date: {why}"),
        None => format!(
            "expected a date as YYYY-MM-DD, e.g. 1950-04-01; found {}",
            quote(&s, 20)
        ),
    };
    Err(Violation::new(reason, field, description))
}

/// For text shaped like YYYY-MM-DD that is not a real date, why not.
fn impossible_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    let y: i32 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    if !(1..=12).contains(&m) {
        return Some(format!("there is no month {m}"));
    }
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = first.checked_add_months(Months::new(1))?;
    let days = next.signed_duration_since(first).num_days();
    Some(format!("{y:04}-{m:02} has {days} days"))
}

/// The patient's date of birth: required, a real date, not after `today` (JST) and
/// not before 1900-01-01.
pub fn parse_birth_date(field: &str, raw: &str, today: NaiveDate) -> Result<NaiveDate, Violation> {
    if clean(raw).is_empty() {
        return Err(Violation::new(
            Reason::BirthDateMissing,
            field,
            "the date of birth is required (YYYY-MM-DD)",
        ));
    }
    let date = parse_date(field, raw, Reason::BirthDateInvalid)?;
    if date > today {
        return Err(Violation::new(
            Reason::BirthDateInvalid,
            field,
            format!("the date of birth {date} is after today ({today}, Japan time)"),
        ));
    }
    let earliest = earliest_birth_date();
    if date < earliest {
        return Err(Violation::new(
            Reason::BirthDateInvalid,
            field,
            format!("the date of birth {date} is before {earliest}; check the year"),
        ));
    }
    Ok(date)
}

/// The period of medical information to view, both ends inclusive. An empty `from`
/// defaults to `today` minus `default_lookback_years` (29 February falls back to
/// 28 February), an empty `to` to `today`. Violations name `{field_prefix}.from` or
/// `{field_prefix}.to` (both when both are not dates); when the ends are in the
/// wrong order, the end the user typed is blamed (`from` when both were typed).
pub fn parse_period(
    field_prefix: &str,
    from: &str,
    to: &str,
    today: NaiveDate,
    default_lookback_years: u32,
) -> Result<(NaiveDate, NaiveDate), Violation> {
    let from_field = field_path(field_prefix, "from");
    let to_field = field_path(field_prefix, "to");
    let from_given = !clean(from).is_empty();
    let to_given = !clean(to).is_empty();
    let from_date = if from_given {
        parse_date(&from_field, from, Reason::PeriodInvalid)
    } else {
        Ok(today
            .checked_sub_months(Months::new(default_lookback_years.saturating_mul(12)))
            .unwrap_or(NaiveDate::MIN))
    };
    let to_date = if to_given {
        parse_date(&to_field, to, Reason::PeriodInvalid)
    } else {
        Ok(today)
    };
    // Both ends are read before either is refused, so one answer names both.
    let (from_date, to_date) = from_date.gather(to_date)?;
    if from_date > to_date {
        let field = if to_given && !from_given {
            to_field
        } else {
            from_field
        };
        return Err(Violation::new(
            Reason::PeriodInvalid,
            field,
            format!("the period starts on {from_date}, after it ends on {to_date}"),
        )
        .with("from", from_date.to_string())
        .with("to", to_date.to_string()));
    }
    Ok((from_date, to_date))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const TODAY: (i32, u32, u32) = (2024, 3, 7);

    fn today() -> NaiveDate {
        d(TODAY.0, TODAY.1, TODAY.2)
    }

    #[test]
    fn birth_date_accepted_at_the_edges() {
        assert_eq!(
            parse_birth_date("birth_date", "1950-04-01", today()),
            Ok(d(1950, 4, 1))
        );
        assert_eq!(
            parse_birth_date("birth_date", "1900-01-01", today()),
            Ok(d(1900, 1, 1))
        );
        assert_eq!(
            parse_birth_date("birth_date", "2024-03-07", today()),
            Ok(today())
        );
        assert_eq!(
            parse_birth_date("birth_date", "２０００－０２－２９", today()),
            Ok(d(2000, 2, 29))
        );
        assert_eq!(
            parse_birth_date("birth_date", " 2000-02-29 ", today()),
            Ok(d(2000, 2, 29))
        );
    }

    #[test]
    fn birth_date_missing() {
        for raw in ["", " ", "\u{3000}"] {
            let v = parse_birth_date("birth_date", raw, today()).unwrap_err();
            assert_eq!(v.reason, Reason::BirthDateMissing);
            assert_eq!(v.field, "birth_date");
        }
    }

    #[test]
    fn birth_date_refused_at_the_edges() {
        let v = parse_birth_date("birth_date", "2024-03-08", today()).unwrap_err();
        assert_eq!(v.reason, Reason::BirthDateInvalid);
        assert!(v.description.contains("after today"), "{}", v.description);
        let v = parse_birth_date("birth_date", "1899-12-31", today()).unwrap_err();
        assert_eq!(v.reason, Reason::BirthDateInvalid);
        assert!(
            v.description.contains("before 1900-01-01"),
            "{}",
            v.description
        );
    }

    #[test]
    fn impossible_dates_are_named() {
        let v = parse_birth_date("birth_date", "2023-02-30", today()).unwrap_err();
        assert_eq!(v.reason, Reason::BirthDateInvalid);
        assert!(v.description.contains("2023-02-30"), "{}", v.description);
        assert!(
            v.description.contains("2023-02 has 28 days"),
            "{}",
            v.description
        );
        let v = parse_birth_date("birth_date", "1999-02-29", today()).unwrap_err();
        assert!(v.description.contains("28 days"), "{}", v.description);
        let v = parse_birth_date("birth_date", "2001-13-01", today()).unwrap_err();
        assert!(v.description.contains("no month 13"), "{}", v.description);
        let v = parse_birth_date("birth_date", "2001-04-31", today()).unwrap_err();
        assert!(v.description.contains("30 days"), "{}", v.description);
        let v = parse_birth_date("birth_date", "2001-00-10", today()).unwrap_err();
        assert!(v.description.contains("no month 0"), "{}", v.description);
    }

    #[test]
    fn malformed_dates() {
        for raw in [
            "1950/04/01",
            "1950-4-1",
            "19500401",
            "S25.4.1",
            "昭和25年4月1日",
            "1950-04-01T00:00",
            "x",
        ] {
            let v = parse_birth_date("birth_date", raw, today()).unwrap_err();
            assert_eq!(v.reason, Reason::BirthDateInvalid, "{raw}");
            assert!(v.description.contains("YYYY-MM-DD"), "{}", v.description);
        }
    }

    #[test]
    fn parse_date_uses_given_reason() {
        let v = parse_date("x", "nope", Reason::PeriodInvalid).unwrap_err();
        assert_eq!(v.reason, Reason::PeriodInvalid);
        assert_eq!(v.field, "x");
        assert_eq!(
            parse_date("x", "2024-01-01", Reason::PeriodInvalid),
            Ok(d(2024, 1, 1))
        );
    }

    #[test]
    fn period_defaults() {
        assert_eq!(
            parse_period("period", "", "", today(), 3),
            Ok((d(2021, 3, 7), today()))
        );
        assert_eq!(
            parse_period("period", "", "", today(), 5),
            Ok((d(2019, 3, 7), today()))
        );
        assert_eq!(
            parse_period("period", "", "", today(), 0),
            Ok((today(), today()))
        );
        assert_eq!(
            parse_period("period", "", "", d(2024, 2, 29), 3),
            Ok((d(2021, 2, 28), d(2024, 2, 29)))
        );
        assert!(parse_period("period", "", "", today(), u32::MAX).is_ok());
        assert_eq!(
            parse_period("period", "2024-01-01", "", today(), 3),
            Ok((d(2024, 1, 1), today()))
        );
        assert_eq!(
            parse_period("period", "", "2023-12-31", today(), 3),
            Ok((d(2021, 3, 7), d(2023, 12, 31)))
        );
    }

    #[test]
    fn period_single_day_allowed() {
        assert_eq!(
            parse_period("period", "2024-01-01", "2024-01-01", today(), 3),
            Ok((d(2024, 1, 1), d(2024, 1, 1)))
        );
    }

    #[test]
    fn period_refusals_name_the_right_field() {
        let v = parse_period("period", "2024-13-01", "", today(), 3).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str()),
            (Reason::PeriodInvalid, "period.from")
        );
        let v = parse_period("period", "", "2023-02-30", today(), 3).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str()),
            (Reason::PeriodInvalid, "period.to")
        );
        assert!(v.description.contains("2023-02-30"), "{}", v.description);
        let v = parse_period("period", "2024-01-02", "2024-01-01", today(), 3).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str()),
            (Reason::PeriodInvalid, "period.from")
        );
        assert!(v.description.contains("2024-01-02"), "{}", v.description);
        // `to` typed, `from` defaulted to three years back: `to` is the one at fault.
        let v = parse_period("period", "", "2020-01-01", today(), 3).unwrap_err();
        assert_eq!(v.field, "period.to");
        // `from` typed in the future, `to` defaulted to today: `from` is at fault.
        let v = parse_period("period", "2024-03-08", "", today(), 3).unwrap_err();
        assert_eq!(v.field, "period.from");
        let v = parse_period("", "bad", "", today(), 3).unwrap_err();
        assert_eq!(v.field, "from");
        assert!(v.also.is_empty());
    }

    #[test]
    fn both_ends_that_are_not_dates_are_both_named() {
        let v = parse_period("period", "2024-13-01", "2023-02-30", today(), 3).unwrap_err();
        let named: Vec<_> = v.all().map(|v| (v.reason, v.field.as_str())).collect();
        assert_eq!(
            named,
            [
                (Reason::PeriodInvalid, "period.from"),
                (Reason::PeriodInvalid, "period.to")
            ]
        );
        // One end not a date: the other, valid, end is not named.
        let v = parse_period("period", "2024-01-01", "x", today(), 3).unwrap_err();
        assert_eq!((v.field.as_str(), v.also.len()), ("period.to", 0));
    }
}

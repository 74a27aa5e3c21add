//! The period of a medical-information request, with the normal-mode look-backs.

use chrono::{Months, NaiveDate};
use tonic::Status;

use crate::proto::Period;

/// Look-back of drug history when `from` is empty.
pub const DRUG_LOOKBACK_YEARS: u32 = 3;
/// Look-back of specific health check-ups when `from` is empty.
pub const CHECKUP_LOOKBACK_YEARS: u32 = 5;

fn parse(field: &str, value: &str) -> Result<Option<NaiveDate>, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| Status::invalid_argument(format!("period.{field} must be YYYY-MM-DD")))
}

/// The inclusive range `[from, to]`: empty `to` is `today`, empty `from` is
/// `lookback_years` before `to`.
pub fn resolve(
    period: Option<&Period>,
    today: NaiveDate,
    lookback_years: u32,
) -> Result<(NaiveDate, NaiveDate), Status> {
    let (from, to) = match period {
        Some(p) => (parse("from", &p.from)?, parse("to", &p.to)?),
        None => (None, None),
    };
    let to = to.unwrap_or(today);
    let from = match from {
        Some(from) => from,
        None => to
            .checked_sub_months(Months::new(12 * lookback_years))
            .unwrap_or(NaiveDate::MIN),
    };
    if from > to {
        return Err(Status::invalid_argument("period.from is after period.to"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn period(from: &str, to: &str) -> Period {
        Period {
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn empty_ends_default_to_lookback_and_today() {
        let today = d("2025-06-01");
        assert_eq!(resolve(None, today, 3).unwrap(), (d("2022-06-01"), today));
        let p = period("", "2024-02-29");
        assert_eq!(
            resolve(Some(&p), today, 5).unwrap(),
            (d("2019-02-28"), d("2024-02-29"))
        );
        let p = period("2025-01-01", "");
        assert_eq!(
            resolve(Some(&p), today, 3).unwrap(),
            (d("2025-01-01"), today)
        );
    }

    #[test]
    fn bad_periods_are_invalid_arguments() {
        let today = d("2025-06-01");
        for (from, to) in [
            ("2025/01/01", ""),
            ("", "yesterday"),
            ("2025-02-01", "2025-01-01"),
        ] {
            let err = resolve(Some(&period(from, to)), today, 3).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
    }
}

//! Loading the registry from CSV files, as an operator receives them:
//!
//! - facilities: `code,name,kind,prefecture,municipality`
//! - municipalities: `code,name`
//!
//! A header line is required (columns in any order; others are ignored). Every bad
//! row is reported with its line, field and reason, and a file with any bad row
//! yields no rows at all: a registry is loaded whole or not at all.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::Deserialize;

use crate::domain::facility::{FacilityCode, FacilityKind, parse_facility_code};
use crate::domain::municipality::parse_municipality_code;
use crate::domain::prefecture::Prefecture;
use crate::store::{Municipality, RegisteredFacility};

/// Columns of a facilities file.
pub const FACILITY_COLUMNS: [&str; 5] = ["code", "name", "kind", "prefecture", "municipality"];
/// Columns of a municipalities file.
pub const MUNICIPALITY_COLUMNS: [&str; 2] = ["code", "name"];

/// One problem with one row (or with the header, line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    /// The column, e.g. "municipality"; "header" or "row" for the whole line.
    pub field: String,
    pub reason: String,
}

impl RowError {
    fn new(line: u64, field: &str, reason: impl Into<String>) -> RowError {
        RowError {
            line,
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.reason)
    }
}

impl std::error::Error for RowError {}

#[derive(Debug, Deserialize)]
struct FacilityRow {
    code: String,
    name: String,
    kind: String,
    prefecture: String,
    municipality: String,
    /// Optional column: `true`/`1`/`yes` for a hospital with an emergency department.
    #[serde(default)]
    emergency_hospital: String,
}

#[derive(Debug, Deserialize)]
struct MunicipalityRow {
    code: String,
    name: String,
}

/// The kind named `s` (its stable name, any case).
pub fn parse_kind(s: &str) -> Option<FacilityKind> {
    let s = s.trim();
    FacilityKind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s))
}

fn pref_label(p: Prefecture) -> String {
    format!("{:02} ({})", p.code(), p.name_ja())
}

/// Reads the header and each row as `T`, handing `(line, row)` to `check`. Errors
/// of the file's shape (missing columns, short rows, invalid UTF-8) are reported
/// as row errors like the rest.
fn read_rows<R: Read, T: for<'de> Deserialize<'de>>(
    reader: R,
    columns: &[&str],
    mut check: impl FnMut(u64, T, &mut Vec<RowError>),
) -> Vec<RowError> {
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let names = match header(&mut csv, columns) {
        Ok(names) => names,
        Err(errors) => return errors,
    };
    let mut errors = Vec::new();
    let normalised = ::csv::StringRecord::from(names.clone());
    for result in csv.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                errors.push(unreadable(&e));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if let Some(short) = short_row(&names, columns, &record, line) {
            errors.push(short);
            continue;
        }
        match record.deserialize::<T>(Some(&normalised)) {
            Ok(row) => check(line, row, &mut errors),
            Err(e) => errors.push(RowError::new(line, "row", e.to_string())),
        }
    }
    errors
}

/// The header's column names, normalised (no BOM, trimmed, lower case), if it
/// names every one of `columns`.
fn header<R: Read>(
    csv: &mut ::csv::Reader<R>,
    columns: &[&str],
) -> Result<Vec<String>, Vec<RowError>> {
    let headers = csv
        .headers()
        .map_err(|e| vec![RowError::new(1, "header", format!("unreadable: {e}"))])?;
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    if names.iter().all(String::is_empty) {
        return Err(vec![RowError::new(
            1,
            "header",
            format!(
                "the file is empty; its first line must name the columns {}",
                columns.join(",")
            ),
        )]);
    }
    let missing: Vec<RowError> = columns
        .iter()
        .filter(|column| !names.iter().any(|n| n == *column))
        .map(|column| {
            RowError::new(
                1,
                column,
                format!(
                    "missing column (the header must name {})",
                    columns.join(",")
                ),
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(names)
    } else {
        Err(missing)
    }
}

/// A row the CSV reader could not read, e.g. one not in UTF-8.
fn unreadable(e: &::csv::Error) -> RowError {
    let line = e.position().map_or(0, csv::Position::line);
    let reason = match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => {
            "not valid UTF-8 (save the file as UTF-8, not Shift_JIS)".to_string()
        }
        _ => e.to_string(),
    };
    RowError::new(line, "row", reason)
}

/// The first required column a row is too short to have.
fn short_row(
    names: &[String],
    columns: &[&str],
    record: &::csv::StringRecord,
    line: u64,
) -> Option<RowError> {
    let missing = names
        .iter()
        .enumerate()
        .filter(|(i, n)| *i >= record.len() && columns.contains(&n.as_str()))
        .map(|(_, n)| n)
        .next()?;
    Some(RowError::new(
        line,
        missing,
        format!(
            "missing: the row has {} fields, the header {}",
            record.len(),
            names.len()
        ),
    ))
}

/// Parses a facilities file; each facility with the line it came from.
pub fn parse_facilities_csv_lines<R: Read>(
    reader: R,
) -> Result<Vec<(u64, RegisteredFacility)>, Vec<RowError>> {
    let mut out: Vec<(u64, RegisteredFacility)> = Vec::new();
    let mut lines_of: HashMap<String, u64> = HashMap::new();
    let errors = read_rows(
        reader,
        &FACILITY_COLUMNS,
        |line, row: FacilityRow, errors| {
            let mut bad = Bad { line, errors };
            if let Some(facility) = facility_of(row, &lines_of, &mut bad) {
                lines_of.insert(facility.code.clone(), line);
                out.push((line, facility));
            }
        },
    );
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The problems found in one row, at its line.
struct Bad<'e> {
    line: u64,
    errors: &'e mut Vec<RowError>,
}

impl Bad<'_> {
    fn add(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(RowError::new(self.line, field, reason));
    }
}

/// The facility a row describes, if every field is valid and agrees with the code,
/// and the code is not on an earlier line.
fn facility_of(
    row: FacilityRow,
    lines_of: &HashMap<String, u64>,
    bad: &mut Bad<'_>,
) -> Option<RegisteredFacility> {
    let before = bad.errors.len();
    let code = parse_facility_code("code", &row.code)
        .map_err(|v| bad.add("code", v.description))
        .ok();
    if row.name.is_empty() {
        bad.add("name", "the facility's name is empty");
    }
    let kind = kind_of(&row.kind, code.as_ref(), bad);
    let prefecture = prefecture_of(&row.prefecture, code.as_ref(), bad);
    let municipality = parse_municipality_code("municipality", &row.municipality)
        .map_err(|v| bad.add("municipality", v.description))
        .ok();
    let expected = prefecture.or_else(|| code.as_ref().map(FacilityCode::prefecture));
    if let (Some(m), Some(p)) = (&municipality, expected)
        && m.prefecture() != p
    {
        bad.add(
            "municipality",
            format!(
                "{m} is a municipality of prefecture {}, not of {}",
                pref_label(m.prefecture()),
                pref_label(p)
            ),
        );
    }
    if let Some(code) = &code
        && let Some(first) = lines_of.get(code.as_str())
    {
        bad.add(
            "code",
            format!("{code} is already on line {first}: each facility once"),
        );
    }
    if bad.errors.len() > before {
        return None;
    }
    let (Some(code), Some(kind), Some(p), Some(m)) = (code, kind, prefecture, municipality) else {
        return None;
    };
    let emergency_hospital = emergency_of(&row.emergency_hospital, kind, bad)?;
    Some(RegisteredFacility {
        code: code.to_string(),
        name: row.name,
        kind,
        prefecture: p.code(),
        municipality: m.to_string(),
        emergency_hospital,
    })
}

/// The optional emergency-department mark: empty is no; only medical facilities
/// (hospitals are on the medical fee table) can have one.
fn emergency_of(s: &str, kind: FacilityKind, bad: &mut Bad<'_>) -> Option<bool> {
    let marked = match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" => false,
        "1" | "true" | "yes" => true,
        other => {
            bad.add(
                "emergency_hospital",
                format!("{other:?} is not a yes/no value: use true or false (or leave it empty)"),
            );
            return None;
        }
    };
    if marked && kind != FacilityKind::Medical {
        bad.add(
            "emergency_hospital",
            format!(
                "a {} facility cannot be a hospital with an emergency department",
                kind.as_str()
            ),
        );
        return None;
    }
    Some(marked)
}

/// The row's kind, which must be the one the code's fee-table digit says.
fn kind_of(s: &str, code: Option<&FacilityCode>, bad: &mut Bad<'_>) -> Option<FacilityKind> {
    let kind = parse_kind(s);
    match (kind, code) {
        (None, _) => bad.add(
            "kind",
            format!("{s:?} is not a kind: use medical, dental, pharmacy or visiting_nursing"),
        ),
        (Some(kind), Some(code)) if code.kind() != kind => bad.add(
            "kind",
            format!(
                "{} disagrees with the code {code}, whose fee-table digit {} is {}",
                kind.as_str(),
                code.kind().digit(),
                code.kind().as_str()
            ),
        ),
        _ => {}
    }
    kind
}

/// The row's prefecture, which must be the code's.
fn prefecture_of(s: &str, code: Option<&FacilityCode>, bad: &mut Bad<'_>) -> Option<Prefecture> {
    let prefecture = Prefecture::parse(s);
    match (prefecture, code) {
        (None, _) => bad.add(
            "prefecture",
            format!("{s:?} is not a prefecture code (01-47)"),
        ),
        (Some(p), Some(code)) if code.prefecture() != p => bad.add(
            "prefecture",
            format!(
                "{} disagrees with the code {code}, which is of prefecture {}",
                pref_label(p),
                pref_label(code.prefecture())
            ),
        ),
        _ => {}
    }
    prefecture
}

/// Parses a facilities file (`code,name,kind,prefecture,municipality`): all its
/// facilities, or every bad row.
pub fn parse_facilities_csv<R: Read>(reader: R) -> Result<Vec<RegisteredFacility>, Vec<RowError>> {
    parse_facilities_csv_lines(reader).map(|rows| rows.into_iter().map(|(_, f)| f).collect())
}

/// Parses a municipalities file (`code,name`; codes of 5 digits, or 6 with the JIS
/// X 0402 check digit, stored as 5): all its municipalities, or every bad row.
pub fn parse_municipalities_csv<R: Read>(reader: R) -> Result<Vec<Municipality>, Vec<RowError>> {
    let mut out = Vec::new();
    let mut lines_of: HashMap<String, u64> = HashMap::new();
    let errors = read_rows(
        reader,
        &MUNICIPALITY_COLUMNS,
        |line, row: MunicipalityRow, errors| {
            let before = errors.len();
            let code = match parse_municipality_code("code", &row.code) {
                Ok(c) => Some(c),
                Err(v) => {
                    errors.push(RowError::new(line, "code", v.description));
                    None
                }
            };
            if row.name.is_empty() {
                errors.push(RowError::new(
                    line,
                    "name",
                    "the municipality's name is empty",
                ));
            }
            if let Some(code) = &code
                && let Some(first) = lines_of.get(code.as_str())
            {
                errors.push(RowError::new(
                    line,
                    "code",
                    format!("{code} is already on line {first}: each municipality once"),
                ));
            }
            if errors.len() > before {
                return;
            }
            let Some(code) = code else { return };
            lines_of.insert(code.to_string(), line);
            out.push(Municipality {
                prefecture: code.prefecture().code(),
                code: code.to_string(),
                name: row.name,
            });
        },
    );
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(parse_kind("Pharmacy"), Some(FacilityKind::Pharmacy));
        assert_eq!(
            parse_kind(" visiting_nursing "),
            Some(FacilityKind::VisitingNursing)
        );
        assert_eq!(parse_kind("clinic"), None);
    }

    #[test]
    fn bom_and_column_order() {
        let csv = "\u{feff}name,code\n金沢市,172014\n";
        let m = parse_municipalities_csv(csv.as_bytes()).unwrap();
        assert_eq!(
            m,
            vec![Municipality {
                code: "17201".into(),
                name: "金沢市".into(),
                prefecture: 17
            }]
        );
    }

    #[test]
    fn the_emergency_department_column_is_optional_and_only_for_medical_facilities() {
        let pharmacy = crate::domain::facility::make_facility_code(
            Prefecture::new(1).unwrap(),
            FacilityKind::Pharmacy,
            1,
            4001,
        );
        let without =
            "code,name,kind,prefecture,municipality\n0110113719,札幌中央病院,medical,01,01100\n";
        let parsed = parse_facilities_csv(without.as_bytes()).unwrap();
        assert!(!parsed[0].emergency_hospital);
        let with = format!(
            "code,name,kind,prefecture,municipality,emergency_hospital\n\
             0110113719,札幌中央病院,medical,01,01100,true\n\
             {pharmacy},札幌薬局,pharmacy,01,01100,\n"
        );
        let parsed = parse_facilities_csv(with.as_bytes()).unwrap();
        assert_eq!(
            parsed
                .iter()
                .map(|f| f.emergency_hospital)
                .collect::<Vec<_>>(),
            [true, false]
        );
        let bad = format!(
            "code,name,kind,prefecture,municipality,emergency_hospital\n\
             0110113719,札幌中央病院,medical,01,01100,maybe\n\
             {pharmacy},札幌薬局,pharmacy,01,01100,yes\n"
        );
        let errors = parse_facilities_csv(bad.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.field == "emergency_hospital"));
        assert!(errors[1].reason.contains("pharmacy"), "{errors:?}");
    }

    #[test]
    fn short_row_names_the_missing_field() {
        let csv = "code,name,kind,prefecture,municipality\n0110113719,札幌中央クリニック,medical\n";
        let errors = parse_facilities_csv(csv.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 2);
        assert_eq!(errors[0].field, "prefecture");
    }

    #[test]
    fn shift_jis_is_refused_by_line() {
        let mut bytes = b"code,name\n17201,".to_vec();
        bytes.extend([0x8b, 0xe0, 0x91, 0xf2]); // 金沢 in Shift_JIS
        bytes.extend(b"\n");
        let errors = parse_municipalities_csv(&bytes[..]).unwrap_err();
        assert_eq!(errors[0].line, 2, "{errors:?}");
        assert!(errors[0].reason.contains("UTF-8"), "{errors:?}");
    }

    #[test]
    fn empty_file() {
        let errors = parse_municipalities_csv(&b""[..]).unwrap_err();
        assert_eq!(errors[0].line, 1);
        assert_eq!(errors[0].field, "header");
    }
}

//! The simulator's answers for clinical information and e-prescriptions, and the
//! grouping by ingredient that drug history and prescriptions share.

use std::ops::RangeInclusive;

use chrono::NaiveDate;
use tonic::Status;

use super::Population;
use super::clinical::{Clinical, DialysisCourse, Procedure as Record};
use super::drugs;
use super::prescriptions::{self as rx, State};
use crate::proto::{
    ClinicalCategory, ClinicalItem, Dialysis, IngredientGroup, Operation, Prescription,
    PrescriptionItem, PrescriptionState, Procedure, Visit, clinical_item,
};

/// Items per page when the request says 0, and the most it may ask for.
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 500;

/// Which categories a request asks for: all when it names none.
pub fn wants(categories: &[i32], category: ClinicalCategory) -> bool {
    categories.is_empty() || categories.contains(&(category as i32))
}

fn procedure(r: &Record) -> Procedure {
    Procedure {
        date: r.date.to_string(),
        code: r.coded.0.to_string(),
        name: r.coded.1.to_string(),
        facility: r.facility.clone(),
    }
}

pub fn operation(r: &Record) -> Operation {
    Operation {
        date: r.date.to_string(),
        code: r.coded.0.to_string(),
        name: r.coded.1.to_string(),
        facility: r.facility.clone(),
    }
}

/// Procedures, operations and visits of `days` that `categories` asks for, newest first.
pub fn items(
    c: &Clinical,
    days: &RangeInclusive<NaiveDate>,
    categories: &[i32],
) -> Vec<ClinicalItem> {
    use clinical_item::Item;
    let mut dated: Vec<(NaiveDate, Item)> = Vec::new();
    if wants(categories, ClinicalCategory::Procedures) {
        let found = c.procedures.iter().filter(|p| days.contains(&p.date));
        dated.extend(found.map(|p| (p.date, Item::Procedure(procedure(p)))));
    }
    if wants(categories, ClinicalCategory::Operations) {
        let found = c.operations.iter().filter(|p| days.contains(&p.date));
        dated.extend(found.map(|p| (p.date, Item::Operation(operation(p)))));
    }
    if wants(categories, ClinicalCategory::Visits) {
        let found = c.visits.iter().filter(|v| days.contains(&v.date));
        dated.extend(found.map(|v| (v.date, Item::Visit(visit(v)))));
    }
    // Stable: the same day keeps procedures, operations, visits in that order.
    dated.sort_by_key(|d| std::cmp::Reverse(d.0));
    dated
        .into_iter()
        .map(|(_, item)| ClinicalItem { item: Some(item) })
        .collect()
}

pub fn visit(v: &super::clinical::Visit) -> Visit {
    Visit {
        date: v.date.to_string(),
        facility: v.facility.clone(),
        department: v.department.to_string(),
    }
}

/// The dialysis state over `days`: on dialysis when a course had begun by its end.
pub fn dialysis(course: Option<&DialysisCourse>, days: &RangeInclusive<NaiveDate>) -> Dialysis {
    match course {
        Some(c) if c.since <= *days.end() => {
            let latest = c.latest.min(*days.end());
            Dialysis {
                on_dialysis: true,
                since: c.since.to_string(),
                facility: c.facility.clone(),
                method: c.method.to_string(),
                latest_date: if latest >= *days.start() {
                    latest.to_string()
                } else {
                    String::new()
                },
            }
        }
        _ => Dialysis::default(),
    }
}

/// One page of `items`: `page_size` 0 means the default; the token is the offset.
pub fn page<T>(items: Vec<T>, page_size: i32, token: &str) -> Result<(Vec<T>, String), Status> {
    let size = match usize::try_from(page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(n) if n <= MAX_PAGE_SIZE => n,
        _ => return Err(Status::invalid_argument("page_size must be 0 to 500")),
    };
    let offset = match token.trim() {
        "" => 0,
        t => t
            .strip_prefix('p')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Status::invalid_argument("page_token is not one this service issued"))?,
    };
    let end = offset.saturating_add(size).min(items.len());
    let next = if end < items.len() {
        format!("p{end}")
    } else {
        String::new()
    };
    let page = items
        .into_iter()
        .skip(offset)
        .take(end.saturating_sub(offset))
        .collect();
    Ok((page, next))
}

fn state(s: State) -> PrescriptionState {
    match s {
        State::Issued => PrescriptionState::Issued,
        State::Dispensed => PrescriptionState::Dispensed,
        State::PartlyDispensed => PrescriptionState::PartlyDispensed,
        State::Cancelled => PrescriptionState::Cancelled,
    }
}

pub fn prescription(population: &Population, p: &rx::Prescription) -> Prescription {
    Prescription {
        prescription_id: p.id.clone(),
        issued_date: p.issued.to_string(),
        prescribing_facility: String::new(),
        state: state(p.state) as i32,
        dispensed_date: p.dispensed.map(|d| d.to_string()).unwrap_or_default(),
        dispensing_facility: p
            .pharmacy
            .map(|id| population.pharmacy_name(id).to_string())
            .unwrap_or_default(),
        items: p
            .items
            .iter()
            .map(|i| PrescriptionItem {
                drug_name: i.name.to_string(),
                drug_code: i.code.to_string(),
                dose: i.drug.dose.to_string(),
                quantity: i.drug.quantity.to_string(),
                days: i32::from(i.days),
                ingredient_group: drugs::ingredient_group(i.code).to_string(),
                generic_name: drugs::generic_name(i.code).to_string(),
                generic_substitution_allowed: i.substitution_allowed,
            })
            .collect(),
    }
}

/// Whether a prescription is still to be dispensed (in full or in part).
pub fn is_open(p: &rx::Prescription) -> bool {
    matches!(p.state, State::Issued | State::PartlyDispensed)
}

/// Products grouped by ingredient group, from `(code, name, date)` newest first:
/// the groups most recent first, each listing its distinct products in that order.
pub fn groups<'a>(
    products: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Vec<IngredientGroup> {
    let mut out: Vec<IngredientGroup> = Vec::new();
    for (code, name, date) in products {
        let group = drugs::ingredient_group(code);
        let i = match out.iter().position(|g| g.ingredient_group == group) {
            Some(i) => i,
            None => {
                out.push(IngredientGroup {
                    ingredient_group: group.to_string(),
                    generic_name: drugs::generic_name(code).to_string(),
                    drug_names: Vec::new(),
                    latest_date: date.to_string(),
                });
                out.len() - 1
            }
        };
        let g = &mut out[i];
        if !g.drug_names.iter().any(|n| n == name) {
            g.drug_names.push(name.to_string());
        }
        if date > g.latest_date.as_str() {
            g.latest_date = date.to_string();
        }
    }
    out.sort_by(|a, b| b.latest_date.cmp(&a.latest_date));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<u32> = (0..250).collect();
        let (first, next) = page(items.clone(), 0, "").unwrap();
        assert_eq!((first.len(), next.as_str()), (100, "p100"));
        let (second, next) = page(items.clone(), 0, &next).unwrap();
        assert_eq!(second[0], 100);
        let (last, next) = page(items.clone(), 0, &next).unwrap();
        assert_eq!((last.len(), next.as_str()), (50, ""));
        assert!(page(items.clone(), 501, "").is_err());
        assert!(page(items.clone(), -1, "").is_err());
        assert!(page(items, 10, "x").is_err());
    }

    #[test]
    fn brand_and_generic_fall_in_one_group() {
        let g = groups([
            ("2171022F2025", "ノルバスク錠5mg", "2025-05-01"),
            (
                "1149019F1290",
                "ロキソプロフェンナトリウム錠60mg",
                "2025-04-01",
            ),
            ("2171022F2010", "アムロジピン錠5mg", "2025-04-20"),
            ("2171022F2025", "ノルバスク錠5mg", "2025-03-01"),
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].ingredient_group, "2171022F2");
        assert_eq!(g[0].generic_name, "アムロジピン錠5mg");
        assert_eq!(g[0].drug_names, ["ノルバスク錠5mg", "アムロジピン錠5mg"]);
        assert_eq!(g[0].latest_date, "2025-05-01");
        assert_eq!(g[1].drug_names.len(), 1);
    }
}

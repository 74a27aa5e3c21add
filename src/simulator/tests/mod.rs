//! Tests over a whole population and over the service.

mod population;
mod serve;
mod service;

use std::sync::{Arc, OnceLock};

use chrono::NaiveDate;

use super::Population;

/// The reference day of the shared test population.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).expect("valid date")
}

/// One population for all tests: big enough for every prefecture and the rare
/// statuses, small enough to build quickly in a debug build.
pub fn shared() -> Arc<Population> {
    static POPULATION: OnceLock<Arc<Population>> = OnceLock::new();
    POPULATION
        .get_or_init(|| Arc::new(Population::generate_at(42, 20_000, today())))
        .clone()
}

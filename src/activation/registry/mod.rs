//! The facility registry's contents: which municipality each facility is in (its
//! code does not tell), and the municipality master (JIS X 0402) that
//! municipality-level activations are checked and previewed against.
//!
//! - [`parse_facilities_csv`] and [`parse_municipalities_csv`] read an operator's
//!   files, reporting every bad row (`onshi-gateway registry load`).
//! - [`synthetic`] builds a deterministic, realistic registry over all 47
//!   prefectures, holding the real municipalities of past activations; the gateway
//!   loads it into an empty store ([`seed_if_empty`]) so that development, demos
//!   and tests have one. [`fixture_facility`] names a facility of it in a given
//!   municipality.

mod csv;
mod municipalities;
mod synthetic;

pub use self::csv::{
    FACILITY_COLUMNS, MUNICIPALITY_COLUMNS, RowError, parse_facilities_csv,
    parse_facilities_csv_lines, parse_kind, parse_municipalities_csv,
};
pub use self::synthetic::{
    DEMO_FACILITIES, DEMO_HOSPITALS, FIXTURE_DISTRICT, SYNTHETIC_FACILITIES, fixture_facility,
    synthetic, synthetic_municipalities,
};

use crate::store::{RegistryCounts, Store, StoreError};

/// The seed of the registry [`seed_if_empty`] loads: 1 January 2024, Noto.
pub const SYNTHETIC_SEED: u64 = 2024_0101;

/// Loads the synthetic registry ([`synthetic`] with [`SYNTHETIC_SEED`]) if the
/// store's registry is empty, and returns the registry's counts either way. A
/// registry an operator loaded is never touched. Replicas starting together on one
/// PostgreSQL may both load it: the load is an upsert of the same rows.
pub async fn seed_if_empty(store: &dyn Store) -> Result<RegistryCounts, StoreError> {
    let counts = store.registry_counts().await?;
    if counts != RegistryCounts::default() {
        return Ok(counts);
    }
    let (municipalities, facilities) = synthetic(SYNTHETIC_SEED);
    let counts = store.load_registry(&municipalities, &facilities).await?;
    tracing::info!(
        municipalities = counts.municipalities,
        facilities = counts.facilities,
        "the facility registry was empty: loaded the synthetic registry"
    );
    Ok(counts)
}

//! A simulator of the upstream OQS with a deterministic synthetic population.
//!
//! It is its own service: it implements the same gRPC API as the gateway (both
//! generated server traits) over a population of insured persons, and knows
//! nothing of the gateway's rules (activation, consent, audit). It only uses the
//! generated types and the domain's pure functions (check digits, name folding).
//!
//! - [`Population::generate`] builds about [`Population::DEFAULT_SIZE`] persons
//!   over all 47 prefectures from a seed: same seed, size and day, same persons.
//! - [`fixtures`] are always present, whatever the seed and size, for tests and
//!   demos (the demo patient, namesakes, unusual statuses, a crowd).
//! - [`Simulator`] answers lookups, attribute searches, drug history, check-ups,
//!   clinical information and e-prescriptions (a [`Part`] can be switched off);
//!   [`serve`] runs it on a listener.

mod clinical;
mod clinical_service;
mod drugs;
mod facilities;
pub mod fixtures;
mod insurers;
mod medical;
mod names;
mod period;
mod person;
mod places;
mod population;
mod prescriptions;
mod search;
mod service;
mod vocabulary;

pub use drugs::{Condition, Drug};
pub use medical::{Checkup, CheckupValue, Dispensing};
pub use period::{CHECKUP_LOOKBACK_YEARS, DRUG_LOOKBACK_YEARS};
pub use person::Person;
pub use population::{Population, today_jst};
pub use service::{Part, Simulator, serve};

#[cfg(test)]
mod tests;

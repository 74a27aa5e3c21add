//! The domain: identifier codes and check digits, Japan-time windows, names,
//! consent. Plain functions; nothing here knows gRPC, SQL or tokio.

pub mod activation_change;
pub mod area;
pub mod check_digit;
pub mod consent;
pub mod consent_kind;
pub mod dates;
pub mod exemption_category;
pub mod facility;
pub mod input;
pub mod insured;
pub mod insurer;
pub mod jst;
pub mod municipality;
pub mod names;
pub mod prefecture;
pub mod site;
pub mod staff;
pub mod violation;

pub use violation::{Gather, Reason, Violation};

//! The domain: identifier codes and check digits, Japan-time windows, names,
//! consent. Plain functions; nothing here knows gRPC, SQL or tokio.

pub mod check_digit;
pub mod violation;

pub use violation::{Reason, Violation};

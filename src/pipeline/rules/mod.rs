//! The rules of the emergency function, one file each; `crate::pipeline` stacks
//! them in order.

pub mod activation;
pub mod audit_ready;
pub mod consent;
pub mod consent_kind;
pub mod emergency_viewing;
pub mod identification;
pub mod identity;
pub mod in_flight;
pub mod rate_limit;
pub mod request_options;

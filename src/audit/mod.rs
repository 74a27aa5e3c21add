//! The access log: every call, allowed, denied or failed, is recorded durably
//! before its response leaves the gateway.

pub mod layer;
pub mod writer;

pub use layer::AuditLayer;
pub use writer::{AuditError, AuditWriter, BatchConfig, WriterTask};

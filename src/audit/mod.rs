//! The access log: every call, allowed, denied or failed, is recorded durably
//! before its response leaves the gateway, in a per-writer hash chain with signed
//! checkpoints (docs/audit.md).

mod backlog;
pub mod chain;
pub mod export;
pub mod facility_view;
pub mod fhir;
pub mod notices;
pub mod read_log;
pub mod retention;
pub mod review;
pub mod service;
pub mod signer;
pub mod transparency;
pub mod verify;
pub mod writer;

pub use signer::ChainSigner;
pub use writer::{AuditError, AuditWriter, BatchConfig, WriterTask};

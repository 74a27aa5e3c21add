//! What lets another organisation check the log without seeing a record: an
//! RFC 9162 Merkle tree over each chain's record hashes, checkpoints of it in the
//! C2SP signed-note format, and the proofs that tie checkpoints and records to it
//! (docs/audit.md, docs/witness.md).

pub mod merkle;
pub mod note;
pub mod saved;
pub mod service;
pub mod tree;

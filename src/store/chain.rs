//! The stored shapes of the tamper-evident access log: each writer's hash chain,
//! its records' links and its signed checkpoints.

use chrono::{DateTime, Utc};

use super::AccessRecord;

/// One writer's chain. The id is derived from the signing key, so a replica with its
/// own key has its own chain and a key rotation starts a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub chain_id: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

/// Where a chain ends: the last record's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    /// SHA-256, hex.
    pub hash: String,
}

/// An access record as stored: the record and its place in its writer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub chain_id: String,
    /// 1, 2, 3, … within the chain.
    pub seq: u64,
    /// Hash of the previous record in the chain (hex); for seq 1, 64 zeros.
    pub prev_hash: String,
    /// Hash of this record over its canonical encoding (hex), see docs/audit.md.
    pub hash: String,
    pub record: AccessRecord,
}

/// A signed statement "chain `chain_id` had `seq` records ending in `head_hash` at `at`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub chain_id: String,
    pub seq: u64,
    pub head_hash: String,
    pub at: DateTime<Utc>,
    /// Ed25519 signature over the checkpoint's canonical encoding, hex.
    pub signature: String,
}

//! `audit verify`: walks every chain in a store, recomputing each record's hash and
//! link and checking each signed checkpoint, and reports per chain what verified and
//! the first break.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use super::chain::{GENESIS, parse_hash, record_hash};
use super::signer::{chain_id_of, checkpoint_is_signed_by, parse_public_key};
use crate::store::{AuditStore, ChainInfo, Checkpoint, StoreError, StoredRecord};

/// Records read per round trip while walking a chain.
const PAGE: u32 = 5000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The chain's public key does not parse, or does not hash to its chain id.
    BadKey,
    /// Records or checkpoints exist under a chain id with no registered key.
    Unregistered,
    /// Trusted keys were given and this chain's key is not one of them.
    UntrustedKey,
    /// A checkpoint's signature does not verify under the chain's key.
    BadSignature,
    /// Sequence numbers jump: records were deleted.
    Missing,
    /// The first record kept is not the chain's first, and no checkpoint anchors it.
    Unanchored,
    /// A record's previous-hash is not the previous record's hash: a record was
    /// inserted, deleted or moved before it.
    Unlinked,
    /// A record's content does not match its hash: it was edited.
    Altered,
    /// A signed checkpoint names a head hash the chain does not have at its sequence number.
    CheckpointMismatch,
    /// A signed checkpoint attests to records beyond the last one stored: the tail was deleted.
    Truncated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: u64,
    pub kind: BreakKind,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub chain_id: String,
    pub public_key: String,
    /// Records whose hash and link verified, before any break.
    pub records_verified: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints_verified: u64,
    /// The last checkpoint that matched the chain: everything up to it is signed.
    pub signed_through: Option<u64>,
    pub first_break: Option<Break>,
}

impl ChainReport {
    fn empty(chain_id: &str, public_key: &str) -> ChainReport {
        ChainReport {
            chain_id: chain_id.to_string(),
            public_key: public_key.to_string(),
            records_verified: 0,
            first_seq: None,
            last_seq: None,
            checkpoints_verified: 0,
            signed_through: None,
            first_break: None,
        }
    }

    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }

    /// Records after the last matching checkpoint: linked, but not yet signed.
    pub fn unsigned_tail(&self) -> u64 {
        match (self.last_seq, self.signed_through) {
            (Some(last), Some(signed)) => last.saturating_sub(signed),
            (Some(_), None) => self.records_verified,
            _ => 0,
        }
    }
}

/// Verifies every chain in the store. `trusted_keys` (hex Ed25519 public keys), if
/// not empty, are the only keys accepted: without them a forger who rewrote a whole
/// chain and re-registered it under a key of their own would go unnoticed.
pub async fn verify_store(
    store: &dyn AuditStore,
    trusted_keys: &[String],
) -> Result<Vec<ChainReport>, StoreError> {
    let mut reports = Vec::new();
    let chains = store.chains().await?;
    for chain in &chains {
        reports.push(verify_chain(store, chain, trusted_keys).await?);
    }
    // Records whose chain's registration (and key) was removed must not escape.
    for chain_id in store.logged_chain_ids().await? {
        if chains.iter().all(|c| c.chain_id != chain_id) {
            reports.push(ChainReport {
                first_break: Some(Break {
                    seq: 0,
                    kind: BreakKind::Unregistered,
                    detail: format!(
                        "chain {chain_id} has records or checkpoints but no registered key: its registration was removed"
                    ),
                }),
                ..ChainReport::empty(&chain_id, "")
            });
        }
    }
    Ok(reports)
}

pub async fn verify_chain(
    store: &dyn AuditStore,
    chain: &ChainInfo,
    trusted_keys: &[String],
) -> Result<ChainReport, StoreError> {
    let mut report = ChainReport::empty(&chain.chain_id, &chain.public_key);
    let key = match chain_key(chain, trusted_keys) {
        Ok(key) => key,
        Err(b) => {
            report.first_break = Some(b);
            return Ok(report);
        }
    };
    let (checkpoints, bad_signature) = signed_checkpoints(store, &chain.chain_id, &key).await?;
    let mut walk = Walk {
        chain_id: &chain.chain_id,
        checkpoints: &checkpoints,
        bad_signature: bad_signature.as_ref(),
        report,
        prev: None,
        expected: 1,
    };
    let mut after = 0u64;
    let mut first_break = loop {
        let page = store.chain_records(&chain.chain_id, after, PAGE).await?;
        let Some(last) = page.last() else {
            break None;
        };
        after = last.seq;
        if let Some(b) = page.iter().find_map(|r| walk.step(r).err()) {
            break Some(b);
        }
    };
    let mut report = walk.report;
    first_break = first_break.or(bad_signature);
    report.first_break = first_break.or_else(|| truncation(&report, &checkpoints));
    Ok(report)
}

fn broken(seq: u64, kind: BreakKind, detail: String) -> Break {
    Break { seq, kind, detail }
}

/// The chain's key, if it is well formed, hashes to the chain id and is trusted.
fn chain_key(chain: &ChainInfo, trusted_keys: &[String]) -> Result<VerifyingKey, Break> {
    let key = match parse_public_key(&chain.public_key) {
        Some(k) if chain_id_of(&k) == chain.chain_id => k,
        _ => {
            return Err(broken(
                0,
                BreakKind::BadKey,
                "the chain's public key is malformed or does not match its chain id".into(),
            ));
        }
    };
    if !trusted_keys.is_empty()
        && !trusted_keys
            .iter()
            .any(|k| k.trim().eq_ignore_ascii_case(&chain.public_key))
    {
        return Err(broken(
            0,
            BreakKind::UntrustedKey,
            format!(
                "the chain's key {} is not among the trusted keys",
                chain.public_key
            ),
        ));
    }
    Ok(key)
}

/// Checkpoints by sequence number, and the first whose signature fails (a break at
/// its position).
async fn signed_checkpoints(
    store: &dyn AuditStore,
    chain_id: &str,
    key: &VerifyingKey,
) -> Result<(BTreeMap<u64, Checkpoint>, Option<Break>), StoreError> {
    let mut checkpoints: BTreeMap<u64, Checkpoint> = BTreeMap::new();
    let mut bad_signature: Option<Break> = None;
    for c in store.checkpoints(chain_id).await? {
        if !checkpoint_is_signed_by(&c, key) && bad_signature.is_none() {
            bad_signature = Some(broken(
                c.seq,
                BreakKind::BadSignature,
                format!(
                    "the checkpoint at {} is not signed by the chain's key",
                    c.seq
                ),
            ));
        }
        checkpoints.insert(c.seq, c);
    }
    Ok((checkpoints, bad_signature))
}

/// The walk along a chain's records, in order, up to the first break.
struct Walk<'a> {
    chain_id: &'a str,
    checkpoints: &'a BTreeMap<u64, Checkpoint>,
    bad_signature: Option<&'a Break>,
    report: ChainReport,
    /// The hash of the record before, once the first has been seen.
    prev: Option<[u8; 32]>,
    expected: u64,
}

impl Walk<'_> {
    /// Checks record `r` against the one before it and any checkpoint at its position.
    fn step(&mut self, r: &StoredRecord) -> Result<(), Break> {
        // A checkpoint that fails its signature is trusted for nothing, not even
        // the record at its own position.
        if let Some(b) = self.bad_signature.filter(|b| b.seq <= r.seq) {
            return Err(b.clone());
        }
        let link = self.link(r)?;
        if parse_hash(&r.prev_hash) != Some(link) {
            return Err(broken(
                r.seq,
                BreakKind::Unlinked,
                format!(
                    "record {} does not follow the record before it: a record was inserted, deleted or moved",
                    r.seq
                ),
            ));
        }
        let hash = record_hash(&link, self.chain_id, r.seq, &r.record);
        if parse_hash(&r.hash) != Some(hash) {
            return Err(broken(
                r.seq,
                BreakKind::Altered,
                format!(
                    "record {} was altered: its content does not match its hash",
                    r.seq
                ),
            ));
        }
        self.checkpoint_at(r.seq, hash)?;
        self.prev = Some(hash);
        self.expected = r.seq + 1;
        self.report.records_verified += 1;
        self.report.last_seq = Some(r.seq);
        Ok(())
    }

    /// What `r` must follow: the record before, or for the first kept record its
    /// anchor; records must come without gap or repeat.
    fn link(&mut self, r: &StoredRecord) -> Result<[u8; 32], Break> {
        let Some(prev) = self.prev else {
            self.report.first_seq = Some(r.seq);
            return anchor(r.seq, self.checkpoints).ok_or_else(|| {
                broken(
                    r.seq,
                    BreakKind::Unanchored,
                    format!(
                        "the chain starts at record {} and no checkpoint at {} anchors it: earlier records were deleted",
                        r.seq,
                        r.seq - 1
                    ),
                )
            });
        };
        let expected = self.expected;
        if r.seq > expected {
            return Err(broken(
                expected,
                BreakKind::Missing,
                format!("records {expected} to {} are missing", r.seq - 1),
            ));
        }
        if r.seq < expected {
            return Err(broken(
                expected,
                BreakKind::Unlinked,
                format!(
                    "record {} appears again after record {}",
                    r.seq,
                    expected - 1
                ),
            ));
        }
        Ok(prev)
    }

    /// A signed checkpoint at `seq` must name `hash` as its head.
    fn checkpoint_at(&mut self, seq: u64, hash: [u8; 32]) -> Result<(), Break> {
        let Some(c) = self.checkpoints.get(&seq) else {
            return Ok(());
        };
        if parse_hash(&c.head_hash) != Some(hash) {
            return Err(broken(
                seq,
                BreakKind::CheckpointMismatch,
                format!(
                    "the signed checkpoint at {seq} names another head: records up to it were rewritten"
                ),
            ));
        }
        self.report.checkpoints_verified += 1;
        self.report.signed_through = Some(seq);
        Ok(())
    }
}

/// A signed checkpoint beyond the chain's head: records were deleted from its end.
fn truncation(report: &ChainReport, checkpoints: &BTreeMap<u64, Checkpoint>) -> Option<Break> {
    // Records up to the first kept one's predecessor were pruned; with none kept,
    // up to the oldest checkpoint, which pruning leaves as the anchor.
    let pruned_through = match report.first_seq {
        Some(first) => first - 1,
        None => checkpoints.keys().next().copied().unwrap_or(0),
    };
    let head = report.last_seq.unwrap_or(0).max(pruned_through);
    let (&seq, _) = checkpoints.range(head + 1..).next()?;
    Some(broken(
        head + 1,
        BreakKind::Truncated,
        format!(
            "a signed checkpoint attests to {seq} records but the chain ends at {head}: records were deleted from its end"
        ),
    ))
}

/// What the first kept record must follow: nothing for a chain's first record, else
/// the signed head of the checkpoint just before it (left by pruning).
fn anchor(first: u64, checkpoints: &BTreeMap<u64, Checkpoint>) -> Option<[u8; 32]> {
    if first == 1 {
        return Some(GENESIS);
    }
    checkpoints
        .get(&(first - 1))
        .and_then(|c| parse_hash(&c.head_hash))
}

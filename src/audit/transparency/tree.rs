//! A chain's Merkle tree as the store holds it: one leaf per record, the leaf
//! being the record's hash, in sequence order. The tree is rebuilt from the stored
//! hashes whenever it is asked for; `audit verify` checks those hashes against
//! the records themselves, so a tree over them is as good as the chain.

use ed25519_dalek::SigningKey;

use super::merkle::{self, Hash};
use super::note::{SignedNote, TreeHead, origin_of, sign_checkpoint};
use crate::audit::chain::parse_hash;
use crate::store::{AuditStore, StoreError};

/// Records read per round trip while collecting leaves.
const PAGE: u32 = 5000;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Retention removed the oldest records; the tree over them cannot be rebuilt.
    #[error(
        "chain {chain_id} starts at record {first_seq}: its older records were pruned, so its \
         Merkle tree cannot be rebuilt"
    )]
    Pruned { chain_id: String, first_seq: u64 },
    #[error("chain {chain_id} has no record {seq} (a gap or a malformed hash)")]
    Gap { chain_id: String, seq: u64 },
    #[error("chain {chain_id} has {size} records; the tree of size {asked} does not exist yet")]
    TooLarge {
        chain_id: String,
        size: u64,
        asked: u64,
    },
}

/// The leaves of one chain, index `i` being record `seq = i + 1`.
#[derive(Debug, Clone)]
pub struct ChainTree {
    pub chain_id: String,
    leaves: Vec<Hash>,
}

impl ChainTree {
    /// Reads every record hash of `chain_id` from the store.
    pub async fn load(store: &dyn AuditStore, chain_id: &str) -> Result<ChainTree, TreeError> {
        let mut leaves = Vec::new();
        loop {
            let after = leaves.len() as u64;
            let page = store.chain_records(chain_id, after, PAGE).await?;
            for (i, r) in page.iter().enumerate() {
                let seq = after + i as u64 + 1;
                if r.seq != seq {
                    return Err(if seq == 1 {
                        TreeError::Pruned {
                            chain_id: chain_id.to_string(),
                            first_seq: r.seq,
                        }
                    } else {
                        TreeError::Gap {
                            chain_id: chain_id.to_string(),
                            seq,
                        }
                    });
                }
                let hash = parse_hash(&r.hash).ok_or_else(|| TreeError::Gap {
                    chain_id: chain_id.to_string(),
                    seq,
                })?;
                leaves.push(merkle::leaf_hash(&hash));
            }
            if page.len() < PAGE as usize {
                return Ok(ChainTree {
                    chain_id: chain_id.to_string(),
                    leaves,
                });
            }
        }
    }

    /// A tree over these record hashes (in order), for tests and tools.
    pub fn from_record_hashes(chain_id: &str, hashes: &[Hash]) -> ChainTree {
        ChainTree {
            chain_id: chain_id.to_string(),
            leaves: hashes.iter().map(|h| merkle::leaf_hash(h)).collect(),
        }
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn prefix(&self, size: u64) -> Result<&[Hash], TreeError> {
        usize::try_from(size)
            .ok()
            .and_then(|n| self.leaves.get(..n))
            .ok_or_else(|| TreeError::TooLarge {
                chain_id: self.chain_id.clone(),
                size: self.size(),
                asked: size,
            })
    }

    /// The head of the tree of the first `size` records.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        Ok(merkle::root(self.prefix(size)?))
    }

    pub fn tree_head(&self, size: u64) -> Result<TreeHead, TreeError> {
        Ok(TreeHead {
            origin: origin_of(&self.chain_id),
            size,
            root: self.root_at(size)?,
        })
    }

    /// The checkpoint of the tree of `size` records, signed with the chain's key.
    pub fn checkpoint(&self, key: &SigningKey, size: u64) -> Result<SignedNote, TreeError> {
        Ok(sign_checkpoint(key, &self.tree_head(size)?))
    }

    /// The leaf hash of record `seq` and its audit path in the tree of `size`.
    pub fn inclusion(&self, seq: u64, size: u64) -> Result<(Hash, Vec<Hash>), TreeError> {
        let leaves = self.prefix(size)?;
        let index = usize::try_from(seq.wrapping_sub(1)).unwrap_or(usize::MAX);
        match merkle::inclusion_proof(leaves, index) {
            Some(proof) => Ok((leaves[index], proof)),
            None => Err(TreeError::TooLarge {
                chain_id: self.chain_id.clone(),
                size,
                asked: seq,
            }),
        }
    }

    /// The proof that the tree of `old` records is a prefix of that of `new`.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, TreeError> {
        let leaves = self.prefix(new)?;
        let old = usize::try_from(old).unwrap_or(usize::MAX);
        merkle::consistency_proof(leaves, old).ok_or_else(|| TreeError::TooLarge {
            chain_id: self.chain_id.clone(),
            size: new,
            asked: old as u64,
        })
    }
}

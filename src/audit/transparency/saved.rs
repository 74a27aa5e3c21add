//! `audit verify --checkpoint FILE`: is today's log an extension of the log a
//! checkpoint saved earlier (by a witness, an auditor, a patient) described? A
//! rewrite below the checkpoint changes the root of its first records; a deletion
//! leaves fewer records than it covers; a re-keyed chain no longer verifies it.

use ed25519_dalek::VerifyingKey;

use super::note::{NoteError, ORIGIN_PREFIX, SignedNote, verify_checkpoint};
use super::tree::{ChainTree, TreeError};
use crate::audit::signer::parse_public_key;
use crate::store::{AuditStore, StoreError};

/// The file cannot be read as one of this gateway's checkpoints (bad input).
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{0}")]
    Note(#[from] NoteError),
    #[error(
        "the checkpoint's origin {0:?} is not one of this gateway's chains ({ORIGIN_PREFIX}<chain id>)"
    )]
    Origin(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCheck {
    pub chain_id: String,
    /// How many records the checkpoint covers.
    pub saved_size: u64,
    /// How many the chain has today, when it could be read.
    pub current_size: Option<u64>,
    /// `None` if consistent; else what is wrong.
    pub problem: Option<String>,
}

impl SavedCheck {
    pub fn is_consistent(&self) -> bool {
        self.problem.is_none()
    }
}

/// Checks the checkpoint `text` against the store. The chain's key is the one
/// registered in the store, or, with `trusted_keys`, only one of those.
pub async fn check_saved(
    store: &dyn AuditStore,
    text: &str,
    trusted_keys: &[String],
) -> Result<SavedCheck, SavedError> {
    let note = SignedNote::parse(text)?;
    let head = note.tree_head()?;
    let chain_id = head
        .origin
        .strip_prefix(ORIGIN_PREFIX)
        .ok_or_else(|| SavedError::Origin(head.origin.clone()))?
        .to_string();
    let mut check = SavedCheck {
        chain_id: chain_id.clone(),
        saved_size: head.size,
        current_size: None,
        problem: None,
    };
    let keys = chain_keys(store, &chain_id, trusted_keys).await?;
    if keys.is_empty() {
        check.problem = Some(format!(
            "no key for chain {chain_id}: it is not registered in the store{}",
            if trusted_keys.is_empty() {
                ""
            } else {
                " or not among the trusted keys"
            }
        ));
        return Ok(check);
    }
    if !keys.iter().any(|k| verify_checkpoint(&note, k).is_ok()) {
        check.problem = Some(format!(
            "the checkpoint does not verify under chain {chain_id}'s key: the file was altered, \
             or the chain was re-signed under another key"
        ));
        return Ok(check);
    }
    check.problem = compare(store, &chain_id, &head, &mut check.current_size).await?;
    Ok(check)
}

/// The keys chain `chain_id` may be verified with.
async fn chain_keys(
    store: &dyn AuditStore,
    chain_id: &str,
    trusted_keys: &[String],
) -> Result<Vec<VerifyingKey>, StoreError> {
    if !trusted_keys.is_empty() {
        return Ok(trusted_keys
            .iter()
            .filter_map(|k| parse_public_key(k))
            .filter(|k| crate::audit::signer::chain_id_of(k) == chain_id)
            .collect());
    }
    Ok(store
        .chains()
        .await?
        .iter()
        .filter(|c| c.chain_id == chain_id)
        .filter_map(|c| parse_public_key(&c.public_key))
        .collect())
}

/// Today's tree against the saved head: `None` if it extends it.
async fn compare(
    store: &dyn AuditStore,
    chain_id: &str,
    head: &super::note::TreeHead,
    current_size: &mut Option<u64>,
) -> Result<Option<String>, StoreError> {
    let tree = match ChainTree::load(store, chain_id).await {
        Ok(tree) => tree,
        Err(TreeError::Store(e)) => return Err(e),
        Err(e) => return Ok(Some(e.to_string())),
    };
    *current_size = Some(tree.size());
    if tree.size() < head.size {
        return Ok(Some(format!(
            "the chain has {} records, fewer than the {} the checkpoint covers: records were deleted",
            tree.size(),
            head.size
        )));
    }
    match tree.root_at(head.size) {
        Ok(root) if root == head.root => Ok(None),
        Ok(_) => Ok(Some(format!(
            "the chain's first {} records no longer have the checkpoint's root hash: the log was \
             rewritten below the checkpoint",
            head.size
        ))),
        Err(e) => Ok(Some(e.to_string())),
    }
}

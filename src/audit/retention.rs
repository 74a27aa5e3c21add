//! Retention: access records older than the configured period are deleted, whole
//! chain prefixes at a time, up to a signed checkpoint that stays behind to anchor
//! what remains, so a pruned chain still verifies.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{AuditStore, StoreError};

/// Prunes every chain up to its last checkpoint signed before `now - retention`.
/// A checkpoint is signed after the records it covers were committed, so every
/// pruned record is older than the cut-off. Returns how many records were deleted.
pub async fn prune_expired(
    store: &dyn AuditStore,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<u64, StoreError> {
    let Some(cutoff) = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
    else {
        return Ok(0);
    };
    let mut deleted = 0;
    for chain in store.chains().await? {
        let checkpoints = store.checkpoints(&chain.chain_id).await?;
        let Some(anchor) = checkpoints.iter().rev().find(|c| c.at < cutoff) else {
            continue;
        };
        let first = store.chain_records(&chain.chain_id, 0, 1).await?;
        if first.first().is_some_and(|r| r.seq <= anchor.seq) {
            deleted += store.prune(&chain.chain_id, anchor.seq).await?;
        }
    }
    Ok(deleted)
}

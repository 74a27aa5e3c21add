//! The hourly clean-up of what the gateway may no longer keep.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::store::{AuditStore, Store};

/// Hourly, from start: prunes access records past their retention, and forgets
/// searches past their lifetime (they can no longer be named).
pub(super) fn spawn_retention(
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditStore>,
    retention: Duration,
    search_ttl: Duration,
    clock: SharedClock,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let now = clock.now();
            match crate::audit::retention::prune_expired(audit.as_ref(), now, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, ?retention, "pruned expired access records"),
                Err(e) => tracing::warn!(error = %e, "pruning expired access records failed"),
            }
            let Some(expired) = chrono::Duration::from_std(search_ttl)
                .ok()
                .and_then(|ttl| now.checked_sub_signed(ttl))
            else {
                continue;
            };
            match store.prune_searches(expired).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(searches = n, "forgot expired searches"),
                Err(e) => tracing::warn!(error = %e, "forgetting expired searches failed"),
            }
        }
    })
}

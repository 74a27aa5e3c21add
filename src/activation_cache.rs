//! The activation registry as the activation rule sees it: per-area coverage, cached
//! in moka. Entries live for a bounded time (the refresh bound for changes made
//! elsewhere); a change made through this process invalidates at once. The cache
//! holds windows, not decisions, so a window's end denies at its instant anyway.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::store::{ActivationStore, AreaKey, Coverage, StoreError};

#[derive(Clone)]
pub struct ActivationCache {
    store: Arc<dyn ActivationStore>,
    cache: Cache<AreaKey, Arc<Vec<Coverage>>>,
}

impl ActivationCache {
    pub fn new(store: Arc<dyn ActivationStore>, refresh: Duration) -> Self {
        ActivationCache {
            store,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(refresh)
                .build(),
        }
    }

    pub async fn coverage(&self, area: &AreaKey) -> Result<Arc<Vec<Coverage>>, StoreError> {
        let store = self.store.clone();
        let key = area.clone();
        self.cache
            .try_get_with(area.clone(), async move {
                store.coverage(&key).await.map(Arc::new)
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Drops every cached entry: the next call reads the store.
    pub fn invalidate(&self) {
        self.cache.invalidate_all();
    }
}

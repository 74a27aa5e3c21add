//! The activation registry as the activation rule sees it, in memory:
//! - an index of every activation's current windows, reloaded when this replica
//!   changes an activation (before the admin call returns), when the database
//!   announces a change made elsewhere (PostgreSQL LISTEN/NOTIFY), and at least
//!   every refresh interval as a backstop;
//! - the facility registry's entries, cached in moka for the same interval.
//!
//! The index holds windows, not decisions, so a window's end denies at its instant
//! whatever was reloaded. If the store cannot be read, the last index keeps serving
//! (its windows still end on time) and the cache reports itself unhealthy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use tokio::sync::{Mutex, RwLock, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::activation::index::AreaIndex;
use crate::activation::sites::SiteBook;
use crate::store::{RegisteredFacility, Store, StoreError};
use crate::telemetry::metrics::ActivationMetrics;

#[derive(Clone)]
pub struct ActivationCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    refresh: Duration,
    index: RwLock<Option<Loaded>>,
    /// Bumped by every invalidation; an index loaded before the latest bump is stale,
    /// even one whose reload was in flight when the change was made.
    generation: AtomicU64,
    /// One reload at a time; callers arriving meanwhile use its result.
    reloading: Mutex<()>,
    registry: Cache<String, Option<RegisteredFacility>>,
    healthy: watch::Sender<bool>,
    metrics: ActivationMetrics,
}

#[derive(Clone)]
struct Loaded {
    index: Arc<AreaIndex>,
    /// The temporary sites, by id: loaded with the index, so a closure is in force
    /// exactly when an activation change made at the same moment would be.
    sites: Arc<SiteBook>,
    at: Instant,
    /// The generation current when this load began.
    generation: u64,
}

impl ActivationCache {
    pub fn new(store: Arc<dyn Store>, refresh: Duration, metrics: ActivationMetrics) -> Self {
        ActivationCache {
            inner: Arc::new(Inner {
                store,
                refresh,
                index: RwLock::new(None),
                generation: AtomicU64::new(0),
                reloading: Mutex::new(()),
                registry: Cache::builder()
                    .max_capacity(300_000)
                    .time_to_live(refresh)
                    .build(),
                healthy: watch::channel(true).0,
                metrics,
            }),
        }
    }

    /// The current index; reloads it first if it is stale (a change was made here),
    /// or if the follower has not reloaded it for two intervals. If reloading fails
    /// the last index is returned (and the cache marked unhealthy); only with no index
    /// ever loaded is the failure returned.
    pub async fn index(&self) -> Result<Arc<AreaIndex>, StoreError> {
        self.loaded().await.map(|l| l.index)
    }

    /// The temporary sites, as fresh as the index (see [`ActivationCache::index`]).
    pub async fn sites(&self) -> Result<Arc<SiteBook>, StoreError> {
        self.loaded().await.map(|l| l.sites)
    }

    async fn loaded(&self) -> Result<Loaded, StoreError> {
        if let Some(l) = self.fresh().await {
            self.inner.metrics.index_lookup("fresh");
            return Ok(l);
        }
        let _one = self.inner.reloading.lock().await;
        if let Some(l) = self.fresh().await {
            self.inner.metrics.index_lookup("fresh");
            return Ok(l);
        }
        self.inner.metrics.index_lookup("reloaded");
        match self.reload_now().await {
            Ok(loaded) => Ok(loaded),
            Err(e) => match self.inner.index.write().await.as_mut() {
                Some(last) => {
                    // Serve the last state and retry after another interval, rather
                    // than asking a failing store on every call.
                    last.at = Instant::now();
                    last.generation = self.inner.generation.load(Ordering::Acquire);
                    Ok(last.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn fresh(&self) -> Option<Loaded> {
        self.inner
            .index
            .read()
            .await
            .as_ref()
            // The follower reloads every interval; a decision waits for a reload
            // only after a local change, or if the follower fell behind.
            .filter(|l| {
                l.generation == self.inner.generation.load(Ordering::Acquire)
                    && l.at.elapsed() < 2 * self.inner.refresh
            })
            .cloned()
    }

    async fn reload_now(&self) -> Result<Loaded, StoreError> {
        let generation = self.inner.generation.load(Ordering::Acquire);
        let read = async {
            let activations = self.inner.store.list_activations().await?;
            let sites = self.inner.store.list_sites().await?;
            Ok::<_, StoreError>((activations, sites))
        };
        match read.await {
            Ok((activations, sites)) => {
                let loaded = Loaded {
                    index: Arc::new(AreaIndex::build(&activations, None)),
                    sites: Arc::new(SiteBook::new(sites)),
                    at: Instant::now(),
                    generation,
                };
                *self.inner.index.write().await = Some(loaded.clone());
                self.set_healthy(true);
                self.inner.metrics.reloads.inc();
                self.inner.metrics.loaded_at.now();
                Ok(loaded)
            }
            Err(e) => {
                tracing::warn!(error = %e, "activation registry unreadable: deciding from the last known state");
                self.set_healthy(false);
                self.inner.metrics.reload_failures.inc();
                Err(e)
            }
        }
    }

    /// Reloads now: a change made through this replica is in force when this returns.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        self.invalidate();
        let _one = self.inner.reloading.lock().await;
        self.reload_now().await.map(|_| ())
    }

    /// The backstop: reloads whatever the index's age, so an idle replica learns of
    /// changes (and of store failures) within one interval.
    async fn reload_periodically(&self) {
        let _one = self.inner.reloading.lock().await;
        let _ = self.reload_now().await;
    }

    /// Marks the index stale: the next decision reloads it.
    pub fn invalidate(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.inner.registry.invalidate_all();
    }

    /// The facility's registry entry, `None` if it is not registered.
    pub async fn facility(&self, code: &str) -> Result<Option<RegisteredFacility>, StoreError> {
        if let Some(cached) = self.inner.registry.get(code).await {
            self.inner.metrics.registry_lookup("hit");
            return Ok(cached);
        }
        self.inner.metrics.registry_lookup("miss");
        let store = self.inner.store.clone();
        let key = code.to_string();
        self.inner
            .registry
            .try_get_with(code.to_string(), async move { store.facility(&key).await })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// False while the store cannot be read and decisions use the last known state.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.inner.healthy.subscribe()
    }

    fn set_healthy(&self, healthy: bool) {
        self.inner.healthy.send_replace(healthy);
        self.inner.metrics.healthy.set(i64::from(healthy));
    }

    /// Follows changes announced by the database, and reloads at least every refresh
    /// interval, so an idle replica also learns of changes and of store failures.
    pub async fn spawn_follower(&self) -> JoinHandle<()> {
        let cache = self.clone();
        let mut changes = match self.inner.store.subscribe().await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for activation changes; relying on the periodic refresh");
                None
            }
        };
        tokio::spawn(async move {
            let mut every = tokio::time::interval(cache.inner.refresh);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let announced = async {
                    match changes.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    signal = announced => {
                        if signal.is_none() {
                            changes = None;
                            continue;
                        }
                        let _ = cache.refresh().await;
                    }
                    _ = every.tick() => cache.reload_periodically().await,
                }
            }
        })
    }
}

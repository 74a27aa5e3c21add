//! The background tasks of accountability after an access: the patient-notice
//! dispatcher, and the count of accesses whose review is overdue.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::audit::notices::{Dispatcher, NoticesConfig, Sink, spawn_dispatcher};
use crate::clock::SharedClock;
use crate::store::Store;
use crate::telemetry::metrics::AuditMetrics;

/// How often the overdue reviews are counted.
const OVERDUE_EVERY: Duration = Duration::from_secs(60);

/// The dispatcher, when a sink is configured (the configuration check refused a
/// sink that cannot be used).
pub(super) fn spawn_notices(
    config: &NoticesConfig,
    store: Arc<dyn Store>,
    clock: SharedClock,
    metrics: AuditMetrics,
) -> Option<JoinHandle<()>> {
    let sink = match Sink::of(config) {
        Ok(sink) => sink?,
        Err(why) => {
            tracing::error!(error = %why, "notices to patients cannot be delivered: the sink is unusable");
            return None;
        }
    };
    tracing::info!(sink = ?sink, "notices to patients are delivered");
    let dispatcher = Dispatcher::new(store, sink, config.clone(), clock, metrics);
    Some(spawn_dispatcher(dispatcher))
}

/// Every minute: how many flagged accesses are unreviewed past `bound`.
pub(super) fn spawn_overdue_reviews(
    store: Arc<dyn Store>,
    bound: Duration,
    clock: SharedClock,
    metrics: AuditMetrics,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(OVERDUE_EVERY);
        loop {
            every.tick().await;
            let Some(before) = chrono::Duration::from_std(bound)
                .ok()
                .and_then(|b| clock.now().checked_sub_signed(b))
            else {
                continue;
            };
            match store.count_overdue_reviews(before).await {
                Ok(n) => {
                    metrics
                        .reviews_overdue
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                Err(e) => tracing::warn!(error = %e, "counting overdue reviews failed"),
            }
        }
    })
}

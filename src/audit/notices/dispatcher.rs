//! The dispatcher: claims due notices from the outbox under a lease, delivers
//! them, and marks each delivered or due again later with a growing delay. A
//! replica that dies holding a lease delays its notices by at most the lease;
//! another replica (or itself, restarted) then delivers them.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::NoticesConfig;
use super::payload::NoticePayload;
use super::sink::Sink;
use crate::clock::SharedClock;
use crate::store::{OutboxNotice, Store};
use crate::telemetry::metrics::AuditMetrics;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    sink: Sink,
    config: NoticesConfig,
    clock: SharedClock,
    metrics: AuditMetrics,
    /// This replica's name on its leases.
    owner: String,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        sink: Sink,
        config: NoticesConfig,
        clock: SharedClock,
        metrics: AuditMetrics,
    ) -> Dispatcher {
        Dispatcher {
            store,
            sink,
            config,
            clock,
            metrics,
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Claims and delivers one batch; returns how many notices it claimed.
    pub async fn run_once(&self) -> Result<usize, crate::store::StoreError> {
        let now = self.clock.now();
        let lease_until =
            now + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self
            .store
            .claim_notices(&self.owner, now, lease_until, self.config.batch.max(1))
            .await?;
        for notice in &claimed {
            self.deliver(notice).await?;
        }
        if let Ok(pending) = self.store.pending_notices().await {
            self.metrics
                .notices_pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        Ok(claimed.len())
    }

    async fn deliver(&self, notice: &OutboxNotice) -> Result<(), crate::store::StoreError> {
        let name = match &notice.facility {
            Some(code) => self
                .store
                .facility(code)
                .await
                .ok()
                .flatten()
                .map(|f| f.name),
            None => None,
        };
        let payload = NoticePayload::of(notice, name);
        match self.sink.deliver(&payload).await {
            Ok(()) => {
                self.metrics.notices_delivered.inc();
                self.store
                    .notice_delivered(&notice.record_id, &self.owner, self.clock.now())
                    .await?;
            }
            Err(why) => {
                self.metrics.notice_failures.inc();
                tracing::warn!(notice = %notice.record_id, attempts = notice.attempts + 1, error = %why, "a notice to a patient was not delivered; retrying later");
                let delay = chrono::Duration::from_std(self.config.backoff(notice.attempts))
                    .unwrap_or(chrono::Duration::MAX);
                self.store
                    .notice_failed(
                        &notice.record_id,
                        &self.owner,
                        self.clock.now() + delay,
                        &why,
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// Runs `dispatcher` until aborted: a full batch is followed at once by the next,
/// an empty one by a pause of `poll`. Aborting it mid-delivery loses nothing: the
/// lease runs out and the notice is delivered again.
pub fn spawn_dispatcher(dispatcher: Dispatcher) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let full = match dispatcher.run_once().await {
                Ok(n) => n >= dispatcher.config.batch.max(1) as usize,
                Err(e) => {
                    tracing::warn!(error = %e, "the notice outbox cannot be read");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::time::sleep(dispatcher.config.poll).await;
        }
    })
}

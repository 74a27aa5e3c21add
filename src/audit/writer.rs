//! Group commit: one writer task takes every record queued while the previous batch
//! was being committed and commits them in one transaction, so durability costs a
//! bounded latency rather than a transaction per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{AccessRecord, AuditStore};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("the access log could not be committed: {0}")]
    CommitFailed(String),
    #[error("the access-log writer has stopped")]
    WriterStopped,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most records in one transaction.
    pub max_batch: usize,
    /// How long a batch may wait for more records before committing (0: none; the
    /// batch is whatever queued during the previous commit).
    pub linger: Duration,
    /// Records that may wait for the writer before callers are held back.
    pub queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 256,
            linger: Duration::ZERO,
            queue: 8192,
        }
    }
}

struct Pending {
    record: AccessRecord,
    done: oneshot::Sender<Result<(), AuditError>>,
}

#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
    healthy: Arc<AtomicBool>,
}

impl AuditWriter {
    /// Starts the writer. It stops, after committing what is queued, once every
    /// `AuditWriter` clone is dropped; await the handle to know it has flushed.
    pub fn spawn(store: Arc<dyn AuditStore>, config: BatchConfig) -> (AuditWriter, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let handle = tokio::spawn(run(store, config, rx, healthy.clone()));
        (AuditWriter { tx, healthy }, handle)
    }

    /// Returns once the record is durable, or why it is not.
    pub async fn commit(&self, record: AccessRecord) -> Result<(), AuditError> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send(Pending { record, done })
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        committed.await.map_err(|_| AuditError::WriterStopped)?
    }

    /// False after a failed commit, until a commit succeeds again.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

async fn run(
    store: Arc<dyn AuditStore>,
    config: BatchConfig,
    mut rx: mpsc::Receiver<Pending>,
    healthy: Arc<AtomicBool>,
) {
    let max = config.max_batch.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if !config.linger.is_zero() && batch.len() < max {
            let deadline = tokio::time::Instant::now() + config.linger;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    _ => break,
                }
            }
        }
        let records: Vec<AccessRecord> = batch.iter().map(|p| p.record.clone()).collect();
        let result = store
            .append(&records)
            .await
            .map_err(|e| AuditError::CommitFailed(e.to_string()));
        healthy.store(result.is_ok(), Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, records = records.len(), "access-log commit failed");
        }
        for p in batch.drain(..) {
            // A caller that gave up no longer waits for its answer; nothing to do.
            let _ = p.done.send(result.clone());
        }
    }
}

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

/// Owns the writer task: [`WriterTask::close`] refuses new records, commits those
/// already queued, and waits for the task to end, however many writer clones live on
/// (open connections may still hold some).
pub struct WriterTask {
    stop: oneshot::Sender<()>,
    join: JoinHandle<()>,
}

impl WriterTask {
    pub async fn close(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.stop.send(());
        self.join.await
    }
}

impl AuditWriter {
    /// Starts the writer. It stops, after committing what is queued, when closed or
    /// once every `AuditWriter` clone is dropped.
    pub fn spawn(store: Arc<dyn AuditStore>, config: BatchConfig) -> (AuditWriter, WriterTask) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let (stop, stopped) = oneshot::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let join = tokio::spawn(run(store, config, rx, stopped, healthy.clone()));
        (AuditWriter { tx, healthy }, WriterTask { stop, join })
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
    mut stopped: oneshot::Receiver<()>,
    healthy: Arc<AtomicBool>,
) {
    let max = config.max_batch.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max);
    let mut closing = false;
    loop {
        let first = tokio::select! {
            p = rx.recv() => match p {
                Some(p) => p,
                None => break,
            },
            // New records are refused from here on; queued ones are still committed.
            _ = &mut stopped, if !closing => {
                closing = true;
                rx.close();
                continue;
            }
        };
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::store::{Decision, StoreError};

    /// Records batch sizes; slow enough that callers pile up behind a commit.
    #[derive(Default)]
    struct SlowStore {
        batches: Mutex<Vec<usize>>,
        fail: AtomicBool,
    }

    #[async_trait]
    impl AuditStore for SlowStore {
        async fn append(&self, records: &[AccessRecord]) -> Result<(), StoreError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail.load(Ordering::Relaxed) {
                return Err(StoreError::Unavailable("disk full".into()));
            }
            self.batches.lock().expect("lock").push(records.len());
            Ok(())
        }
        async fn records(
            &self,
            _: Option<&str>,
            _: Option<DateTime<Utc>>,
            _: u32,
        ) -> Result<Vec<AccessRecord>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn record(i: usize) -> AccessRecord {
        AccessRecord {
            id: format!("r{i}"),
            at: Utc::now(),
            method: "LookupQualification".into(),
            items: "qualification".into(),
            facility: None,
            staff_id: None,
            staff_role: None,
            patient_key: None,
            identification: None,
            search_id: None,
            consent_basis: None,
            exemption_reason: None,
            exemption_identification: None,
            purpose: None,
            activation_id: None,
            decision: Decision::Denied,
            reason: None,
            grpc_code: 0,
            upstream_result: None,
            needs_review: false,
        }
    }

    #[tokio::test]
    async fn concurrent_records_are_group_committed_and_all_acknowledged() {
        let store = Arc::new(SlowStore::default());
        let (writer, task) = AuditWriter::spawn(
            store.clone(),
            BatchConfig {
                max_batch: 16,
                ..BatchConfig::default()
            },
        );
        let calls: Vec<_> = (0..100)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { w.commit(record(i)).await })
            })
            .collect();
        for c in calls {
            c.await.expect("task").expect("committed");
        }
        task.close().await.expect("writer stops");
        assert!(matches!(
            writer.commit(record(101)).await,
            Err(AuditError::WriterStopped)
        ));
        let batches = store.batches.lock().expect("lock").clone();
        assert_eq!(batches.iter().sum::<usize>(), 100);
        assert!(batches.iter().all(|b| *b <= 16), "{batches:?}");
        assert!(batches.len() < 100, "no batching happened: {batches:?}");
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_callers_and_marks_the_writer_unhealthy() {
        let store = Arc::new(SlowStore::default());
        store.fail.store(true, Ordering::Relaxed);
        let (writer, _handle) = AuditWriter::spawn(store.clone(), BatchConfig::default());
        let err = writer.commit(record(1)).await.expect_err("must fail");
        assert!(matches!(err, AuditError::CommitFailed(ref m) if m.contains("disk full")));
        assert!(!writer.is_healthy());
        store.fail.store(false, Ordering::Relaxed);
        writer.commit(record(2)).await.expect("recovers");
        assert!(writer.is_healthy());
    }
}

//! Group commit: one writer task takes every record queued while the previous batch
//! was being committed, links them into this writer's hash chain and commits them in
//! one transaction, so durability costs a bounded latency rather than a transaction
//! per call. Every so often it signs a checkpoint over the chain's head, committed in
//! the same transaction as the records it covers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::chain::Linker;
use super::signer::ChainSigner;
use crate::clock::SharedClock;
use crate::store::{AccessRecord, AuditStore, Checkpoint, StoreError};
use crate::telemetry::metrics::AuditMetrics;

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
    /// A checkpoint is signed once this many records follow the last one…
    pub checkpoint_records: u64,
    /// …or once this much time has passed with records after the last one.
    pub checkpoint_interval: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 256,
            linger: Duration::ZERO,
            queue: 8192,
            checkpoint_records: 1000,
            checkpoint_interval: Duration::from_secs(10),
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
    healthy: watch::Receiver<bool>,
    chain_id: Arc<str>,
}

/// Owns the writer task: [`WriterTask::close`] refuses new records, commits those
/// already queued, signs a last checkpoint, and waits for the task to end, however
/// many writer clones live on (open connections may still hold some).
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
    /// Registers the signer's chain, resumes it after its last stored record and
    /// starts the writer. It stops, after committing what is queued, when closed or
    /// once every `AuditWriter` clone is dropped.
    pub async fn start(
        store: Arc<dyn AuditStore>,
        signer: ChainSigner,
        config: BatchConfig,
        clock: SharedClock,
        metrics: AuditMetrics,
    ) -> Result<(AuditWriter, WriterTask), StoreError> {
        store
            .register_chain(&signer.chain_info(clock.now()))
            .await?;
        let linker = resume(store.as_ref(), signer.chain_id()).await?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let (stop, stopped) = oneshot::channel();
        let (health_tx, healthy) = watch::channel(true);
        let chain_id: Arc<str> = Arc::from(signer.chain_id());
        let task = Task {
            store,
            signer,
            config,
            clock,
            linker,
            health: health_tx,
            metrics,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            reload: false,
        };
        let join = tokio::spawn(task.run(rx, stopped));
        Ok((
            AuditWriter {
                tx,
                healthy,
                chain_id,
            },
            WriterTask { stop, join },
        ))
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
        *self.healthy.borrow()
    }

    /// Follows the writer's health, e.g. to report it in the health service.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.healthy.clone()
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

async fn resume(store: &dyn AuditStore, chain_id: &str) -> Result<Linker, StoreError> {
    let head = store.chain_head(chain_id).await?;
    Linker::resume(chain_id, head.as_ref()).ok_or_else(|| {
        StoreError::Corrupt(format!("the head hash of chain {chain_id} is not a hash"))
    })
}

struct Task {
    store: Arc<dyn AuditStore>,
    signer: ChainSigner,
    config: BatchConfig,
    clock: SharedClock,
    linker: Linker,
    health: watch::Sender<bool>,
    metrics: AuditMetrics,
    /// Records committed since the last checkpoint.
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// After a failed commit the store may or may not hold the batch (a commit can
    /// fail after it took effect): the head is read back before the next one.
    reload: bool,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Pending>, mut stopped: oneshot::Receiver<()>) {
        let max = self.config.max_batch.max(1);
        let mut batch: Vec<Pending> = Vec::with_capacity(max);
        let mut closing = false;
        let mut tick = tokio::time::interval(
            self.config
                .checkpoint_interval
                .max(Duration::from_millis(10)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                // An idle writer still signs the records it committed since the last checkpoint.
                _ = tick.tick() => {
                    if self.since_checkpoint > 0
                        && self.last_checkpoint.elapsed() >= self.config.checkpoint_interval
                    {
                        self.checkpoint_alone().await;
                    }
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
            if !self.config.linger.is_zero() && batch.len() < max {
                let deadline = Instant::now() + self.config.linger;
                while batch.len() < max {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(p)) => batch.push(p),
                        _ => break,
                    }
                }
            }
            let (records, waiting): (Vec<_>, Vec<_>) =
                batch.drain(..).map(|p| (p.record, p.done)).unzip();
            let result = self.commit(records).await;
            for done in waiting {
                // A caller that gave up no longer waits for its answer; nothing to do.
                let _ = done.send(result.clone());
            }
        }
        if self.since_checkpoint > 0 {
            self.checkpoint_alone().await;
        }
    }

    async fn commit(&mut self, records: Vec<AccessRecord>) -> Result<(), AuditError> {
        if self.reload {
            match resume(self.store.as_ref(), self.signer.chain_id()).await {
                Ok(linker) => {
                    self.linker = linker;
                    self.reload = false;
                }
                Err(e) => return Err(self.failed(e, records.len())),
            }
        }
        let n = records.len() as u64;
        let mut next = self.linker.clone();
        let linked = next.link(records);
        let checkpoint = (self.since_checkpoint + n >= self.config.checkpoint_records
            || self.last_checkpoint.elapsed() >= self.config.checkpoint_interval)
            .then(|| self.sign(&next));
        let started = Instant::now();
        match self.store.append(&linked, checkpoint.as_ref()).await {
            Ok(()) => {
                self.linker = next;
                match checkpoint {
                    Some(_) => self.checkpointed(),
                    None => self.since_checkpoint += n,
                }
                self.health.send_replace(true);
                self.metrics.healthy.set(1);
                self.metrics.committed.inc_by(n);
                self.metrics.batch_records.observe(n as f64);
                self.metrics
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(e) => Err(self.failed(e, linked.len())),
        }
    }

    async fn checkpoint_alone(&mut self) {
        let checkpoint = self.sign(&self.linker.clone());
        match self.store.append(&[], Some(&checkpoint)).await {
            Ok(()) => self.checkpointed(),
            // Retried at the next tick or batch; the records themselves are committed.
            Err(e) => tracing::warn!(error = %e, "access-log checkpoint failed"),
        }
    }

    fn sign(&self, at: &Linker) -> Checkpoint {
        self.signer
            .checkpoint(at.seq(), &at.head_hash(), self.clock.now())
    }

    fn checkpointed(&mut self) {
        self.metrics.checkpoints.inc();
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
    }

    fn failed(&mut self, e: StoreError, records: usize) -> AuditError {
        self.reload = true;
        self.health.send_replace(false);
        self.metrics.healthy.set(0);
        self.metrics.commit_failures.inc();
        if let StoreError::Conflict(_) = e {
            tracing::error!(error = %e, chain = self.signer.chain_id(),
                "another writer appends to this chain: every replica needs its own audit signing key");
        } else {
            tracing::error!(error = %e, records, "access-log commit failed");
        }
        AuditError::CommitFailed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::clock::SystemClock;
    use crate::store::{AccessQuery, ChainHead, ChainInfo, StoredRecord};

    /// Keeps what is appended in memory; slow enough that callers pile up behind a commit.
    #[derive(Default)]
    struct SlowStore {
        batches: Mutex<Vec<usize>>,
        records: Mutex<Vec<StoredRecord>>,
        checkpoints: Mutex<Vec<Checkpoint>>,
        fail: AtomicBool,
        /// Fails after taking effect, as a commit whose acknowledgement is lost.
        fail_after_commit: AtomicBool,
    }

    #[async_trait]
    impl AuditStore for SlowStore {
        async fn register_chain(&self, _: &ChainInfo) -> Result<(), StoreError> {
            Ok(())
        }
        async fn chains(&self) -> Result<Vec<ChainInfo>, StoreError> {
            Ok(Vec::new())
        }
        async fn logged_chain_ids(&self) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
        async fn chain_head(&self, _: &str) -> Result<Option<ChainHead>, StoreError> {
            Ok(self
                .records
                .lock()
                .expect("lock")
                .last()
                .map(|r| ChainHead {
                    seq: r.seq,
                    hash: r.hash.clone(),
                }))
        }
        async fn append(
            &self,
            records: &[StoredRecord],
            checkpoint: Option<&Checkpoint>,
        ) -> Result<(), StoreError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail.load(Ordering::Relaxed) {
                return Err(StoreError::Unavailable("disk full".into()));
            }
            let mut stored = self.records.lock().expect("lock");
            if let (Some(last), Some(first)) = (stored.last(), records.first())
                && first.seq != last.seq + 1
            {
                return Err(StoreError::Conflict(format!("seq {}", first.seq)));
            }
            stored.extend_from_slice(records);
            self.batches.lock().expect("lock").push(records.len());
            self.checkpoints
                .lock()
                .expect("lock")
                .extend(checkpoint.cloned());
            if self.fail_after_commit.swap(false, Ordering::Relaxed) {
                return Err(StoreError::Unavailable("connection reset".into()));
            }
            Ok(())
        }
        async fn chain_records(
            &self,
            _: &str,
            _: u64,
            _: u32,
        ) -> Result<Vec<StoredRecord>, StoreError> {
            Ok(Vec::new())
        }
        async fn checkpoints(&self, _: &str) -> Result<Vec<Checkpoint>, StoreError> {
            Ok(Vec::new())
        }
        async fn query(&self, _: &AccessQuery, _: u32) -> Result<Vec<StoredRecord>, StoreError> {
            Ok(Vec::new())
        }
        async fn prune(&self, _: &str, _: u64) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn record(i: usize) -> AccessRecord {
        crate::audit::chain::tests::record(&format!("r{i}"))
    }

    async fn start(store: Arc<SlowStore>, config: BatchConfig) -> (AuditWriter, WriterTask) {
        AuditWriter::start(
            store,
            ChainSigner::generate(),
            config,
            Arc::new(SystemClock),
            AuditMetrics::default(),
        )
        .await
        .expect("writer starts")
    }

    fn assert_linked(records: &[StoredRecord]) {
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
            if i > 0 {
                assert_eq!(r.prev_hash, records[i - 1].hash);
            }
        }
    }

    #[tokio::test]
    async fn concurrent_records_are_group_committed_linked_and_all_acknowledged() {
        let store = Arc::new(SlowStore::default());
        let (writer, task) = start(
            store.clone(),
            BatchConfig {
                max_batch: 16,
                checkpoint_records: 40,
                ..BatchConfig::default()
            },
        )
        .await;
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
        assert_linked(&store.records.lock().expect("lock"));
        // Checkpoints at least every 40 records, and a last one at the head on close.
        let checkpoints = store.checkpoints.lock().expect("lock").clone();
        let seqs: Vec<u64> = checkpoints.iter().map(|c| c.seq).collect();
        assert_eq!(seqs.last(), Some(&100), "{seqs:?}");
        let mut previous = 0;
        for s in &seqs {
            assert!(s - previous <= 40 + 15, "gap before {s}: {seqs:?}");
            previous = *s;
        }
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_callers_and_marks_the_writer_unhealthy() {
        let store = Arc::new(SlowStore::default());
        store.fail.store(true, Ordering::Relaxed);
        let (writer, _task) = start(store.clone(), BatchConfig::default()).await;
        let health = writer.health();
        let err = writer.commit(record(1)).await.expect_err("must fail");
        assert!(matches!(err, AuditError::CommitFailed(ref m) if m.contains("disk full")));
        assert!(!writer.is_healthy());
        assert!(!*health.borrow());
        store.fail.store(false, Ordering::Relaxed);
        writer.commit(record(2)).await.expect("recovers");
        assert!(writer.is_healthy());
        assert_linked(&store.records.lock().expect("lock"));
    }

    #[tokio::test]
    async fn after_a_commit_whose_outcome_was_lost_the_chain_resumes_from_the_store() {
        let store = Arc::new(SlowStore::default());
        let (writer, _task) = start(store.clone(), BatchConfig::default()).await;
        writer.commit(record(1)).await.expect("first");
        store.fail_after_commit.store(true, Ordering::Relaxed);
        writer
            .commit(record(2))
            .await
            .expect_err("reported as failed");
        // Record 2 is in fact stored; the next record follows it instead of clashing.
        writer.commit(record(3)).await.expect("continues");
        let records = store.records.lock().expect("lock").clone();
        assert_eq!(records.len(), 3);
        assert_linked(&records);
    }

    #[tokio::test]
    async fn a_lingering_batch_waits_for_records_arriving_soon_after() {
        let store = Arc::new(SlowStore::default());
        let (writer, _task) = start(
            store.clone(),
            BatchConfig {
                linger: Duration::from_millis(200),
                ..BatchConfig::default()
            },
        )
        .await;
        let first = {
            let w = writer.clone();
            tokio::spawn(async move { w.commit(record(1)).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        writer.commit(record(2)).await.expect("committed");
        first.await.expect("task").expect("committed");
        // Without linger the first record would have gone alone.
        assert_eq!(store.batches.lock().expect("lock").clone(), vec![2]);
    }

    #[tokio::test]
    async fn an_idle_writer_signs_what_it_committed() {
        let store = Arc::new(SlowStore::default());
        let (writer, _task) = start(
            store.clone(),
            BatchConfig {
                checkpoint_interval: Duration::from_millis(50),
                ..BatchConfig::default()
            },
        )
        .await;
        writer.commit(record(1)).await.expect("committed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let checkpoints = store.checkpoints.lock().expect("lock").clone();
        assert_eq!(
            checkpoints.last().map(|c| c.seq),
            Some(1),
            "{checkpoints:?}"
        );
        // Nothing new: no further checkpoint.
        let n = checkpoints.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(store.checkpoints.lock().expect("lock").len(), n);
    }
}

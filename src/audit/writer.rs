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

use super::backlog::Backlog;
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
    /// A commit taking longer has failed (whether it took effect is read back later):
    /// a store that hangs refuses calls in bounded time instead of holding them.
    pub commit_timeout: Duration,
    /// Records of refused calls kept for the store's return; beyond, they are counted
    /// as lost.
    pub backlog: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 256,
            linger: Duration::ZERO,
            queue: 8192,
            checkpoint_records: 1000,
            checkpoint_interval: Duration::from_secs(10),
            commit_timeout: Duration::from_millis(500),
            backlog: 100_000,
        }
    }
}

/// While the store fails, commits are retried this often at first…
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// …backing off to at most this.
const RETRY_MAX: Duration = Duration::from_secs(2);

struct Pending {
    /// Boxed: every call waiting for its commit holds this in its future.
    record: Box<AccessRecord>,
    done: oneshot::Sender<Result<(), AuditError>>,
}

#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
    healthy: watch::Receiver<Result<(), String>>,
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
        let (health_tx, healthy) = watch::channel(Ok(()));
        let chain_id: Arc<str> = Arc::from(signer.chain_id());
        let task = Task {
            store,
            signer,
            config,
            clock,
            linker,
            health: health_tx,
            backlog: Backlog::new(config.backlog, metrics.clone()),
            metrics,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            reload: false,
            retry: Retry::default(),
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

    /// Returns once the record is durable, or why it is not. A record that is not is
    /// kept and committed later as the record of a refused call.
    pub async fn commit(&self, record: AccessRecord) -> Result<(), AuditError> {
        self.commit_boxed(Box::new(record)).await
    }

    /// [`AuditWriter::commit`] of a boxed record: a future waiting on it holds a
    /// pointer, not the record (~1 KiB), in each of the states it passes through.
    pub async fn commit_boxed(&self, record: Box<AccessRecord>) -> Result<(), AuditError> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send(Pending { record, done })
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        committed.await.map_err(|_| AuditError::WriterStopped)?
    }

    /// False after a failed commit, until a commit succeeds again.
    pub fn is_healthy(&self) -> bool {
        self.healthy.borrow().is_ok()
    }

    /// Why the last commit failed, until one succeeds again.
    pub fn failing(&self) -> Option<String> {
        self.healthy.borrow().clone().err()
    }

    /// Follows the writer's health (why it is not healthy), e.g. for the health service.
    pub fn health(&self) -> watch::Receiver<Result<(), String>> {
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

/// When the next attempt at the backlog is due, with an exponential back-off.
#[derive(Default)]
struct Retry {
    at: Option<Instant>,
    delay: Duration,
}

impl Retry {
    fn schedule(&mut self) {
        self.delay = (self.delay * 2).clamp(RETRY_FIRST, RETRY_MAX);
        self.at = Some(Instant::now() + self.delay);
    }

    fn now(&mut self) {
        self.at = Some(Instant::now());
    }

    fn clear(&mut self) {
        self.at = None;
        self.delay = Duration::ZERO;
    }

    async fn due(&self) {
        match self.at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

struct Task {
    store: Arc<dyn AuditStore>,
    signer: ChainSigner,
    config: BatchConfig,
    clock: SharedClock,
    linker: Linker,
    health: watch::Sender<Result<(), String>>,
    backlog: Backlog,
    metrics: AuditMetrics,
    /// Records committed since the last checkpoint.
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// After a failed commit the store may or may not hold the batch (a commit can
    /// fail after it took effect): the head is read back before the next one.
    reload: bool,
    retry: Retry,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Pending>, mut stopped: oneshot::Receiver<()>) {
        let mut closing = false;
        let mut tick = tokio::time::interval(
            self.config
                .checkpoint_interval
                .max(Duration::from_millis(10)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                p = rx.recv() => match p {
                    Some(first) => {
                        let batch = self.gather(first, &mut rx).await;
                        self.commit_calls(batch).await;
                    }
                    None => break,
                },
                // New records are refused from here on; queued ones are still committed.
                _ = &mut stopped, if !closing => {
                    closing = true;
                    rx.close();
                }
                () = self.retry.due() => self.commit_calls(Vec::new()).await,
                // An idle writer still signs the records it committed since the last checkpoint.
                _ = tick.tick() => {
                    if self.since_checkpoint > 0
                        && self.last_checkpoint.elapsed() >= self.config.checkpoint_interval
                    {
                        self.checkpoint_alone().await;
                    }
                }
            }
        }
        self.drain_backlog().await;
        if self.since_checkpoint > 0 {
            self.checkpoint_alone().await;
        }
    }

    /// The records queued behind `first`, up to a batch, lingering if so configured.
    async fn gather(&self, first: Pending, rx: &mut mpsc::Receiver<Pending>) -> Vec<Pending> {
        let max = self.config.max_batch.max(1);
        let mut batch = Vec::with_capacity(max);
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
        batch
    }

    /// Commits the calls' records after the oldest kept ones, and answers each call.
    /// While the store fails, calls are answered at once: only the retry schedule
    /// tries the store, so a failing store costs callers no time.
    async fn commit_calls(&mut self, batch: Vec<Pending>) {
        let (records, waiting): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (*p.record, p.done)).unzip();
        let failing = self.health.borrow().clone().err();
        if let Some(why) = failing
            && !waiting.is_empty()
        {
            self.backlog.keep(records);
            for done in waiting {
                let _ = done.send(Err(AuditError::CommitFailed(why.clone())));
            }
            return;
        }
        let result = self.commit_with_backlog(records).await;
        for done in waiting {
            // A caller that gave up no longer waits for its answer; nothing to do.
            let _ = done.send(result.clone());
        }
    }

    /// On shutdown, what is kept is committed while the store takes it (giving up
    /// after a few failures in a row); what stays is reported.
    async fn drain_backlog(&mut self) {
        let mut failures = 0;
        while failures < 3 && (!self.backlog.is_empty() || self.reload) {
            if self.commit_with_backlog(Vec::new()).await.is_err() {
                failures += 1;
                tokio::time::sleep(RETRY_FIRST).await;
            } else {
                failures = 0;
            }
        }
        if !self.backlog.is_empty() {
            tracing::error!(
                records = self.backlog.len(),
                "stopping with access records of refused calls not committed: the store did not take them"
            );
        }
    }

    async fn commit_with_backlog(&mut self, records: Vec<AccessRecord>) -> Result<(), AuditError> {
        if self.reload {
            // Bounded like a commit: a store behind a dead link must not hold the writer.
            let head = tokio::time::timeout(
                self.config.commit_timeout,
                resume(self.store.as_ref(), self.signer.chain_id()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the chain's head could not be read in time".into(),
                ))
            });
            match head {
                Ok(linker) => {
                    self.backlog.settle(linker.seq());
                    self.linker = linker;
                    self.reload = false;
                }
                Err(e) => {
                    let error = self.failed(&e);
                    self.backlog.keep(records);
                    return Err(error);
                }
            }
        }
        let mut all = self.backlog.take(self.config.max_batch.max(1));
        all.extend(records);
        if all.is_empty() {
            self.recovered();
            return Ok(());
        }
        self.commit(all).await
    }

    async fn commit(&mut self, records: Vec<AccessRecord>) -> Result<(), AuditError> {
        let n = records.len() as u64;
        let mut next = self.linker.clone();
        let linked = next.link(records);
        let checkpoint = (self.since_checkpoint + n >= self.config.checkpoint_records
            || self.last_checkpoint.elapsed() >= self.config.checkpoint_interval)
            .then(|| self.sign(&next));
        let started = Instant::now();
        let appended = tokio::time::timeout(
            self.config.commit_timeout,
            self.store.append(&linked, checkpoint.as_ref()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "the commit did not complete within {:?}",
                self.config.commit_timeout
            )))
        });
        match appended {
            Ok(()) => {
                self.linker = next;
                match checkpoint {
                    Some(_) => self.checkpointed(),
                    None => self.since_checkpoint += n,
                }
                self.metrics.committed.inc_by(n);
                self.metrics.batch_records.observe(n as f64);
                self.metrics
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.recovered();
                Ok(())
            }
            Err(e) => {
                let records = linked.into_iter().map(|stored| stored.record).collect();
                self.backlog.doubt(next.seq(), records);
                Err(self.failed(&e))
            }
        }
    }

    async fn checkpoint_alone(&mut self) {
        if self.reload {
            // The head is not known until the failed commit is settled.
            return;
        }
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

    /// A commit succeeded: healthy again, and on through what is kept, if anything.
    fn recovered(&mut self) {
        if self.health.borrow().is_err() {
            tracing::info!(
                pending = self.backlog.len(),
                "the access log takes writes again"
            );
        }
        let _previous = self.health.send_replace(Ok(()));
        self.metrics.healthy.set(1);
        if self.backlog.is_empty() {
            self.retry.clear();
        } else {
            self.retry.now();
        }
    }

    fn failed(&mut self, e: &StoreError) -> AuditError {
        self.reload = true;
        self.retry.schedule();
        let why = format!("the access log cannot be committed: {e}");
        let first = self.health.borrow().is_ok();
        let _previous = self.health.send_replace(Err(why));
        self.metrics.healthy.set(0);
        self.metrics.commit_failures.inc();
        if let StoreError::Conflict(_) = e {
            tracing::error!(error = %e, chain = self.signer.chain_id(),
                "the chain's next position is taken: another writer may append to this chain (every replica needs its own audit signing key)");
        } else if first {
            tracing::error!(error = %e, pending = self.backlog.len(),
                "access-log commit failed: refusing patient-data calls until it succeeds");
        } else {
            tracing::warn!(error = %e, pending = self.backlog.len(), retry_in = ?self.retry.delay,
                "access-log commit failed again");
        }
        AuditError::CommitFailed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
        /// Never answers, as a database behind a dead network.
        hang: AtomicBool,
        appends: AtomicUsize,
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
            if self.hang.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
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
            self.appends.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.hang.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
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

    /// Waits (a few retry periods at most) until the writer is healthy again.
    async fn recovered(writer: &AuditWriter) {
        let mut health = writer.health();
        tokio::time::timeout(
            Duration::from_secs(5),
            health.wait_for(std::result::Result::is_ok),
        )
        .await
        .expect("recovers by itself")
        .expect("writer running");
    }

    fn stored_ids(store: &SlowStore) -> Vec<String> {
        let records = store.records.lock().expect("lock");
        records.iter().map(|r| r.record.id.clone()).collect()
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_callers_and_marks_the_writer_unhealthy() {
        let store = Arc::new(SlowStore::default());
        store.fail.store(true, Ordering::Relaxed);
        let (writer, _task) = start(store.clone(), BatchConfig::default()).await;
        let err = writer.commit(record(1)).await.expect_err("must fail");
        assert!(matches!(err, AuditError::CommitFailed(ref m) if m.contains("disk full")));
        assert!(!writer.is_healthy());
        assert!(
            writer
                .failing()
                .is_some_and(|why| why.contains("disk full"))
        );
        store.fail.store(false, Ordering::Relaxed);
        recovered(&writer).await;
        writer.commit(record(2)).await.expect("commits again");
        assert_linked(&store.records.lock().expect("lock"));
    }

    #[tokio::test]
    async fn the_records_of_a_failed_batch_are_committed_later_as_refusals_in_order() {
        let store = Arc::new(SlowStore::default());
        let (writer, _task) = start(store.clone(), BatchConfig::default()).await;
        writer.commit(record(1)).await.expect("first");
        store.fail.store(true, Ordering::Relaxed);
        writer.commit(record(2)).await.expect_err("store failing");
        // Refused at once while failing, without waiting for the store.
        let appends = store.appends.load(Ordering::Relaxed);
        let started = Instant::now();
        writer.commit(record(3)).await.expect_err("refused at once");
        assert!(started.elapsed() < Duration::from_millis(15));
        assert!(store.appends.load(Ordering::Relaxed) <= appends + 1);
        store.fail.store(false, Ordering::Relaxed);
        recovered(&writer).await;
        writer.commit(record(4)).await.expect("commits again");
        assert_eq!(stored_ids(&store), ["r1", "r2", "r3", "r4"]);
        let records = store.records.lock().expect("lock").clone();
        assert_linked(&records);
        for kept in &records[1..3] {
            assert_eq!(kept.record.reason.as_deref(), Some("AUDIT_UNAVAILABLE"));
            assert_eq!(kept.record.grpc_code, tonic::Code::Unavailable as i32);
        }
        assert_eq!(
            records[3].record,
            record(4),
            "a committed call is as it was"
        );
    }

    #[tokio::test]
    async fn a_store_that_hangs_fails_the_commit_within_the_commit_timeout() {
        let store = Arc::new(SlowStore::default());
        let config = BatchConfig {
            commit_timeout: Duration::from_millis(200),
            ..BatchConfig::default()
        };
        let (writer, _task) = start(store.clone(), config).await;
        store.hang.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let err = writer.commit(record(1)).await.expect_err("times out");
        assert!(started.elapsed() < Duration::from_millis(600));
        assert!(err.to_string().contains("did not complete"), "{err}");
        // Retries (reading the head back) are bounded too: the writer keeps answering.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let started = Instant::now();
        writer.commit(record(2)).await.expect_err("refused at once");
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        store.hang.store(false, Ordering::Relaxed);
        recovered(&writer).await;
        assert_eq!(stored_ids(&store), ["r1", "r2"]);
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
        recovered(&writer).await;
        // Record 2 is in fact stored: it is not written twice, and the next record
        // follows it instead of clashing.
        writer.commit(record(3)).await.expect("continues");
        assert_eq!(stored_ids(&store), ["r1", "r2", "r3"]);
        assert_linked(&store.records.lock().expect("lock"));
    }

    #[tokio::test]
    async fn closing_commits_what_is_kept_once_the_store_is_back() {
        let store = Arc::new(SlowStore::default());
        let (writer, task) = start(store.clone(), BatchConfig::default()).await;
        store.fail.store(true, Ordering::Relaxed);
        writer.commit(record(1)).await.expect_err("store failing");
        store.fail.store(false, Ordering::Relaxed);
        task.close().await.expect("writer stops");
        assert_eq!(stored_ids(&store), ["r1"]);
        let checkpoints = store.checkpoints.lock().expect("lock").clone();
        assert_eq!(
            checkpoints.last().map(|c| c.seq),
            Some(1),
            "signed on close"
        );
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

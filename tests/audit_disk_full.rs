//! The access log on a filesystem that fills up: every record acknowledged as
//! committed is in the file afterwards, the refused calls' records are committed
//! once space is back, the writer recovers by itself, and the chain verifies.
//!
//! The SQLite file lives on a small tmpfs mounted for the test (root only; without
//! root the test says so and passes vacuously, as `mount` is the only way to get a
//! real ENOSPC without filling the machine's disk).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use onshi_gateway::audit::signer::ChainSigner;
use onshi_gateway::audit::verify::verify_store;
use onshi_gateway::audit::{AuditWriter, BatchConfig};
use onshi_gateway::clock::SystemClock;
use onshi_gateway::store::{self, AccessRecord, Decision, StoreLocation};
use onshi_gateway::telemetry::metrics::AuditMetrics;

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

fn record(i: usize) -> AccessRecord {
    AccessRecord {
        id: format!("call-{i:06}"),
        at: Utc::now(),
        method: "GetDrugHistory".into(),
        items: "drug_history".into(),
        facility: Some("0410110019".into()),
        staff_id: Some(format!("dr-{i:04}")),
        staff_role: Some("doctor".into()),
        patient_key: Some("06139992:0000123:01".into()),
        identification: Some("insured_number".into()),
        search_id: None,
        consent_basis: Some("patient_consent".into()),
        exemption_reason: None,
        exemption_identification: None,
        purpose: Some("medical_care".into()),
        activation_id: Some("a".repeat(36)),
        decision: Decision::Allowed,
        reason: None,
        grpc_code: 0,
        upstream_result: Some("OK ".to_string() + &"x".repeat(200)),
        needs_review: false,
        disclosed_patients: Vec::new(),
        clinical: None,
        site: Default::default(),
        accountability: None,
    }
}

/// Commits `count` records from 8 concurrent callers; returns the ids acknowledged
/// as committed and how many were refused.
async fn commit_many(writer: &AuditWriter, from: usize, count: usize) -> (Vec<String>, usize) {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let (mut ok, mut refused) = (Vec::new(), 0);
                for i in (from + t..from + count).step_by(8) {
                    let r = record(i);
                    let id = r.id.clone();
                    match writer.commit(r).await {
                        Ok(()) => ok.push(id),
                        Err(_) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let (mut ok, mut refused) = (Vec::new(), 0);
    for t in tasks {
        let (o, r) = t.await.expect("task");
        ok.extend(o);
        refused += r;
    }
    (ok, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_acknowledged_record_and_the_writer_recovers_by_itself() {
    let Some(fs) = Tmpfs::mount("16m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root; the disk-full test did not run");
        return;
    };
    let db: PathBuf = fs.path().join("onshi.db");
    let location = StoreLocation::Sqlite(db.clone());
    let store = store::open(&location).await.expect("store opens");
    let metrics = AuditMetrics::default();
    let config = BatchConfig {
        max_batch: 32,
        ..BatchConfig::default()
    };
    let (writer, task) = AuditWriter::start(
        store.clone(),
        ChainSigner::generate(),
        config,
        Arc::new(SystemClock),
        metrics.clone(),
    )
    .await
    .expect("writer starts");

    let (mut acknowledged, _) = commit_many(&writer, 0, 400).await;
    assert_eq!(acknowledged.len(), 400, "commits while there is space");

    let filler = fs.path().join("filler");
    fill(&filler);
    let mut refused_total = 0;
    let mut next = 400;
    for _ in 0..6 {
        let (ok, refused) = commit_many(&writer, next, 400).await;
        acknowledged.extend(ok);
        refused_total += refused;
        next += 400;
    }
    assert!(refused_total > 0, "the full disk refused nothing");
    assert!(!writer.is_healthy(), "the writer says it cannot commit");

    std::fs::remove_file(&filler).expect("space freed");
    let mut health = writer.health();
    tokio::time::timeout(Duration::from_secs(10), health.wait_for(Result::is_ok))
        .await
        .expect("the writer recovers by itself once there is space")
        .expect("writer running");
    let (ok, refused) = commit_many(&writer, next, 200).await;
    assert_eq!((ok.len(), refused), (200, 0), "commits again");
    acknowledged.extend(ok);
    task.close().await.expect("writer stops");
    store.close().await;

    assert_every_call_recorded(&location, &acknowledged, next + 200).await;
}

/// Every acknowledged id is stored as committed (allowed); every call has exactly one
/// record (the refused ones as AUDIT_UNAVAILABLE); the chain verifies.
async fn assert_every_call_recorded(
    location: &StoreLocation,
    acknowledged: &[String],
    calls: usize,
) {
    let store = store::open(location).await.expect("the store reopens");
    let chains = store.chains().await.expect("chains");
    assert_eq!(chains.len(), 1);
    let records = store
        .chain_records(&chains[0].chain_id, 0, 100_000)
        .await
        .expect("records");
    let mut ids = HashSet::new();
    for r in &records {
        assert!(ids.insert(r.record.id.clone()), "{} twice", r.record.id);
    }
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records are not in the log, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let acked: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    for r in &records {
        let expected = if acked.contains(r.record.id.as_str()) {
            None
        } else {
            Some("AUDIT_UNAVAILABLE")
        };
        assert_eq!(r.record.reason.as_deref(), expected, "{}", r.record.id);
    }
    assert_eq!(
        records.len(),
        calls,
        "one record per call, refused ones too"
    );
    let reports = verify_store(store.as_ref(), &[])
        .await
        .expect("verify runs");
    assert!(
        reports
            .iter()
            .all(onshi_gateway::audit::verify::ChainReport::is_intact),
        "{reports:?}"
    );
    store.close().await;
}

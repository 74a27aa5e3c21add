//! Several gateway replicas sharing one PostgreSQL: each writes its own access-log
//! chain, under its own signing key, and the chains verify together; a replica that
//! restarts resumes its chain; two replicas wrongly given one key never fork it.

mod common;
#[path = "common/databases.rs"]
mod databases;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use onshi_gateway::audit::BatchConfig;
use onshi_gateway::audit::signer::ChainSigner;
use onshi_gateway::audit::verify::{ChainReport, verify_store};
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::{Store, StoredRecord};
use onshi_gateway::tls::identity::IdentitySource;
use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Concurrent callers per replica, and calls per caller.
const TASKS: usize = 8;
const CALLS_PER_TASK: usize = 25;
/// Every DENY_EVERY-th call of a caller comes from Tokyo, outside the activation.
const DENY_EVERY: usize = 5;

fn replica_config(
    database_url: &str,
    data_dir: &Path,
    audit_key: Option<PathBuf>,
) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: None,
        data_dir: data_dir.to_path_buf(),
        database_url: Some(database_url.to_string()),
        audit_key,
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity: IdentitySource::DevelopmentMetadata,
        upstream_timeout: Duration::from_secs(5),
        // Checkpoints inside the traffic, not only at shutdown.
        audit: BatchConfig {
            checkpoint_records: 64,
            ..common::test_audit_batch()
        },
        drain_timeout: Duration::from_secs(5),
        ..GatewayConfig::default()
    }
}

struct Replica {
    gateway: RunningGateway,
    qualification: QualificationServiceClient<Channel>,
    _clock: Arc<ManualClock>,
}

impl Replica {
    async fn start(config: GatewayConfig) -> Replica {
        let clock = ManualClock::new(jst_at(2022, 3, 20, 10, 0));
        let gateway = server::start(config, clock.clone())
            .await
            .expect("replica starts");
        let channel = Channel::from_shared(format!("http://{}", gateway.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Replica {
            gateway,
            qualification: QualificationServiceClient::new(channel),
            _clock: clock,
        }
    }

    /// Closes this side's connection first, so the drain does not wait for it.
    async fn shutdown(self) {
        let Replica {
            gateway,
            qualification,
            ..
        } = self;
        drop(qualification);
        gateway.shutdown().await.expect("clean shutdown");
    }
}

/// The 2022 Fukushima-oki activation (Miyagi and Fukushima, 17–23 March), added once
/// to the shared store; every replica's cache is told to reload.
async fn activate_fukushima_2022(store: &dyn Store, replicas: &[&Replica]) {
    let window =
        onshi_gateway::activation::seed::window_from("2022-03-17", None, Some("2022-03-23"), false)
            .expect("window");
    let new = onshi_gateway::activation::seed::new_activation(
        "令和4年福島沖地震",
        "令和4年3月17日付事務連絡",
        &["04".into(), "07".into()],
        &[],
        window,
        "test",
    )
    .expect("activation");
    store.add_activation(&new).await.expect("stored");
    for r in replicas {
        r.gateway.activations.invalidate();
    }
}

/// How one call ended, as the caller saw it.
#[derive(Debug)]
enum Outcome {
    /// Answered, allowed or denied, naming its committed access record.
    Recorded { id: String, allowed: bool },
    /// Refused because its access record could not be committed.
    AuditUnavailable,
}

fn record_id(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get(ACCESS_RECORD_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// One lookup of the demo patient: from a Miyagi clinic (allowed), or from a Tokyo
/// clinic (AREA_NOT_ACTIVATED).
async fn call(client: &mut QualificationServiceClient<Channel>, denied: bool) -> Outcome {
    let facility = if denied {
        tokyo_clinic()
    } else {
        miyagi_clinic()
    };
    match client
        .lookup_qualification(as_facility(&facility, lookup(DEMO_PATIENT.insured())))
        .await
    {
        Ok(response) => {
            assert!(
                !denied,
                "a Tokyo lookup was allowed: {:?}",
                response.get_ref()
            );
            assert_eq!(
                response.get_ref().status,
                QualificationStatus::Valid as i32,
                "{:?}",
                response.get_ref()
            );
            let id = record_id(response.metadata()).expect("an allowed call names its record");
            Outcome::Recorded { id, allowed: true }
        }
        Err(status) => {
            let reason = status
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_default();
            if reason == "AUDIT_UNAVAILABLE" {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                // Refused at "audit ready" while the writer was failing, its refusal
                // then committed: it names that record, which must be stored. A call
                // whose own record could not be committed names none.
                return match record_id(status.metadata()) {
                    Some(id) => Outcome::Recorded { id, allowed: false },
                    None => Outcome::AuditUnavailable,
                };
            }
            assert!(denied, "an allowed lookup failed: {status:?}");
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            assert_eq!(reason, "AREA_NOT_ACTIVATED", "{status:?}");
            let id = record_id(status.metadata()).expect("a denial names its record");
            Outcome::Recorded { id, allowed: false }
        }
    }
}

/// TASKS concurrent callers of `client`, CALLS_PER_TASK calls each, some denied.
fn drive(client: &QualificationServiceClient<Channel>) -> tokio::task::JoinHandle<Vec<Outcome>> {
    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::with_capacity(CALLS_PER_TASK);
                for i in 0..CALLS_PER_TASK {
                    outcomes.push(call(&mut client, i % DENY_EVERY == DENY_EVERY - 1).await);
                }
                outcomes
            })
        })
        .collect();
    tokio::spawn(async move {
        let mut all = Vec::with_capacity(TASKS * CALLS_PER_TASK);
        for c in callers {
            all.extend(c.await.expect("caller task"));
        }
        all
    })
}

fn recorded_ids(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Recorded { id, .. } => Some(id.clone()),
            Outcome::AuditUnavailable => None,
        })
        .collect()
}

async fn chain(store: &dyn Store, chain_id: &str) -> Vec<StoredRecord> {
    store
        .chain_records(chain_id, 0, 1_000_000)
        .await
        .expect("chain readable")
}

/// The public key of the signing key at `path`, as `verify` is given it.
fn trusted_key(path: &Path) -> String {
    assert!(path.exists(), "no signing key at {}", path.display());
    ChainSigner::load_or_generate(path)
        .expect("key readable")
        .public_key_hex()
}

fn report_of<'a>(reports: &'a [ChainReport], chain_id: &str) -> &'a ChainReport {
    reports
        .iter()
        .find(|r| r.chain_id == chain_id)
        .unwrap_or_else(|| panic!("no report for chain {chain_id}: {reports:?}"))
}

#[track_caller]
fn assert_intact(report: &ChainReport, records: u64) {
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records_verified, records, "{report:?}");
    assert_eq!(report.first_seq, (records > 0).then_some(1), "{report:?}");
    assert_eq!(
        report.last_seq,
        (records > 0).then_some(records),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_write_their_own_chains_which_verify_together_and_resume_after_restart() {
    let db = databases::fresh_postgres().await;
    let dir_a = tempfile::tempdir().expect("temp dir");
    let dir_b = tempfile::tempdir().expect("temp dir");
    let a = Replica::start(replica_config(&db.url, dir_a.path(), None)).await;
    let b = Replica::start(replica_config(&db.url, dir_b.path(), None)).await;
    activate_fukushima_2022(a.gateway.store.as_ref(), &[&a, &b]).await;

    // Each replica generated its own key, hence its own chain.
    let key_a = trusted_key(&dir_a.path().join("audit-signing.key"));
    let key_b = trusted_key(&dir_b.path().join("audit-signing.key"));
    assert_ne!(key_a, key_b);
    assert_ne!(a.gateway.chain_id, b.gateway.chain_id);
    let chains = a.gateway.store.chains().await.expect("chains");
    let registered: HashSet<&str> = chains.iter().map(|c| c.chain_id.as_str()).collect();
    assert_eq!(
        registered,
        HashSet::from([a.gateway.chain_id.as_str(), b.gateway.chain_id.as_str()]),
        "{chains:?}"
    );

    // Both replicas under concurrent load at once.
    let traffic_a = drive(&a.qualification);
    let traffic_b = drive(&b.qualification);
    let outcomes_a = traffic_a.await.expect("traffic on A");
    let outcomes_b = traffic_b.await.expect("traffic on B");
    let calls = TASKS * CALLS_PER_TASK;
    for outcomes in [&outcomes_a, &outcomes_b] {
        assert_eq!(outcomes.len(), calls);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Recorded { .. })),
            "a replica with its own key never fails to record: {outcomes:?}"
        );
        let denied = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Recorded { allowed: false, .. }))
            .count();
        assert_eq!(denied, TASKS * (CALLS_PER_TASK / DENY_EVERY));
    }
    let ids_a: HashSet<String> = recorded_ids(&outcomes_a).into_iter().collect();
    let ids_b: HashSet<String> = recorded_ids(&outcomes_b).into_iter().collect();
    assert_eq!(ids_a.len(), calls, "record ids are unique");
    assert_eq!(ids_b.len(), calls, "record ids are unique");

    // Each chain holds exactly the calls its replica answered: every answer's record
    // is in the chain of the replica that answered, none in the other's.
    let store = a.gateway.store.clone();
    let chain_a = chain(store.as_ref(), &a.gateway.chain_id).await;
    let chain_b = chain(store.as_ref(), &b.gateway.chain_id).await;
    assert_eq!(chain_a.len(), calls);
    assert_eq!(chain_b.len(), calls);
    let stored_a: HashSet<String> = chain_a.iter().map(|r| r.record.id.clone()).collect();
    let stored_b: HashSet<String> = chain_b.iter().map(|r| r.record.id.clone()).collect();
    assert_eq!(stored_a, ids_a, "A's chain holds exactly A's answers");
    assert_eq!(stored_b, ids_b, "B's chain holds exactly B's answers");
    assert!(stored_a.is_disjoint(&ids_b));
    assert!(stored_b.is_disjoint(&ids_a));
    for (chain_id, records) in [
        (&a.gateway.chain_id, &chain_a),
        (&b.gateway.chain_id, &chain_b),
    ] {
        assert!(records.iter().all(|r| &r.chain_id == chain_id));
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=calls as u64).collect::<Vec<_>>());
    }

    // Both chains verify, under the two replicas' keys only.
    let trusted = [key_a.clone(), key_b.clone()];
    let reports = verify_store(store.as_ref(), &trusted)
        .await
        .expect("verify");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_intact(report_of(&reports, &a.gateway.chain_id), calls as u64);
    assert_intact(report_of(&reports, &b.gateway.chain_id), calls as u64);
    // Under A's key alone, B's chain is not trusted: the keys really differ per chain.
    let only_a = verify_store(store.as_ref(), std::slice::from_ref(&key_a))
        .await
        .expect("verify");
    assert!(report_of(&only_a, &a.gateway.chain_id).is_intact());
    assert!(!report_of(&only_a, &b.gateway.chain_id).is_intact());

    // Shutdown signs each chain through its last record.
    let chain_id_a = a.gateway.chain_id.clone();
    a.shutdown().await;
    b.shutdown().await;
    let reports = verify_store(store.as_ref(), &trusted)
        .await
        .expect("verify");
    for report in &reports {
        assert_intact(report, calls as u64);
        assert_eq!(report.signed_through, Some(calls as u64), "{report:?}");
        assert_eq!(report.unsigned_tail(), 0, "{report:?}");
        assert!(report.checkpoints_verified >= 2, "{report:?}");
    }

    // A restarts on its data directory: same key, same chain, which continues.
    let mut a = Replica::start(replica_config(&db.url, dir_a.path(), None)).await;
    assert_eq!(a.gateway.chain_id, chain_id_a);
    assert_eq!(trusted_key(&dir_a.path().join("audit-signing.key")), key_a);
    a.gateway.activations.invalidate();
    let mut again = HashSet::new();
    for i in 0..10 {
        match call(&mut a.qualification, i % 2 == 1).await {
            Outcome::Recorded { id, .. } => again.insert(id),
            Outcome::AuditUnavailable => panic!("the restarted replica failed to record"),
        };
    }
    let store = a.gateway.store.clone();
    let resumed = chain(store.as_ref(), &chain_id_a).await;
    assert_eq!(resumed.len(), calls + 10);
    assert_eq!(resumed[..calls], chain_a[..], "earlier records untouched");
    let tail = &resumed[calls..];
    assert_eq!(
        tail.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (calls as u64 + 1..=calls as u64 + 10).collect::<Vec<_>>()
    );
    assert_eq!(
        tail[0].prev_hash,
        chain_a[calls - 1].hash,
        "linked to the old head"
    );
    assert_eq!(
        tail.iter()
            .map(|r| r.record.id.clone())
            .collect::<HashSet<_>>(),
        again
    );
    assert_eq!(
        store.chains().await.expect("chains").len(),
        2,
        "no new chain"
    );
    a.shutdown().await;
    let reports = verify_store(store.as_ref(), &trusted)
        .await
        .expect("verify");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_intact(report_of(&reports, &chain_id_a), calls as u64 + 10);
    assert_eq!(
        report_of(&reports, &chain_id_a).signed_through,
        Some(calls as u64 + 10)
    );
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_given_one_key_never_fork_its_chain() {
    let db = databases::fresh_postgres().await;
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keys.path().join("shared-audit-signing.key");
    let dir_a = tempfile::tempdir().expect("temp dir");
    let dir_b = tempfile::tempdir().expect("temp dir");
    let a = Replica::start(replica_config(&db.url, dir_a.path(), Some(key.clone()))).await;
    let b = Replica::start(replica_config(&db.url, dir_b.path(), Some(key.clone()))).await;
    activate_fukushima_2022(a.gateway.store.as_ref(), &[&a, &b]).await;
    assert_eq!(a.gateway.chain_id, b.gateway.chain_id, "one key, one chain");
    let chain_id = a.gateway.chain_id.clone();
    let store = a.gateway.store.clone();
    assert_eq!(store.chains().await.expect("chains").len(), 1);
    assert!(
        !dir_a.path().join("audit-signing.key").exists()
            && !dir_b.path().join("audit-signing.key").exists(),
        "the configured key is used, not one in the data directory"
    );

    // Both append to the same chain at once: they race for its positions.
    let traffic_a = drive(&a.qualification);
    let traffic_b = drive(&b.qualification);
    let outcomes_a = traffic_a.await.expect("traffic on A");
    let outcomes_b = traffic_b.await.expect("traffic on B");
    let outcomes: Vec<&Outcome> = outcomes_a.iter().chain(&outcomes_b).collect();
    assert_eq!(outcomes.len(), 2 * TASKS * CALLS_PER_TASK);
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::AuditUnavailable))
        .count();
    eprintln!(
        "{refused} of {} calls refused as AUDIT_UNAVAILABLE (chain conflicts)",
        outcomes.len()
    );
    let answered: Vec<String> = recorded_ids(&outcomes_a)
        .into_iter()
        .chain(recorded_ids(&outcomes_b))
        .collect();
    assert!(!answered.is_empty(), "some calls got through");
    let answered_set: HashSet<String> = answered.iter().cloned().collect();
    assert_eq!(answered_set.len(), answered.len(), "record ids are unique");

    // One linear chain: every answered call has its record in it; a refused call's
    // batch was rolled back whole and its records committed later, as refusals.
    a.shutdown().await;
    b.shutdown().await;
    let stored = chain(store.as_ref(), &chain_id).await;
    let stored_ids: HashSet<String> = stored.iter().map(|r| r.record.id.clone()).collect();
    for id in &answered {
        assert!(stored_ids.contains(id), "answered call {id} has no record");
    }
    for r in stored
        .iter()
        .filter(|r| !answered_set.contains(&r.record.id))
    {
        assert_eq!(
            r.record.reason.as_deref(),
            Some("AUDIT_UNAVAILABLE"),
            "an unanswered record is a refusal: {:?}",
            r.record
        );
    }
    assert_eq!(stored_ids.len(), stored.len(), "no record twice");
    assert!(
        stored.len() <= outcomes.len(),
        "one record per call at most"
    );
    let seqs: Vec<u64> = stored.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
    for pair in stored.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "fork at {}", pair[1].seq);
    }

    let reports = verify_store(store.as_ref(), &[trusted_key(&key)])
        .await
        .expect("verify");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_intact(&reports[0], stored.len() as u64);
    db.drop_schema().await;
}

//! The Merkle tree beside the chain, seen from outside: a witness run as the
//! command an auditor at another organisation runs, against a gateway's operators'
//! listener; `audit verify --checkpoint` with what the witness kept; a patient's
//! access with its inclusion proof; and a log rewritten below a kept checkpoint,
//! which both refuse, although the rewrite left every hash and link consistent.

mod common;
#[path = "common/databases.rs"]
mod databases;

use std::path::{Path, PathBuf};
use std::process::Output;

use std::time::Duration;
use tokio::process::Command;

use common::{as_facility, jst_at, lookup, miyagi_clinic};
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::audit::BatchConfig;
use onshi_gateway::audit::chain::{Linker, parse_hash};
use onshi_gateway::audit::signer::parse_public_key;
use onshi_gateway::audit::transparency::merkle::{Hash, leaf_hash, verify_inclusion};
use onshi_gateway::audit::transparency::note::{SignedNote, verify_checkpoint};
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::proto::audit_service_client::AuditServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::transparency_service_client::TransparencyServiceClient;
use onshi_gateway::proto::{
    GetChainInfoRequest, GetCheckpointRequest, GetInclusionProofRequest,
    QueryPatientAccessesRequest,
};
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::{ChainHead, StoredRecord};
use onshi_gateway::tls::identity::IdentitySource;
use sqlx::Connection;
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_onshi-gateway");

struct Setup {
    gateway: RunningGateway,
    /// The PostgreSQL schema the gateway uses, or none for SQLite in `data`.
    postgres: Option<databases::FreshPostgres>,
    data: tempfile::TempDir,
    witness: tempfile::TempDir,
    public_key: String,
}

async fn start() -> Setup {
    start_on(None).await
}

async fn start_on(postgres: Option<databases::FreshPostgres>) -> Setup {
    let data = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(jst_at(2022, 3, 20, 10, 0));
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: data.path().to_path_buf(),
        database_url: postgres.as_ref().map(|p| p.url.clone()),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: 1000,
        },
        identity: IdentitySource::DevelopmentMetadata,
        upstream_timeout: Duration::from_secs(5),
        // No chain checkpoint falls due during the test: the tree alone is at stake.
        audit: BatchConfig {
            checkpoint_records: 1_000_000,
            checkpoint_interval: Duration::from_secs(3600),
            ..common::test_audit_batch()
        },
        drain_timeout: Duration::from_secs(5),
        ..GatewayConfig::default()
    };
    let gateway = server::start(config, clock).await.expect("gateway starts");
    let window = window_from("2022-03-17", None, Some("2022-03-23"), false).expect("window");
    let activation = new_activation(
        "令和4年福島沖地震",
        "令和4年3月17日付事務連絡",
        &["04".into()],
        &[],
        window,
        "test",
    )
    .expect("activation");
    gateway
        .store
        .add_activation(&activation)
        .await
        .expect("stored");
    gateway.activations.invalidate();
    let public_key = gateway
        .store
        .chains()
        .await
        .expect("chains")
        .into_iter()
        .find(|c| c.chain_id == gateway.chain_id)
        .expect("registered")
        .public_key;
    Setup {
        gateway,
        postgres,
        data,
        witness: tempfile::tempdir().expect("tempdir"),
        public_key,
    }
}

impl Setup {
    async fn lookups(&self, n: usize) {
        let mut client =
            QualificationServiceClient::connect(format!("http://{}", self.gateway.addr))
                .await
                .expect("connects");
        for _ in 0..n {
            client
                .lookup_qualification(as_facility(
                    &miyagi_clinic(),
                    lookup(DEMO_PATIENT.insured()),
                ))
                .await
                .expect("lookup allowed");
        }
    }

    fn admin(&self) -> String {
        format!(
            "http://{}",
            self.gateway.admin_addr.expect("admin listener")
        )
    }

    async fn transparency(&self) -> TransparencyServiceClient<Channel> {
        TransparencyServiceClient::connect(self.admin())
            .await
            .expect("connects")
    }

    async fn witness(&self) -> Output {
        run(&[
            "audit",
            "witness",
            "--admin",
            &self.admin(),
            "--log-key",
            &self.public_key,
            "--dir",
            &self.witness.path().display().to_string(),
        ])
        .await
    }

    fn kept(&self) -> PathBuf {
        self.witness
            .path()
            .join(&self.gateway.chain_id)
            .join("latest.checkpoint")
    }

    async fn verify_against(&self, checkpoint: &Path) -> Output {
        let (flag, store) = match &self.postgres {
            Some(p) => ("--database-url", p.url.clone()),
            None => ("--data-dir", self.data.path().display().to_string()),
        };
        run(&[
            "audit",
            "verify",
            flag,
            &store,
            "--checkpoint",
            &checkpoint.display().to_string(),
        ])
        .await
    }

    async fn records(&self) -> Vec<StoredRecord> {
        self.gateway
            .store
            .chain_records(&self.gateway.chain_id, 0, 10_000)
            .await
            .expect("records")
    }
}

/// Runs the command without blocking the runtime the gateway serves on.
async fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("ONSHI_ADMIN")
        .output()
        .await
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Rewrites the chain from record `from` on, as a forger who can recompute
/// hashes would: another facility in `from`, every later hash and link redone.
async fn rewrite_from(s: &Setup, from: u64) {
    let records = s.records().await;
    let before = &records[usize::try_from(from - 2).expect("small")];
    let mut linker = Linker::resume(
        &s.gateway.chain_id,
        Some(&ChainHead {
            seq: before.seq,
            hash: before.hash.clone(),
        }),
    )
    .expect("resumes");
    let mut contents: Vec<_> = records[usize::try_from(from - 1).expect("small")..]
        .iter()
        .map(|r| r.record.clone())
        .collect();
    contents[0].facility = Some("1311234567".into());
    let mut sql: Vec<String> = linker
        .link(contents)
        .iter()
        .map(|r| {
            format!(
                "UPDATE access_log SET facility = '{}', prev_hash = '{}', hash = '{}' \
                 WHERE chain_id = '{}' AND seq = {}",
                r.record.facility.as_deref().unwrap_or_default(),
                r.prev_hash,
                r.hash,
                r.chain_id,
                r.seq
            )
        })
        .collect();
    // And the chain's own signed heads, which would give the rewrite away, removed.
    sql.push("DELETE FROM audit_checkpoints".into());
    raw_sql(s, &sql).await;
}

/// Runs statements on a connection of the test's own, beside the gateway's.
async fn raw_sql(s: &Setup, statements: &[String]) {
    match &s.postgres {
        Some(p) => {
            let mut raw = sqlx::PgConnection::connect(&p.url).await.expect("raw");
            for q in statements {
                sqlx::raw_sql(q).execute(&mut raw).await.expect("applied");
            }
        }
        None => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(s.data.path().join("onshi.db"))
                .busy_timeout(Duration::from_secs(10));
            let mut raw = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("raw");
            for q in statements {
                sqlx::raw_sql(q).execute(&mut raw).await.expect("applied");
            }
        }
    }
}

#[tokio::test]
async fn a_witnessed_log_rewritten_below_its_checkpoint_is_refused_by_verify_and_the_witness() {
    rewritten_below_the_checkpoint(start().await).await;
}

#[tokio::test]
async fn on_postgresql_too_a_rewrite_below_the_checkpoint_is_refused() {
    let pg = databases::fresh_postgres().await;
    let schema = databases::FreshPostgres {
        url: pg.url.clone(),
        schema: pg.schema.clone(),
    };
    rewritten_below_the_checkpoint(start_on(Some(pg)).await).await;
    schema.drop_schema().await;
}

async fn rewritten_below_the_checkpoint(s: Setup) {
    s.lookups(5).await;
    let first = s.witness().await;
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("5 records, consistent with the 0 seen before"),
        "{}",
        text(&first)
    );
    let at_5 = std::fs::read_to_string(s.kept()).expect("kept");
    assert!(
        at_5.starts_with(&format!("onshi.gateway/audit/{}\n5\n", s.gateway.chain_id)),
        "{at_5}"
    );
    assert_eq!(
        at_5.matches('\u{2014}').count(),
        2,
        "the log's signature and the witness's: {at_5}"
    );

    s.lookups(3).await;
    let second = s.witness().await;
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("8 records, consistent with the 5 seen before"),
        "{}",
        text(&second)
    );
    let saved = s.witness.path().join("at-8.checkpoint");
    std::fs::copy(s.kept(), &saved).expect("copied");
    let ok = s.verify_against(&saved).await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains("consistent with today's log"),
        "{}",
        text(&ok)
    );

    rewrite_from(&s, 3).await;
    let refused = s.verify_against(&saved).await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(
        text(&refused).contains("rewritten below the checkpoint"),
        "{}",
        text(&refused)
    );
    let witness = s.witness().await;
    assert_eq!(witness.status.code(), Some(3), "{}", text(&witness));
    assert!(
        text(&witness).contains("REFUSED") && text(&witness).contains("rewritten"),
        "{}",
        text(&witness)
    );
    // What the witness kept is untouched: still the honest tree at 8.
    assert_eq!(
        std::fs::read_to_string(s.kept()).expect("kept"),
        std::fs::read_to_string(&saved).expect("saved")
    );
    let evidence = std::fs::read_dir(s.witness.path().join(&s.gateway.chain_id))
        .expect("folder")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("refused-8-"));
    assert!(evidence, "the refused checkpoint is kept as evidence");
    s.gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn records_deleted_from_the_end_are_refused_by_the_witness() {
    let s = start().await;
    s.lookups(4).await;
    assert!(s.witness().await.status.success());
    raw_sql(&s, &["DELETE FROM access_log WHERE seq > 2".into()]).await;
    let witness = s.witness().await;
    assert_eq!(witness.status.code(), Some(3), "{}", text(&witness));
    assert!(
        text(&witness).contains("cannot extend the 4 records seen before"),
        "{}",
        text(&witness)
    );
    let verify = s.verify_against(&s.kept()).await;
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify));
    assert!(
        text(&verify).contains("fewer than the 4"),
        "{}",
        text(&verify)
    );
    s.gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_patients_access_comes_with_an_inclusion_proof_against_a_signed_checkpoint() {
    let s = start().await;
    s.lookups(6).await;
    let mut audit = AuditServiceClient::connect(s.admin())
        .await
        .expect("connects");
    let mut pages = audit
        .query_patient_accesses(QueryPatientAccessesRequest {
            patient: Some(DEMO_PATIENT.insured()),
            ..Default::default()
        })
        .await
        .expect("patient view")
        .into_inner();
    let page = pages.message().await.expect("page").expect("one page");
    assert_eq!(page.accesses.len(), 6);
    let access = &page.accesses[3];
    assert_eq!(access.chain_id, s.gateway.chain_id);
    assert_eq!(access.seq, 4);

    let proof = s
        .transparency()
        .await
        .get_inclusion_proof(GetInclusionProofRequest {
            chain_id: access.chain_id.clone(),
            seq: access.seq,
            tree_size: 0,
        })
        .await
        .expect("proof")
        .into_inner();
    let key = parse_public_key(&s.public_key).expect("key");
    let head = verify_checkpoint(&SignedNote::parse(&proof.checkpoint).expect("note"), &key)
        .expect("signed by the chain's key");
    // Six calls, and the auditor's read of the patient's history, logged like any access.
    assert_eq!(head.size, 7);
    let records = s.records().await;
    let record_hash = parse_hash(&records[3].hash).expect("hash");
    assert_eq!(records[3].record.id, access.record_id);
    assert_eq!(proof.record_hash, record_hash.to_vec());
    let path: Vec<Hash> = proof
        .proof
        .iter()
        .map(|h| h.as_slice().try_into().expect("32"))
        .collect();
    verify_inclusion(3, 6, &leaf_hash(&record_hash), &path, &head.root).expect("included");
    // The same proof does not place another record there.
    let other = parse_hash(&records[2].hash).expect("hash");
    assert!(verify_inclusion(3, 6, &leaf_hash(&other), &path, &head.root).is_err());
    s.gateway.shutdown().await.expect("shutdown");
}

fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_requests_for_checkpoints_and_proofs_are_refused_with_their_reasons() {
    let s = start().await;
    s.lookups(2).await;
    let mut client = s.transparency().await;
    let info = client
        .get_chain_info(GetChainInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(
        (info.chain_id.as_str(), info.tree_size),
        (s.gateway.chain_id.as_str(), 2)
    );
    assert_eq!(info.public_key, s.public_key);
    let other = client
        .get_checkpoint(GetCheckpointRequest {
            chain_id: "0000000000000000".into(),
            ..Default::default()
        })
        .await
        .expect_err("another chain");
    assert_eq!(other.code(), tonic::Code::NotFound);
    assert_eq!(reason(&other), "CHAIN_NOT_SERVED_HERE");
    let beyond = client
        .get_checkpoint(GetCheckpointRequest {
            tree_size: 3,
            ..Default::default()
        })
        .await
        .expect_err("beyond the tree");
    assert_eq!(reason(&beyond), "TREE_SIZE_INVALID");
    let shrunk = client
        .get_checkpoint(GetCheckpointRequest {
            tree_size: 1,
            consistent_with_size: 2,
            ..Default::default()
        })
        .await
        .expect_err("older is larger");
    assert_eq!(reason(&shrunk), "TREE_SIZE_INVALID");
    for seq in [0, 3] {
        let e = client
            .get_inclusion_proof(GetInclusionProofRequest {
                seq,
                ..Default::default()
            })
            .await
            .expect_err("no such record");
        assert_eq!(reason(&e), "TREE_SIZE_INVALID", "seq {seq}");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
    let edge = client
        .get_inclusion_proof(GetInclusionProofRequest {
            seq: 2,
            ..Default::default()
        })
        .await
        .expect("the last record is in");
    assert_eq!(edge.into_inner().tree_size, 2);
    s.gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_checkpoint_file_that_is_not_one_is_bad_input() {
    let s = start().await;
    let path = s.witness.path().join("junk.checkpoint");
    std::fs::write(&path, "not a note\n").expect("written");
    let o = s.verify_against(&path).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--checkpoint"), "{}", text(&o));
    let bad_key = run(&[
        "audit",
        "witness",
        "--admin",
        &s.admin(),
        "--log-key",
        "xyz",
        "--dir",
        "/nonexistent",
    ])
    .await;
    assert_eq!(bad_key.status.code(), Some(2), "{}", text(&bad_key));
    s.gateway.shutdown().await.expect("shutdown");
}

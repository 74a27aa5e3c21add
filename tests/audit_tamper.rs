//! Tampering done directly in the database, with raw SQL on a connection of its
//! own, is caught by `verify_store`: each kind of edit is reported as exactly the
//! break it is, at the record where it is, on SQLite and PostgreSQL alike. The
//! chains tampered with are written either by a running gateway or by linking
//! records with `Linker` and `ChainSigner` and appending them to the store.

mod common;
#[path = "common/databases.rs"]
mod databases;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{as_facility, jst_at, lookup, miyagi_clinic, search_request, tokyo_clinic};
use databases::{Backend, FreshPostgres, fresh_postgres, fresh_sqlite};
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::audit::chain::{Linker, parse_hash, record_hash};
use onshi_gateway::audit::retention::prune_expired;
use onshi_gateway::audit::verify::{BreakKind, ChainReport, verify_store};
use onshi_gateway::audit::{BatchConfig, ChainSigner};
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::Sex;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::server;
use onshi_gateway::simulator::fixtures::{DEMO_PATIENT, SAME_NAME_TOKYO};
use onshi_gateway::store::{
    self, AccessRecord, ChainHead, Checkpoint, Decision, Store, StoreLocation, StoredRecord,
};
use onshi_gateway::tls::identity::IdentitySource;
use sqlx::Connection;
use tonic::metadata::MetadataMap;

/// Each case once on SQLite and once on PostgreSQL: `sqlite::case`, `postgres::case`.
macro_rules! on_both {
    ($($(#[$attr:meta])* $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                $(#[$attr])*
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                $(#[$attr])*
                async fn $case() {
                    super::$case(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both!(
    untouched_linked,
    untouched_served,
    edited_field,
    edited_disclosures,
    edited_decision_served,
    edited_and_rehashed,
    deleted_middle,
    deleted_middle_served,
    truncated_before_checkpoint,
    truncated_to_a_checkpoint,
    emptied,
    tail_after_last_checkpoint_is_not_detectable,
    prefix_deleted_to_a_checkpoint_reads_as_pruned,
    deleted_first_records,
    inserted_forged_record,
    inserted_and_relinked,
    swapped_rows,
    swapped_contents,
    rewritten_suffix,
    rewritten_suffix_served,
    rewritten_suffix_with_checkpoints_repointed,
    forged_signature,
    forged_checkpoint_head,
    forged_signature_is_not_counted,
    forged_anchor,
    replaced_public_key,
    malformed_public_key,
    untrusted_key,
    unregistered_chain,
    resigned_under_a_new_key,
    retention_prunes_at_a_checkpoint,
    cli_verify,
);

// ---- the chains tampered with ----

/// Records in a linked chain; a checkpoint is signed every `EVERY` records, so the
/// last `LINKED % EVERY` are unsigned.
const LINKED: u64 = 23;
const EVERY: u64 = 5;
/// Calls made through the served gateway, which signs every `EVERY` records.
const SERVED: u64 = 13;

/// 2022-03-20 09:00 JST, inside the Fukushima-oki activation.
fn base() -> DateTime<Utc> {
    jst_at(2022, 3, 20, 9, 0)
}

/// The `i`th record of a linked chain: varied content, a denial every fourth, an
/// exemption flagged for review, and a quote to exercise the SQL literals.
fn record(i: u64) -> AccessRecord {
    let n = i64::try_from(i).expect("small");
    let denied = i % 4 == 3;
    let search = i % 5 == 2;
    let exemption = i == 6;
    AccessRecord {
        id: format!("rec-{i:03}-{}", uuid::Uuid::new_v4().simple()),
        at: base() + chrono::Duration::minutes(n) + chrono::Duration::nanoseconds(n),
        method: if search {
            "SearchPatients"
        } else {
            "LookupQualification"
        }
        .into(),
        items: if search {
            "candidates"
        } else {
            "qualification"
        }
        .into(),
        facility: Some(miyagi_clinic().to_string()),
        staff_id: Some(if i == 4 {
            "dr-o'neil".to_string()
        } else {
            format!("dr-{i:04}")
        }),
        staff_role: Some("doctor".into()),
        patient_key: (!search).then(|| "01040013|40250311|152|00".into()),
        identification: (!search).then(|| "insured_number_known".into()),
        search_id: None,
        consent_basis: Some(
            if exemption {
                "life_or_body_exemption"
            } else {
                "patient_consent"
            }
            .into(),
        ),
        exemption_reason: exemption.then(|| "意識不明、家族に連絡つかず".into()),
        exemption_identification: exemption.then(|| "belongings".into()),
        purpose: Some("medical_care".into()),
        activation_id: Some("act-1".into()),
        decision: if denied {
            Decision::Denied
        } else {
            Decision::Allowed
        },
        reason: denied.then(|| "AREA_NOT_ACTIVATED".into()),
        grpc_code: if denied { 9 } else { 0 },
        upstream_result: (!denied).then(|| "OK status=1".into()),
        needs_review: exemption,
        disclosed_patients: Vec::new(),
        clinical: None,
        site: Default::default(),
        accountability: None,
    }
}

/// A second connection to the store's database, which the gateway knows nothing of.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    async fn connect(location: &StoreLocation) -> Raw {
        match location {
            StoreLocation::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(Duration::from_secs(10));
                Raw::Sqlite(
                    sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .expect("raw SQLite connection"),
                )
            }
            StoreLocation::Postgres(url) => Raw::Postgres(
                sqlx::PgConnection::connect(url)
                    .await
                    .expect("raw PostgreSQL connection"),
            ),
        }
    }

    /// Runs one literal statement; returns the rows it changed.
    async fn exec(&mut self, sql: &str) -> u64 {
        let result = match self {
            Raw::Sqlite(c) => sqlx::raw_sql(sql)
                .execute(c)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(c) => sqlx::raw_sql(sql)
                .execute(c)
                .await
                .map(|r| r.rows_affected()),
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

// SQL literals, so that one statement text serves both databases (no `?` / `$1`).

fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt_text(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "NULL".to_string(), text)
}

fn nanos(at: DateTime<Utc>) -> String {
    at.timestamp_nanos_opt().expect("in range").to_string()
}

/// Every column of a stored record, as SQL literals.
fn columns(s: &StoredRecord) -> Vec<(&'static str, String)> {
    let r = &s.record;
    vec![
        ("chain_id", text(&s.chain_id)),
        ("seq", s.seq.to_string()),
        ("prev_hash", text(&s.prev_hash)),
        ("hash", text(&s.hash)),
        ("id", text(&r.id)),
        ("at", nanos(r.at)),
        ("method", text(&r.method)),
        ("items", text(&r.items)),
        ("facility", opt_text(&r.facility)),
        ("staff_id", opt_text(&r.staff_id)),
        ("staff_role", opt_text(&r.staff_role)),
        ("patient_key", opt_text(&r.patient_key)),
        ("identification", opt_text(&r.identification)),
        ("search_id", opt_text(&r.search_id)),
        ("consent_basis", opt_text(&r.consent_basis)),
        ("exemption_reason", opt_text(&r.exemption_reason)),
        (
            "exemption_identification",
            opt_text(&r.exemption_identification),
        ),
        ("purpose", opt_text(&r.purpose)),
        ("activation_id", opt_text(&r.activation_id)),
        ("decision", text(r.decision.as_str())),
        ("reason", opt_text(&r.reason)),
        ("grpc_code", r.grpc_code.to_string()),
        ("upstream_result", opt_text(&r.upstream_result)),
        (
            "needs_review",
            if r.needs_review { "TRUE" } else { "FALSE" }.into(),
        ),
    ]
}

fn insert_sql(s: &StoredRecord) -> String {
    let (names, values): (Vec<_>, Vec<_>) = columns(s).into_iter().unzip();
    format!(
        "INSERT INTO access_log ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

/// Overwrites every column of the record at `s.seq` of `s.chain_id` with `s`.
fn update_sql(s: &StoredRecord) -> String {
    let set: Vec<String> = columns(s)
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "chain_id" | "seq"))
        .map(|(name, value)| format!("{name} = {value}"))
        .collect();
    format!(
        "UPDATE access_log SET {} WHERE chain_id = {} AND seq = {}",
        set.join(", "),
        text(&s.chain_id),
        s.seq
    )
}

fn insert_checkpoint_sql(c: &Checkpoint) -> String {
    format!(
        "INSERT INTO audit_checkpoints (chain_id, seq, head_hash, at, signature) VALUES ({}, {}, {}, {}, {})",
        text(&c.chain_id),
        c.seq,
        text(&c.head_hash),
        nanos(c.at),
        text(&c.signature)
    )
}

fn hash_of(s: &StoredRecord) -> String {
    let prev = parse_hash(&s.prev_hash).expect("stored previous hash");
    hex::encode(record_hash(&prev, &s.chain_id, s.seq, &s.record))
}

fn record_id(metadata: &MetadataMap) -> String {
    metadata
        .get(ACCESS_RECORD_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {ACCESS_RECORD_HEADER} in {metadata:?}"))
        .to_string()
}

/// A chain in a fresh store, with a raw connection to tamper with it.
struct Log {
    store: Arc<dyn Store>,
    raw: Raw,
    location: StoreLocation,
    chain_id: String,
    public_key: String,
    /// The records as written: `records[k]` has sequence number `k + 1`.
    records: Vec<StoredRecord>,
    /// The SQLite file's directory, which is also the data directory.
    dir: tempfile::TempDir,
    postgres: Option<FreshPostgres>,
}

/// A data directory (holding `onshi.db` for SQLite) and where the store lives.
async fn fresh(backend: Backend) -> (tempfile::TempDir, StoreLocation, Option<FreshPostgres>) {
    let (dir, path) = fresh_sqlite().await;
    match backend {
        Backend::Sqlite => (dir, StoreLocation::Sqlite(path), None),
        Backend::Postgres => {
            let pg = fresh_postgres().await;
            (dir, StoreLocation::Postgres(pg.url.clone()), Some(pg))
        }
    }
}

impl Log {
    /// `LINKED` records linked by `Linker` and appended in batches of 2 and 3, with a
    /// checkpoint signed with the batch that ends on every multiple of `EVERY`.
    async fn linked(backend: Backend) -> Log {
        let (dir, location, postgres) = fresh(backend).await;
        let store = store::open(&location).await.expect("store opens");
        let signer = ChainSigner::generate();
        store
            .register_chain(&signer.chain_info(base()))
            .await
            .expect("chain registered");
        let mut linker = Linker::resume(signer.chain_id(), None).expect("new chain");
        let mut written = Vec::new();
        let mut sizes = [2u64, 3].into_iter().cycle();
        while linker.seq() < LINKED {
            let first = linker.seq() + 1;
            let last = (first + sizes.next().expect("cycles") - 1).min(LINKED);
            let batch = linker.link((first..=last).map(record).collect());
            let checkpoint = last.is_multiple_of(EVERY).then(|| {
                let at = batch.last().expect("batch").record.at + chrono::Duration::seconds(1);
                signer.checkpoint(linker.seq(), &linker.head_hash(), at)
            });
            store
                .append(&batch, checkpoint.as_ref())
                .await
                .expect("appended");
            written.extend(batch);
        }
        let raw = Raw::connect(&location).await;
        let log = Log {
            store,
            raw,
            location,
            chain_id: signer.chain_id().to_string(),
            public_key: signer.public_key_hex(),
            records: Vec::new(),
            dir,
            postgres,
        };
        let records = log.stored().await;
        assert_eq!(records, written, "the store returns the chain as written");
        Log { records, ..log }
    }

    /// `SERVED` calls through a gateway signing a checkpoint every `EVERY` records:
    /// allowed look-ups and searches, and denials. Returns the log after the gateway
    /// shut down (which signs the head), the access-record ids the calls were given,
    /// and the report of the chain while the gateway still ran.
    async fn served(backend: Backend) -> (Log, Vec<String>, ChainReport) {
        let (dir, location, postgres) = fresh(backend).await;
        let start = jst_at(2022, 3, 20, 10, 0);
        let clock = ManualClock::new(start);
        let config = GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            database_url: match &location {
                StoreLocation::Postgres(url) => Some(url.clone()),
                StoreLocation::Sqlite(_) => None,
            },
            upstream: UpstreamTarget::Builtin {
                seed: 7,
                population: 1000,
            },
            identity: IdentitySource::DevelopmentMetadata,
            upstream_timeout: Duration::from_secs(5),
            audit: BatchConfig {
                checkpoint_records: EVERY,
                // Only the record count signs, so where checkpoints fall is known.
                checkpoint_interval: Duration::from_secs(3600),
                ..common::test_audit_batch()
            },
            drain_timeout: Duration::from_secs(5),
            ..GatewayConfig::default()
        };
        let gateway = server::start(config, clock.clone())
            .await
            .expect("gateway starts");
        let window = window_from("2022-03-17", None, Some("2022-03-23"), false).expect("window");
        let activation = new_activation(
            "令和4年福島沖地震",
            "令和4年3月17日付事務連絡",
            &["04".into(), "07".into()],
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

        let mut client = QualificationServiceClient::connect(format!("http://{}", gateway.addr))
            .await
            .expect("connects");
        let mut ids = Vec::new();
        for i in 0..SERVED {
            clock.set(start + chrono::Duration::seconds(i64::try_from(i).expect("small")));
            let metadata = match i % 4 {
                1 => client
                    .search_patients(as_facility(
                        &miyagi_clinic(),
                        search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻"),
                    ))
                    .await
                    .expect("search allowed")
                    .metadata()
                    .clone(),
                3 => client
                    .lookup_qualification(as_facility(
                        &tokyo_clinic(),
                        lookup(SAME_NAME_TOKYO.insured()),
                    ))
                    .await
                    .expect_err("Tokyo is not activated")
                    .metadata()
                    .clone(),
                _ => client
                    .lookup_qualification(as_facility(
                        &miyagi_clinic(),
                        lookup(DEMO_PATIENT.insured()),
                    ))
                    .await
                    .expect("lookup allowed")
                    .metadata()
                    .clone(),
            };
            ids.push(record_id(&metadata));
        }
        let running = verify_one(gateway.store.as_ref(), &[]).await;
        let store = gateway.store.clone();
        let chain_id = gateway.chain_id.clone();
        drop(client);
        gateway.shutdown().await.expect("clean shutdown");

        let public_key = store
            .chains()
            .await
            .expect("chains")
            .into_iter()
            .find(|c| c.chain_id == chain_id)
            .expect("the gateway's chain is registered")
            .public_key;
        let raw = Raw::connect(&location).await;
        let log = Log {
            store,
            raw,
            location,
            chain_id,
            public_key,
            records: Vec::new(),
            dir,
            postgres,
        };
        let records = log.stored().await;
        // Calls made one after another are chained in the order they were made.
        assert_eq!(
            records
                .iter()
                .map(|r| r.record.id.clone())
                .collect::<Vec<_>>(),
            ids
        );
        (Log { records, ..log }, ids, running)
    }

    async fn stored(&self) -> Vec<StoredRecord> {
        let records = self
            .store
            .chain_records(&self.chain_id, 0, 100_000)
            .await
            .expect("records readable");
        for (k, r) in records.iter().enumerate() {
            assert_eq!(r.seq, k as u64 + 1, "chain written without gaps");
        }
        records
    }

    /// The record at `seq`, as written.
    fn at(&self, seq: u64) -> &StoredRecord {
        &self.records[usize::try_from(seq - 1).expect("small")]
    }

    fn chain(&self) -> String {
        text(&self.chain_id)
    }

    async fn exec(&mut self, sql: &str) -> u64 {
        self.raw.exec(sql).await
    }

    async fn delete_where(&mut self, condition: &str) -> u64 {
        let sql = format!(
            "DELETE FROM access_log WHERE chain_id = {} AND {condition}",
            self.chain()
        );
        self.exec(&sql).await
    }

    /// Moves records `seq..` one position up, leaving `seq` free.
    async fn shift_up_from(&mut self, seq: u64) {
        // Through negative numbers: a plain `seq = seq + 1` would collide midway.
        let chain = self.chain();
        self.exec(&format!(
            "UPDATE access_log SET seq = -seq - 1 WHERE chain_id = {chain} AND seq >= {seq}"
        ))
        .await;
        self.exec(&format!(
            "UPDATE access_log SET seq = -seq WHERE chain_id = {chain} AND seq < 0"
        ))
        .await;
    }

    /// The chain from `from` on relinked after record `from - 1`, with `edit` applied
    /// to `contents[0]` (record `from`) first: what a forger who can recompute hashes writes.
    fn relinked(
        &self,
        from: u64,
        contents: Vec<AccessRecord>,
        edit: impl FnOnce(&mut AccessRecord),
    ) -> Vec<StoredRecord> {
        let before = self.at(from - 1);
        let mut linker = Linker::resume(
            &self.chain_id,
            Some(&ChainHead {
                seq: before.seq,
                hash: before.hash.clone(),
            }),
        )
        .expect("resumes");
        let mut contents = contents;
        edit(&mut contents[0]);
        linker.link(contents)
    }

    fn contents_from(&self, from: u64) -> Vec<AccessRecord> {
        self.records[usize::try_from(from - 1).expect("small")..]
            .iter()
            .map(|s| s.record.clone())
            .collect()
    }

    async fn checkpoints(&self) -> Vec<Checkpoint> {
        self.store
            .checkpoints(&self.chain_id)
            .await
            .expect("checkpoints readable")
    }

    async fn verify(&self) -> ChainReport {
        self.verify_with(&[]).await
    }

    async fn verify_with(&self, trusted: &[String]) -> ChainReport {
        verify_one(self.store.as_ref(), trusted).await
    }

    async fn done(self) {
        self.store.close().await;
        if let Some(pg) = &self.postgres {
            pg.drop_schema().await;
        }
    }
}

async fn verify_one(store: &dyn Store, trusted: &[String]) -> ChainReport {
    let mut reports = verify_store(store, trusted).await.expect("verify runs");
    assert_eq!(reports.len(), 1, "one chain: {reports:?}");
    reports.remove(0)
}

#[track_caller]
fn assert_break(report: &ChainReport, kind: BreakKind, seq: u64) {
    let found = report
        .first_break
        .as_ref()
        .unwrap_or_else(|| panic!("expected {kind:?} at {seq}, but intact: {report:?}"));
    assert_eq!((&found.kind, found.seq), (&kind, seq), "{report:?}");
}

#[track_caller]
fn assert_intact(report: &ChainReport) {
    assert!(report.is_intact(), "{report:?}");
}

// ---- untouched ----

async fn untouched_linked(backend: Backend) {
    let log = Log::linked(backend).await;
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!(r.chain_id, log.chain_id);
    assert_eq!(r.public_key, log.public_key);
    assert_eq!(r.records_verified, LINKED);
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(LINKED)));
    assert_eq!(r.checkpoints_verified, LINKED / EVERY);
    assert_eq!(r.signed_through, Some(LINKED / EVERY * EVERY));
    assert_eq!(r.unsigned_tail(), LINKED % EVERY);
    // Trusting this very key, however spelt, changes nothing.
    let r = log.verify_with(&[log.public_key.to_uppercase()]).await;
    assert_intact(&r);
    assert_eq!(r.records_verified, LINKED);
    log.done().await;
}

async fn untouched_served(backend: Backend) {
    let (log, ids, running) = Log::served(backend).await;
    // While it ran: signed every EVERY records, the rest linked but unsigned.
    assert_intact(&running);
    assert_eq!(running.records_verified, SERVED);
    assert_eq!(running.signed_through, Some(SERVED / EVERY * EVERY));
    assert_eq!(running.unsigned_tail(), SERVED % EVERY);
    // Shutting down signed the head.
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!(r.records_verified, SERVED);
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(SERVED)));
    assert_eq!(r.checkpoints_verified, SERVED / EVERY + 1);
    assert_eq!(r.signed_through, Some(SERVED));
    assert_eq!(r.unsigned_tail(), 0);
    let seqs: Vec<u64> = log.checkpoints().await.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, vec![5, 10, SERVED]);
    // Each response named its own record, and the denials were recorded as such.
    assert_eq!(ids.len() as u64, SERVED);
    let denied: Vec<u64> = log
        .records
        .iter()
        .filter(|r| r.record.decision == Decision::Denied)
        .map(|r| r.seq)
        .collect();
    assert_eq!(denied, vec![4, 8, 12]);
    log.done().await;
}

// ---- edits ----

async fn edited_field(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let sql = format!(
        "UPDATE access_log SET facility = '0411111111' WHERE chain_id = {} AND seq = 7",
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Altered, 7);
    assert_eq!(r.records_verified, 6);
    assert_eq!(r.signed_through, Some(5));
    log.done().await;
}

/// A search that disclosed two patients, appended after the linked chain.
async fn with_disclosing_search(log: &Log) -> u64 {
    let head = log.store.chain_head(&log.chain_id).await.expect("head");
    let mut linker = Linker::resume(&log.chain_id, head.as_ref()).expect("resumes");
    let mut search = record(2);
    search.disclosed_patients = vec![
        "06139993:1234:5678:01".into(),
        "06139993:1234:5678:02".into(),
    ];
    let linked = linker.link(vec![search]);
    log.store.append(&linked, None).await.expect("appended");
    let stored = log.stored().await;
    assert_eq!(stored.last(), linked.last(), "the list is stored as linked");
    linker.seq()
}

async fn edited_disclosures(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let seq = with_disclosing_search(&log).await;
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!(r.records_verified, LINKED + 1);
    let chain = log.chain();
    // A patient removed from what the search showed, then one swapped for another.
    let cases = [
        format!(
            "DELETE FROM access_log_disclosures WHERE chain_id = {chain} AND seq = {seq} AND pos = 1"
        ),
        format!(
            "UPDATE access_log_disclosures SET patient_key = '06139993:1234:5678:09' \
             WHERE chain_id = {chain} AND seq = {seq} AND pos = 0"
        ),
    ];
    for sql in cases {
        assert_eq!(log.exec(&sql).await, 1, "{sql}");
        let r = log.verify().await;
        assert_break(&r, BreakKind::Altered, seq);
        assert_eq!(r.records_verified, LINKED);
    }
    log.done().await;
}

async fn edited_decision_served(backend: Backend) {
    let (mut log, _, _) = Log::served(backend).await;
    let denial = log
        .records
        .iter()
        .find(|r| r.record.decision == Decision::Denied)
        .expect("a denial")
        .seq;
    // A refused access made to look allowed.
    let sql = format!(
        "UPDATE access_log SET decision = 'allowed', reason = NULL, grpc_code = 0 \
         WHERE chain_id = {} AND seq = {denial}",
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Altered, denial);
    assert_eq!(r.records_verified, denial - 1);
    log.done().await;
}

async fn edited_and_rehashed(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let mut forged = log.at(7).clone();
    forged.record.patient_key = Some("06139998|1|2|00".into());
    forged.hash = hash_of(&forged);
    assert_ne!(forged.hash, log.at(7).hash);
    log.exec(&update_sql(&forged)).await;
    // Record 7 now checks out on its own; record 8 still follows the old 7.
    let r = log.verify().await;
    assert_break(&r, BreakKind::Unlinked, 8);
    assert_eq!(r.records_verified, 7);
    log.done().await;
}

// ---- deletions ----

async fn deleted_middle(backend: Backend) {
    let mut log = Log::linked(backend).await;
    assert_eq!(log.delete_where("seq = 12").await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Missing, 12);
    assert_eq!(r.records_verified, 11);
    assert_eq!(r.signed_through, Some(10));
    log.done().await;
}

async fn deleted_middle_served(backend: Backend) {
    let (mut log, _, _) = Log::served(backend).await;
    assert_eq!(log.delete_where("seq IN (6, 7)").await, 2);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Missing, 6);
    assert_eq!(r.records_verified, 5);
    log.done().await;
}

async fn truncated_before_checkpoint(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // The chain now ends at 17, but the checkpoint at 20 attests to 20 records.
    assert_eq!(log.delete_where("seq >= 18").await, LINKED - 17);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Truncated, 18);
    assert_eq!(r.records_verified, 17);
    assert_eq!(r.last_seq, Some(17));
    assert_eq!(r.signed_through, Some(15));
    log.done().await;
}

async fn truncated_to_a_checkpoint(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // Ending exactly on a signed head does not hide that a later one existed.
    log.delete_where("seq > 15").await;
    let r = log.verify().await;
    assert_break(&r, BreakKind::Truncated, 16);
    assert_eq!(r.records_verified, 15);
    assert_eq!(r.signed_through, Some(15));
    log.done().await;
}

async fn emptied(backend: Backend) {
    let mut log = Log::linked(backend).await;
    assert_eq!(log.delete_where("TRUE").await, LINKED);
    // With no record left, the chain reads as pruned through its oldest checkpoint
    // (5), which the later checkpoints attest it went beyond.
    let r = log.verify().await;
    assert_break(&r, BreakKind::Truncated, 6);
    assert_eq!(r.records_verified, 0);
    log.done().await;
}

/// The documented limit: records after the last checkpoint are linked but not yet
/// signed, so deleting them leaves a shorter chain that verifies. How many records
/// this can concern is bounded by the checkpoint settings.
async fn tail_after_last_checkpoint_is_not_detectable(backend: Backend) {
    let mut log = Log::linked(backend).await;
    assert_eq!(log.delete_where("seq > 20").await, LINKED % EVERY);
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!(r.records_verified, 20);
    assert_eq!(r.unsigned_tail(), 0);
    log.done().await;
}

/// The other documented limit: deleting a prefix up to a checkpoint, and the
/// checkpoints before it, is what retention does, so the chain verifies; the report
/// shows where it now starts.
async fn prefix_deleted_to_a_checkpoint_reads_as_pruned(backend: Backend) {
    let mut log = Log::linked(backend).await;
    assert_eq!(log.delete_where("seq <= 10").await, 10);
    let sql = format!(
        "DELETE FROM audit_checkpoints WHERE chain_id = {} AND seq < 10",
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!((r.first_seq, r.last_seq), (Some(11), Some(LINKED)));
    assert_eq!(r.records_verified, LINKED - 10);
    log.done().await;
}

async fn deleted_first_records(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // No checkpoint at 3 anchors record 4: unlike retention, which prunes to a checkpoint.
    assert_eq!(log.delete_where("seq <= 3").await, 3);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Unanchored, 4);
    assert_eq!(r.first_seq, Some(4));
    assert_eq!(r.records_verified, 0);
    log.done().await;
}

// ---- insertions and reordering ----

/// A fabricated access to follow record `seq`, correctly hashed after it.
fn forged_after(log: &Log, seq: u64) -> StoredRecord {
    let before = log.at(seq);
    let mut record = before.record.clone();
    record.id = format!("forged-{}", uuid::Uuid::new_v4().simple());
    record.at += chrono::Duration::seconds(30);
    record.patient_key = Some("06139998|1|2|00".into());
    let mut forged = StoredRecord {
        chain_id: log.chain_id.clone(),
        seq: seq + 1,
        prev_hash: before.hash.clone(),
        hash: String::new(),
        record,
    };
    forged.hash = hash_of(&forged);
    forged
}

async fn inserted_forged_record(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let forged = forged_after(&log, 8);
    log.shift_up_from(9).await;
    log.exec(&insert_sql(&forged)).await;
    assert_eq!(log.stored().await.len() as u64, LINKED + 1);
    // The forged record itself links; the record displaced after it does not.
    let r = log.verify().await;
    assert_break(&r, BreakKind::Unlinked, 10);
    assert_eq!(r.records_verified, 9);
    log.done().await;
}

async fn inserted_and_relinked(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let forged = forged_after(&log, 8);
    log.shift_up_from(9).await;
    log.exec(&insert_sql(&forged)).await;
    // Every later record relinked after the forged one: only the signed head at 10 disagrees.
    let mut linker = Linker::resume(
        &log.chain_id,
        Some(&ChainHead {
            seq: forged.seq,
            hash: forged.hash.clone(),
        }),
    )
    .expect("resumes");
    for s in linker.link(log.contents_from(9)) {
        log.exec(&update_sql(&s)).await;
    }
    let r = log.verify().await;
    assert_break(&r, BreakKind::CheckpointMismatch, 10);
    assert_eq!(r.records_verified, 9);
    assert_eq!(r.signed_through, Some(5));
    log.done().await;
}

/// Records 7 and 8 swapped whole (hashes included), each keeping the other's place.
async fn swap_rows(log: &mut Log) {
    let chain = log.chain();
    for (from, to) in [(7, -7), (8, 7), (-7, 8)] {
        let sql =
            format!("UPDATE access_log SET seq = {to} WHERE chain_id = {chain} AND seq = {from}");
        assert_eq!(log.exec(&sql).await, 1);
    }
}

async fn swapped_rows(backend: Backend) {
    let mut log = Log::linked(backend).await;
    swap_rows(&mut log).await;
    let r = log.verify().await;
    assert_break(&r, BreakKind::Unlinked, 7);
    assert_eq!(r.records_verified, 6);
    log.done().await;
}

async fn swapped_contents(backend: Backend) {
    let mut log = Log::linked(backend).await;
    swap_rows(&mut log).await;
    // …then the links put back where they were: only the contents moved.
    let chain = log.chain();
    for seq in [7, 8] {
        let original = log.at(seq);
        let sql = format!(
            "UPDATE access_log SET prev_hash = {}, hash = {} WHERE chain_id = {chain} AND seq = {seq}",
            text(&original.prev_hash),
            text(&original.hash)
        );
        assert_eq!(log.exec(&sql).await, 1);
    }
    let r = log.verify().await;
    assert_break(&r, BreakKind::Altered, 7);
    assert_eq!(r.records_verified, 6);
    log.done().await;
}

// ---- consistent rewrites ----

fn redirect(r: &mut AccessRecord) {
    r.facility = Some(tokyo_clinic().to_string());
    r.patient_key = Some("06139998|1|2|00".into());
}

async fn rewritten_suffix(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let rewritten = log.relinked(12, log.contents_from(12), redirect);
    assert_eq!(rewritten.len() as u64, LINKED - 11);
    for s in &rewritten {
        log.exec(&update_sql(s)).await;
    }
    // Hashes and links all check out; the signed head at 15 does not.
    let r = log.verify().await;
    assert_break(&r, BreakKind::CheckpointMismatch, 15);
    assert_eq!(r.records_verified, 14);
    assert_eq!(r.signed_through, Some(10));
    log.done().await;
}

async fn rewritten_suffix_served(backend: Backend) {
    let (mut log, _, _) = Log::served(backend).await;
    for s in &log.relinked(7, log.contents_from(7), redirect) {
        log.exec(&update_sql(s)).await;
    }
    let r = log.verify().await;
    assert_break(&r, BreakKind::CheckpointMismatch, 10);
    assert_eq!(r.records_verified, 9);
    log.done().await;
}

async fn rewritten_suffix_with_checkpoints_repointed(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let rewritten = log.relinked(12, log.contents_from(12), redirect);
    for s in &rewritten {
        log.exec(&update_sql(s)).await;
    }
    // The checkpoints made to name the new heads: but their signatures were over the old.
    for seq in [15u64, 20] {
        let head = &rewritten[usize::try_from(seq - 12).expect("small")].hash;
        let sql = format!(
            "UPDATE audit_checkpoints SET head_hash = {} WHERE chain_id = {} AND seq = {seq}",
            text(head),
            log.chain()
        );
        assert_eq!(log.exec(&sql).await, 1);
    }
    let r = log.verify().await;
    assert_break(&r, BreakKind::BadSignature, 15);
    log.done().await;
}

// ---- checkpoints and keys ----

async fn forged_signature(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // A genuine signature of this key, but over the checkpoint at 5.
    let at_5 = log.checkpoints().await[0].signature.clone();
    let sql = format!(
        "UPDATE audit_checkpoints SET signature = {} WHERE chain_id = {} AND seq = 10",
        text(&at_5),
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::BadSignature, 10);
    log.done().await;
}

/// A checkpoint that fails its signature vouches for nothing: it is neither counted
/// as verified nor signs the records up to it.
async fn forged_signature_is_not_counted(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let at_5 = log.checkpoints().await[0].signature.clone();
    let sql = format!(
        "UPDATE audit_checkpoints SET signature = {} WHERE chain_id = {} AND seq = 10",
        text(&at_5),
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::BadSignature, 10);
    assert_eq!(r.checkpoints_verified, 1, "{r:?}");
    assert_eq!(r.signed_through, Some(5), "{r:?}");
    log.done().await;
}

async fn forged_checkpoint_head(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // The checkpoint at 10 made to name another head than it was signed over.
    let sql = format!(
        "UPDATE audit_checkpoints SET head_hash = {} WHERE chain_id = {} AND seq = 10",
        text(&log.at(9).hash),
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::BadSignature, 10);
    log.done().await;
}

async fn forged_anchor(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // The first 12 records deleted and a checkpoint at 12 made up to anchor the rest,
    // with a signature copied from a genuine checkpoint.
    let genuine = log.checkpoints().await[0].clone();
    log.delete_where("seq <= 12").await;
    let forged = Checkpoint {
        seq: 12,
        head_hash: log.at(12).hash.clone(),
        ..genuine
    };
    log.exec(&insert_checkpoint_sql(&forged)).await;
    let r = log.verify().await;
    assert_break(&r, BreakKind::BadSignature, 12);
    log.done().await;
}

async fn replaced_public_key(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let other = ChainSigner::generate();
    let sql = format!(
        "UPDATE audit_chains SET public_key = {} WHERE chain_id = {}",
        text(&other.public_key_hex()),
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::BadKey, 0);
    assert_eq!(r.records_verified, 0);
    log.done().await;
}

async fn malformed_public_key(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let sql = format!(
        "UPDATE audit_chains SET public_key = 'not a key' WHERE chain_id = {}",
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    assert_break(&log.verify().await, BreakKind::BadKey, 0);
    log.done().await;
}

async fn untrusted_key(backend: Backend) {
    let log = Log::linked(backend).await;
    let other = ChainSigner::generate().public_key_hex();
    let r = log.verify_with(std::slice::from_ref(&other)).await;
    assert_break(&r, BreakKind::UntrustedKey, 0);
    assert_eq!(r.records_verified, 0);
    // Among the trusted keys, it is accepted.
    assert_intact(&log.verify_with(&[other, log.public_key.clone()]).await);
    log.done().await;
}

/// The chain's registration deleted (after editing its records): its records are
/// still in the log, and must not escape verification.
async fn unregistered_chain(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let chain = log.chain();
    log.exec(&format!(
        "UPDATE access_log SET facility = '0411111111' WHERE chain_id = {chain} AND seq = 7"
    ))
    .await;
    assert_eq!(
        log.exec(&format!(
            "DELETE FROM audit_chains WHERE chain_id = {chain}"
        ))
        .await,
        1
    );
    let reports = verify_store(log.store.as_ref(), &[])
        .await
        .expect("verify runs");
    let report = reports
        .iter()
        .find(|r| r.chain_id == log.chain_id)
        .unwrap_or_else(|| panic!("chain {} not verified: {reports:?}", log.chain_id));
    assert!(!report.is_intact(), "{report:?}");
    let (code, out) = cli_verify_run(&log, &[]).await;
    assert_eq!(code, Some(3), "{out}");
    log.done().await;
}

/// The whole chain rewritten and re-signed under a key of the forger's: consistent
/// in itself, so only a verifier given the replica's real key can tell.
async fn resigned_under_a_new_key(backend: Backend) {
    let mut log = Log::linked(backend).await;
    let forger = ChainSigner::generate();
    let mut linker = Linker::resume(forger.chain_id(), None).expect("new chain");
    let rewritten = linker.link(
        log.contents_from(1)
            .into_iter()
            .map(|mut r| {
                redirect(&mut r);
                r
            })
            .collect(),
    );
    let chain = log.chain();
    log.exec(&format!("DELETE FROM access_log WHERE chain_id = {chain}"))
        .await;
    log.exec(&format!(
        "DELETE FROM audit_checkpoints WHERE chain_id = {chain}"
    ))
    .await;
    log.exec(&format!(
        "UPDATE audit_chains SET chain_id = {}, public_key = {} WHERE chain_id = {chain}",
        text(forger.chain_id()),
        text(&forger.public_key_hex())
    ))
    .await;
    for s in &rewritten {
        log.exec(&insert_sql(s)).await;
    }
    for s in rewritten.iter().filter(|s| s.seq.is_multiple_of(EVERY)) {
        let head = parse_hash(&s.hash).expect("hash");
        let checkpoint = forger.checkpoint(s.seq, &head, s.record.at);
        log.exec(&insert_checkpoint_sql(&checkpoint)).await;
    }
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!(r.chain_id, forger.chain_id());
    assert_eq!(r.records_verified, LINKED);
    let r = log.verify_with(std::slice::from_ref(&log.public_key)).await;
    assert_break(&r, BreakKind::UntrustedKey, 0);
    log.done().await;
}

// ---- retention ----

async fn retention_prunes_at_a_checkpoint(backend: Backend) {
    let mut log = Log::linked(backend).await;
    // Record i is at base + i minutes and checkpoints a second after their head:
    // a cut-off at base + 12 minutes leaves the checkpoint at 10 as the last before it.
    let now = base() + chrono::Duration::days(1);
    let retention = Duration::from_secs(24 * 3600 - 12 * 60);
    let deleted = prune_expired(log.store.as_ref(), now, retention)
        .await
        .expect("pruned");
    assert_eq!(deleted, 10);
    assert_eq!(
        log.checkpoints()
            .await
            .iter()
            .map(|c| c.seq)
            .collect::<Vec<_>>(),
        vec![10, 15, 20]
    );
    let r = log.verify().await;
    assert_intact(&r);
    assert_eq!((r.first_seq, r.last_seq), (Some(11), Some(LINKED)));
    assert_eq!(r.records_verified, LINKED - 10);
    assert_eq!(r.checkpoints_verified, 2);
    assert_eq!(r.signed_through, Some(20));
    assert_eq!(r.unsigned_tail(), LINKED % EVERY);
    // Nothing more has expired.
    assert_eq!(
        prune_expired(log.store.as_ref(), now, retention)
            .await
            .expect("pruned"),
        0
    );
    // Without the checkpoint that anchors it, the pruned chain's start is unaccounted for.
    let sql = format!(
        "DELETE FROM audit_checkpoints WHERE chain_id = {} AND seq = 10",
        log.chain()
    );
    assert_eq!(log.exec(&sql).await, 1);
    let r = log.verify().await;
    assert_break(&r, BreakKind::Unanchored, 11);
    log.done().await;
}

// ---- the command line ----

/// Runs `onshi-gateway audit verify` on the log's store; returns its exit code and output.
async fn cli_verify_run(log: &Log, trusted: &[&str]) -> (Option<i32>, String) {
    let mut args: Vec<OsString> = vec!["audit".into(), "verify".into()];
    match &log.location {
        StoreLocation::Sqlite(_) => {
            args.push("--data-dir".into());
            args.push(log.dir.path().into());
        }
        StoreLocation::Postgres(url) => {
            args.push("--database-url".into());
            args.push(url.into());
        }
    }
    for key in trusted {
        args.push("--trusted-key".into());
        args.push(key.into());
    }
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_onshi-gateway"))
            .args(&args)
            .env_remove("ONSHI_DATABASE_URL")
            .env_remove("ONSHI_DATA_DIR")
            .output()
    })
    .await
    .expect("joined")
    .expect("audit verify runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

async fn cli_verify(backend: Backend) {
    let mut log = Log::linked(backend).await;
    if let StoreLocation::Sqlite(path) = &log.location {
        assert_eq!(path, &log.dir.path().join("onshi.db"));
    }
    let (code, out) = cli_verify_run(&log, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("chain {}", log.chain_id)), "{out}");
    assert!(
        out.contains(&format!(
            "{LINKED} records verified (records 1 to {LINKED}), 4 checkpoints verified, \
             signed through 20, 3 records after the last checkpoint"
        )),
        "{out}"
    );
    assert!(out.contains("  intact"), "{out}");
    assert!(!out.contains("BROKEN"), "{out}");

    let key = log.public_key.clone();
    let (code, out) = cli_verify_run(&log, &[&key]).await;
    assert_eq!(code, Some(0), "{out}");
    let other = ChainSigner::generate().public_key_hex();
    let (code, out) = cli_verify_run(&log, &[&other]).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("BROKEN at record 0: UntrustedKey"), "{out}");

    let sql = format!(
        "UPDATE access_log SET staff_id = 'someone-else' WHERE chain_id = {} AND seq = 7",
        log.chain()
    );
    log.exec(&sql).await;
    let (code, out) = cli_verify_run(&log, &[]).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("6 records verified"), "{out}");
    assert!(out.contains("BROKEN at record 7: Altered"), "{out}");
    assert!(!out.contains("  intact"), "{out}");
    log.done().await;
}

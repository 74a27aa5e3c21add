//! The store's contract, run against SQLite and PostgreSQL alike: whichever a
//! deployment uses, activations, searches and the access log behave the same.

#[path = "common/databases.rs"]
mod databases;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use databases::{Backend, open_fresh};
use onshi_gateway::audit::ChainSigner;
use onshi_gateway::audit::chain::Linker;
use onshi_gateway::domain::jst::Window;
use onshi_gateway::store::{
    self, AccessQuery, AccessRecord, AreaKey, ChainHead, Coverage, Cursor, Decision, NewActivation,
    SearchRecord, Store, StoreError, StoredRecord, candidate_hash,
};

/// One `#[tokio::test]` per backend for a contract.
macro_rules! on_both {
    ($contract:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $contract(Backend::Sqlite).await
        }
        #[tokio::test]
        async fn $postgres() {
            $contract(Backend::Postgres).await
        }
    };
}

on_both!(activations: sqlite_activations, postgres_activations);
on_both!(search_ledger: sqlite_search_ledger, postgres_search_ledger);
on_both!(activation_revisions: sqlite_activation_revisions, postgres_activation_revisions);
on_both!(audit_register_chain: sqlite_audit_register_chain, postgres_audit_register_chain);
on_both!(audit_append_and_head: sqlite_audit_append_and_head, postgres_audit_append_and_head);
on_both!(audit_append_is_atomic: sqlite_audit_append_is_atomic, postgres_audit_append_is_atomic);
on_both!(audit_query_filters: sqlite_audit_query_filters, postgres_audit_query_filters);
on_both!(audit_query_paging: sqlite_audit_query_paging, postgres_audit_query_paging);
on_both!(audit_prune: sqlite_audit_prune, postgres_audit_prune);
on_both!(audit_disclosures: sqlite_audit_disclosures, postgres_audit_disclosures);
on_both!(audit_large_batch: sqlite_audit_large_batch, postgres_audit_large_batch);
on_both!(audit_opens_searches: sqlite_audit_opens_searches, postgres_audit_opens_searches);
on_both!(audit_survives_reopening: sqlite_audit_survives_reopening, postgres_audit_survives_reopening);
on_both!(sites: sqlite_sites, postgres_sites);
on_both!(audit_site_stamps: sqlite_audit_site_stamps, postgres_audit_site_stamps);

/// 2022-03-17 00:00:00.123456789 JST: digits below the microsecond, which a coarser
/// encoding (PostgreSQL's own TIMESTAMPTZ, say) would lose.
const BASE_NANOS: i64 = 1_647_442_800_123_456_789;

fn at(offset_nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(BASE_NANOS + offset_nanos)
}

fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    if !matches!(result, Err(StoreError::Conflict(_))) {
        panic!("expected a conflict, got {result:?}");
    }
}

// ---- activations ----

async fn activations(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let window = Window::new(at(0), at(7 * 86_400_000_000_000 + 1)).expect("window");
    let new = NewActivation {
        event: "2022年福島県沖地震".into(),
        notice: "事務連絡 2022-03-17".into(),
        areas: vec![
            AreaKey::Prefecture(7),
            AreaKey::Municipality("042021".into()),
            AreaKey::Prefecture(4),
            AreaKey::Facility("0411234567".into()),
        ],
        window,
        created_by: "operator-1".into(),
        at: at(-1_000),
    };
    let added = store.add_activation(&new).await.expect("added");
    let other = NewActivation {
        event: "other".into(),
        areas: vec![AreaKey::Prefecture(13)],
        ..new.clone()
    };
    let added_other = store.add_activation(&other).await.expect("added");

    let listed = store.list_activations().await.expect("listed");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let a = listed
        .iter()
        .find(|a| a.id == added.id)
        .expect("listed by id");
    assert_eq!(a.event, new.event);
    assert_eq!(a.notice, new.notice);
    let areas: Vec<AreaKey> = a.areas().into_iter().map(|w| w.area).collect();
    assert_eq!(areas, new.areas, "areas in the order given");
    assert!(a.areas().iter().all(|w| w.window == window));
    assert_eq!(a.revisions.len(), 1);
    assert_eq!(a.revisions[0].recorded_at, at(-1_000));
    assert_eq!(a.created_by, new.created_by);
    assert_eq!(a.created_at, added.created_at);
    let b = listed
        .iter()
        .find(|a| a.id == added_other.id)
        .expect("listed by id");
    let areas: Vec<AreaKey> = b.areas().into_iter().map(|w| w.area).collect();
    assert_eq!(areas, vec![AreaKey::Prefecture(13)]);

    let covering = vec![Coverage {
        activation_id: added.id.clone(),
        event: new.event.clone(),
        window,
    }];
    for area in [
        AreaKey::Prefecture(7),
        AreaKey::Prefecture(4),
        AreaKey::Facility("0411234567".into()),
        AreaKey::Municipality("042021".into()),
    ] {
        let found = store.coverage(&area).await.expect("coverage");
        assert_eq!(found, covering, "{area}");
        // Exact to the nanosecond at both edges of the half-open window.
        assert!(found[0].window.contains(at(0)));
        assert!(!found[0].window.contains(at(-1)));
        assert!(!found[0].window.contains(window.end));
    }
    for area in [
        AreaKey::Prefecture(1),
        AreaKey::Facility("0411234568".into()),
        AreaKey::Municipality("042022".into()),
    ] {
        assert_eq!(
            store.coverage(&area).await.expect("coverage"),
            vec![],
            "{area}"
        );
    }
}

/// Revisions change some areas' windows; the latest per area is in force, the
/// history reads back whole, and a revision number is taken only once.
async fn activation_revisions(backend: Backend) {
    use onshi_gateway::domain::activation_change::{AreaWindow, ChangeKind, Revision};
    let (store, _keep) = open_fresh(backend).await;
    let mut changes = store.subscribe().await.expect("subscribe");
    assert_eq!(
        changes.is_some(),
        backend == Backend::Postgres,
        "only PostgreSQL pushes changes"
    );
    let first = Window::new(at(0), at(1_000)).expect("window");
    let new = NewActivation {
        event: "令和6年能登半島地震".into(),
        notice: "令和6年1月1日付".into(),
        areas: vec![
            AreaKey::Municipality("17204".into()),
            AreaKey::Municipality("17201".into()),
        ],
        window: first,
        created_by: "op-1".into(),
        at: at(0),
    };
    let a = store.add_activation(&new).await.expect("added");
    let extended = Window::new(at(0), at(5_000)).expect("window");
    let revision = Revision {
        number: 2,
        recorded_at: at(500),
        author: "op-2".into(),
        notice: "令和6年1月7日付".into(),
        kind: ChangeKind::Extend,
        windows: vec![AreaWindow {
            area: AreaKey::Municipality("17204".into()),
            window: extended,
        }],
    };
    store.add_revision(&a.id, &revision).await.expect("revised");
    if let Some(rx) = changes.as_mut() {
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("a change is announced")
            .expect("channel open");
    }
    // The same number again: someone else revised first; nothing changes.
    let clash = Revision {
        author: "op-3".into(),
        ..revision.clone()
    };
    conflict(store.add_revision(&a.id, &clash).await);

    let read = store.activation(&a.id).await.expect("read").expect("found");
    assert_eq!(read.revisions.len(), 2);
    assert_eq!(read.revisions[1], revision);
    assert_eq!(read.revisions[0].author, "op-1");
    assert_eq!(read.revisions[0].kind, ChangeKind::Create);
    let wajima = AreaKey::Municipality("17204".into());
    let kanazawa = AreaKey::Municipality("17201".into());
    let windows: Vec<(AreaKey, Window)> = read
        .areas()
        .into_iter()
        .map(|w| (w.area, w.window))
        .collect();
    assert_eq!(
        windows,
        vec![(wajima.clone(), extended), (kanazawa.clone(), first)]
    );
    // Known before the extension was recorded: the first window.
    assert_eq!(read.areas_at(at(499))[0].window, first);
    assert!(read.areas_at(at(-1)).is_empty());
    let window_of = |c: Vec<Coverage>| c.into_iter().map(|c| c.window).collect::<Vec<_>>();
    assert_eq!(
        window_of(store.coverage(&wajima).await.expect("coverage")),
        vec![extended]
    );
    assert_eq!(
        window_of(store.coverage(&kanazawa).await.expect("coverage")),
        vec![first]
    );
    assert_eq!(store.activation("no-such-id").await.expect("read"), None);
}

// ---- search ledger ----

async fn search_ledger(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    // Searches are written with the records of the calls that made them.
    let opened = |id: &str, at_nanos: i64, disclosed: &[&str]| AccessRecord {
        search_id: Some(id.into()),
        at: at(at_nanos),
        ..search(id, 0, disclosed)
    };
    let batch = vec![
        opened("first", 42, &[PATIENT, OTHER]),
        opened("no-candidates", 42, &[]),
        opened("later", 43, &[]),
    ];
    w.append(store.as_ref(), batch).await;
    let search = SearchRecord {
        search_id: "first".into(),
        facility: "0411234567".into(),
        at: at(42),
        candidate_hashes: vec![candidate_hash(PATIENT), candidate_hash(OTHER)],
    };
    assert_eq!(
        store.find_search("first").await.expect("found"),
        Some(search.clone())
    );
    assert_eq!(
        store
            .find_search("no-such-search")
            .await
            .expect("looked up"),
        None
    );
    let empty = SearchRecord {
        search_id: "no-candidates".into(),
        candidate_hashes: vec![],
        ..search
    };
    assert_eq!(
        store.find_search("no-candidates").await.expect("found"),
        Some(empty.clone())
    );

    // Expiry forgets searches made before the instant, and only those.
    let later = SearchRecord {
        search_id: "later".into(),
        at: at(43),
        ..empty
    };
    assert_eq!(store.prune_searches(at(43)).await.expect("pruned"), 2);
    assert_eq!(store.find_search("first").await.expect("looked up"), None);
    assert_eq!(
        store.find_search("later").await.expect("looked up"),
        Some(later)
    );
}

// ---- access log ----

/// Access record number `i` of a writer: fields vary with `i` so that every filter
/// selects some records and not others; timestamps repeat, in pairs.
fn record(tag: &str, i: u64) -> AccessRecord {
    let n = i as i64;
    let decision = match i % 3 {
        0 => Decision::Allowed,
        1 => Decision::Denied,
        _ => Decision::Failed,
    };
    let exemption = i % 4 == 1;
    let facility = if i.is_multiple_of(2) {
        "0411234567"
    } else {
        "0741234561"
    };
    AccessRecord {
        id: format!("{tag}-{i}"),
        at: at(n / 2),
        method: "GetDrugHistory".into(),
        items: "drug_history".into(),
        facility: Some(facility.into()),
        staff_id: Some(format!("D-{}", i % 3)),
        staff_role: Some("doctor".into()),
        patient_key: i
            .is_multiple_of(4)
            .then(|| "06139993:1234:5678:01".to_string()),
        identification: Some("attributes".into()),
        search_id: None,
        consent_basis: Some(if exemption { "life_or_body" } else { "consent" }.into()),
        exemption_reason: exemption.then(|| "unconscious".to_string()),
        exemption_identification: exemption.then(|| "family".to_string()),
        purpose: None,
        activation_id: i.is_multiple_of(5).then(|| "act-1".to_string()),
        decision,
        reason: (decision == Decision::Denied).then(|| "not_activated".to_string()),
        grpc_code: if decision == Decision::Denied { 7 } else { 0 },
        upstream_result: (decision == Decision::Failed).then(|| "UNAVAILABLE".to_string()),
        needs_review: exemption,
        disclosed_patients: Vec::new(),
        clinical: None,
        site: Default::default(),
        accountability: None,
    }
}

fn records(tag: &str, range: std::ops::Range<u64>) -> Vec<AccessRecord> {
    range.map(|i| record(tag, i)).collect()
}

/// A writer: its key, registered chain, and position.
struct Writer {
    signer: ChainSigner,
    linker: Linker,
}

impl Writer {
    async fn new(store: &dyn Store) -> Writer {
        let signer = ChainSigner::generate();
        store
            .register_chain(&signer.chain_info(at(0)))
            .await
            .expect("registered");
        let linker = Linker::resume(signer.chain_id(), None).expect("fresh chain");
        Writer { signer, linker }
    }

    fn chain(&self) -> &str {
        self.signer.chain_id()
    }

    /// Links and appends `batch` with a checkpoint at its end; returns what was stored.
    async fn append(&mut self, store: &dyn Store, batch: Vec<AccessRecord>) -> Vec<StoredRecord> {
        let linked = self.linker.link(batch);
        let cp = self
            .signer
            .checkpoint(self.linker.seq(), &self.linker.head_hash(), at(1_000));
        store.append(&linked, Some(&cp)).await.expect("appended");
        linked
    }
}

const PATIENT: &str = "06139993:1234:5678:01";
const OTHER: &str = "06139993:1234:9999:02";

/// Searches disclosing `disclosed`, in order.
fn search(tag: &str, i: u64, disclosed: &[&str]) -> AccessRecord {
    AccessRecord {
        method: "SearchPatients".into(),
        items: "candidates".into(),
        patient_key: None,
        decision: Decision::Allowed,
        disclosed_patients: disclosed.iter().map(|k| (*k).to_string()).collect(),
        clinical: None,
        site: Default::default(),
        ..record(tag, i)
    }
}

async fn audit_disclosures(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    let mut lookup = record("d", 0);
    lookup.patient_key = Some(PATIENT.into());
    let batch = vec![
        search("d", 1, &[OTHER, PATIENT]),
        search("d", 2, &[]),
        lookup,
        search("d", 3, &[OTHER]),
        // More patients than one INSERT of disclosures holds, in their order.
        search("d", 4, &(0..1_500).map(|_| OTHER).collect::<Vec<_>>()),
    ];
    let linked = w.append(store.as_ref(), batch).await;

    // The lists come back whole and in order, by chain and by query.
    let stored = store
        .chain_records(w.chain(), 0, 100)
        .await
        .expect("records");
    assert_eq!(stored, linked);
    let page = store.chain_records(w.chain(), 1, 2).await.expect("a page");
    assert_eq!(
        page,
        linked[1..3].to_vec(),
        "the limit counts records, not patients"
    );
    let mut all = store
        .query(&AccessQuery::default(), 100)
        .await
        .expect("query");
    all.sort_by_key(|s| s.seq);
    assert_eq!(all, linked);

    // A patient's records: named by the call or disclosed by it.
    let ids = |rows: Vec<StoredRecord>| rows.into_iter().map(|s| s.record.id).collect::<Vec<_>>();
    let of = |key: &str| AccessQuery {
        patient_key: Some(key.into()),
        ..AccessQuery::default()
    };
    let patient = store.query(&of(PATIENT), 100).await.expect("query");
    assert_eq!(ids(patient), vec!["d-1", "d-0"]);
    let other = store.query(&of(OTHER), 100).await.expect("query");
    assert_eq!(ids(other), vec!["d-1", "d-3", "d-4"]);
    let limited = store.query(&of(OTHER), 2).await.expect("query");
    assert_eq!(ids(limited), vec!["d-1", "d-3"]);

    // Pruning takes a record's disclosures with it.
    let pruned = store.prune(w.chain(), 5).await.expect("pruned");
    assert_eq!(pruned, 5);
    let rest = store.query(&of(OTHER), 100).await.expect("query");
    assert!(rest.is_empty(), "{rest:?}");
}

/// An allowed search's record opens it in the search ledger, in the record's own
/// transaction; a refused or failed search, and a later call naming the search, open
/// nothing; a batch that is not stored opens nothing either.
async fn audit_opens_searches(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    let named = |i: u64, decision: Decision| AccessRecord {
        search_id: Some(format!("search-{i}")),
        decision,
        ..search("s", i, &[OTHER, PATIENT])
    };
    let mut follow_up = record("s", 10);
    follow_up.search_id = Some("search-0".into());
    follow_up.decision = Decision::Allowed;
    let batch = vec![
        named(0, Decision::Allowed),
        named(1, Decision::Denied),
        named(2, Decision::Failed),
        follow_up,
    ];
    w.append(store.as_ref(), batch.clone()).await;

    let opened = store.find_search("search-0").await.expect("looked up");
    assert_eq!(
        opened,
        Some(SearchRecord {
            search_id: "search-0".into(),
            facility: batch[0].facility.clone().expect("a facility"),
            at: batch[0].at,
            candidate_hashes: vec![candidate_hash(OTHER), candidate_hash(PATIENT)],
        })
    );
    for refused in ["search-1", "search-2"] {
        assert_eq!(store.find_search(refused).await.expect("looked up"), None);
    }

    // A batch that loses its last position to a rival stores none of its searches.
    let head = head_of(&all_records(store.as_ref(), w.chain()).await[3]);
    let mut again = Linker::resume(w.chain(), Some(&head))
        .expect("resume")
        .link(vec![named(5, Decision::Allowed), record("s", 11)]);
    if let Some(last) = again.last_mut() {
        last.seq = head.seq;
    }
    conflict(store.append(&again, None).await);
    assert_eq!(
        store.find_search("search-5").await.expect("looked up"),
        None
    );
}

/// A full batch (256 records, one a search disclosing 16,000 patients: more values
/// than one multi-row INSERT may bind) is stored whole, or not at all.
async fn audit_large_batch(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    let many: Vec<String> = (0..16_000)
        .map(|i| format!("06139993:1234:{i}:01"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut batch = records("big", 0..255);
    batch.insert(100, search("big", 1_000, &many));
    let linked = w.append(store.as_ref(), batch.clone()).await;
    let stored = all_records(store.as_ref(), w.chain()).await;
    assert_eq!(stored.len(), 256);
    assert_eq!(stored, linked);

    // The same batch again, its last position taken by a rival: nothing of it stays.
    let head = head_of(linked.last().expect("some"));
    let mut again = Linker::resume(w.chain(), Some(&head))
        .expect("resume")
        .link(batch);
    let taken = linked.last().expect("some").seq;
    if let Some(last) = again.last_mut() {
        last.seq = taken;
    }
    conflict(store.append(&again, None).await);
    let after = all_records(store.as_ref(), w.chain()).await;
    assert_eq!(after, linked);
    let of = AccessQuery {
        patient_key: Some(many[15_999].into()),
        ..AccessQuery::default()
    };
    assert_eq!(store.query(&of, 10).await.expect("query").len(), 1);
}

/// Every record of a chain (at most 1,000).
async fn all_records(store: &dyn Store, chain: &str) -> Vec<StoredRecord> {
    store.chain_records(chain, 0, 1_000).await.expect("records")
}

fn head_of(r: &StoredRecord) -> ChainHead {
    ChainHead {
        seq: r.seq,
        hash: r.hash.clone(),
    }
}

async fn audit_register_chain(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let signer = ChainSigner::generate();
    let info = signer.chain_info(at(5));
    store.register_chain(&info).await.expect("registered");
    store
        .register_chain(&info)
        .await
        .expect("registering again is a no-op");
    // A later start of the same writer: the first registration stands.
    store
        .register_chain(&signer.chain_info(at(99)))
        .await
        .expect("same key, later start");
    assert_eq!(store.chains().await.expect("chains"), vec![info.clone()]);

    let mut impostor = ChainSigner::generate().chain_info(at(6));
    impostor.chain_id = info.chain_id.clone();
    conflict(store.register_chain(&impostor).await);
    assert_eq!(store.chains().await.expect("chains"), vec![info]);
}

async fn audit_append_and_head(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    assert_eq!(store.chain_head(w.chain()).await.expect("head"), None);

    let first = w.append(store.as_ref(), records("a", 0..3)).await;
    assert_eq!(
        store.chain_head(w.chain()).await.expect("head"),
        Some(head_of(&first[2]))
    );
    let mut second = w.append(store.as_ref(), records("a", 3..5)).await;
    assert_eq!(
        store.chain_head(w.chain()).await.expect("head"),
        Some(head_of(&second[1]))
    );
    let mut all = first.clone();
    all.append(&mut second);

    // Every field, `at` to the nanosecond, comes back as appended.
    let stored = store
        .chain_records(w.chain(), 0, 100)
        .await
        .expect("records");
    assert_eq!(stored, all);
    assert_eq!(
        stored[2].record.at.timestamp_nanos_opt(),
        Some(BASE_NANOS + 1)
    );

    // Checkpoints were stored with their batches, identical.
    let cps = store.checkpoints(w.chain()).await.expect("checkpoints");
    let cp3 = w.signer.checkpoint(3, &parse(&first[2].hash), at(1_000));
    let cp5 = w.signer.checkpoint(5, &parse(&all[4].hash), at(1_000));
    assert_eq!(cps, vec![cp3, cp5]);

    // Paging by sequence number.
    let page = |after, limit| {
        let store = Arc::clone(&store);
        let chain = w.chain().to_string();
        async move {
            store
                .chain_records(&chain, after, limit)
                .await
                .expect("page")
                .into_iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 2).await, vec![1, 2]);
    assert_eq!(page(2, 2).await, vec![3, 4]);
    assert_eq!(page(4, 2).await, vec![5]);
    assert_eq!(page(5, 2).await, Vec::<u64>::new());
    assert_eq!(page(1, 0).await, Vec::<u64>::new());

    // Another chain is separate.
    assert_eq!(
        store.chain_head("0000000000000000").await.expect("head"),
        None
    );
    assert!(
        store
            .chain_records("0000000000000000", 0, 10)
            .await
            .expect("records")
            .is_empty()
    );
}

fn parse(hash: &str) -> [u8; 32] {
    onshi_gateway::audit::chain::parse_hash(hash).expect("hex hash")
}

async fn audit_append_is_atomic(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    let mine = w.append(store.as_ref(), records("mine", 0..3)).await;
    let checkpoints = store.checkpoints(w.chain()).await.expect("checkpoints");

    // A rival writer on the same chain, behind by one: its batch starts with more
    // than one INSERT's worth of free positions and ends on a taken one.
    let mut ahead = Linker::resume(w.chain(), Some(&head_of(&mine[2]))).expect("resume");
    let mut behind = Linker::resume(w.chain(), Some(&head_of(&mine[1]))).expect("resume");
    let mut batch = ahead.link(records("rival", 0..45));
    batch.extend(behind.link(vec![record("rival", 99)]));
    assert_eq!(batch.last().map(|r| r.seq), Some(3));
    let cp = w
        .signer
        .checkpoint(ahead.seq(), &ahead.head_hash(), at(2_000));
    conflict(store.append(&batch, Some(&cp)).await);

    assert_eq!(all_records(store.as_ref(), w.chain()).await, mine);
    assert_eq!(
        store.chain_head(w.chain()).await.expect("head"),
        Some(head_of(&mine[2]))
    );
    assert_eq!(
        store.checkpoints(w.chain()).await.expect("checkpoints"),
        checkpoints
    );

    // A small batch, within one INSERT, with a disclosure and its last position
    // taken: nothing of it stays either.
    let mut ahead = Linker::resume(w.chain(), Some(&head_of(&mine[2]))).expect("resume");
    let mut small = ahead.link(vec![search("small", 0, &[PATIENT]), record("small", 1)]);
    let mut behind = Linker::resume(w.chain(), Some(&head_of(&mine[1]))).expect("resume");
    small.extend(behind.link(vec![record("small", 2)]));
    conflict(store.append(&small, None).await);
    assert_eq!(all_records(store.as_ref(), w.chain()).await, mine);
    let of_patient = AccessQuery {
        patient_key: Some(PATIENT.into()),
        ..AccessQuery::default()
    };
    assert!(
        store
            .query(&of_patient, 10)
            .await
            .expect("query")
            .iter()
            .all(|s| !s.record.id.starts_with("small")),
        "a disclosure of the refused batch was kept"
    );

    // The same records, reusing no position, go in: none of them was kept.
    let retry = Linker::resume(w.chain(), Some(&head_of(&mine[2])))
        .expect("resume")
        .link(records("rival", 0..45));
    store.append(&retry, None).await.expect("appended");
    assert_eq!(
        store.chain_head(w.chain()).await.expect("head"),
        Some(head_of(retry.last().expect("some")))
    );
}

/// Two writers with records at the same instants, and all of them in query order.
async fn two_chains(store: &dyn Store) -> Vec<StoredRecord> {
    let mut a = Writer::new(store).await;
    let mut b = Writer::new(store).await;
    let mut all = Vec::new();
    all.extend(a.append(store, records("a", 0..7)).await);
    all.extend(b.append(store, records("b", 0..6)).await);
    all.extend(a.append(store, records("a", 7..12)).await);
    all.extend(b.append(store, records("b", 6..12)).await);
    all.sort_by(|x, y| (x.record.at, &x.chain_id, x.seq).cmp(&(y.record.at, &y.chain_id, y.seq)));
    all
}

async fn audit_query_filters(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let all = two_chains(store.as_ref()).await;
    assert_eq!(
        store
            .query(&AccessQuery::default(), 1000)
            .await
            .expect("query"),
        all
    );

    type Pred = Box<dyn Fn(&AccessRecord) -> bool>;
    let cases: Vec<(&str, AccessQuery, Pred)> = vec![
        (
            "time range",
            AccessQuery {
                from: Some(at(1)),
                until: Some(at(4)),
                ..Default::default()
            },
            Box::new(|r| r.at >= at(1) && r.at < at(4)),
        ),
        (
            "from only",
            AccessQuery {
                from: Some(at(5)),
                ..Default::default()
            },
            Box::new(|r| r.at >= at(5)),
        ),
        (
            "until only",
            AccessQuery {
                until: Some(at(1)),
                ..Default::default()
            },
            Box::new(|r| r.at < at(1)),
        ),
        (
            "facility",
            AccessQuery {
                facility: Some("0741234561".into()),
                ..Default::default()
            },
            Box::new(|r| r.facility.as_deref() == Some("0741234561")),
        ),
        (
            "staff",
            AccessQuery {
                staff_id: Some("D-2".into()),
                ..Default::default()
            },
            Box::new(|r| r.staff_id.as_deref() == Some("D-2")),
        ),
        (
            "patient",
            AccessQuery {
                patient_key: Some("06139993:1234:5678:01".into()),
                ..Default::default()
            },
            Box::new(|r| r.patient_key.is_some()),
        ),
        (
            "activation",
            AccessQuery {
                activation_id: Some("act-1".into()),
                ..Default::default()
            },
            Box::new(|r| r.activation_id.is_some()),
        ),
        (
            "decision",
            AccessQuery {
                decision: Some(Decision::Failed),
                ..Default::default()
            },
            Box::new(|r| r.decision == Decision::Failed),
        ),
        (
            "reason",
            AccessQuery {
                reason: Some("not_activated".into()),
                ..Default::default()
            },
            Box::new(|r| r.reason.as_deref() == Some("not_activated")),
        ),
        (
            "consent basis",
            AccessQuery {
                consent_basis: Some("life_or_body".into()),
                ..Default::default()
            },
            Box::new(|r| r.consent_basis.as_deref() == Some("life_or_body")),
        ),
        (
            "needs review",
            AccessQuery {
                needs_review: Some(true),
                ..Default::default()
            },
            Box::new(|r| r.needs_review),
        ),
        (
            "no review needed",
            AccessQuery {
                needs_review: Some(false),
                ..Default::default()
            },
            Box::new(|r| !r.needs_review),
        ),
        (
            "facility and decision",
            AccessQuery {
                facility: Some("0411234567".into()),
                decision: Some(Decision::Allowed),
                ..Default::default()
            },
            Box::new(|r| {
                r.facility.as_deref() == Some("0411234567") && r.decision == Decision::Allowed
            }),
        ),
    ];
    for (name, query, pred) in cases {
        let expected: Vec<StoredRecord> = all.iter().filter(|s| pred(&s.record)).cloned().collect();
        assert!(
            !expected.is_empty() && expected.len() < all.len(),
            "{name}: the filter must discriminate"
        );
        let got = store.query(&query, 1000).await.expect("query");
        assert_eq!(ids(&got), ids(&expected), "{name}");
        assert_eq!(got, expected, "{name}");
        let limited = store.query(&query, 2).await.expect("query");
        assert_eq!(limited, expected[..2], "{name}, limited");
    }

    // Half-open to the nanosecond: `from` included, `until` excluded.
    let range = store
        .query(
            &AccessQuery {
                from: Some(at(1)),
                until: Some(at(2)),
                ..Default::default()
            },
            1000,
        )
        .await
        .expect("query");
    assert_eq!(range.len(), 4, "two records per chain at exactly `from`");
    assert!(range.iter().all(|r| r.record.at == at(1)));
    let empty = AccessQuery {
        from: Some(at(1)),
        until: Some(at(1)),
        ..Default::default()
    };
    assert!(store.query(&empty, 1000).await.expect("query").is_empty());
}

fn ids(records: &[StoredRecord]) -> Vec<&str> {
    records.iter().map(|r| r.record.id.as_str()).collect()
}

async fn audit_query_paging(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let all = two_chains(store.as_ref()).await;
    // The two chains interleave at equal instants: the order is (at, chain, seq).
    assert!(
        all.windows(2)
            .any(|w| w[0].record.at == w[1].record.at && w[0].chain_id != w[1].chain_id)
    );

    for (filter, page_size) in [
        (AccessQuery::default(), 1),
        (AccessQuery::default(), 3),
        (AccessQuery::default(), 5),
        (
            AccessQuery {
                facility: Some("0411234567".into()),
                ..Default::default()
            },
            2,
        ),
    ] {
        let expected: Vec<StoredRecord> = all
            .iter()
            .filter(|s| filter.facility.is_none() || s.record.facility == filter.facility)
            .cloned()
            .collect();
        let mut seen = Vec::new();
        let mut query = filter.clone();
        loop {
            let page = store.query(&query, page_size).await.expect("page");
            assert!(page.len() <= page_size as usize);
            let Some(last) = page.last() else { break };
            // Through the opaque token, as a client would resume.
            let cursor = Cursor {
                at: last.record.at,
                chain_id: last.chain_id.clone(),
                seq: last.seq,
            };
            query.after = Some(Cursor::from_token(&cursor.to_token()).expect("token"));
            seen.extend(page);
            assert!(seen.len() <= expected.len(), "a record came back twice");
        }
        assert_eq!(ids(&seen), ids(&expected), "page size {page_size}");
        assert_eq!(seen, expected);
    }
}

async fn audit_prune(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    let mut other = Writer::new(store.as_ref()).await;
    let mut all = Vec::new();
    all.extend(w.append(store.as_ref(), records("a", 0..4)).await);
    all.extend(w.append(store.as_ref(), records("a", 4..7)).await);
    all.extend(w.append(store.as_ref(), records("a", 7..10)).await);
    let others = other.append(store.as_ref(), records("b", 0..4)).await;
    let cps = store.checkpoints(w.chain()).await.expect("checkpoints");
    assert_eq!(
        cps.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![4, 7, 10]
    );
    let head = store.chain_head(w.chain()).await.expect("head");

    // Not at a checkpoint: nothing would anchor what remains.
    conflict(store.prune(w.chain(), 5).await);
    conflict(store.prune("0000000000000000", 4).await);
    assert_eq!(
        store
            .chain_records(w.chain(), 0, 100)
            .await
            .expect("records"),
        all
    );
    assert_eq!(
        store.checkpoints(w.chain()).await.expect("checkpoints"),
        cps
    );

    assert_eq!(store.prune(w.chain(), 7).await.expect("pruned"), 7);
    assert_eq!(
        store
            .chain_records(w.chain(), 0, 100)
            .await
            .expect("records"),
        all[7..]
    );
    assert_eq!(
        store.checkpoints(w.chain()).await.expect("checkpoints"),
        cps[1..],
        "the anchoring checkpoint stays, earlier ones go"
    );
    assert_eq!(store.chain_head(w.chain()).await.expect("head"), head);
    // Another chain is untouched.
    assert_eq!(
        store
            .chain_records(other.chain(), 0, 100)
            .await
            .expect("records"),
        others
    );
    assert_eq!(
        store
            .checkpoints(other.chain())
            .await
            .expect("checkpoints")
            .len(),
        1
    );

    // Pruning again at the same checkpoint deletes nothing more.
    assert_eq!(store.prune(w.chain(), 7).await.expect("pruned"), 0);
    // The chain goes on after its head.
    let more = w.append(store.as_ref(), records("a", 10..12)).await;
    assert_eq!(
        store.chain_head(w.chain()).await.expect("head"),
        Some(head_of(&more[1]))
    );
    // Pruned through its head, the chain keeps its head in the anchoring checkpoint,
    // so its writer resumes after it instead of starting over at 1.
    assert_eq!(store.prune(w.chain(), 12).await.expect("pruned"), 5);
    assert!(
        store
            .chain_records(w.chain(), 0, 100)
            .await
            .expect("records")
            .is_empty()
    );
    assert_eq!(
        store.chain_head(w.chain()).await.expect("head"),
        Some(head_of(&more[1]))
    );
    // And a chain pruned that far still verifies.
    let reports = onshi_gateway::audit::verify::verify_store(store.as_ref(), &[])
        .await
        .expect("verify runs");
    let report = reports
        .iter()
        .find(|r| r.chain_id == w.chain())
        .expect("the chain is reported");
    assert!(report.is_intact(), "{report:?}");
}

async fn audit_survives_reopening(backend: Backend) {
    let (store, keep) = open_fresh(backend).await;
    assert_eq!(store.backend(), backend_name(backend));
    let mut w = Writer::new(store.as_ref()).await;
    let written = w.append(store.as_ref(), records("a", 0..5)).await;
    let chains = store.chains().await.expect("chains");
    let cps = store.checkpoints(w.chain()).await.expect("checkpoints");
    store.close().await;
    assert!(store.chain_head(w.chain()).await.is_err(), "closed");
    drop(store);

    let reopened = store::open(&keep.location).await.expect("reopened");
    assert_eq!(reopened.chains().await.expect("chains"), chains);
    assert_eq!(
        reopened
            .chain_records(w.chain(), 0, 100)
            .await
            .expect("records"),
        written
    );
    assert_eq!(
        reopened.checkpoints(w.chain()).await.expect("checkpoints"),
        cps
    );
    assert_eq!(
        reopened.chain_head(w.chain()).await.expect("head"),
        Some(head_of(&written[4]))
    );
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

// ---- temporary sites ----

fn site_revision(
    number: u32,
    kind: onshi_gateway::domain::site::SiteChangeKind,
    end: i64,
) -> onshi_gateway::domain::site::SiteRevision {
    onshi_gateway::domain::site::SiteRevision {
        number,
        recorded_at: at(i64::from(number)),
        author: format!("op-{number}"),
        kind,
        window: Window::new(at(0), at(end)).expect("window"),
        detail: format!("detail {number}"),
    }
}

async fn sites(backend: Backend) {
    use onshi_gateway::domain::municipality::parse_municipality_code;
    use onshi_gateway::domain::site::{Site, SiteChangeKind, SiteKind};
    let (store, _keep) = open_fresh(backend).await;
    let activation = store
        .add_activation(&NewActivation {
            event: "令和6年能登半島地震".into(),
            notice: "n".into(),
            areas: vec![AreaKey::Municipality("17204".into())],
            window: Window::new(at(0), at(1_000_000)).expect("window"),
            created_by: "op".into(),
            at: at(0),
        })
        .await
        .expect("activation");
    let mut site = Site {
        id: "0194-site-a".into(),
        activation_id: activation.id.clone(),
        kind: SiteKind::MobilePharmacy,
        name: "モバイルファーマシー 1号".into(),
        municipality: parse_municipality_code("m", "17204").expect("code"),
        coordinates: Some("37.39,136.899".into()),
        sponsor: "1740110014".into(),
        contact: "090".into(),
        requires_licence: true,
        revisions: vec![site_revision(1, SiteChangeKind::Register, 1_000)],
    };
    store.add_site(&site).await.expect("added");
    conflict(store.add_site(&site).await);
    let close = site_revision(2, SiteChangeKind::Close, 500);
    store
        .add_site_revision(&site, &close)
        .await
        .expect("closed");
    conflict(store.add_site_revision(&site, &close).await);
    site.revisions.push(close);

    // Read back whole, to the nanosecond, by id and in the list.
    assert_eq!(
        store.site(&site.id).await.expect("read"),
        Some(site.clone())
    );
    assert_eq!(store.site("nope").await.expect("read"), None);
    let mut other = site.clone();
    other.id = "0194-site-b".into();
    other.coordinates = None;
    other.requires_licence = false;
    other.kind = SiteKind::ReliefTeam;
    other.revisions.truncate(1);
    store.add_site(&other).await.expect("added");
    assert_eq!(store.list_sites().await.expect("list"), vec![site, other]);
}

async fn audit_site_stamps(backend: Backend) {
    use onshi_gateway::store::SiteStamp;
    let (store, _keep) = open_fresh(backend).await;
    let mut w = Writer::new(store.as_ref()).await;
    let mut from_site = record("s", 0);
    from_site.site = SiteStamp {
        site_id: Some("0194-site-a".into()),
        site_kind: Some("first-aid-post".into()),
        site_name: Some("輪島中学校 救護所".into()),
        site_sponsor: Some("1740110014".into()),
        licence_number: Some("123456".into()),
    };
    let mut licence_only = record("s", 1);
    licence_only.site.licence_number = Some("7".into());
    let linked = w
        .append(
            store.as_ref(),
            vec![from_site, licence_only, record("s", 2)],
        )
        .await;
    let stored = store
        .chain_records(w.chain(), 0, 100)
        .await
        .expect("records");
    assert_eq!(stored, linked, "the site section comes back as written");
    // The hashes stored are the hashes of what comes back: the chain verifies.
    let mut prev = onshi_gateway::audit::chain::GENESIS;
    for s in &stored {
        let hash = onshi_gateway::audit::chain::record_hash(&prev, w.chain(), s.seq, &s.record);
        assert_eq!(hex::encode(hash), s.hash);
        prev = hash;
    }
    // A record without a site hashes as it did before the section existed.
    let plain = &stored[2].record;
    let mut stamped = plain.clone();
    stamped.site.site_id = Some("x".into());
    assert_ne!(
        onshi_gateway::audit::chain::record_hash(&prev, "c", 1, plain),
        onshi_gateway::audit::chain::record_hash(&prev, "c", 1, &stamped)
    );
}

//! Notices to patients are delivered at least once, and only for recorded accesses:
//! the gateway is SIGKILLed after committing accesses whose notices the receiver
//! has refused so far; restarted, it delivers exactly those accesses' notices (a
//! test webhook receiver counts them), any duplicate carrying the same idempotency
//! key. And on each store, a notice leased to one dispatcher is not claimed by
//! another until the lease runs out (a crashed replica), after which it is.

mod common;
#[path = "common/databases.rs"]
mod databases;
#[path = "common/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{as_facility, lookup, miyagi_clinic};
use databases::{Backend, open_fresh};
use onshi_gateway::audit::chain::Linker;
use onshi_gateway::audit::notices::IDEMPOTENCY_HEADER;
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::{Consent, ConsentBasis, ExemptionCategory, ExemptionIdentification};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::{self, Accountability, StoreLocation};
use process::{Serving, bin};
use tonic::transport::Channel;

/// What the receiver was sent: (idempotency key header, `notice_id` of the body).
#[derive(Clone, Default)]
struct Receiver {
    accept: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<(String, String)>>>,
    accepted: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let id = json["notice_id"].as_str().unwrap_or_default().to_string();
    r.attempts
        .lock()
        .expect("lock")
        .push((key.clone(), id.clone()));
    if r.accept.load(Ordering::SeqCst) {
        r.accepted.lock().expect("lock").push((key, id));
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn serve_receiver() -> (Receiver, SocketAddr) {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/notices", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, addr)
}

fn serve(dir: &std::path::Path, webhook: SocketAddr, log: &str) -> Serving {
    Serving::serve(
        bin()
            .args([
                "serve",
                "--dev-identity-from-metadata",
                "--population",
                "2000",
            ])
            .arg(format!("--notice-webhook-url=http://{webhook}/notices"))
            .args(["--notice-lease-secs", "2", "--notice-retry-max-secs", "1"])
            .arg("--data-dir")
            .arg(dir),
        &dir.join(log),
    )
}

fn consent(basis: ConsentBasis, category: ExemptionCategory) -> Consent {
    Consent {
        basis: basis as i32,
        exemption_reason: String::new(),
        exemption_identification: ExemptionIdentification::FamilyInformation as i32,
        exemption_category: category as i32,
        ..Consent::default()
    }
}

/// A lookup of the demo patient from a Miyagi clinic on `consent`; its record id
/// when it was allowed.
async fn look_up(
    client: &mut QualificationServiceClient<Channel>,
    consent: Consent,
) -> Option<String> {
    let mut request = lookup(DEMO_PATIENT.insured());
    if let Some(access) = request.access.as_mut() {
        access.consent = Some(consent);
    }
    let reply = client
        .lookup_qualification(as_facility(&miyagi_clinic(), request))
        .await
        .ok()?;
    let id = reply.metadata().get(ACCESS_RECORD_HEADER)?;
    Some(id.to_str().ok()?.to_string())
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool, log: impl Fn() -> String) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}\n{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_commit_and_delivery_loses_and_invents_no_notice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (receiver, webhook) = serve_receiver().await;
    let mut gateway = serve(dir.path(), webhook, "first.log");
    gateway.activate_around_now("04", "notice test");
    let channel = Channel::from_shared(format!("http://{}", gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = QualificationServiceClient::new(channel);

    let mut noticed = BTreeSet::new();
    for i in 0..8 {
        let exempt = consent(
            ConsentBasis::LifeOrBodyExemption,
            ExemptionCategory::ImpairedConsciousness,
        );
        noticed.insert(look_up(&mut client, exempt).await.expect("allowed"));
        // Consented and refused accesses queue no notice.
        let consented = consent(ConsentBasis::PatientConsent, ExemptionCategory::Unspecified);
        assert!(look_up(&mut client, consented).await.is_some());
        if i % 4 == 0 {
            let refused = consent(ConsentBasis::LifeOrBodyExemption, ExemptionCategory::Other);
            assert!(look_up(&mut client, refused).await.is_none());
        }
    }
    // The dispatcher has tried (and been refused): the notices are committed and
    // undelivered when the process dies.
    let attempts = receiver.attempts.clone();
    wait_for(
        "a first delivery attempt",
        || !attempts.lock().expect("lock").is_empty(),
        || gateway.process.log(),
    )
    .await;
    gateway.process.child.kill().expect("SIGKILL sent");
    gateway.process.child.wait().expect("reaped");
    drop(gateway);

    let location = StoreLocation::Sqlite(dir.path().join("onshi.db"));
    let store = store::open(&location).await.expect("store opens");
    assert_eq!(
        store.pending_notices().await.expect("counted"),
        noticed.len() as u64
    );
    store.close().await;

    receiver.accept.store(true, Ordering::SeqCst);
    let gateway = serve(dir.path(), webhook, "second.log");
    let accepted = receiver.accepted.clone();
    let expected = noticed.len();
    wait_for(
        "every notice delivered after the restart",
        || {
            let keys: BTreeSet<String> = accepted
                .lock()
                .expect("lock")
                .iter()
                .map(|(k, _)| k.clone())
                .collect();
            keys.len() >= expected
        },
        || gateway.process.log(),
    )
    .await;
    // Give a wrongly repeated delivery the time to show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivered = receiver.accepted.lock().expect("lock").clone();
    let keys: BTreeSet<String> = delivered.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, noticed, "exactly the recorded exemption accesses");
    for (key, id) in &delivered {
        assert_eq!(key, id, "the header's key is the body's notice_id");
    }
    for (key, id) in receiver.attempts.lock().expect("lock").iter() {
        assert!(
            noticed.contains(key) && key == id,
            "an attempt for {key} / {id}"
        );
    }

    // The same accesses wait in the review queue; an outcome recorded with the CLI
    // takes one out, and the log, outcome included, verifies.
    let queue = review(&gateway, &["list"]);
    let queued: BTreeSet<String> = queue
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect();
    assert_eq!(queued, noticed, "{queue}");
    let first = noticed.iter().next().expect("one").clone();
    let recorded = review(
        &gateway,
        &["record", "--record", &first, "--outcome", "justified"],
    );
    assert!(recorded.starts_with("recorded "), "{recorded}");
    let queue = review(&gateway, &["list"]);
    assert!(!queue.contains(&first), "{queue}");
    assert_eq!(queue.lines().count(), noticed.len(), "{queue}");
    let refused = bin()
        .args([
            "audit",
            "review",
            "record",
            "--record",
            &first,
            "--outcome",
            "not-justified",
        ])
        .args(["--admin", &gateway.admin_url()])
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("needs a note"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    gateway.process.terminate();
    drop(gateway);
    let verified = bin()
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let store = store::open(&location).await.expect("store opens");
    assert_eq!(store.pending_notices().await.expect("counted"), 0);
}

/// `audit review ARGS` at the gateway's operators' listener; its standard output.
fn review(gateway: &Serving, args: &[&str]) -> String {
    let out = bin()
        .args(["audit", "review"])
        .args(args)
        .args(["--admin", &gateway.admin_url()])
        .output()
        .expect("audit review runs");
    assert!(
        out.status.success(),
        "audit review {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn sqlite_a_lease_keeps_a_notice_to_one_dispatcher_until_it_runs_out() {
    leases(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_lease_keeps_a_notice_to_one_dispatcher_until_it_runs_out() {
    leases(Backend::Postgres).await;
}

async fn leases(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let chain = "aaaabbbbccccdddd";
    let mut linker = Linker::resume(chain, None).expect("fresh chain");
    let at = chrono::DateTime::from_timestamp_nanos(1_647_738_000_000_000_000);
    let records: Vec<_> = (0..3)
        .map(|i| {
            let mut r = access_record(&format!("r{i}"), at + chrono::Duration::seconds(i));
            // The second is not noticed.
            r.accountability = Some(Accountability {
                exemption_category: Some("impaired_consciousness".into()),
                patient_notice: i != 1,
                ..Accountability::default()
            });
            r
        })
        .collect();
    store
        .append(&linker.link(records), None)
        .await
        .expect("appended");
    assert_eq!(store.pending_notices().await.expect("count"), 2);

    let now = at + chrono::Duration::minutes(1);
    let lease = now + chrono::Duration::seconds(30);
    let a = store
        .claim_notices("replica-a", now, lease, 10)
        .await
        .expect("claim");
    let ids: Vec<&str> = a.iter().map(|n| n.record_id.as_str()).collect();
    assert_eq!(ids, ["r0", "r2"], "oldest first, only the noticed");
    assert_eq!(
        a[0].exemption_category.as_deref(),
        Some("impaired_consciousness")
    );
    // While A holds them, B gets nothing.
    let b = store
        .claim_notices("replica-b", now, lease, 10)
        .await
        .expect("claim");
    assert!(b.is_empty(), "{b:?}");
    // A delivers r0; A dies holding r2. Once the lease runs out, B takes r2.
    assert!(
        store
            .notice_delivered("r0", "replica-a", now)
            .await
            .expect("acked")
    );
    let later = lease + chrono::Duration::seconds(1);
    let b = store
        .claim_notices(
            "replica-b",
            later,
            later + chrono::Duration::seconds(30),
            10,
        )
        .await
        .expect("claim");
    let ids: Vec<&str> = b.iter().map(|n| n.record_id.as_str()).collect();
    assert_eq!(ids, ["r2"]);
    // A, back, can no longer acknowledge what B holds.
    assert!(
        !store
            .notice_delivered("r2", "replica-a", later)
            .await
            .expect("no-op")
    );
    // B fails once: due again only after its back-off.
    store
        .notice_failed(
            "r2",
            "replica-b",
            later + chrono::Duration::seconds(5),
            "503",
        )
        .await
        .expect("given back");
    let soon = store
        .claim_notices("replica-b", later, later, 10)
        .await
        .expect("claim");
    assert!(soon.is_empty());
    let due = later + chrono::Duration::seconds(5);
    let again = store
        .claim_notices("replica-b", due, due + chrono::Duration::seconds(30), 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert!(
        store
            .notice_delivered("r2", "replica-b", due)
            .await
            .expect("acked")
    );
    assert_eq!(store.pending_notices().await.expect("count"), 0);
    // The records read back hash as they were linked, their section included.
    for s in store.chain_records(chain, 0, 10).await.expect("read") {
        let prev = onshi_gateway::audit::chain::parse_hash(&s.prev_hash).expect("hash");
        let hash = onshi_gateway::audit::chain::record_hash(&prev, chain, s.seq, &s.record);
        assert_eq!(hex::encode(hash), s.hash);
    }
}

fn access_record(id: &str, at: chrono::DateTime<chrono::Utc>) -> store::AccessRecord {
    store::AccessRecord {
        id: id.into(),
        at,
        method: "LookupQualification".into(),
        items: "qualification".into(),
        facility: Some(miyagi_clinic().to_string()),
        staff_id: Some("dr-1".into()),
        staff_role: Some("doctor".into()),
        patient_key: Some("01040013|40250311|152|00".into()),
        identification: Some("insured_number_known".into()),
        search_id: None,
        consent_basis: Some("life_or_body_exemption".into()),
        exemption_reason: None,
        exemption_identification: Some("id_document".into()),
        purpose: Some("medical_care".into()),
        activation_id: None,
        decision: store::Decision::Allowed,
        reason: None,
        grpc_code: 0,
        upstream_result: Some("OK status=1".into()),
        needs_review: true,
        disclosed_patients: Vec::new(),
        clinical: None,
        site: Default::default(),
        accountability: None,
    }
}

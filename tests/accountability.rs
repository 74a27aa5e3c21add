//! Accountability at and after the time of access, end to end over real sockets:
//! the exemption's reason category judged and recorded; the patient told through
//! the outbox (a spool sink here); review outcomes appended to the chain, the queue
//! shrinking as they are recorded, the chain still verifying; and every read of the
//! log by an operator logged, listed for auditors and shown in the patient's history.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::audit::notices::{NOTICE_SCHEMA, NoticeSink, NoticesConfig};
use onshi_gateway::audit::verify::verify_store;
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::audit_service_client::AuditServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::store::KIND_REVIEW_OUTCOME;
use onshi_gateway::tls::identity::IdentitySource;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

struct Gateway {
    gateway: RunningGateway,
    clock: Arc<ManualClock>,
    terminals: QualificationServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
    spool: PathBuf,
    _dir: tempfile::TempDir,
}

/// A gateway inside the 2022 Fukushima-oki activation, its notices spooled.
async fn start() -> Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("notices");
    let clock = ManualClock::new(jst_at(2022, 3, 20, 10, 0));
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        upstream: UpstreamTarget::Builtin {
            seed: 7,
            population: POPULATION,
        },
        identity: IdentitySource::DevelopmentMetadata,
        notices: NoticesConfig {
            sink: NoticeSink::Spool(spool.clone()),
            poll: Duration::from_millis(20),
            ..NoticesConfig::default()
        },
        audit: common::test_audit_batch(),
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
    let connect = |addr: std::net::SocketAddr| async move {
        Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    };
    let terminals = QualificationServiceClient::new(connect(gateway.addr).await);
    let audit = AuditServiceClient::new(connect(gateway.admin_addr.expect("admin")).await);
    Gateway {
        gateway,
        clock,
        terminals,
        audit,
        spool,
        _dir: dir,
    }
}

fn exemption(category: ExemptionCategory, reason: &str) -> LookupQualificationRequest {
    let mut request = lookup(DEMO_PATIENT.insured());
    let access = request.access.as_mut().expect("access");
    access.consent = Some(Consent {
        basis: ConsentBasis::LifeOrBodyExemption as i32,
        exemption_reason: reason.into(),
        exemption_identification: ExemptionIdentification::IdDocument as i32,
        exemption_category: category as i32,
        ..Consent::default()
    });
    request
}

impl Gateway {
    /// An exemption lookup from a Miyagi clinic; the id of its access record.
    async fn exempt(
        &mut self,
        request: LookupQualificationRequest,
    ) -> Result<String, tonic::Status> {
        let reply = self
            .terminals
            .lookup_qualification(as_facility(&miyagi_clinic(), request))
            .await?;
        Ok(reply
            .metadata()
            .get(ACCESS_RECORD_HEADER)
            .expect("record id")
            .to_str()
            .expect("ascii")
            .to_string())
    }

    async fn entries<S>(&self, stream: tonic::Response<tonic::Streaming<S>>) -> Vec<S> {
        let mut stream = stream.into_inner();
        let mut out = Vec::new();
        while let Some(page) = stream.next().await {
            out.push(page.expect("page"));
        }
        out
    }

    async fn unreviewed(&mut self) -> Vec<AccessLogEntry> {
        let pages = self
            .audit
            .list_unreviewed(ListUnreviewedRequest::default())
            .await
            .expect("queue");
        let pages = self.entries(pages).await;
        pages.into_iter().flat_map(|p| p.entries).collect()
    }

    async fn audit_reads(&mut self) -> Vec<AccessLogEntry> {
        let pages = self
            .audit
            .list_audit_reads(ListAuditReadsRequest::default())
            .await
            .expect("reads");
        let pages = self.entries(pages).await;
        pages.into_iter().flat_map(|p| p.entries).collect()
    }

    async fn spooled(&self, expected: usize) -> Vec<serde_json::Value> {
        let path = self.spool.join("patient-notices.jsonl");
        for _ in 0..250 {
            let lines = read_lines(&path);
            if lines.len() >= expected {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        read_lines(&path)
    }
}

fn now(clock: &ManualClock) -> chrono::DateTime<chrono::Utc> {
    use onshi_gateway::clock::Clock;
    clock.now()
}

fn advance(clock: &ManualClock, by: chrono::Duration) {
    use onshi_gateway::clock::Clock;
    clock.set(clock.now() + by);
}

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test]
async fn the_reason_category_is_judged_and_recorded() {
    let mut g = start().await;
    // Every category but "other" stands without text.
    let id = g
        .exempt(exemption(ExemptionCategory::ImpairedConsciousness, ""))
        .await
        .expect("a category alone is enough");
    let records = g.gateway.store.record_by_id(&id).await.expect("readable");
    let record = records.expect("recorded").record;
    let a = record.accountability.expect("accountability section");
    assert_eq!(
        a.exemption_category.as_deref(),
        Some("impaired_consciousness")
    );
    assert!(a.patient_notice, "the patient is told");
    assert!(record.needs_review);

    advance(&g.clock, chrono::Duration::minutes(1));
    // "Other" needs text; an unknown number is refused with its own reason.
    let refused = g.exempt(exemption(ExemptionCategory::Other, " ")).await;
    assert_denied(
        refused.map(tonic::Response::new),
        Code::InvalidArgument,
        "EXEMPTION_OTHER_REASON_MISSING",
    );
    let mut unknown = exemption(ExemptionCategory::Other, "text");
    unknown
        .access
        .as_mut()
        .and_then(|a| a.consent.as_mut())
        .expect("consent")
        .exemption_category = 42;
    let status = assert_denied(
        g.exempt(unknown).await.map(tonic::Response::new),
        Code::InvalidArgument,
        "EXEMPTION_CATEGORY_UNKNOWN",
    );
    assert_eq!(bad_field(&status), "access.consent.exemption_category");
    // The refused calls are recorded, and no notice is queued for them.
    let last = g
        .gateway
        .store
        .query(&Default::default(), 1000)
        .await
        .expect("log");
    let denied = last
        .iter()
        .filter(|s| s.record.reason.as_deref() == Some("EXEMPTION_CATEGORY_UNKNOWN"))
        .count();
    assert_eq!(denied, 1);

    // An older client sending only text is still served, recorded as "unstated".
    let old = g
        .exempt(exemption(ExemptionCategory::Unspecified, "意識不明で搬送"))
        .await
        .expect("free text alone, as before");
    let old = g.gateway.store.record_by_id(&old).await.expect("read");
    let a = old
        .expect("recorded")
        .record
        .accountability
        .expect("section");
    assert_eq!(a.exemption_category.as_deref(), Some("unstated"));
    // And without either, refused as before.
    assert_denied(
        g.exempt(exemption(ExemptionCategory::Unspecified, ""))
            .await
            .map(tonic::Response::new),
        Code::InvalidArgument,
        "EXEMPTION_REASON_MISSING",
    );

    // Exactly the two allowed exemption accesses are noticed, with their category.
    let spooled = g.spooled(2).await;
    assert_eq!(spooled.len(), 2, "{spooled:?}");
    assert_eq!(spooled[0]["schema"], NOTICE_SCHEMA);
    assert_eq!(spooled[0]["notice_id"], id);
    assert_eq!(spooled[0]["reason_category"], "impaired_consciousness");
    assert_eq!(spooled[0]["items"], "qualification");
    assert_eq!(spooled[0]["facility_code"], miyagi_clinic().to_string());
    assert_eq!(spooled[1]["reason_category"], "unstated");
    g.gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn review_outcomes_are_chained_and_empty_the_queue() {
    let mut g = start().await;
    let first = g
        .exempt(exemption(ExemptionCategory::LifeThreateningUrgency, ""))
        .await
        .expect("allowed");
    advance(&g.clock, chrono::Duration::hours(1));
    let second = g
        .exempt(exemption(ExemptionCategory::MinorWithoutGuardian, ""))
        .await
        .expect("allowed");
    // A consented access is not in the queue and cannot be reviewed.
    let consented = g
        .terminals
        .lookup_qualification(as_facility(
            &miyagi_clinic(),
            lookup(DEMO_PATIENT.insured()),
        ))
        .await
        .expect("allowed");
    let consented = consented.metadata().get(ACCESS_RECORD_HEADER).expect("id");
    let consented = consented.to_str().expect("ascii").to_string();
    advance(&g.clock, chrono::Duration::days(15));

    let queue = g.unreviewed().await;
    let ids: Vec<&str> = queue.iter().map(|e| e.record_id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    assert_eq!(queue[0].age_seconds, 15 * 86_400 + 3600);
    assert_eq!(queue[1].age_seconds, 15 * 86_400);
    assert_eq!(queue[0].exemption_category, "life_threatening_urgency");
    assert!(queue[0].patient_notified);
    assert_eq!(
        g.gateway
            .store
            .count_overdue_reviews(now(&g.clock) - chrono::Duration::days(14))
            .await
            .expect("counted"),
        2
    );

    // Refusals at the edges.
    let review = |record_id: &str, outcome: ReviewOutcome, note: &str| RecordReviewOutcomeRequest {
        record_id: record_id.into(),
        outcome: outcome as i32,
        note: note.into(),
    };
    assert_denied(
        g.audit
            .record_review_outcome(review(&first, ReviewOutcome::NotJustified, ""))
            .await,
        Code::InvalidArgument,
        "REVIEW_NOTE_INVALID",
    );
    assert_denied(
        g.audit
            .record_review_outcome(review(&first, ReviewOutcome::Unspecified, ""))
            .await,
        Code::InvalidArgument,
        "REVIEW_OUTCOME_INVALID",
    );
    assert_denied(
        g.audit
            .record_review_outcome(review("no-such-record", ReviewOutcome::Justified, ""))
            .await,
        Code::NotFound,
        "REVIEW_SUBJECT_NOT_FOUND",
    );
    assert_denied(
        g.audit
            .record_review_outcome(review(&consented, ReviewOutcome::Justified, ""))
            .await,
        Code::FailedPrecondition,
        "REVIEW_SUBJECT_NOT_FLAGGED",
    );

    let recorded = g
        .audit
        .record_review_outcome(review(&first, ReviewOutcome::Justified, "意識レベルJCS300"))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(
        recorded.reviewer, "unauthenticated",
        "no certificate on a plain listener"
    );
    let queue = g.unreviewed().await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].record_id, second);

    // The outcome is a record of its own referring to the access; the access's
    // record is unchanged; the chain verifies.
    let outcome = g
        .gateway
        .store
        .record_by_id(&recorded.outcome_record_id)
        .await
        .expect("read")
        .expect("the outcome is in the log");
    let a = outcome.record.accountability.expect("section");
    assert_eq!(a.kind.as_deref(), Some(KIND_REVIEW_OUTCOME));
    assert_eq!(a.subject_record.as_deref(), Some(first.as_str()));
    assert_eq!(a.outcome.as_deref(), Some("justified"));
    assert_eq!(a.note.as_deref(), Some("意識レベルJCS300"));
    let access = g
        .gateway
        .store
        .record_by_id(&first)
        .await
        .expect("read")
        .expect("kept");
    assert!(access.seq < outcome.seq, "appended after the access");
    assert!(
        access.record.needs_review,
        "the access itself is not edited"
    );
    let reports = verify_store(g.gateway.store.as_ref(), &[])
        .await
        .expect("verifies");
    assert!(
        reports.iter().all(|r| r.first_break.is_none()),
        "{reports:?}"
    );
    assert!(reports.iter().map(|r| r.records_verified).sum::<u64>() >= 4);
    g.gateway.shutdown().await.expect("shutdown");
    // After shutdown every record, the reads' too, is committed and verifies.
}

#[tokio::test]
async fn reads_of_the_log_are_logged_and_shown_to_the_patient() {
    let mut g = start().await;
    g.exempt(exemption(ExemptionCategory::CognitiveImpairment, ""))
        .await
        .expect("allowed");
    let asked = g
        .audit
        .query_access_log(QueryAccessLogRequest {
            patient: Some(DEMO_PATIENT.insured()),
            ..QueryAccessLogRequest::default()
        })
        .await
        .expect("read");
    let pages = g.entries(asked).await;
    let returned: usize = pages.iter().map(|p| p.entries.len()).sum();
    assert_eq!(returned, 1);

    let reads = g.audit_reads().await;
    let read = reads
        .iter()
        .find(|e| e.method == "QueryAccessLog")
        .expect("the query is in the log");
    assert_eq!(read.kind, "audit_read");
    assert_eq!(read.operator, "unauthenticated");
    assert_eq!(read.result_count, 1);
    assert_eq!(read.audit_query, "QueryAccessLog patient=given");
    assert_eq!(
        read.patient_key,
        onshi_gateway::domain::insured::parse_insured_number(
            "p",
            DEMO_PATIENT.insurer_number,
            DEMO_PATIENT.symbol,
            DEMO_PATIENT.number,
            DEMO_PATIENT.branch
        )
        .expect("valid")
        .key()
    );

    // The patient sees the facility's access and the auditor's look at it, not
    // their own look at their history.
    for _ in 0..2 {
        let pages = g
            .audit
            .query_patient_accesses(QueryPatientAccessesRequest {
                patient: Some(DEMO_PATIENT.insured()),
                ..QueryPatientAccessesRequest::default()
            })
            .await
            .expect("history");
        let history: Vec<PatientAccess> = g
            .entries(pages)
            .await
            .into_iter()
            .flat_map(|p| p.accesses)
            .collect();
        let kinds: Vec<&str> = history.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["access", "audit_read"], "{history:?}");
        assert_eq!(history[1].facility_code, "");
    }
    // Listing the reads is itself a read; the patient view's reads are logged too.
    let reads = g.audit_reads().await;
    let methods: Vec<&str> = reads.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "QueryAccessLog",
            "ListAuditReads",
            "QueryPatientAccesses",
            "QueryPatientAccesses"
        ]
    );
    g.gateway.shutdown().await.expect("shutdown");
}

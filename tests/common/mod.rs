//! Shared harness: a real gateway on a loopback port, with a manual clock, a temporary
//! data directory and a small synthetic population, driven through generated clients.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use onshi_gateway::activation::seed::{new_activation, window_from};
use onshi_gateway::clock::ManualClock;
use onshi_gateway::config::{GatewayConfig, UpstreamTarget};
use onshi_gateway::domain::facility::{FacilityCode, FacilityKind};
use onshi_gateway::domain::jst::jst;
use onshi_gateway::proto::medical_information_service_client::MedicalInformationServiceClient;
use onshi_gateway::proto::medical_information_service_server::MedicalInformationServiceServer;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::qualification_service_server::QualificationServiceServer;
use onshi_gateway::proto::*;
use onshi_gateway::server::{self, RunningGateway};
use onshi_gateway::simulator::{Population, Simulator};
use onshi_gateway::store::AccessRecord;
use onshi_gateway::tls::identity::{DEV_FACILITY_HEADER, IdentitySource};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

pub const POPULATION: usize = 3000;

pub fn jst_at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    jst()
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid JST time")
        .with_timezone(&Utc)
}

pub fn facility(prefecture: u8, kind: FacilityKind, number: u16) -> FacilityCode {
    onshi_gateway::demo::facility(prefecture, kind, number)
}

pub fn miyagi_clinic() -> FacilityCode {
    facility(4, FacilityKind::Medical, 1001)
}
pub fn fukushima_pharmacy() -> FacilityCode {
    facility(7, FacilityKind::Pharmacy, 4001)
}
pub fn tokyo_clinic() -> FacilityCode {
    facility(13, FacilityKind::Medical, 1001)
}

pub struct Harness {
    pub gateway: RunningGateway,
    pub clock: Arc<ManualClock>,
    pub qualification: QualificationServiceClient<Channel>,
    pub medical: MedicalInformationServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub identity: IdentitySource,
    pub upstream: Option<String>,
    pub now: DateTime<Utc>,
    pub search_ttl: Duration,
    pub activation_refresh: Duration,
    pub health_check_interval: Duration,
    pub health_listen: Option<std::net::SocketAddr>,
    /// Where the access log goes instead of the store, e.g. a deliberately slow one.
    pub audit: Option<Arc<dyn onshi_gateway::store::AuditStore>>,
    /// TLS to an `https://` upstream.
    pub upstream_tls: Option<onshi_gateway::tls::client::ClientTlsFiles>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identity: IdentitySource::DevelopmentMetadata,
            upstream: None,
            // Inside the Fukushima-oki 2022 window, which `with_fukushima_2022` adds.
            now: jst_at(2022, 3, 20, 10, 0),
            search_ttl: Duration::from_secs(1800),
            activation_refresh: Duration::from_secs(1),
            health_check_interval: Duration::from_secs(1),
            health_listen: None,
            audit: None,
            upstream_tls: None,
        }
    }
}

/// The access log's batching as configured by default, but for the commit timeout:
/// on a test machine whose two cores run a whole suite, an fsync can take longer
/// than the 500 ms a production gateway allows before refusing calls. The fault
/// suite (tests/faults) keeps the default and shows what it is for.
pub fn test_audit_batch() -> onshi_gateway::audit::BatchConfig {
    onshi_gateway::audit::BatchConfig {
        commit_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(options.now);
        let config = GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
            metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
            data_dir: dir.path().to_path_buf(),
            upstream: match options.upstream {
                Some(url) => UpstreamTarget::Remote(url),
                None => UpstreamTarget::Builtin {
                    seed: 7,
                    population: POPULATION,
                },
            },
            identity: options.identity,
            upstream_timeout: Duration::from_secs(2),
            search_ttl: options.search_ttl,
            activation_refresh: options.activation_refresh,
            health_check_interval: options.health_check_interval,
            health_listen: options.health_listen,
            audit: test_audit_batch(),
            upstream_tls: options.upstream_tls,
            ..GatewayConfig::default()
        };
        let gateway = server::start_with_audit(config, clock.clone(), options.audit)
            .await
            .expect("gateway starts");
        let channel = Channel::from_shared(format!("http://{}", gateway.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Harness {
            qualification: QualificationServiceClient::new(channel.clone()),
            medical: MedicalInformationServiceClient::new(channel),
            gateway,
            clock,
            _dir: dir,
        }
    }

    /// The 2022 Fukushima-oki activation exactly as the notice put it: Miyagi and
    /// Fukushima, from 17 March until the end of 23 March (JST).
    pub async fn with_fukushima_2022(self) -> Harness {
        let window = window_from("2022-03-17", None, Some("2022-03-23"), false).expect("window");
        let new = new_activation(
            "令和4年福島沖地震",
            "令和4年3月17日付事務連絡",
            &["04".into(), "07".into()],
            &[],
            window,
            "test",
        )
        .expect("activation");
        self.gateway
            .store
            .add_activation(&new)
            .await
            .expect("stored");
        self.gateway.activations.invalidate();
        self
    }

    /// Access records of a facility, in the order they were written.
    pub async fn records(&self, facility: Option<&FacilityCode>) -> Vec<AccessRecord> {
        let f = facility.map(std::string::ToString::to_string);
        // In the order written (the chain's), not by time: tests move the clock back.
        self.gateway
            .store
            .chain_records(&self.gateway.chain_id, 0, 100_000)
            .await
            .expect("audit readable")
            .into_iter()
            .map(|s| s.record)
            .filter(|r| f.is_none() || r.facility == f)
            .collect()
    }

    pub async fn last_record(&self) -> AccessRecord {
        self.records(None)
            .await
            .pop()
            .expect("at least one access record")
    }

    /// The `/metrics` text, scraped over HTTP as Prometheus would.
    pub async fn scrape_metrics(&self) -> String {
        scrape_metrics(self.gateway.metrics_addr.expect("metrics listener")).await
    }

    /// The health service's answer for `service` on the terminal listener.
    pub async fn health(
        &self,
        service: &str,
    ) -> tonic_health::pb::health_check_response::ServingStatus {
        let channel = Channel::from_shared(format!("http://{}", self.gateway.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let reply = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner();
        reply.status()
    }

    /// Finds the demo patient (山田 太郎, 1958-04-12, 石巻) by search from `facility`.
    pub async fn search_demo_patient(
        &mut self,
        facility: &FacilityCode,
    ) -> (String, InsuredNumber) {
        let reply = self
            .qualification
            .search_patients(as_facility(
                facility,
                search_request("山田 太郎", "1958-04-12", Sex::Male, "", "石巻"),
            ))
            .await
            .expect("search allowed")
            .into_inner();
        assert_eq!(
            reply.outcome,
            SearchOutcome::SingleMatch as i32,
            "{reply:?}"
        );
        let insured = reply.candidates[0].insured.clone().expect("insured number");
        (reply.search_id, insured)
    }
}

/// The whole response (head and body) to `GET path` over plain HTTP at `addr`.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    response
}

/// The `/metrics` text at `addr`, scraped over HTTP as Prometheus would.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> String {
    let response = String::from_utf8_lossy(&http_get(addr, "/metrics").await).into_owned();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

pub fn as_facility<T>(facility: &FacilityCode, message: T) -> Request<T> {
    as_raw_facility(&facility.to_string(), message)
}

pub fn as_raw_facility<T>(facility: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert(
        DEV_FACILITY_HEADER,
        facility.parse().expect("ascii metadata"),
    );
    req
}

pub fn staff() -> Option<Staff> {
    Some(Staff {
        staff_id: "dr-0001".into(),
        role: StaffRole::Doctor as i32,
        licence_number: String::new(),
    })
}

pub fn consent() -> Option<Consent> {
    Some(Consent::patient())
}

pub fn known() -> Option<Identification> {
    Some(Identification::insured_number_known())
}

pub fn by_search(search_id: &str) -> Option<Identification> {
    Some(Identification::by_search(search_id))
}

pub fn access(identification: Option<Identification>) -> Option<AccessContext> {
    Some(AccessContext {
        staff: staff(),
        consent: consent(),
        purpose: Purpose::MedicalCare as i32,
        identification,
        ..AccessContext::default()
    })
}

pub fn lookup(insured: InsuredNumber) -> LookupQualificationRequest {
    LookupQualificationRequest {
        access: access(known()),
        insured: Some(insured),
        birth_date: String::new(),
    }
}

pub fn drugs(
    insured: InsuredNumber,
    identification: Option<Identification>,
) -> GetDrugHistoryRequest {
    GetDrugHistoryRequest {
        access: access(identification),
        insured: Some(insured),
        period: None,
        ..GetDrugHistoryRequest::default()
    }
}

pub fn search_request(
    name: &str,
    birth: &str,
    sex: Sex,
    insurer: &str,
    address: &str,
) -> SearchPatientsRequest {
    SearchPatientsRequest {
        access: access(None),
        name: name.into(),
        birth_date: birth.into(),
        sex: sex as i32,
        insurer_name: insurer.into(),
        address_fragment: address.into(),
    }
}

/// Asserts a denial: its code and its `ErrorInfo.reason`; returns the status.
#[track_caller]
pub fn assert_denied<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, Status>,
    code: Code,
    reason: &str,
) -> Status {
    match result {
        Ok(r) => panic!("expected {reason}, got {:?}", r.get_ref()),
        Err(status) => {
            let info = status
                .get_details_error_info()
                .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
            assert_eq!(info.reason, reason, "{status:?}");
            assert_eq!(info.domain, "onshi.gateway");
            assert_eq!(status.code(), code, "{status:?}");
            status
        }
    }
}

/// The field named by the status' `BadRequest`.
pub fn bad_field(status: &Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

/// Asserts a denial (code and reason) and that the access log's newest record holds
/// that same reason and is not an allowed access. Evaluates to the status.
#[macro_export]
macro_rules! denied {
    ($h:expr, $call:expr, $code:expr, $reason:expr $(,)?) => {{
        let result = $call;
        let status = $crate::common::assert_denied(result, $code, $reason);
        let record = $h.last_record().await;
        assert_eq!(
            record.reason.as_deref(),
            Some($reason),
            "access record of {}",
            $reason
        );
        assert_ne!(record.decision, onshi_gateway::store::Decision::Allowed);
        // The denial names its committed access record.
        assert_eq!(
            status
                .metadata()
                .get(onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some(record.id.as_str()),
            "access-record metadata of {}",
            $reason
        );
        status
    }};
}

/// A test's own upstream OQS: the simulator's two services over `size` synthetic
/// persons whose histories end on `day`, and a loopback listener to serve them on
/// (with whatever layer or interceptor the test wraps them in).
pub struct OwnUpstream {
    pub qualification: QualificationServiceServer<Simulator>,
    pub medical: MedicalInformationServiceServer<Simulator>,
    pub incoming: tokio_stream::wrappers::TcpListenerStream,
    /// `http://127.0.0.1:<port>`, for `Options::upstream` or `--upstream`.
    pub url: String,
}

pub async fn own_upstream(size: usize, day: DateTime<Utc>) -> OwnUpstream {
    let today = onshi_gateway::domain::jst::today_jst(day);
    let (qualification, medical) =
        Simulator::new(Arc::new(Population::generate_at(7, size, today))).into_services();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    OwnUpstream {
        qualification,
        medical,
        incoming: tokio_stream::wrappers::TcpListenerStream::new(listener),
        url: format!("http://{addr}"),
    }
}

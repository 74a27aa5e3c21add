//! The suite's load generator: `clients` terminals, each on a connection of its own,
//! together sending `rate` patient-data calls a second with a deadline each, and
//! keeping every call's fate (when it was sent and ended, its code, its reason, the
//! access record it named, whether it carried data). A client whose call outlasts its
//! slot sends the next one at once and skips the slots it missed, so "load held" says
//! how much of the rate the gateway let the terminals keep.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use onshi_gateway::pipeline::audit_layer::ACCESS_RECORD_HEADER;
use onshi_gateway::proto::medical_information_service_client::MedicalInformationServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::simulator::fixtures::{ALL, DEMO_PATIENT};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::{as_facility, drugs, known, lookup, miyagi_clinic};

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rate: f64,
    pub clients: usize,
    pub deadline: Duration,
    pub slack: Duration,
}

/// One call as its terminal saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sent: Instant,
    pub ended: Instant,
    /// None: no answer by the deadline plus the slack (the call hung).
    pub code: Option<Code>,
    /// The `ErrorInfo` reason of a refusal.
    pub reason: Option<String>,
    /// The access record the answer named (header or trailer).
    pub record: Option<String>,
    /// An answer with patient data in it.
    pub data: bool,
    /// A refusal with a `RetryInfo` delay.
    pub retry_info: bool,
    /// The status message of a refusal, for diagnosis.
    pub message: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Some(Code::Ok)
    }

    pub fn hung(&self) -> bool {
        self.code.is_none()
    }

    pub fn took(&self) -> Duration {
        self.ended - self.sent
    }

    /// The refusal's reason, or its code when it has none; None when it is OK.
    pub fn refusal(&self) -> Option<String> {
        match (self.code, &self.reason) {
            (Some(Code::Ok), _) => None,
            (_, Some(reason)) => Some(reason.clone()),
            (Some(code), None) => Some(format!("{code:?}")),
            (None, None) => Some("HUNG".into()),
        }
    }
}

/// Load running on a gateway; [`Running::stop`] ends it and hands back every call.
pub struct Running {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Vec<Outcome>>>,
    pub started: Instant,
    pub plan: Plan,
}

/// Every call of one run of the load, in the order sent per client.
#[derive(Debug, Clone)]
pub struct Calls {
    pub outcomes: Vec<Outcome>,
    pub started: Instant,
    pub stopped: Instant,
    pub plan: Plan,
}

/// Starts `plan.clients` terminals calling the gateway at `addr` from a facility in
/// Miyagi (which the suite's gateways activate).
pub fn start(addr: SocketAddr, plan: Plan) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let period = Duration::from_secs_f64(plan.clients as f64 / plan.rate);
    let clients = (0..plan.clients)
        .map(|k| {
            let first = started + period.mul_f64(k as f64 / plan.clients as f64);
            tokio::spawn(client(addr, plan, k, first, period, stop.clone()))
        })
        .collect();
    Running {
        stop,
        clients,
        started,
        plan,
    }
}

impl Running {
    /// Stops sending, waits for the calls in flight (each ends by its deadline plus
    /// the slack) and returns them all.
    pub async fn stop(self) -> Calls {
        let stopped = Instant::now();
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for c in self.clients {
            outcomes.extend(c.await.expect("a load client panicked"));
        }
        outcomes.sort_by_key(|o| o.sent);
        Calls {
            outcomes,
            started: self.started,
            stopped,
            plan: self.plan,
        }
    }
}

async fn client(
    addr: SocketAddr,
    plan: Plan,
    k: usize,
    first: Instant,
    period: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(plan.deadline)
        .tcp_nodelay(true)
        .connect_lazy();
    let mut outcomes = Vec::new();
    let mut next = first;
    let mut i = k;
    loop {
        tokio::time::sleep_until(next.into()).await;
        if stop.load(Ordering::Relaxed) {
            return outcomes;
        }
        outcomes.push(one_call(&channel, plan, i).await);
        i += plan.clients;
        // Missed slots are skipped, not caught up in a burst.
        next = (next + period).max(Instant::now());
    }
}

/// Three qualification look-ups (over the fixture persons) to one drug history.
async fn one_call(channel: &Channel, plan: Plan, i: usize) -> Outcome {
    let sent = Instant::now();
    let limit = plan.deadline + plan.slack;
    let answer = if i % 4 == 3 {
        let mut req = as_facility(&miyagi_clinic(), drugs(DEMO_PATIENT.insured(), known()));
        req.set_timeout(plan.deadline);
        let mut client = MedicalInformationServiceClient::new(channel.clone());
        tokio::time::timeout(limit, client.get_drug_history(req))
            .await
            .map(|r| r.map(|r| r.metadata().clone()))
    } else {
        let patient = &ALL[(i / 4) % ALL.len()];
        let mut req = as_facility(&miyagi_clinic(), lookup(patient.insured()));
        req.set_timeout(plan.deadline);
        let mut client = QualificationServiceClient::new(channel.clone());
        tokio::time::timeout(limit, client.lookup_qualification(req))
            .await
            .map(|r| r.map(|r| r.metadata().clone()))
    };
    outcome(sent, answer)
}

fn outcome(
    sent: Instant,
    answer: Result<Result<MetadataMap, Status>, tokio::time::error::Elapsed>,
) -> Outcome {
    let ended = Instant::now();
    let record_of = |m: &MetadataMap| {
        m.get(ACCESS_RECORD_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match answer {
        Err(_) => Outcome {
            sent,
            ended,
            code: None,
            reason: None,
            record: None,
            data: false,
            retry_info: false,
            message: "no answer".into(),
        },
        Ok(Ok(metadata)) => Outcome {
            sent,
            ended,
            code: Some(Code::Ok),
            reason: None,
            record: record_of(&metadata),
            data: true,
            retry_info: false,
            message: String::new(),
        },
        Ok(Err(status)) => Outcome {
            sent,
            ended,
            code: Some(status.code()),
            reason: status.get_details_error_info().map(|e| e.reason),
            record: record_of(status.metadata()),
            data: false,
            retry_info: status
                .get_details_retry_info()
                .is_some_and(|r| r.retry_delay.is_some()),
            message: status.message().chars().take(200).collect(),
        },
    }
}

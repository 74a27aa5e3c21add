//! What a readiness probe would have seen: `grpc.health.v1` Check on the gateway's
//! terminal listener, asked every 100 ms through a fault, each answer kept with its
//! time.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const EVERY: Duration = Duration::from_millis(100);

/// A probe's answers: None when the gateway did not answer within a second.
type Answers = Arc<Mutex<Vec<(Instant, Option<ServingStatus>)>>>;

pub struct HealthWatch {
    answers: Answers,
    task: tokio::task::JoinHandle<()>,
}

impl HealthWatch {
    pub fn start(addr: SocketAddr, service: &str) -> HealthWatch {
        let answers = Answers::default();
        let task = tokio::spawn(probe(addr, service.to_string(), answers.clone()));
        HealthWatch { answers, task }
    }

    fn answers(&self) -> Vec<(Instant, Option<ServingStatus>)> {
        self.answers.lock().expect("answers").clone()
    }

    /// Whether a probe in `[from, until)` was answered NOT_SERVING.
    pub fn not_serving_between(&self, from: Instant, until: Instant) -> bool {
        self.answers().iter().any(|(at, status)| {
            *at >= from && *at < until && *status == Some(ServingStatus::NotServing)
        })
    }

    /// Waits until a probe after `since` is answered NOT_SERVING, for at most
    /// `limit`; returns when it was.
    pub async fn wait_not_serving(&self, since: Instant, limit: Duration) -> Option<Instant> {
        let until = Instant::now() + limit;
        loop {
            let seen = self
                .answers()
                .into_iter()
                .find(|(at, status)| *at >= since && *status == Some(ServingStatus::NotServing));
            if let Some((at, _)) = seen {
                return Some(at);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(EVERY / 2).await;
        }
    }

    /// How long after `since` the probe answered SERVING and went on answering so
    /// until now; None if its last answer was anything else.
    pub fn serving_again(&self, since: Instant) -> Option<Duration> {
        let answers = self.answers();
        let last_other = answers
            .iter()
            .rposition(|(_, s)| *s != Some(ServingStatus::Serving));
        let first_serving = match last_other {
            Some(i) => answers.get(i + 1)?,
            None => answers.first()?,
        };
        Some(first_serving.0.saturating_duration_since(since))
    }

    /// The answers, condensed to their changes, for a failure message.
    pub fn story(&self, origin: Instant) -> String {
        let mut out = Vec::new();
        let mut last = None;
        for (at, status) in self.answers() {
            if Some(status) != last {
                let said = match status {
                    Some(status) => status.as_str_name(),
                    None => "no answer",
                };
                out.push(format!(
                    "+{:.1}s {said}",
                    at.saturating_duration_since(origin).as_secs_f64()
                ));
                last = Some(status);
            }
        }
        out.join(", ")
    }
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn probe(addr: SocketAddr, service: String, answers: Answers) {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(1))
        .connect_lazy();
    let mut client = HealthClient::new(channel);
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let request = HealthCheckRequest {
            service: service.clone(),
        };
        let status = match client.check(request).await {
            Ok(reply) => Some(reply.into_inner().status()),
            Err(_) => None,
        };
        answers
            .lock()
            .expect("answers")
            .push((Instant::now(), status));
    }
}

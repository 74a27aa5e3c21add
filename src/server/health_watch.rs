//! `grpc.health.v1` whose `Watch` streams end when the gateway drains: a balancer
//! watching a replica is told NOT_SERVING and then its stream closes, instead of an
//! open stream holding the graceful shutdown for the whole drain timeout.

use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::{Health as HealthApi, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

/// Time for the last status (NOT_SERVING) to reach the watchers before their streams end.
const LAST_WORD: Duration = Duration::from_millis(100);

pub struct DrainingHealth {
    inner: HealthService,
    draining: CancellationToken,
}

/// What the health services of every listener share: the statuses, and the signal
/// that ends their watches.
#[derive(Clone)]
pub struct Health {
    pub reporter: HealthReporter,
    draining: CancellationToken,
}

impl Health {
    pub fn new(reporter: HealthReporter) -> Health {
        Health {
            reporter,
            draining: CancellationToken::new(),
        }
    }

    /// The health service for one listener.
    pub fn service(&self) -> HealthServer<DrainingHealth> {
        HealthServer::new(DrainingHealth {
            inner: HealthService::from_health_reporter(self.reporter.clone()),
            draining: self.draining.clone(),
        })
    }

    /// Ends every open watch, after its last status.
    pub fn end_watches(&self) {
        self.draining.cancel();
    }
}

type Watch = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl HealthApi for DrainingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = Watch;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Watch>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let draining = self.draining.clone();
        let ended = async move {
            draining.cancelled().await;
            tokio::time::sleep(LAST_WORD).await;
        };
        Ok(Response::new(Box::pin(statuses.take_until(ended))))
    }
}

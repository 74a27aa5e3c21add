//! The tonic client to the upstream OQS: a lazily connecting channel, a per-call
//! deadline, and a bound on calls in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};

use crate::proto::medical_information_service_client::MedicalInformationServiceClient;
use crate::proto::qualification_service_client::QualificationServiceClient;

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: String,
    /// The longest a forwarded call may take; a shorter caller deadline wins.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Calls in flight to the upstream at once; more wait (within their deadline).
    pub max_in_flight: usize,
}

#[derive(Clone)]
pub struct Upstream {
    pub(crate) qualification: QualificationServiceClient<Channel>,
    pub(crate) medical: MedicalInformationServiceClient<Channel>,
    pub(crate) timeout: Duration,
    pub(crate) permits: Arc<Semaphore>,
}

impl Upstream {
    /// Builds the client without connecting: an unreachable upstream shows up per call
    /// as UPSTREAM_UNAVAILABLE, not as a gateway that fails to start.
    pub fn connect_lazy(config: &UpstreamConfig) -> Result<Upstream, tonic::transport::Error> {
        let channel = Endpoint::from_shared(config.url.clone())?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Upstream {
            qualification: QualificationServiceClient::new(channel.clone()),
            medical: MedicalInformationServiceClient::new(channel),
            timeout: config.timeout,
            permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        })
    }
}

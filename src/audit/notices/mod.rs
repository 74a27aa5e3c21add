//! Telling the patient: a notice for each access under the exemption (and, if
//! configured, every allowed access naming a patient) is written to a durable
//! outbox in the same transaction as the access record; the dispatcher here
//! delivers each to the configured sink, at least once, across restarts and
//! replica crashes. The payload is a contract (docs/notices.md).

mod dispatcher;
mod payload;
mod sink;

use std::path::PathBuf;
use std::time::Duration;

pub use dispatcher::{Dispatcher, spawn_dispatcher};
pub use payload::{NOTICE_SCHEMA, NoticePayload};
pub use sink::{IDEMPOTENCY_HEADER, Sink};

/// Where notices go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NoticeSink {
    /// None configured: no notice is queued.
    #[default]
    Off,
    /// POSTed as JSON to this `http://` URL, with an idempotency key header.
    Webhook(String),
    /// Appended as JSON lines to a file in this directory.
    Spool(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NoticesConfig {
    pub sink: NoticeSink,
    /// An `https://` webhook's CA certificate(s), PEM.
    pub webhook_ca: Option<std::path::PathBuf>,
    /// Every allowed access naming a patient, not only those under the exemption.
    pub every_allowed_access: bool,
    /// How long a claimed notice is this replica's before another may take it.
    pub lease: Duration,
    /// How often the outbox is looked at when idle.
    pub poll: Duration,
    /// Notices claimed at once.
    pub batch: u32,
    /// The first retry's delay after a failed delivery, doubling…
    pub retry_first: Duration,
    /// …up to this.
    pub retry_max: Duration,
    /// How long a webhook delivery may take.
    pub timeout: Duration,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig {
            sink: NoticeSink::Off,
            webhook_ca: None,
            every_allowed_access: false,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            batch: 50,
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

impl NoticesConfig {
    pub fn enabled(&self) -> bool {
        self.sink != NoticeSink::Off
    }

    /// The delay before attempt `attempts + 1` after `attempts` failures.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.min(20));
        self.retry_first.saturating_mul(factor).min(self.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_bound() {
        let c = NoticesConfig::default();
        assert_eq!(c.backoff(0), Duration::from_secs(1));
        assert_eq!(c.backoff(1), Duration::from_secs(2));
        assert_eq!(c.backoff(5), Duration::from_secs(32));
        assert_eq!(c.backoff(9), Duration::from_secs(300));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(300));
        assert!(!c.enabled());
    }
}

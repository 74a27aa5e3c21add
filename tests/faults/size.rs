//! How hard and how long the suite pushes: the short form by default, so that
//! `cargo test` in CI stays within a few minutes on two cores in a debug build, and
//! the full form with `ONSHI_FAULTS=full`, whose summary lines fill the table in
//! docs/reliability.md.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub full: bool,
    /// Calls a second the load generator aims for.
    pub rate: f64,
    /// Concurrent terminals, each with a connection of its own.
    pub clients: usize,
    /// Each call's deadline (`grpc-timeout`).
    pub deadline: Duration,
    /// A call still unanswered this long after its deadline is counted as hung.
    pub slack: Duration,
    /// Load before the fault starts.
    pub warm: Duration,
    /// How long the fault lasts.
    pub fault: Duration,
    /// Load after the fault ends: the time the gateway has to recover in.
    pub after: Duration,
    /// Insured persons in the simulator (fewer start faster).
    pub population: usize,
}

impl Size {
    pub fn from_env() -> Size {
        if std::env::var("ONSHI_FAULTS").is_ok_and(|v| v == "full") {
            Size {
                full: true,
                rate: 200.0,
                clients: 32,
                deadline: Duration::from_secs(2),
                slack: Duration::from_millis(500),
                warm: Duration::from_secs(3),
                fault: Duration::from_secs(10),
                after: Duration::from_secs(10),
                population: 20_000,
            }
        } else {
            Size {
                full: false,
                rate: 40.0,
                clients: 8,
                deadline: Duration::from_secs(1),
                slack: Duration::from_millis(500),
                warm: Duration::from_millis(1500),
                fault: Duration::from_millis(2500),
                after: Duration::from_secs(4),
                population: 2000,
            }
        }
    }

    /// The load of this size on a gateway.
    pub fn plan(&self) -> super::load::Plan {
        super::load::Plan {
            rate: self.rate,
            clients: self.clients,
            deadline: self.deadline,
            slack: self.slack,
        }
    }
}

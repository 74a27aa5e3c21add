//! The process's log subscriber: a level filter and one formatting layer on stderr,
//! human-readable text or one JSON object per line.
//!
//! Built from layers on a registry rather than `fmt().init()` so that further
//! layers (a trace exporter) can join the same subscriber in [`init`].

use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, span), for log
    /// collectors.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The level filter, or why `level` is not one (tracing EnvFilter syntax, e.g.
/// `info` or `warn,onshi_gateway=debug`).
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(level).map_err(|e| {
        format!(
            "{level:?} is not a log filter ({e}); e.g. \"info\" or \"warn,onshi_gateway=debug\""
        )
    })
}

/// Installs the process's subscriber: events at `level` and above, written to stderr
/// in `format`. Fails if `level` does not parse or a subscriber is already set.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = filter(level).map_err(anyhow::Error::msg)?;
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()?;
    Ok(())
}

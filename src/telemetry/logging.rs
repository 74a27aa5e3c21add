//! The process's subscriber: log lines on stderr, human-readable text or one JSON
//! object per line, filtered by level; and, when a collector is configured, the
//! gateway's spans exported over OTLP, filtered apart so that a quiet log level does
//! not thin out traces.

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::telemetry::TelemetryConfig;
use crate::telemetry::TraceExport;

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
/// in `format`, and the gateway's own spans exported as `telemetry` says. Fails if
/// `level` does not parse, the exporter cannot be built, or a subscriber is already
/// set. The returned export must be shut down last, to send the final spans.
pub fn init(
    level: &str,
    format: LogFormat,
    telemetry: Option<&TelemetryConfig>,
) -> anyhow::Result<Option<TraceExport>> {
    let export = telemetry.map(TraceExport::start).transpose()?.flatten();
    subscriber(level, format, export.as_ref())?.try_init()?;
    Ok(export)
}

/// The subscriber [`init`] installs.
fn subscriber(
    level: &str,
    format: LogFormat,
    export: Option<&TraceExport>,
) -> anyhow::Result<Box<dyn tracing::Subscriber + Send + Sync>> {
    let logs = log_layer(level, format)?;
    Ok(match export {
        // Only the gateway's spans: the call, its rules, the audit commit, the upstream call.
        Some(e) => Box::new(
            tracing_subscriber::registry().with(logs).with(
                e.layer()
                    .with_filter(Targets::new().with_target("onshi_gateway", LevelFilter::INFO)),
            ),
        ),
        // No layer at all rather than an absent one: an `Option::None` layer counts as
        // one that wants every span, and h2's per-frame spans were then all made and
        // dropped unseen.
        None => Box::new(tracing_subscriber::registry().with(logs)),
    })
}

/// Log lines at `level` and above on stderr, in `format`.
fn log_layer<S>(level: &str, format: LogFormat) -> anyhow::Result<impl Layer<S> + use<S>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let filter = filter(level).map_err(anyhow::Error::msg)?;
    // Spans cost an allocation and their fields' formatting on every call, ten of them
    // a call: the log lines carry them only at `debug` or finer. Otherwise spans are
    // made only when traces are exported, and not at all when they are not.
    let log_spans = filter
        .max_level_hint()
        .is_none_or(|most| most >= LevelFilter::DEBUG);
    let filter = filter.and(filter_fn(move |meta| log_spans || !meta.is_span()));
    let fmt = match format {
        // Colours only for a person at a terminal, not for a journal or a file.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    Ok(fmt.with_filter(filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans_made(level: &str) -> (bool, bool) {
        let subscriber = subscriber(level, LogFormat::Text, None).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let own = !tracing::info_span!("grpc").is_disabled();
            let h2 = !tracing::trace_span!(target: "h2::codec", "poll").is_disabled();
            (own, h2)
        })
    }

    #[test]
    fn without_trace_export_no_span_is_made_at_info() {
        assert_eq!(spans_made("info"), (false, false));
        assert_eq!(spans_made("warn"), (false, false));
    }

    #[test]
    fn the_log_carries_spans_at_debug_and_others_only_when_asked() {
        assert_eq!(spans_made("debug"), (true, false));
        assert_eq!(spans_made("info,h2=trace"), (true, true));
    }
}

//! The OTLP/gRPC span exporter and the tracer provider behind the
//! `tracing-opentelemetry` layer.

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::registry::LookupSpan;

/// Spans exported to a collector. Keep it for the life of the process and call
/// [`TraceExport::shutdown`] last, so the spans of the final calls are sent.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Starts exporting to `config.otlp_endpoint`, if set. Must run inside the Tokio
    /// runtime: spans are batched and sent by a task on it, so exporting never blocks
    /// a call and a collector that is down costs only the dropped spans.
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Option<TraceExport>> {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(None);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .with_context(|| format!("the OTLP exporter for {endpoint}"))?;
        let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
        // A caller's sampling decision is followed; the ratio applies to new traces.
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio.clamp(0.0, 1.0),
        )));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        Ok(Some(TraceExport { provider }))
    }

    /// The layer that turns `tracing` spans into exported OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("onshi-gateway"))
    }

    /// Sends what is still batched and stops. Blocks until the collector answered
    /// or gave up, so it runs off the runtime's worker threads.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "spans not all exported at shutdown"),
            Err(e) => tracing::warn!(error = %e, "span export shutdown did not finish"),
        }
    }
}

/// Where traces go. Set by the process's tracing subscriber (one per process), read
/// from the configuration like every other setting.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; none: spans are not exported.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Share of new traces sampled (0.0–1.0); a sampled parent is always followed.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "onshi-gateway".to_string(),
            sample_ratio: 1.0,
        }
    }
}

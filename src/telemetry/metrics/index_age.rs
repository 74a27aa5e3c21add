//! The age of the activation index, computed when scraped: a replica whose index
//! stops being reloaded shows it growing, whatever else it does.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// When the index was last loaded from the store; shared by the cache and the scrape.
#[derive(Clone, Debug, Default)]
pub struct LoadedAt(Arc<Mutex<Option<Instant>>>);

impl LoadedAt {
    pub fn now(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    fn age_seconds(&self) -> Option<f64> {
        let at = *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        at.map(|at| at.elapsed().as_secs_f64())
    }
}

#[derive(Debug)]
pub struct IndexAge(pub LoadedAt);

impl Collector for IndexAge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Nothing loaded yet: no sample, rather than a misleading zero.
        let Some(age) = self.0.age_seconds() else {
            return Ok(());
        };
        let metric = encoder.encode_descriptor(
            "activation_index_age_seconds",
            "Seconds since the activation index was last loaded from the store",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(age).encode(metric)
    }
}

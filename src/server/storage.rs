//! The durable state a gateway starts from: the store (seeded with the facility
//! registry) and the access-log writer on its own chain.

use std::sync::Arc;

use anyhow::Context;

use crate::audit::{AuditWriter, ChainSigner, WriterTask};
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::store::{self, AuditStore, Store};
use crate::telemetry::metrics::Metrics;

pub(super) struct Storage {
    pub store: Arc<dyn Store>,
    /// Where access records go: the store, unless a benchmark gave another.
    pub audit_store: Arc<dyn AuditStore>,
    pub audit: AuditWriter,
    pub writer: WriterTask,
    /// The chain's key, also for the checkpoints of its Merkle tree.
    pub signer: ChainSigner,
}

impl Storage {
    pub async fn open(
        config: &GatewayConfig,
        clock: &SharedClock,
        audit: Option<Arc<dyn AuditStore>>,
        metrics: &Metrics,
    ) -> anyhow::Result<Storage> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let location = config.store_location();
        let store = store::open(&location)
            .await
            .with_context(|| format!("opening the store {location}"))?;
        let registry = crate::activation::registry::seed_if_empty(store.as_ref())
            .await
            .context("seeding the facility registry")?;
        tracing::info!(
            municipalities = registry.municipalities,
            facilities = registry.facilities,
            "facility registry"
        );
        let signer = ChainSigner::load_or_generate(&config.audit_key_path())?;
        // Printed so that an operator can pin it (`audit verify --trusted-key`) from
        // outside the store, e.g. from the deployment's logs.
        let public_key = signer.public_key_hex();
        let audit_store: Arc<dyn AuditStore> = audit.unwrap_or_else(|| store.clone());
        let (audit, writer) = AuditWriter::start(
            audit_store.clone(),
            signer.clone(),
            config.audit,
            clock.clone(),
            metrics.audit.clone(),
        )
        .await
        .context("starting the access-log writer")?;
        let chain = audit.chain_id();
        tracing::info!(store = %location, %chain, %public_key, "access log ready");
        Ok(Storage {
            store,
            audit_store,
            audit,
            writer,
            signer,
        })
    }
}

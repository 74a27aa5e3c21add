//! Where state lives. The rules and the audit writer see only these traits; the
//! SQLite (embedded default) and PostgreSQL implementations know no rule.

mod model;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use model::{
    AccessRecord, Activation, AreaKey, Coverage, Decision, NewActivation, SearchRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Activations of the emergency function: which areas, which windows.
#[async_trait]
pub trait ActivationStore: Send + Sync + 'static {
    async fn add_activation(&self, new: &NewActivation) -> Result<Activation, StoreError>;
    async fn list_activations(&self) -> Result<Vec<Activation>, StoreError>;
    /// Every window that covers `area`, whatever its time: the caller decides by "now".
    async fn coverage(&self, area: &AreaKey) -> Result<Vec<Coverage>, StoreError>;
}

/// Attribute searches made by facilities, so that a later request can prove the
/// patient came out of this facility's own, recent search.
#[async_trait]
pub trait SearchLedger: Send + Sync + 'static {
    async fn record_search(&self, search: &SearchRecord) -> Result<(), StoreError>;
    async fn find_search(&self, search_id: &str) -> Result<Option<SearchRecord>, StoreError>;
}

/// The access log. `append` returns only once the records are durable.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append(&self, records: &[AccessRecord]) -> Result<(), StoreError>;
    /// Records in time order, optionally for one facility, since an instant.
    async fn records(
        &self,
        facility: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>, StoreError>;
}

/// All the state one gateway needs, behind one value.
pub trait Store: ActivationStore + SearchLedger + AuditStore {}
impl<T: ActivationStore + SearchLedger + AuditStore> Store for T {}

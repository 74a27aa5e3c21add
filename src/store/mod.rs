//! Where state lives. The rules and the audit writer see only these traits; the
//! SQLite (embedded default) and PostgreSQL implementations know no rule.

mod access_log_sql;
mod accountability;
mod activation_sql;
mod chain;
mod model;
mod notice_sql;
pub mod postgres;
mod query;
mod registry;
mod registry_sql;
mod search_sql;
mod site_sql;
mod sql;
pub mod sqlite;
mod value;
mod wal_checkpoint;
pub mod write_slot;

use async_trait::async_trait;

use crate::domain::activation_change::Revision;
use chrono::{DateTime, Utc};

pub use accountability::{Accountability, KIND_AUDIT_READ, KIND_REVIEW_OUTCOME};
pub use chain::{ChainHead, ChainInfo, Checkpoint, StoredRecord};
pub use model::{
    AccessRecord, Activation, AreaKey, ClinicalStamp, Coverage, Decision, NewActivation,
    SEARCH_METHOD, SearchRecord, SiteStamp, candidate_hash,
};
pub use query::{AccessQuery, Cursor};
pub use registry::{Municipality, RegisteredFacility, RegistryCounts};
pub use value::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A unique key was already taken, e.g. a chain position by another writer.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(d.message().to_string())
            }
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// Activations of the emergency function: which areas, which windows, and every
/// revision that changed them.
#[async_trait]
pub trait ActivationStore: Send + Sync + 'static {
    /// Records a new activation as its revision 1.
    async fn add_activation(&self, new: &NewActivation) -> Result<Activation, StoreError>;
    /// Records `revision` of an existing activation. Fails with `Conflict`, changing
    /// nothing, if its number is taken: someone else revised it first.
    async fn add_revision(
        &self,
        activation_id: &str,
        revision: &Revision,
    ) -> Result<(), StoreError>;
    async fn activation(&self, id: &str) -> Result<Option<Activation>, StoreError>;
    async fn list_activations(&self) -> Result<Vec<Activation>, StoreError>;
    /// Each activation's current window over `area`, whatever its time: the caller
    /// decides by "now".
    async fn coverage(&self, area: &AreaKey) -> Result<Vec<Coverage>, StoreError>;
    /// A signal for every activation change made through any replica, where the
    /// database can push one (PostgreSQL LISTEN/NOTIFY); `None` where it cannot.
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        Ok(None)
    }
}

/// Attribute searches made by facilities, so that a later request can prove the
/// patient came out of this facility's own, recent search. A search is written with
/// the access record of the call that made it (`AccessRecord::opened_search`).
#[async_trait]
pub trait SearchLedger: Send + Sync + 'static {
    async fn find_search(&self, search_id: &str) -> Result<Option<SearchRecord>, StoreError>;
    /// Forgets searches made before `before` (they can no longer be named); returns how many.
    async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The access log: each writer appends to its own hash chain (see `crate::audit`).
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Records a chain and its public key; a no-op if it is already known with this key.
    async fn register_chain(&self, chain: &ChainInfo) -> Result<(), StoreError>;
    async fn chains(&self) -> Result<Vec<ChainInfo>, StoreError>;
    /// Every chain id that has records or checkpoints, registered or not.
    async fn logged_chain_ids(&self) -> Result<Vec<String>, StoreError>;
    /// The last record of a chain, if it has any.
    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError>;
    /// Appends linked records (and a checkpoint over them) in one transaction;
    /// returns only once it is durable. Fails, changing nothing, if another writer
    /// has taken any of these sequence numbers.
    async fn append(
        &self,
        records: &[StoredRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError>;
    /// A chain's records with `seq > after`, in chain order, at most `limit`.
    async fn chain_records(
        &self,
        chain_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// A chain's checkpoints in sequence order.
    async fn checkpoints(&self, chain_id: &str) -> Result<Vec<Checkpoint>, StoreError>;
    /// Records matching `query` in (time, chain, seq) order, at most `limit`.
    async fn query(&self, query: &AccessQuery, limit: u32)
    -> Result<Vec<StoredRecord>, StoreError>;
    /// Deletes a chain's records up to and including `through_seq`, which must be a
    /// checkpoint's sequence number: that checkpoint, kept, anchors what remains.
    /// Returns how many records were deleted.
    async fn prune(&self, chain_id: &str, through_seq: u64) -> Result<u64, StoreError>;
    /// Flagged accesses made before `before` that no review outcome refers to yet.
    async fn count_overdue_reviews(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let query = AccessQuery {
            until: Some(before),
            unreviewed_only: true,
            ..AccessQuery::default()
        };
        Ok(self.query(&query, u32::MAX).await?.len() as u64)
    }
    /// The record with this id, if any.
    async fn record_by_id(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        let _ = id;
        Ok(None)
    }
}

/// A notice to a patient waiting in the outbox: what the access showed, when, by
/// which facility and on which grounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxNotice {
    /// The access record's id: also the notice's idempotency key.
    pub record_id: String,
    pub chain_id: String,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub facility: Option<String>,
    pub method: String,
    pub items: String,
    pub consent_basis: Option<String>,
    pub exemption_category: Option<String>,
    pub patient_key: String,
    /// Failed deliveries so far.
    pub attempts: u32,
}

/// The outbox of notices to patients, filled in the access records' transactions
/// (`AuditStore::append`) and emptied by the dispatcher, at least once per notice.
#[async_trait]
pub trait NoticeOutbox: Send + Sync + 'static {
    /// Leases to `owner`, until `lease_until`, up to `limit` notices that are due at
    /// `now`, undelivered and not leased (or whose lease ran out: a dispatcher that
    /// died), oldest first.
    async fn claim_notices(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxNotice>, StoreError>;
    /// Marks a notice `owner` holds delivered; false if it no longer held it.
    async fn notice_delivered(
        &self,
        record_id: &str,
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives a notice back after a failed delivery, due again at `next_attempt`.
    async fn notice_failed(
        &self,
        record_id: &str,
        owner: &str,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Notices not yet delivered.
    async fn pending_notices(&self) -> Result<u64, StoreError>;
}

/// The facility registry: which municipality each facility is in, and the
/// municipality master that municipality-level activations are checked against.
#[async_trait]
pub trait FacilityRegistry: Send + Sync + 'static {
    /// Adds or replaces municipalities and facilities, all in one transaction.
    async fn load_registry(
        &self,
        municipalities: &[Municipality],
        facilities: &[RegisteredFacility],
    ) -> Result<RegistryCounts, StoreError>;
    /// Replaces the whole registry with these, in one transaction: a real registry
    /// loaded over the synthetic seed keeps nothing of it.
    async fn replace_registry(
        &self,
        municipalities: &[Municipality],
        facilities: &[RegisteredFacility],
    ) -> Result<RegistryCounts, StoreError>;
    async fn registry_counts(&self) -> Result<RegistryCounts, StoreError>;
    async fn facility(&self, code: &str) -> Result<Option<RegisteredFacility>, StoreError>;
    async fn municipality(&self, code: &str) -> Result<Option<Municipality>, StoreError>;
    /// The municipalities of `prefectures` with how many registered facilities each
    /// has (zero included), in code order: what a preview counts.
    async fn facility_counts(
        &self,
        prefectures: &[u8],
    ) -> Result<Vec<(Municipality, u64)>, StoreError>;
    /// How many registered facilities of each kind each of `municipalities` has
    /// (kinds with none left out), by municipality code then kind: what a preview
    /// counts by kind.
    async fn facility_kind_counts(
        &self,
        municipalities: &[String],
    ) -> Result<Vec<(String, crate::domain::facility::FacilityKind, u64)>, StoreError>;
}

/// Temporary sites under activations, with every attributed revision.
#[async_trait]
pub trait SiteStore: Send + Sync + 'static {
    /// Records a new site with its revisions (the registration). Fails with
    /// `Conflict` if its id is taken.
    async fn add_site(&self, site: &crate::domain::site::Site) -> Result<(), StoreError>;
    /// Records `revision` of `site`. Fails with `Conflict`, changing nothing, if its
    /// number is taken: someone else changed the site first.
    async fn add_site_revision(
        &self,
        site: &crate::domain::site::Site,
        revision: &crate::domain::site::SiteRevision,
    ) -> Result<(), StoreError>;
    async fn site(&self, id: &str) -> Result<Option<crate::domain::site::Site>, StoreError>;
    async fn list_sites(&self) -> Result<Vec<crate::domain::site::Site>, StoreError>;
}

/// All the state one gateway needs, behind one value.
#[async_trait]
pub trait Store:
    ActivationStore + SearchLedger + AuditStore + FacilityRegistry + SiteStore + NoticeOutbox
{
    /// Which database this is, for logs and reports: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Closes the connections; later calls fail as if the database were unreachable.
    async fn close(&self);
    /// One round trip to the database, for the health service.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Where the state lives: the embedded SQLite file, or a PostgreSQL shared by replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            // The URL may hold a password: show where, not how.
            StoreLocation::Postgres(url) => match url.rsplit_once('@') {
                Some((_, host)) => write!(f, "postgres://…@{host}"),
                None => f.write_str(url),
            },
        }
    }
}

/// Opens the store and runs its migrations.
pub async fn open(location: &StoreLocation) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match location {
        StoreLocation::Sqlite(path) => {
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path).await?))
        }
        StoreLocation::Postgres(url) => {
            Ok(std::sync::Arc::new(postgres::PgStore::connect(url).await?))
        }
    }
}

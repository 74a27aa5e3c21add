//! The facility registry in the shared PostgreSQL store: the same tables and the
//! same generic statements as SQLite (`sqlite_registry`), so every replica reads
//! the registry the operator loaded once.

use sqlx::{Postgres, QueryBuilder, Row};

use super::postgres::PgStore;
use super::sqlite_registry::{
    COUNT_REGISTRY, REGISTRY_CHUNK, UPSERT_FACILITIES, UPSERT_MUNICIPALITIES, count_from_db,
    counts_from_row, facility_counts_query, facility_from_row, facility_registry, last_of_each,
    municipality_from_row, push_facilities, push_municipalities,
};
use super::{Municipality, RegisteredFacility, RegistryCounts, StoreError};

facility_registry!(PgStore, Postgres);

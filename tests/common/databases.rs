//! Fresh, empty databases for tests: a SQLite file in a temporary directory, or a
//! new schema in the test PostgreSQL. Include with
//! `#[path = "common/databases.rs"] mod databases;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use onshi_gateway::store::{self, Store, StoreLocation};
use sqlx::Connection;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test PostgreSQL: `ONSHI_TEST_DATABASE_URL`, or a local one with trust auth.
pub fn postgres_url() -> String {
    std::env::var("ONSHI_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A schema of its own in the test database: tests run in parallel without seeing
/// each other's rows, and without needing the right to create databases.
pub struct FreshPostgres {
    /// Selects the schema through `options=-c search_path=…`, so a store opened
    /// here, or a child process given this URL, lands in it.
    pub url: String,
    pub schema: String,
}

pub async fn fresh_postgres() -> FreshPostgres {
    let base = postgres_url();
    // Shown as the store shows it: without a password the URL may hold.
    let shown = StoreLocation::Postgres(base.clone());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is needed by this test and is unreachable at {shown}: {e}\n\
             Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) \
             or set ONSHI_TEST_DATABASE_URL to a database this user may create schemas in."
        )
    });
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating schema {schema} in {shown}: {e}"));
    let _ = conn.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    FreshPostgres {
        url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
        schema,
    }
}

impl FreshPostgres {
    /// Best effort: a schema left behind costs little.
    pub async fn drop_schema(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_url()).await {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// A path for a new SQLite file, in a directory that lives as long as the `TempDir`.
pub async fn fresh_sqlite() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("onshi.db");
    (dir, path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a fresh store lives, and what must outlive it (the SQLite directory).
pub struct Keep {
    pub location: StoreLocation,
    _dir: Option<tempfile::TempDir>,
}

/// An empty store of `backend`, migrated.
pub async fn open_fresh(backend: Backend) -> (Arc<dyn Store>, Keep) {
    let keep = match backend {
        Backend::Sqlite => {
            let (dir, path) = fresh_sqlite().await;
            Keep {
                location: StoreLocation::Sqlite(path),
                _dir: Some(dir),
            }
        }
        Backend::Postgres => Keep {
            location: StoreLocation::Postgres(fresh_postgres().await.url),
            _dir: None,
        },
    };
    let store = store::open(&keep.location)
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", keep.location));
    (store, keep)
}

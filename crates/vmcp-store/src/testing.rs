//! Test support: fresh databases on each backend, so that one test body runs on SQLite always and
//! on Postgres when `VMCP_TEST_DATABASE_URL` is set.

use std::io::Write;
use std::sync::Once;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

/// The environment variable naming a Postgres server for tests
/// (`postgres://postgres@127.0.0.1:5432/test`). Each test gets its own database on it.
pub const POSTGRES_ENV: &str = "VMCP_TEST_DATABASE_URL";

/// A database that lives as long as this value: a SQLite file in a temporary directory, or a
/// Postgres database created for the test and dropped afterwards.
pub struct TestDatabase {
    url: String,
    backend: crate::Backend,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("vmcp.db").display());
        Self {
            url,
            backend: crate::Backend::Sqlite,
            _dir: Some(dir),
            pg_admin: None,
        }
    }

    /// A new database on the server of `VMCP_TEST_DATABASE_URL`, or `None` (said loudly on
    /// stderr, once per test binary) when that variable is not set.
    pub fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                // Written to the real stderr, past the test harness's capture.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPED: Postgres variants of the database tests ({POSTGRES_ENV} is not set; \
                     e.g. {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test) ***\n"
                );
            });
            return None;
        };
        let name = format!(
            "vmcp_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={admin_url}: cannot connect: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("a postgres URL");
        url.set_path(&format!("/{name}"));
        Some(Self {
            url: url.to_string(),
            backend: crate::Backend::Postgres,
            _dir: None,
            pg_admin: Some((admin_url, name)),
        })
    }

    /// SQLite, then Postgres when configured.
    pub fn all() -> Vec<Self> {
        let mut v = vec![Self::sqlite()];
        v.extend(Self::postgres());
        v
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> crate::Backend {
        self.backend
    }

    pub fn open(&self) -> crate::Store {
        crate::Store::open(&self.url).expect("open test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_admin
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

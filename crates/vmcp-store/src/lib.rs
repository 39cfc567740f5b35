//! Persistence of vMCP: MCP servers, vMCPs with their members, and the operation log, on SQLite
//! (the default, bundled) or Postgres, through one diesel code path.
//!
//! Architecture invariant: this crate is synchronous and blocking. Callers in async code run it
//! on a blocking thread (`spawn_blocking`), and nothing on the path of a tool call waits on it.
//! It knows nothing of HTTP or MCP; it speaks in the domain crate's types.

pub mod cluster;
mod conn;
mod logs;
pub mod oauth;
mod schema;
mod servers;
mod vmcps;

#[cfg(feature = "test-support")]
pub mod testing;

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use vmcp_domain::ValidationError;

pub use conn::{Backend, DatabaseUrl, DbConnection};
pub use logs::{LogFigures, NewLog};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL or location is unusable.
    #[error("{0}")]
    Config(String),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A name is taken, or an imported definition clashes with a stored one.
    #[error("{0}")]
    Conflict(String),
    /// The input refers to something that does not exist (an unknown server id, say).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A server cannot be deleted while vMCPs use it.
    #[error("MCP server {name} is used by {}: remove it from them first", describe_vmcps(.vmcps))]
    InUse { name: String, vmcps: Vec<String> },
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(DieselError),
}

impl StoreError {
    /// Whether a unique constraint refused the write (for a log row: its id is stored already).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(e) if is_unique_violation(e))
    }
}

fn describe_vmcps(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    if names.len() == 1 {
        format!("vMCP {}", quoted[0])
    } else {
        format!("vMCPs {}", quoted.join(", "))
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_string()),
            // A write that refers to a row another request deleted meanwhile (the writes that
            // can race map it more precisely).
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                StoreError::Conflict(
                    "a server or vMCP this write refers to was changed or deleted by another request meanwhile; nothing was changed, try again".into(),
                )
            }
            _ => StoreError::Database(e),
        }
    }
}

pub(crate) fn is_foreign_key_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}

pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The database: a pool of connections to a migrated SQLite file or Postgres database.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<conn::Manager>,
    url: DatabaseUrl,
    /// SQLite has one writer at a time, and a deferred transaction that reads before it writes
    /// fails at once (busy, no waiting) when another connection wrote in between. Write
    /// transactions of this process therefore take turns.
    write_lock: std::sync::Arc<std::sync::Mutex<()>>,
    /// The replica this process is, named in what it announces to the others.
    origin: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Store {
    /// Opens (creating a SQLite file and its directory if needed) and migrates the database.
    pub fn open(url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        if let DatabaseUrl::Sqlite(path) = &url
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Config(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        // One direct connection first: it reports the real error (refused, bad password, ...)
        // right away, and runs the migrations before any pooled connection is used.
        let mut first = url.connect().map_err(|e| {
            StoreError::Unavailable(format!("cannot connect to {}: {e}", url.display()))
        })?;
        let applied = run_migrations(&mut first)?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied database migrations");
        }
        drop(first);
        let max_size = match url.backend() {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(conn::Manager { url: url.clone() })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            url,
            write_lock: Default::default(),
            origin: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// Names the replica this process is (once), for what it announces to the others.
    pub fn set_origin(&self, replica_id: &str) {
        let _ = self.origin.set(replica_id.to_string());
    }

    pub(crate) fn origin(&self) -> &str {
        self.origin.get().map(String::as_str).unwrap_or("")
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub(crate) fn conn(&self) -> Result<r2d2::PooledConnection<conn::Manager>> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs `f` in a write transaction: all of it or nothing.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T>) -> Result<T> {
        use diesel::Connection;
        let _turn = match self.backend() {
            Backend::Sqlite => Some(self.write_lock.lock().unwrap_or_else(|e| e.into_inner())),
            Backend::Postgres => None,
        };
        let mut conn = self.conn()?;
        (*conn).transaction(f)
    }

    /// Whether the database answers (for `/health`).
    pub fn ping(&self) -> Result<()> {
        use diesel::connection::SimpleConnection;
        self.conn()?.batch_execute("SELECT 1")?;
        Ok(())
    }
}

fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// The versions of the embedded migrations of each backend, for the test that checks both
/// folders hold the same versions.
pub fn migration_versions() -> (Vec<String>, Vec<String>) {
    use diesel::migration::MigrationSource;
    let versions = |m: &EmbeddedMigrations| -> Vec<String> {
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(m)
            .expect("embedded migrations")
            .iter()
            .map(|m| m.name().version().to_string())
            .collect()
    };
    let pg = MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
        .expect("embedded migrations")
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    (versions(&SQLITE_MIGRATIONS), pg)
}

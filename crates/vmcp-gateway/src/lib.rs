//! The vMCP runtime between the HTTP layer and the outside world: management of servers and
//! vMCPs over the store.
//!
//! Architecture invariant: this crate knows nothing of HTTP. It speaks in domain types and
//! `GatewayError`s; the HTTP layer only maps them to statuses and bodies.

mod error;
mod manage;

use std::sync::Arc;

pub use error::{ErrorKind, GatewayError};
use vmcp_store::Store;

pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

/// The running gateway. Cheap to share: hold it in an `Arc`.
pub struct Gateway {
    store: Store,
}

impl Gateway {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self { store })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a blocking store operation on the blocking thread pool.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> vmcp_store::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| GatewayError::internal(format!("database task failed: {e}")))?
            .map_err(GatewayError::from)
    }

    /// Whether the database answers.
    pub async fn health(&self) -> Result<()> {
        self.db(|s| s.ping()).await
    }
}

//! The vMCP runtime between the HTTP layer and the outside world: management of servers and
//! vMCPs over the store, and the supervisor of upstream connections.
//!
//! Architecture invariant: this crate knows nothing of HTTP. It speaks in domain types and
//! `GatewayError`s; the HTTP layer only maps them to statuses and bodies.

pub mod aggregate;
pub mod cluster;
mod error;
pub mod events;
mod manage;
pub mod metrics;
pub mod mrtr;
pub mod oauth;
pub mod oplog;
mod ops;
pub mod relay;
pub mod session;
pub mod substitution;
pub mod supervisor;
mod uri_template;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aggregate::VmcpEntry;
pub use ops::{ON_DEMAND_CONNECT_WAIT, Operation, Output, SEARCH_DEFAULT, SEARCH_MAX, SessionCall};
pub use substitution::{Caller, Fill, Source};
pub use uri_template::UriTemplate;
use vmcp_domain::Vmcp;

pub use error::{ErrorKind, GatewayError, Hint, What};
pub use events::GatewayEvent;
use supervisor::Supervisor;
pub use supervisor::SupervisorOptions;
use tokio::runtime::Handle;
use vmcp_store::Store;

pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

/// Tunables of the gateway.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    pub supervisor: SupervisorOptions,
    pub logs: oplog::LogOptions,
    /// How long a 2026-07-28 client's call waits for its input (default `mrtr::DEFAULT_TTL`).
    pub mrtr_ttl: Option<std::time::Duration>,
    /// Who this replica is (docs/deployment.md).
    pub replica: cluster::ReplicaOptions,
    /// OAuth on both sides (docs/oauth.md).
    pub oauth: oauth::OAuthOptions,
}

/// The running gateway. Cheap to share: hold it in an `Arc`.
pub struct Gateway {
    store: Store,
    supervisor: Supervisor,
    /// Every vMCP's definition, by id, so that no call waits on the database.
    vmcps: RwLock<HashMap<String, Arc<VmcpEntry>>>,
    /// Held by every management write from its database write to the update of the runtime's
    /// copies (`vmcps`, the supervisor's slots), so that they happen in the order the database
    /// saw: a PUT that raced a DELETE cannot put back the vMCP the DELETE forgot.
    writes: tokio::sync::Mutex<()>,
    /// Open MCP client sessions.
    pub sessions: session::Sessions,
    /// The operation log's writer.
    pub oplog: oplog::OpLog,
    metrics: metrics::Metrics,
    /// Calls of 2026-07-28 clients waiting for their input (see `mrtr`).
    pub mrtr: Arc<mrtr::Mrtr>,
    /// This replica among the others on the database.
    pub cluster: cluster::Cluster,
    /// Live feeds (`/ws`) open here: other replicas' log rows are read only for them.
    feeds: std::sync::atomic::AtomicUsize,
    /// Finished operations (`GatewayEvent::Operation`), this replica's and the others', for
    /// the live feeds.
    operations: tokio::sync::broadcast::Sender<GatewayEvent>,
    /// OAuth settings, and the verifier of clients' access tokens.
    pub(crate) oauth: oauth::OAuthOptions,
    pub(crate) verifier: oauth::verify::Verifier,
}

/// A live feed's hold on the gateway's events (see `Gateway::watch_feed`).
pub struct Feed {
    /// Changes: server states, catalogs, vMCPs.
    pub events: tokio::sync::broadcast::Receiver<GatewayEvent>,
    /// Finished operations (`GatewayEvent::Operation`).
    pub operations: tokio::sync::broadcast::Receiver<GatewayEvent>,
    gateway: std::sync::Weak<Gateway>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(g) = self.gateway.upgrade() {
            g.feeds.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

impl Gateway {
    /// Starts the gateway: registers every stored server with the supervisor, and connects
    /// those that were connected when vMCP last stopped. Background tasks (connections) run on
    /// `runtime`, which must outlive the gateway.
    pub fn start(
        store: Store,
        options: GatewayOptions,
        runtime: Handle,
    ) -> vmcp_store::Result<Arc<Self>> {
        let cluster = cluster::Cluster::join(&store, options.replica.clone())?;
        let (events, _) = tokio::sync::broadcast::channel(1024);
        // Finished operations go to the live feeds on a channel of their own: a burst of them
        // never makes the sessions' watchers (which only want changes) fall behind.
        let (operations, _) = tokio::sync::broadcast::channel(4096);
        let oplog = oplog::OpLog::start(store.clone(), operations.clone(), options.logs);
        let oauth_client =
            oauth::upstream::OAuthClient::new(store.clone(), options.oauth.callback_base());
        let supervisor = Supervisor::new(
            store.clone(),
            runtime.clone(),
            events,
            options.supervisor,
            oauth_client,
        );
        for server in store.list_servers()? {
            supervisor.upsert(&server);
        }
        let auto_connect = store.auto_connect_ids()?;
        let vmcps = store
            .list_vmcps()?
            .into_iter()
            .map(|v| (v.vmcp_id.clone(), Arc::new(VmcpEntry::new(v))))
            .collect();
        let gateway = Arc::new(Self {
            store,
            supervisor,
            vmcps: RwLock::new(vmcps),
            writes: tokio::sync::Mutex::new(()),
            sessions: session::Sessions::default(),
            oplog,
            metrics: metrics::Metrics::default(),
            mrtr: mrtr::Mrtr::new(
                options.mrtr_ttl.unwrap_or(mrtr::DEFAULT_TTL),
                mrtr::MAX_PARKED,
            ),
            cluster,
            feeds: std::sync::atomic::AtomicUsize::new(0),
            operations,
            oauth: options.oauth,
            verifier: oauth::verify::Verifier::new(),
        });
        // Sessions ended at their clients' request stay ended across restarts.
        let now = vmcp_domain::time::now().naive_utc();
        for (id, until) in gateway.store.ended_sessions(now)? {
            gateway.sessions.revoke(&id, until.and_utc());
        }
        gateway.start_cluster(&runtime);
        // Before any server starts: its first words on stderr are scrubbed too.
        gateway.refresh_log_secrets();
        for id in auto_connect {
            if let Some(slot) = gateway.supervisor.slot(&id) {
                tracing::info!(server = %slot.name(), "reconnecting, as before the restart");
                gateway.supervisor.start(&slot);
            }
        }
        Ok(gateway)
    }

    /// Keeps the runtime's copy of a vMCP (after a create, update or import).
    pub(crate) fn cache_vmcp(&self, vmcp: &Vmcp) {
        self.vmcps
            .write()
            .expect("vmcps lock")
            .insert(vmcp.vmcp_id.clone(), Arc::new(VmcpEntry::new(vmcp.clone())));
        self.refresh_log_secrets();
        self.supervisor.publish(GatewayEvent::VmcpChanged {
            vmcp_id: vmcp.vmcp_id.clone(),
        });
    }

    /// Tells each server's log which secret values to mask: the server's own, and those of
    /// the vMCPs that use it (substitution can hand them to the server, which may echo them on
    /// stderr or in its errors).
    pub(crate) fn refresh_log_secrets(&self) {
        let vmcps = self.vmcps.read().expect("vmcps lock");
        for slot in self.supervisor.slots() {
            let mut all: Vec<String> = slot.secrets().to_vec();
            for e in vmcps.values() {
                if e.vmcp.mcp_servers.iter().any(|m| m.server_id == slot.id) {
                    all.extend(e.secrets.iter().cloned());
                }
            }
            // Longest first: a secret that contains another is masked whole.
            all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            all.dedup();
            slot.log().set_secrets(all.into());
        }
    }

    pub(crate) fn forget_vmcp(&self, id: &str) {
        self.vmcps.write().expect("vmcps lock").remove(id);
        self.refresh_log_secrets();
        self.supervisor.publish(GatewayEvent::VmcpChanged {
            vmcp_id: id.to_string(),
        });
    }

    /// A vMCP by id, or by name.
    pub fn vmcp_entry(&self, id_or_name: &str) -> Option<Arc<VmcpEntry>> {
        let vmcps = self.vmcps.read().expect("vmcps lock");
        vmcps
            .get(id_or_name)
            .cloned()
            .or_else(|| vmcps.values().find(|e| e.vmcp.name == id_or_name).cloned())
    }

    /// The id of the vMCP that `id_or_name` names (see `vmcp`). Something shaped like an id
    /// is returned as it is, for the store to report as usual.
    pub fn resolve_vmcp_id(
        &self,
        id_or_name: &str,
    ) -> Result<vmcp_domain::ids::VmcpId, GatewayError> {
        match self.vmcp(id_or_name) {
            Ok(e) => Ok(vmcp_domain::ids::VmcpId::parse(&e.vmcp.vmcp_id)?),
            Err(_) if vmcp_domain::ids::is_id(vmcp_domain::ids::VMCP_PREFIX, id_or_name) => {
                Ok(vmcp_domain::ids::VmcpId::parse(id_or_name)?)
            }
            Err(e) => Err(e),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Subscribes a live feed (`/ws`) to what happens in the gateway, on every replica.
    pub fn watch_feed(self: &Arc<Self>) -> Feed {
        self.feeds.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Feed {
            events: self.subscribe(),
            operations: self.operations.subscribe(),
            gateway: Arc::downgrade(self),
        }
    }

    fn feed_watched(&self) -> bool {
        self.feeds.load(std::sync::atomic::Ordering::Acquire) > 0
    }

    /// Subscribes to what happens in the gateway.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<GatewayEvent> {
        self.supervisor.subscribe()
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

    /// Stops every upstream connection (their processes included), then writes what the
    /// operation log still holds.
    pub async fn shutdown(&self) {
        self.leave_cluster().await;
        self.supervisor.shutdown().await;
        self.oplog
            .flush_and_stop(std::time::Duration::from_secs(10));
    }
}

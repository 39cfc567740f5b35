//! Replicas of one deployment on one Postgres database (docs/deployment.md).
//!
//! - **Membership.** Each replica has a row (`replicas`), refreshed every few seconds with its
//!   view of the servers; a replica refuses to start beside live ones that do not share its
//!   session key (sealed MCP session ids would not open across them).
//! - **Configuration.** Database triggers announce every change of a server or vMCP on
//!   `vmcp_config` with a revision; each replica LISTENs and reloads what changed into its
//!   caches (servers' slots, vMCP definitions, secrets), which tells its MCP sessions
//!   (`list_changed`). A replica that lost its listener reloads everything on reconnect.
//! - **Live feed.** Log rows are announced by id when written, and server states by the
//!   replica that sees them; each replica replays the others' on its own event bus, so `/ws`
//!   on any replica sees every replica.
//! - **Sessions.** A session ended by its client (DELETE) is announced, and refused everywhere.
//!
//! Upstream connections stay per replica. SQLite is single-node (a lock file).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vmcp_domain::ServerStatus;
use vmcp_domain::replica::{Replica, ReplicaServer};
use vmcp_store::cluster::{
    CLUSTER_CHANNEL, CONFIG_CHANNEL, LOGS_CHANNEL, MAX_PAYLOAD, Notification, ReplicaRow,
    SingleNodeLock,
};
use vmcp_store::{Store, StoreError};

use crate::{Gateway, GatewayEvent};

/// A replica's row is fresh this long after its last refresh.
pub const ALIVE: Duration = Duration::from_secs(15);
/// How often a replica refreshes its row.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often the listener looks for notifications.
const POLL: Duration = Duration::from_millis(25);
/// How often the listener checks that its connection still answers.
const CHECK: Duration = Duration::from_secs(5);

/// Who this replica is.
#[derive(Debug, Clone, Default)]
pub struct ReplicaOptions {
    /// Unique among the replicas (default: host name and port).
    pub id: String,
    /// The session key's fingerprint (replicas compare it).
    pub key_fingerprint: String,
    /// Whether the session key is shared (configured), not this process's own.
    pub shared_key: bool,
}

/// A replica's message to the others, on `CLUSTER_CHANNEL`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Message {
    /// A client ended its session: its id is refused until `until`.
    SessionEnded {
        from: String,
        session: String,
        until: vmcp_domain::Timestamp,
    },
    /// A server's connection state changed on the sending replica.
    ServerStatus {
        from: String,
        server_id: String,
        status: ServerStatus,
        last_error: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
struct ConfigChange {
    kind: String,
    id: String,
    revision: i64,
}

#[derive(Debug, Deserialize)]
struct LogsWritten {
    from: String,
    logs: Vec<String>,
}

/// What the listener hands to the gateway.
enum Input {
    Note(Notification),
    /// The listener (re)connected: anything may have been missed.
    ReloadAll,
}

/// The replica's part of the gateway.
pub struct Cluster {
    pub options: ReplicaOptions,
    /// This process among the replicas (its id and a random suffix): what it announces is
    /// told from a twin's with the same id.
    instance: String,
    started_at: vmcp_domain::Timestamp,
    /// The latest configuration revision applied here.
    revision: AtomicI64,
    /// Whether the listener is connected (always false on SQLite).
    listening: AtomicBool,
    stopped: Arc<AtomicBool>,
    /// Whether each server is wanted (`auto_connect`), as last read: a change made through
    /// another replica (connect, disconnect) is applied here; a connection made on demand is
    /// not undone.
    wanted: std::sync::Mutex<HashSet<String>>,
    /// Released at shutdown (a new gateway may then open the database).
    single_node: std::sync::Mutex<Option<SingleNodeLock>>,
}

impl Cluster {
    /// Joins the deployment: on SQLite takes the single-node lock; on Postgres refuses to run
    /// beside live replicas that do not share this one's session key, then writes its row.
    pub(crate) fn join(store: &Store, mut options: ReplicaOptions) -> vmcp_store::Result<Self> {
        if options.id.is_empty() {
            options.id = format!("vmcp-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        }
        let instance = format!(
            "{}#{}",
            options.id,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        store.set_origin(&instance);
        let single_node = store.lock_single_node()?;
        let now = vmcp_domain::time::now();
        let since = now - chrono::Duration::from_std(ALIVE).expect("a short duration");
        let others: Vec<ReplicaRow> = store
            .replicas_since(since.naive_utc())?
            .into_iter()
            .filter(|r| r.id != options.id)
            .collect();
        if let Some(other) = others.first() {
            if !options.shared_key {
                return Err(StoreError::Config(format!(
                    "another vMCP replica ({}) runs on this database: replicas must share a \
                     session key so that each resumes the others' MCP sessions; set \
                     VMCP_SESSION_KEY (or --session-key) to the same secret on every replica",
                    other.id
                )));
            }
            if let Some(other) = others
                .iter()
                .find(|o| !o.shared_key || o.key_fingerprint != options.key_fingerprint)
            {
                return Err(StoreError::Config(format!(
                    "the vMCP replica {} on this database has {}: every replica needs the same \
                     VMCP_SESSION_KEY",
                    other.id,
                    if other.shared_key {
                        "another session key"
                    } else {
                        "no session key"
                    }
                )));
            }
        }
        store.upsert_replica(&ReplicaRow {
            id: options.id.clone(),
            started_at: now.naive_utc(),
            seen_at: now.naive_utc(),
            key_fingerprint: options.key_fingerprint.clone(),
            shared_key: options.shared_key,
            servers: "{}".into(),
        })?;
        Ok(Self {
            options,
            instance,
            started_at: now,
            revision: AtomicI64::new(store.config_revision().unwrap_or(0)),
            listening: AtomicBool::new(false),
            stopped: Arc::new(AtomicBool::new(false)),
            wanted: std::sync::Mutex::new(store.auto_connect_ids()?.into_iter().collect()),
            single_node: std::sync::Mutex::new(single_node),
        })
    }

    pub fn replica_id(&self) -> &str {
        &self.options.id
    }

    /// The latest configuration revision this replica applied.
    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Whether this replica hears the others (Postgres, listener connected).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Notes a connect or disconnect made through this replica (so that its own announcement
    /// is not taken for another replica's change).
    pub(crate) fn set_wanted(&self, server_id: &str, on: bool) {
        let mut wanted = self.wanted.lock().expect("wanted lock");
        if on {
            wanted.insert(server_id.to_string());
        } else {
            wanted.remove(server_id);
        }
    }
}

impl Gateway {
    /// Starts the replica's background work: the heartbeat, and on Postgres the listener and
    /// the forwarding of this replica's server states.
    pub(crate) fn start_cluster(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let me = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                let Some(gateway) = me.upgrade() else { return };
                if gateway.cluster.stopped.load(Ordering::Acquire) {
                    return;
                }
                gateway.sessions.prune_revoked();
                let servers = gateway.server_view();
                let id = gateway.cluster.options.id.clone();
                if let Err(e) = gateway.db(move |s| s.replica_seen(&id, &servers)).await {
                    tracing::warn!(error = %e, "cannot refresh this replica's row");
                }
            }
        });
        if self.store.backend() != vmcp_store::Backend::Postgres {
            return;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = self.store.clone();
        let stopped = self.cluster.stopped.clone();
        let listening = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("vmcp-listen".into())
            .spawn(move || listen_loop(store, tx, stopped, listening))
            .expect("start the listener thread");
        let me = Arc::downgrade(self);
        runtime.spawn(async move {
            while let Some(input) = rx.recv().await {
                let Some(gateway) = me.upgrade() else { return };
                gateway.apply(input).await;
            }
        });
        // This replica's server states, for the others' live feeds.
        let mut events = self.subscribe();
        let me = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let GatewayEvent::ServerStatus {
                    server_id,
                    status,
                    last_error,
                    replica: None,
                } = event
                else {
                    continue;
                };
                let Some(gateway) = me.upgrade() else { return };
                let message = Message::ServerStatus {
                    from: gateway.cluster.instance.clone(),
                    server_id,
                    status,
                    last_error: last_error.map(|e| truncate(e, 2000)),
                };
                gateway.announce(&message).await;
                // The replica's row follows at once (`GET /api/replicas` on the others).
                let servers = gateway.server_view();
                let id = gateway.cluster.options.id.clone();
                let _ = gateway.db(move |s| s.replica_seen(&id, &servers)).await;
            }
        });
    }

    /// Sends a message to the other replicas (nothing on SQLite).
    async fn announce(&self, message: &Message) {
        let payload = serde_json::to_string(message).expect("a cluster message serializes");
        if payload.len() > MAX_PAYLOAD {
            tracing::warn!(size = payload.len(), "cluster message too large: not sent");
            return;
        }
        if let Err(e) = self.db(move |s| s.notify(CLUSTER_CHANNEL, &payload)).await {
            tracing::warn!(error = %e, "cannot tell the other replicas");
        }
    }

    /// Ends an MCP session at its client's request: its id is refused here at once and,
    /// through the database, by every other replica and by replicas started later, until
    /// `until` (when its age refuses it anyway).
    pub fn end_session_everywhere(
        self: &Arc<Self>,
        transport_id: &str,
        until: vmcp_domain::Timestamp,
    ) {
        self.sessions.revoke(transport_id, until);
        let me = self.clone();
        let session = transport_id.to_string();
        tokio::spawn(async move {
            let key = session.clone();
            if let Err(e) = me.db(move |s| s.end_session(&key, until.naive_utc())).await {
                tracing::warn!(error = %e, "cannot record an ended session");
            }
            if me.store.backend() == vmcp_store::Backend::Postgres {
                let message = Message::SessionEnded {
                    from: me.cluster.instance.clone(),
                    session,
                    until,
                };
                me.announce(&message).await;
            }
        });
    }

    /// Reads the sessions ended at their clients' request (at start, and after the listener
    /// reconnects: announcements may have been missed).
    pub(crate) async fn load_ended_sessions(&self) -> crate::Result<()> {
        let now = vmcp_domain::time::now().naive_utc();
        let ended = self.db(move |s| s.ended_sessions(now)).await?;
        for (id, until) in ended {
            self.sessions.revoke(&id, until.and_utc());
        }
        Ok(())
    }

    /// This replica's view of the servers, as JSON for its row.
    fn server_view(&self) -> String {
        let view: BTreeMap<String, ReplicaServer> = self
            .supervisor
            .slots()
            .into_iter()
            .map(|slot| {
                let state = slot.state();
                (
                    slot.id.clone(),
                    ReplicaServer {
                        status: state.status,
                        last_error: state.last_error.clone().map(|e| truncate(e, 500)),
                    },
                )
            })
            .collect();
        serde_json::to_string(&view).unwrap_or_else(|_| "{}".into())
    }

    /// The live replicas on this database (this one included), oldest first.
    pub async fn replicas(&self) -> crate::Result<Vec<Replica>> {
        let since = vmcp_domain::time::now() - chrono::Duration::from_std(ALIVE).expect("short");
        let rows = self
            .db(move |s| s.replicas_since(since.naive_utc()))
            .await?;
        let me = &self.cluster.options.id;
        let mut out: Vec<Replica> = rows
            .into_iter()
            .map(|r| Replica {
                this: &r.id == me,
                servers: serde_json::from_str(&r.servers).unwrap_or_default(),
                id: r.id,
                started_at: r.started_at.and_utc(),
                seen_at: r.seen_at.and_utc(),
            })
            .collect();
        // This replica's own view is always current.
        if let Some(mine) = out.iter_mut().find(|r| r.this) {
            mine.servers = serde_json::from_str(&self.server_view()).unwrap_or_default();
        } else {
            out.push(Replica {
                id: me.clone(),
                started_at: self.cluster.started_at,
                seen_at: vmcp_domain::time::now(),
                this: true,
                servers: serde_json::from_str(&self.server_view()).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Leaves the deployment (at shutdown): stops the heartbeat and the listener, and removes
    /// this replica's row.
    pub(crate) async fn leave_cluster(&self) {
        self.cluster.stopped.store(true, Ordering::Release);
        let id = self.cluster.options.id.clone();
        let _ = self.db(move |s| s.remove_replica(&id)).await;
        self.cluster.single_node.lock().expect("lock").take();
    }

    async fn apply(self: &Arc<Self>, input: Input) {
        match input {
            Input::ReloadAll => self.reload_all_until_done().await,
            Input::Note(n) if n.channel == CONFIG_CHANNEL => {
                let Ok(change) = serde_json::from_str::<ConfigChange>(&n.payload) else {
                    tracing::warn!(payload = %n.payload, "unreadable configuration change");
                    return;
                };
                let result = match change.kind.as_str() {
                    "server" => self.reload_server(&change.id).await,
                    _ => self.reload_vmcp(&change.id).await,
                };
                match result {
                    Ok(()) => {
                        self.cluster
                            .revision
                            .fetch_max(change.revision, Ordering::AcqRel);
                    }
                    Err(e) => {
                        // Not applied: everything is read again (the revision moves then).
                        tracing::warn!(error = %e, id = %change.id, "applying a configuration change failed; reloading everything");
                        self.reload_all_until_done().await;
                    }
                }
            }
            Input::Note(n) if n.channel == LOGS_CHANNEL => {
                let Ok(written) = serde_json::from_str::<LogsWritten>(&n.payload) else {
                    return;
                };
                if written.from == self.cluster.instance || !self.feed_watched() {
                    // Ours (already on the feed), or no live feed is open here.
                    return;
                }
                match self.db(move |s| s.logs_by_ids(&written.logs)).await {
                    Ok(entries) => {
                        for entry in entries {
                            let _ = self
                                .operations
                                .send(GatewayEvent::Operation(Box::new(entry)));
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read another replica's log rows"),
                }
            }
            Input::Note(n) => match serde_json::from_str::<Message>(&n.payload) {
                Ok(Message::SessionEnded {
                    from,
                    session,
                    until,
                }) if from != self.cluster.instance => {
                    self.sessions.revoke(&session, until);
                    // Its calls here stop; the HTTP layer closes what is left of it.
                    self.sessions.end(&session);
                }
                Ok(Message::ServerStatus {
                    from,
                    server_id,
                    status,
                    last_error,
                }) if from != self.cluster.instance => {
                    // The replica's id, without its process suffix.
                    let replica = from.rsplit_once('#').map_or(from.as_str(), |(id, _)| id);
                    self.supervisor.publish(GatewayEvent::ServerStatus {
                        server_id,
                        status,
                        last_error,
                        replica: Some(replica.to_string()),
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable message from another replica"),
            },
        }
    }

    /// Brings this replica's copy of one server in line with the database: definition,
    /// secrets, and whether it is wanted (each replica runs its own connection).
    async fn reload_server(self: &Arc<Self>, id: &str) -> crate::Result<()> {
        // Read under the management lock: a write of this replica that lands meanwhile is
        // applied after this, never undone by it.
        let _turn = self.writes.lock().await;
        let key = id.to_string();
        let found = self
            .db(move |s| match s.get_server(&key) {
                Ok(server) => Ok(Some((server, s.auto_connect_ids()?))),
                Err(StoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        match found {
            Some((server, wanted)) => {
                let slot = self.supervisor.upsert(&server);
                self.refresh_log_secrets();
                let now = wanted.contains(&server.server_id);
                let before = {
                    let mut known = self.cluster.wanted.lock().expect("wanted lock");
                    if now {
                        !known.insert(server.server_id.clone())
                    } else {
                        known.remove(&server.server_id)
                    }
                };
                if now && !before && !self.supervisor.is_started(&slot) {
                    self.supervisor.start(&slot);
                } else if !now && before && self.supervisor.is_started(&slot) {
                    self.supervisor.stop(&slot).await;
                }
            }
            None => {
                if self.supervisor.slot(id).is_some() {
                    self.supervisor.remove(id).await;
                }
            }
        }
        Ok(())
    }

    /// Brings this replica's copy of one vMCP in line with the database.
    async fn reload_vmcp(self: &Arc<Self>, id: &str) -> crate::Result<()> {
        // Read under the management lock: a write of this replica that lands meanwhile is
        // applied after this, never undone by it.
        let _turn = self.writes.lock().await;
        let key = id.to_string();
        let found = self
            .db(move |s| match s.get_vmcp(&key) {
                Ok(vmcp) => Ok(Some(vmcp)),
                Err(StoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        match found {
            Some(vmcp) => {
                let same = self
                    .vmcp_entry(&vmcp.vmcp_id)
                    .is_some_and(|e| e.vmcp == vmcp);
                if !same {
                    self.cache_vmcp(&vmcp);
                }
            }
            None => {
                if self.vmcp_entry(id).is_some_and(|e| e.vmcp.vmcp_id == id) {
                    self.forget_vmcp(id);
                }
            }
        }
        Ok(())
    }

    /// `reload_all`, again after a pause while it fails (the database is away).
    async fn reload_all_until_done(self: &Arc<Self>) {
        let mut pause = Duration::from_millis(250);
        loop {
            match self.reload_all().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "reloading the configuration failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
            if self.cluster.stopped.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Reloads every server and vMCP, and the ended sessions (after the listener reconnected).
    async fn reload_all(self: &Arc<Self>) -> crate::Result<()> {
        self.load_ended_sessions().await?;
        let (servers, vmcps, revision) = self
            .db(|s| Ok((s.list_servers()?, s.list_vmcps()?, s.config_revision()?)))
            .await?;
        let stored: HashSet<String> = servers.iter().map(|s| s.server_id.clone()).collect();
        for server in &servers {
            self.reload_server(&server.server_id).await?;
        }
        for slot in self.supervisor.slots() {
            if !stored.contains(&slot.id) {
                self.reload_server(&slot.id).await?;
            }
        }
        let stored: HashSet<String> = vmcps.iter().map(|v| v.vmcp_id.clone()).collect();
        let cached: Vec<String> = self
            .vmcps
            .read()
            .expect("vmcps lock")
            .keys()
            .cloned()
            .collect();
        for vmcp in &vmcps {
            self.reload_vmcp(&vmcp.vmcp_id).await?;
        }
        for id in cached.iter().filter(|id| !stored.contains(*id)) {
            self.reload_vmcp(id).await?;
        }
        self.cluster.revision.fetch_max(revision, Ordering::AcqRel);
        tracing::info!(revision, "configuration reloaded from the database");
        Ok(())
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The listener's thread: polls its connection, hands notifications over, and reconnects (with
/// a full reload) when the connection is lost.
fn listen_loop(
    store: Store,
    tx: tokio::sync::mpsc::UnboundedSender<Input>,
    stopped: Arc<AtomicBool>,
    gateway: std::sync::Weak<Gateway>,
) {
    let set_listening = |on: bool| {
        if let Some(g) = gateway.upgrade() {
            g.cluster.listening.store(on, Ordering::Release);
        }
    };
    let mut backoff = Duration::from_millis(200);
    while !stopped.load(Ordering::Acquire) {
        let mut listener = match store.listen() {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for configuration changes; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        set_listening(true);
        // Whatever changed while nobody listened.
        if tx.send(Input::ReloadAll).is_err() {
            return;
        }
        let mut checked = Instant::now();
        loop {
            if stopped.load(Ordering::Acquire) || gateway.strong_count() == 0 {
                return;
            }
            let polled = listener.poll().and_then(|notes| {
                if checked.elapsed() > CHECK {
                    checked = Instant::now();
                    listener.check()?;
                }
                Ok(notes)
            });
            match polled {
                Ok(notes) => {
                    for n in notes {
                        if tx.send(Input::Note(n)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the database listener; reconnecting");
                    set_listening(false);
                    break;
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

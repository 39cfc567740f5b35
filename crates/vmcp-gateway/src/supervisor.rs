//! The connection supervisor: one live connection per MCP server, shared by every vMCP and
//! client that uses it. Each server has a slot holding its definition, its connection state
//! (a `watch` channel), its cached catalog (tools, resources, templates, prompts) and its log.
//! While a server is wanted, a manager task connects it, refreshes the catalog when the server
//! says a list changed, pings it, notices when it dies, and reconnects with capped exponential
//! backoff. Nothing here touches the database on the path of a call: state is in memory, and
//! connection outcomes are written in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{
    ClientRequest, ClientResult, ErrorData, Prompt, Resource, ResourceTemplate, ServerNotification,
    ServerPeerInfo, ServerRequest, Tool,
};
use rmcp::service::{Peer, RequestContext};
use tokio::runtime::Handle;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vmcp_domain::{
    Capabilities, McpServer, ServerConfig, ServerInfo, ServerStatus, Timestamp, TransportType, time,
};
use vmcp_store::Store;
use vmcp_transport::{LogBuffer, Upstream, UpstreamObserver};

use crate::events::{GatewayEvent, ListKind};
use crate::relay::Relay;

/// Tunables of the supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// How often a connected server is pinged.
    pub ping_interval: Duration,
    /// First reconnection delay; it doubles on each failure up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What a server offers, as last listed.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tools: Vec<Tool>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    pub prompts: Vec<Prompt>,
}

impl Catalog {
    pub fn names(&self) -> Capabilities {
        Capabilities {
            tools: self.tools.iter().map(|t| t.name.to_string()).collect(),
            resources: self.resources.iter().map(|r| r.uri.clone()).collect(),
            resource_templates: self
                .templates
                .iter()
                .map(|t| t.uri_template.clone())
                .collect(),
            prompts: self.prompts.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

/// A live connection, as calls use it.
#[derive(Clone)]
pub struct Live {
    pub peer: Peer<RoleClient>,
    pub info: Arc<ServerPeerInfo>,
    pub pid: Option<u32>,
}

/// The connection state of a server.
#[derive(Clone)]
pub struct ConnState {
    pub status: ServerStatus,
    pub last_error: Option<String>,
    pub last_connected: Option<Timestamp>,
    pub live: Option<Live>,
    /// Number of finished connection attempts; lets a waiter see the outcome of a new one.
    pub outcomes: u64,
    /// While `status` is `AuthRequired`: where a person signs in.
    pub authorization_url: Option<String>,
}

impl ConnState {
    pub fn protocol_version(&self) -> Option<String> {
        self.live
            .as_ref()
            .map(|l| l.info.protocol_version.to_string())
    }

    pub fn server_info(&self) -> Option<ServerInfo> {
        let info = self.live.as_ref()?.info.server_info.as_ref()?;
        Some(ServerInfo {
            name: info.name.clone(),
            version: info.version.clone(),
            title: info.title.clone(),
        })
    }
}

#[derive(Clone)]
struct Definition {
    name: String,
    transport: TransportType,
    config: ServerConfig,
}

struct Manager {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// One registered server.
pub struct Slot {
    pub id: String,
    def: RwLock<Definition>,
    state: watch::Sender<ConnState>,
    catalog: RwLock<Arc<Catalog>>,
    log: LogBuffer,
    manager: Mutex<Option<Manager>>,
    /// Ends a backoff wait early (an explicit connect), or asks for a health check now.
    poke: Notify,
    /// Permits for requests in flight (`max_concurrent_calls`), replaced when the limit changes.
    calls: RwLock<(usize, Arc<tokio::sync::Semaphore>)>,
    /// The secret `env` and `headers` values, masked wherever they show up in logged text.
    secrets: RwLock<Arc<[String]>>,
}

impl Slot {
    pub fn name(&self) -> String {
        self.def.read().expect("definition lock").name.clone()
    }

    pub fn state(&self) -> ConnState {
        self.state.borrow().clone()
    }

    pub fn live(&self) -> Option<Live> {
        self.state.borrow().live.clone()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    pub fn log(&self) -> &LogBuffer {
        &self.log
    }

    /// A permit to send one request to this server, waiting at most `wait` for one of the
    /// `max_concurrent_calls`. `Err` carries the limit when none came free in time.
    pub async fn call_permit(
        &self,
        wait: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, usize> {
        let (limit, calls) = {
            let c = self.calls.read().expect("calls lock");
            (c.0, c.1.clone())
        };
        match tokio::time::timeout(wait, calls.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(limit),
        }
    }

    /// The secret values of this server's definition.
    pub fn secrets(&self) -> Arc<[String]> {
        self.secrets.read().expect("secrets lock").clone()
    }

    fn set_call_limit(&self, limit: usize) {
        let mut c = self.calls.write().expect("calls lock");
        if c.0 != limit {
            *c = (limit, Arc::new(tokio::sync::Semaphore::new(limit)));
        }
    }

    /// The per-request timeout of this server.
    pub fn timeout(&self) -> Duration {
        self.def.read().expect("definition lock").config.timeout()
    }

    /// A call failed in a way that suggests the connection is broken: check it now.
    pub fn suspect(&self) {
        self.poke.notify_one();
    }
}

pub(crate) struct Inner {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    relay: Arc<Relay>,
    store: Store,
    runtime: Handle,
    events: broadcast::Sender<GatewayEvent>,
    options: SupervisorOptions,
    oauth: crate::oauth::upstream::OAuthClient,
}

/// See the module documentation.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    pub fn new(
        store: Store,
        runtime: Handle,
        events: broadcast::Sender<GatewayEvent>,
        options: SupervisorOptions,
        oauth: crate::oauth::upstream::OAuthClient,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: RwLock::new(HashMap::new()),
                relay: Relay::new(&runtime),
                store,
                runtime,
                events,
                options,
                oauth,
            }),
        }
    }

    pub fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        self.inner
            .slots
            .read()
            .expect("slots lock")
            .get(id)
            .cloned()
    }

    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.inner
            .slots
            .read()
            .expect("slots lock")
            .values()
            .cloned()
            .collect()
    }

    /// Adds (or replaces the definition of) a server. A connected server whose transport or
    /// config changed is reconnected; a rename alone keeps the connection.
    pub fn upsert(&self, server: &McpServer) -> Arc<Slot> {
        let def = Definition {
            name: server.name.clone(),
            transport: server.transport_type,
            config: server.config.clone(),
        };
        let mut slots = self.inner.slots.write().expect("slots lock");
        if let Some(slot) = slots.get(&server.server_id).cloned() {
            drop(slots);
            slot.set_call_limit(def.config.max_concurrent_calls());
            *slot.secrets.write().expect("secrets lock") = def.config.secret_values().into();
            let changed = {
                let mut current = slot.def.write().expect("definition lock");
                let changed = current.transport != def.transport || current.config != def.config;
                *current = def;
                changed
            };
            let running = slot.manager.lock().expect("manager lock").is_some();
            if changed && running {
                let sup = self.clone();
                let s = slot.clone();
                self.inner.runtime.spawn(async move {
                    sup.stop(&s).await;
                    sup.start(&s);
                });
            }
            return slot;
        }
        let limit = def.config.max_concurrent_calls();
        let slot = Arc::new(Slot {
            calls: RwLock::new((limit, Arc::new(tokio::sync::Semaphore::new(limit)))),
            secrets: RwLock::new(def.config.secret_values().into()),
            id: server.server_id.clone(),
            def: RwLock::new(def),
            state: watch::Sender::new(ConnState {
                status: ServerStatus::Disconnected,
                last_error: server.last_error.clone(),
                last_connected: server.last_connected,
                live: None,
                outcomes: 0,
                authorization_url: None,
            }),
            catalog: RwLock::new(Arc::new(Catalog::default())),
            log: LogBuffer::default(),
            manager: Mutex::new(None),
            poke: Notify::new(),
        });
        slots.insert(server.server_id.clone(), slot.clone());
        slot
    }

    /// Starts the manager of a slot, unless it runs already.
    pub fn start(&self, slot: &Arc<Slot>) {
        let mut manager = slot.manager.lock().expect("manager lock");
        if manager.as_ref().is_some_and(|m| !m.task.is_finished()) {
            slot.poke.notify_one();
            return;
        }
        let cancel = CancellationToken::new();
        let task = self
            .inner
            .runtime
            .spawn(run(self.inner.clone(), slot.clone(), cancel.clone()));
        *manager = Some(Manager { cancel, task });
    }

    /// Whether the slot's manager runs (the server is wanted: connected or retrying).
    pub fn is_started(&self, slot: &Arc<Slot>) -> bool {
        slot.manager
            .lock()
            .expect("manager lock")
            .as_ref()
            .is_some_and(|m| !m.task.is_finished())
    }

    /// Stops the manager of a slot and waits until its connection is shut down.
    pub async fn stop(&self, slot: &Arc<Slot>) {
        let manager = slot.manager.lock().expect("manager lock").take();
        if let Some(m) = manager {
            m.cancel.cancel();
            let _ = m.task.await;
        }
        let changed = slot.state.send_if_modified(|s| {
            let changed = s.status != ServerStatus::Disconnected || s.live.is_some();
            s.status = ServerStatus::Disconnected;
            s.live = None;
            changed
        });
        if changed {
            self.publish_status(slot);
        }
    }

    /// Stops and forgets a server.
    pub async fn remove(&self, id: &str) {
        let slot = self.inner.slots.write().expect("slots lock").remove(id);
        if let Some(slot) = slot {
            self.stop(&slot).await;
        }
    }

    /// Connects a server (unless it is connected) and waits for the outcome of the attempt,
    /// at most the server's timeout plus a margin.
    pub async fn connect(&self, slot: &Arc<Slot>) -> ConnState {
        let mut rx = slot.state.subscribe();
        let before = rx.borrow().outcomes;
        if rx.borrow().status == ServerStatus::Connected {
            return rx.borrow().clone();
        }
        self.start(slot);
        let wait = slot.timeout() + Duration::from_secs(5);
        // The outcome as it was when it came: a later attempt (a sign-in's retry) may already
        // have changed the state again.
        let outcome = match tokio::time::timeout(
            wait,
            // An outcome since `before` that a newer attempt has not yet taken over.
            rx.wait_for(|s| {
                s.status == ServerStatus::Connected
                    || (s.outcomes > before && s.status != ServerStatus::Connecting)
            }),
        )
        .await
        {
            Ok(Ok(state)) => Some(state.clone()),
            _ => None,
        };
        outcome.unwrap_or_else(|| rx.borrow().clone())
    }

    /// The OAuth client of upstream sign-ins.
    pub fn oauth(&self) -> &crate::oauth::upstream::OAuthClient {
        &self.inner.oauth
    }

    /// A sign-in of this server finished, or was declined: try again now (connect, or show a
    /// fresh authorization URL).
    pub fn retry_sign_in(&self, slot: &Arc<Slot>) {
        slot.poke.notify_one();
    }

    /// The definition's URL and OAuth settings, for a server with `config.auth`.
    pub fn oauth_target(&self, slot: &Slot) -> Option<(String, vmcp_domain::UpstreamAuth)> {
        let def = slot.def.read().expect("definition lock");
        Some((def.config.url.clone()?, def.config.auth.clone()?))
    }

    /// Stops every connection (at shutdown), in parallel.
    pub async fn shutdown(&self) {
        let slots = self.slots();
        futures::future::join_all(slots.iter().map(|s| self.stop(s))).await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GatewayEvent> {
        self.inner.events.subscribe()
    }

    /// Publishes an event of the gateway's own (vMCP changes).
    pub fn publish(&self, event: GatewayEvent) {
        let _ = self.inner.events.send(event);
    }

    pub fn relay(&self) -> &Arc<Relay> {
        &self.inner.relay
    }

    fn publish_status(&self, slot: &Slot) {
        publish_status(&self.inner, slot);
    }
}

fn publish_status(inner: &Inner, slot: &Slot) {
    let state = slot.state.borrow();
    let _ = inner.events.send(GatewayEvent::ServerStatus {
        server_id: slot.id.clone(),
        status: state.status,
        last_error: state.last_error.clone(),
        replica: None,
    });
}

/// Receives what an upstream sends on its own.
struct Observer {
    server_id: String,
    server_name: String,
    refresh: mpsc::UnboundedSender<ListKind>,
    events: broadcast::Sender<GatewayEvent>,
    relay: Arc<Relay>,
}

impl UpstreamObserver for Observer {
    fn notification(&self, notification: ServerNotification) {
        match notification {
            ServerNotification::ToolListChangedNotification(_) => {
                let _ = self.refresh.send(ListKind::Tools);
            }
            ServerNotification::ResourceListChangedNotification(_) => {
                let _ = self.refresh.send(ListKind::Resources);
            }
            ServerNotification::PromptListChangedNotification(_) => {
                let _ = self.refresh.send(ListKind::Prompts);
            }
            ServerNotification::ResourceUpdatedNotification(n) => {
                let _ = self.events.send(GatewayEvent::ResourceUpdated {
                    server_id: self.server_id.clone(),
                    uri: n.params.uri,
                });
            }
            ServerNotification::ProgressNotification(n) => {
                self.relay.progress(&self.server_id, n.params)
            }
            #[allow(deprecated)]
            ServerNotification::LoggingMessageNotification(n) => {
                let _ = self.events.send(GatewayEvent::Log {
                    server_id: self.server_id.clone(),
                    level: n.params.level,
                    logger: n.params.logger,
                    data: n.params.data,
                });
            }
            other => {
                tracing::trace!(server = %self.server_id, notification = ?other, "upstream notification");
            }
        }
    }

    fn request(
        &self,
        request: ServerRequest,
        _context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let method = serde_json::to_value(&request)
            .ok()
            .and_then(|v| v.get("method").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| "this request".into());
        let relay = self.relay.clone();
        let server_id = self.server_id.clone();
        let server_name = self.server_name.clone();
        async move {
            relay
                .request(&server_id, &server_name, request, &method)
                .await
        }
        .boxed()
    }
}

/// Lists what the server offers, by its capabilities. A list that fails is kept empty and
/// noted in the server's log.
async fn list(upstream: &Upstream, log: &LogBuffer, kinds: &[ListKind], catalog: &mut Catalog) {
    let caps = &upstream.info().capabilities;
    let peer = upstream.peer();
    for kind in kinds {
        let result = match kind {
            ListKind::Tools if caps.tools.is_some() => {
                peer.list_all_tools().await.map(|v| catalog.tools = v)
            }
            ListKind::Resources if caps.resources.is_some() => {
                let resources = peer.list_all_resources().await;
                let templates = peer.list_all_resource_templates().await;
                match (resources, templates) {
                    (Ok(r), Ok(t)) => {
                        catalog.resources = r;
                        catalog.templates = t;
                        Ok(())
                    }
                    (Ok(r), Err(e)) => {
                        catalog.resources = r;
                        Err(e)
                    }
                    (Err(e), _) => Err(e),
                }
            }
            ListKind::Prompts if caps.prompts.is_some() => {
                peer.list_all_prompts().await.map(|v| catalog.prompts = v)
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            log.push(&format!("[vmcp] listing {} failed: {e}", kind.as_str()));
        }
    }
}

fn record(inner: &Arc<Inner>, id: &str, connected_at: Option<Timestamp>, error: Option<String>) {
    let store = inner.store.clone();
    let id = id.to_string();
    inner.runtime.spawn_blocking(move || {
        if let Err(e) = store.record_connection(&id, connected_at, error.as_deref()) {
            tracing::warn!(server = %id, error = %e, "could not record the connection outcome");
        }
    });
}

async fn ping(upstream: &Upstream, timeout: Duration) -> Result<(), String> {
    if !upstream.info().protocol_version.has_initialize() {
        // The stateless protocol has no ping; failures of real requests reveal a dead server.
        return Ok(());
    }
    // A health check of the connection, not an operation of a vMCP: it bypasses the pipeline.
    let request = ClientRequest::PingRequest(rmcp::model::PingRequest::default());
    let peer = upstream.peer();
    match tokio::time::timeout(timeout, peer.send_request(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("ping failed: {e}")),
        Err(_) => Err(format!("no answer to ping within {timeout:?}")),
    }
}

/// The manager of one slot: connect, serve, notice failure, back off, reconnect, until cancelled.
async fn run(inner: Arc<Inner>, slot: Arc<Slot>, cancel: CancellationToken) {
    let mut backoff = inner.options.initial_backoff;
    loop {
        slot.state
            .send_modify(|s| s.status = ServerStatus::Connecting);
        publish_status(&inner, &slot);
        let def = slot.def.read().expect("definition lock").clone();
        let (refresh_tx, mut refresh_rx) = mpsc::unbounded_channel();
        let observer = Arc::new(Observer {
            server_id: slot.id.clone(),
            server_name: def.name.clone(),
            refresh: refresh_tx,
            events: inner.events.clone(),
            relay: inner.relay.clone(),
        });
        let oauth = match (&def.config.auth, &def.config.url) {
            (Some(auth), Some(url)) => tokio::select! {
                r = inner.oauth.for_connect(&slot.id, url, auth) => r.map_err(|e| e.to_string()),
                _ = cancel.cancelled() => {
                    finish(&inner, &slot, None);
                    return;
                }
            },
            _ => Ok(crate::oauth::upstream::Connecting {
                link: None,
                credentials: None,
            }),
        };
        let mut used = None;
        let attempt = match oauth {
            Ok(oauth) => {
                used = oauth.credentials;
                tokio::select! {
                    r = vmcp_transport::connect(def.transport, &def.config, oauth.link, observer, &slot.log) => r,
                    _ = cancel.cancelled() => {
                        finish(&inner, &slot, None);
                        return;
                    }
                }
            }
            Err(e) => Err(vmcp_transport::ConnectError::Handshake(e)),
        };
        let attempt = match attempt {
            Err(vmcp_transport::ConnectError::AuthRequired { status, challenge }) => {
                match signed_out(&inner, &slot, &def, status, &challenge, used, &cancel).await {
                    SignIn::Connect => continue,
                    SignIn::Cancelled => return,
                    SignIn::Failed(e) => Err(vmcp_transport::ConnectError::Handshake(e)),
                }
            }
            other => other,
        };
        let failure = match attempt {
            Ok(mut upstream) => {
                backoff = inner.options.initial_backoff;
                let mut catalog = Catalog::default();
                list(&upstream, &slot.log, &ListKind::ALL, &mut catalog).await;
                *slot.catalog.write().expect("catalog lock") = Arc::new(catalog);
                let now = time::now();
                let live = Live {
                    peer: upstream.peer().clone(),
                    info: Arc::new(upstream.info().clone()),
                    pid: upstream.pid(),
                };
                slot.state.send_modify(|s| {
                    s.status = ServerStatus::Connected;
                    s.authorization_url = None;
                    s.last_error = None;
                    s.last_connected = Some(now);
                    s.live = Some(live);
                    s.outcomes += 1;
                });
                tracing::info!(server = %def.name, pid = ?upstream.pid(), "connected");
                publish_status(&inner, &slot);
                let _ = inner.events.send(GatewayEvent::CatalogChanged {
                    server_id: slot.id.clone(),
                });
                record(&inner, &slot.id, Some(now), None);

                let failure = serve(&inner, &slot, &mut upstream, &mut refresh_rx, &cancel).await;
                let failure = match failure {
                    Some(reason) => {
                        let reason = match upstream.exit_description().await {
                            Some(exit) => format!("{reason}: {exit}"),
                            None => reason,
                        };
                        Some(vmcp_transport::with_log_tail(reason, &slot.log))
                    }
                    None => None,
                };
                slot.state.send_modify(|s| s.live = None);
                upstream.shutdown().await;
                match failure {
                    None => {
                        finish(&inner, &slot, None);
                        return;
                    }
                    Some(f) => f,
                }
            }
            Err(e) => e.to_string(),
        };
        // Upstream text (an error may quote the server's output or its URL): no secrets.
        let failure = slot.log.scrub(&failure);
        tracing::warn!(server = %def.name, error = %failure, retry_in = ?backoff, "MCP server unavailable");
        slot.state.send_modify(|s| {
            s.status = ServerStatus::Error;
            s.authorization_url = None;
            s.last_error = Some(failure.clone());
            s.live = None;
            s.outcomes += 1;
        });
        *slot.catalog.write().expect("catalog lock") = Arc::new(Catalog::default());
        publish_status(&inner, &slot);
        let _ = inner.events.send(GatewayEvent::CatalogChanged {
            server_id: slot.id.clone(),
        });
        record(&inner, &slot.id, None, Some(failure));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = slot.poke.notified() => {}
            _ = cancel.cancelled() => {
                finish(&inner, &slot, None);
                return;
            }
        }
        backoff = (backoff * 2).min(inner.options.max_backoff);
    }
}

/// Serves a live connection until it fails (returns why) or is cancelled (returns `None`).
async fn serve(
    inner: &Arc<Inner>,
    slot: &Arc<Slot>,
    upstream: &mut Upstream,
    refresh_rx: &mut mpsc::UnboundedReceiver<ListKind>,
    cancel: &CancellationToken,
) -> Option<String> {
    let mut pings = tokio::time::interval(inner.options.ping_interval);
    pings.tick().await;
    let timeout = slot.timeout().min(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = upstream.closed() => return Some("the connection closed".to_string()),
            _ = pings.tick() => {
                if let Err(e) = ping(upstream, timeout).await {
                    return Some(e);
                }
            }
            _ = slot.poke.notified() => {
                if let Err(e) = ping(upstream, timeout).await {
                    return Some(e);
                }
            }
            Some(kind) = refresh_rx.recv() => {
                // Coalesce a burst of notifications into one refresh per kind.
                let mut kinds = vec![kind];
                while let Ok(k) = refresh_rx.try_recv() {
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
                let mut catalog = {
                    let current = slot.catalog();
                    Catalog {
                        tools: current.tools.clone(),
                        resources: current.resources.clone(),
                        templates: current.templates.clone(),
                        prompts: current.prompts.clone(),
                    }
                };
                list(upstream, &slot.log, &kinds, &mut catalog).await;
                *slot.catalog.write().expect("catalog lock") = Arc::new(catalog);
                let _ = inner.events.send(GatewayEvent::CatalogChanged { server_id: slot.id.clone() });
            }
        }
    }
}

/// How a refusal (401/403) of an OAuth server ended.
enum SignIn {
    /// Tokens are there now: connect again at once.
    Connect,
    /// The manager was cancelled while waiting.
    Cancelled,
    /// Why no sign-in is possible (the server's error).
    Failed(String),
}

/// The server refused vMCP. With `config.auth`, starts a sign-in and waits for it (status
/// `auth_required`); client credentials get a token at once. Without, says what to configure.
async fn signed_out(
    inner: &Arc<Inner>,
    slot: &Arc<Slot>,
    def: &Definition,
    status: u16,
    challenge: &str,
    refused: Option<String>,
    cancel: &CancellationToken,
) -> SignIn {
    let (Some(auth), Some(url)) = (&def.config.auth, &def.config.url) else {
        return SignIn::Failed(format!(
            "the server requires OAuth authorization (HTTP {status}, WWW-Authenticate: {challenge}); \
             set config.auth to {{\"type\": \"oauth\"}} to let vMCP sign in (docs/oauth.md), \
             or put a token in config.headers"
        ));
    };
    let next = tokio::select! {
        r = inner.oauth.on_refused(&slot.id, url, auth, challenge, refused) => r,
        _ = cancel.cancelled() => {
            finish(inner, slot, None);
            return SignIn::Cancelled;
        }
    };
    let (authorization_url, kept) = match next {
        Ok(crate::oauth::upstream::Refusal::SignIn(started)) => {
            (started.authorization_url, started.credentials)
        }
        Ok(crate::oauth::upstream::Refusal::Retry) => return SignIn::Connect,
        Err(e) => return SignIn::Failed(e.to_string()),
    };
    tracing::info!(server = %def.name, "the server requires a sign-in: open its authorization_url");
    slot.state.send_modify(|s| {
        s.status = ServerStatus::AuthRequired;
        s.authorization_url = Some(authorization_url);
        s.last_error = Some(if status == 403 {
            "the server needs more scopes: sign in again at authorization_url".to_string()
        } else {
            "the server requires a sign-in: open authorization_url in a browser".to_string()
        });
        s.live = None;
        s.outcomes += 1;
    });
    *slot.catalog.write().expect("catalog lock") = Arc::new(Catalog::default());
    publish_status(inner, slot);
    // The callback may land on another replica: look for the tokens now and then too.
    let mut checks = tokio::time::interval(Duration::from_secs(3));
    checks.tick().await;
    loop {
        tokio::select! {
            // An explicit connect: try again (signed in meanwhile, or a fresh sign-in URL,
            // since the person may have declined or let the last one expire).
            _ = slot.poke.notified() => return SignIn::Connect,
            _ = checks.tick() => {
                if inner.oauth.signed_in_since(&slot.id, kept.as_deref()).await {
                    return SignIn::Connect;
                }
            }
            _ = cancel.cancelled() => {
                finish(inner, slot, None);
                return SignIn::Cancelled;
            }
        }
    }
}

fn finish(inner: &Arc<Inner>, slot: &Arc<Slot>, error: Option<String>) {
    let error = error.map(|e| slot.log.scrub(&e));
    slot.state.send_modify(|s| {
        s.status = ServerStatus::Disconnected;
        s.authorization_url = None;
        s.live = None;
        if error.is_some() {
            s.last_error = error;
        }
    });
    *slot.catalog.write().expect("catalog lock") = Arc::new(Catalog::default());
    publish_status(inner, slot);
    let _ = inner.events.send(GatewayEvent::CatalogChanged {
        server_id: slot.id.clone(),
    });
}

// Logging (setLevel, notifications/message) is deprecated by SEP-2577 but is what most clients
// speak today; the gateway forwards it.
#![allow(deprecated)]

//! A vMCP as an MCP server: one `VmcpSession` per client session, on rmcp's server side. It
//! answers from the vMCP's aggregate and forwards calls to the member servers' shared
//! connections, with progress, cancellation and upstream requests relayed (see `relay`), and
//! pushes `list_changed`, `resources/updated` and log messages from the members to its client.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use rmcp::model::*;
use rmcp::service::{NotificationContext, Peer, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use vmcp_domain::{Timestamp, time};

use crate::mrtr::{Round, Step};
use crate::ops::SessionCall;
use crate::relay::{Asker, Caller, ProgressTarget};
use crate::{ErrorKind, Gateway, GatewayError, GatewayEvent, Hint, Operation, What};
use vmcp_domain::ToolSearch;

/// Items per page of the list methods.
pub const PAGE_SIZE: usize = 500;

/// An open MCP session, as the stats and the API see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: String,
    pub vmcp_id: String,
    pub client_id: String,
    pub opened_at: Timestamp,
}

/// The open sessions of the gateway.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, SessionInfo>>,
    /// The end of each session, by the id its transport gave it (`Mcp-Session-Id`), with the
    /// handler's own id (a session resumed under the same transport id is another handler:
    /// the old one's end must not remove the new one's entries).
    ends: Mutex<HashMap<String, (String, CancellationToken)>>,
    /// Sessions (by transport id, with their handler's id) whose state is more than their id
    /// carries: a log level set or resource subscriptions. They stay in memory while open.
    pins: Mutex<HashMap<String, String>>,
    /// Sessions (by transport id) that ended by their client's request, until when their ids
    /// are refused (by every replica, also one that never held them; see `cluster.rs`).
    revoked: Mutex<HashMap<String, Timestamp>>,
}

impl Sessions {
    /// Ends the session that its transport knows as `transport_id`: its calls in flight are
    /// cancelled upstream at once (and their slots freed). Whether such a session was open.
    pub fn end(&self, transport_id: &str) -> bool {
        let token = self
            .ends
            .lock()
            .expect("sessions lock")
            .remove(transport_id);
        token.map(|(_, t)| t.cancel()).is_some()
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        self.open
            .lock()
            .expect("sessions lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn count(&self) -> usize {
        self.open.lock().expect("sessions lock").len()
    }

    /// Whether the session holds state its id does not carry (log level, subscriptions), so
    /// that it must not be released from memory while open.
    pub fn is_pinned(&self, transport_id: &str) -> bool {
        self.pins
            .lock()
            .expect("sessions lock")
            .contains_key(transport_id)
    }

    fn pin(&self, transport_id: &str, handler: &str) {
        self.pins
            .lock()
            .expect("sessions lock")
            .insert(transport_id.to_string(), handler.to_string());
    }

    /// Notes that the session `transport_id` ended at its client's request (here or on
    /// another replica): its id is refused until `until` (when its age refuses it anyway).
    pub fn revoke(&self, transport_id: &str, until: Timestamp) {
        self.revoked
            .lock()
            .expect("sessions lock")
            .insert(transport_id.to_string(), until);
    }

    pub fn is_revoked(&self, transport_id: &str) -> bool {
        self.revoked
            .lock()
            .expect("sessions lock")
            .get(transport_id)
            .is_some_and(|until| *until > time::now())
    }

    /// Forgets the revocations that expired.
    pub fn prune_revoked(&self) {
        let now = time::now();
        self.revoked
            .lock()
            .expect("sessions lock")
            .retain(|_, until| *until > now);
    }
}

struct State {
    id: String,
    /// Cancelled when the session ends (DELETE, stream closed, eviction, shutdown): every call
    /// in flight stops waiting and is cancelled upstream.
    ended: CancellationToken,
    /// The id the transport gave this session, if it has one (streamable HTTP).
    transport_id: Mutex<Option<String>>,
    gateway: Weak<Gateway>,
    vmcp_id: String,
    client_id: Mutex<String>,
    level: Mutex<LoggingLevel>,
    subscriptions: Mutex<HashSet<String>>,
    events: Mutex<Option<tokio::task::AbortHandle>>,
    /// The OAuth subject a legacy SSE session was opened with (its messages carry no request
    /// of their own to tell it).
    subject: std::sync::OnceLock<String>,
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(task) = self.events.lock().expect("events lock").take() {
            task.abort();
        }
        if let Some(gateway) = self.gateway.upgrade() {
            gateway
                .sessions
                .open
                .lock()
                .expect("sessions lock")
                .remove(&self.id);
            if let Some(transport_id) = self.transport_id.lock().expect("lock").take() {
                let mut ends = gateway.sessions.ends.lock().expect("sessions lock");
                if ends.get(&transport_id).is_some_and(|(h, _)| *h == self.id) {
                    ends.remove(&transport_id);
                }
                drop(ends);
                let mut pins = gateway.sessions.pins.lock().expect("sessions lock");
                if pins.get(&transport_id).is_some_and(|h| *h == self.id) {
                    pins.remove(&transport_id);
                }
            }
        }
    }
}

/// The MCP server of one client session of a vMCP.
#[derive(Clone)]
pub struct VmcpSession {
    gateway: Arc<Gateway>,
    state: Arc<State>,
}

/// The severity of a log level (MCP's levels are ordered, rmcp's type is not).
pub(crate) fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// A gateway error as a JSON-RPC error: the code by its kind, the message in MCP's words
/// (where to look next names an MCP method, not a REST route).
pub fn to_error_data(e: GatewayError) -> ErrorData {
    error_data(e, false)
}

/// `searching`: the vMCP lists its tools through `search_tools` (tool search), so that is
/// where a client finds them.
fn error_data(e: GatewayError, searching: bool) -> ErrorData {
    let mut message = format!("{}: {}", e.error, e.detail);
    if let Some(Hint::List { what, .. }) = &e.hint {
        let how = match what {
            What::Prompt => "list them with prompts/list",
            What::Resource => "list them with resources/list and resources/templates/list",
            _ if searching => "find them with search_tools",
            _ => "list them with tools/list",
        };
        message.push_str(&format!("; {how}"));
    }
    match e.kind {
        ErrorKind::BadRequest => ErrorData::invalid_params(message, None),
        ErrorKind::NotFound {
            what: What::Resource,
        } => ErrorData::resource_not_found(message, None),
        ErrorKind::NotFound { what: What::Method } => {
            ErrorData::new(ErrorCode::METHOD_NOT_FOUND, message, None)
        }
        ErrorKind::NotFound { .. } => ErrorData::invalid_params(message, None),
        _ => ErrorData::internal_error(message, None),
    }
}

fn page<T: Clone>(
    items: &[T],
    cursor: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| ErrorData::invalid_params(format!("invalid cursor {c:?}"), None))?,
    };
    let end = (start + PAGE_SIZE).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

impl VmcpSession {
    /// A new session of the vMCP `vmcp_id` (which must exist when requests arrive).
    pub fn new(gateway: Arc<Gateway>, vmcp_id: String) -> Self {
        Self::ending_with(gateway, vmcp_id, CancellationToken::new())
    }

    /// A new session that ends (cancelling its calls in flight) when `ended` is cancelled.
    pub fn ending_with(gateway: Arc<Gateway>, vmcp_id: String, ended: CancellationToken) -> Self {
        let state = Arc::new(State {
            id: uuid_like(),
            ended,
            transport_id: Mutex::new(None),
            gateway: Arc::downgrade(&gateway),
            vmcp_id,
            client_id: Mutex::new(String::new()),
            level: Mutex::new(LoggingLevel::Info),
            subscriptions: Mutex::new(HashSet::new()),
            events: Mutex::new(None),
            subject: std::sync::OnceLock::new(),
        });
        Self { gateway, state }
    }

    /// Names the session's client by an OAuth subject (a protected endpoint's legacy SSE
    /// session, whose token was checked when its stream opened).
    pub fn with_subject(self, subject: Option<String>) -> Self {
        if let Some(s) = subject {
            let _ = self.state.subject.set(s);
        }
        self
    }

    pub fn session_id(&self) -> &str {
        &self.state.id
    }

    /// Keeps this session in memory while it is open: it holds state its id does not carry.
    fn pin(&self) {
        if let Some(id) = self.state.transport_id.lock().expect("lock").as_deref() {
            self.gateway.sessions.pin(id, &self.state.id);
        }
    }

    /// Resolves when the request of `context` is cancelled by its client, or its session ends.
    async fn stopped(&self, context: &RequestContext<RoleServer>) {
        tokio::select! {
            _ = context.ct.cancelled() => {}
            _ = self.state.ended.cancelled() => {}
        }
    }

    fn is_member(&self, server_id: &str) -> bool {
        self.gateway
            .vmcp_entry(&self.state.vmcp_id)
            .is_some_and(|e| e.vmcp.mcp_servers.iter().any(|m| m.server_id == server_id))
    }

    /// How an MCP client's call is filled: its arguments are substituted only when the vMCP
    /// enables it; `_meta["vmcp/params"]` gives `@param:` values.
    fn fill(
        &self,
        meta: Option<&RequestMetaObject>,
        context: &RequestContext<RoleServer>,
    ) -> crate::Fill {
        let from = |v: Option<serde_json::Value>| {
            v.and_then(|v| v.get("vmcp/params").and_then(|p| p.as_object().cloned()))
        };
        let params = from(meta.and_then(|m| serde_json::to_value(m).ok()))
            .or_else(|| from(serde_json::to_value(&context.meta).ok()));
        crate::Fill {
            caller: self.caller(context),
            caller_args: self
                .gateway
                .vmcp_entry(&self.state.vmcp_id)
                .is_some_and(|e| e.vmcp.mcp_substitution),
            params,
            depth: 0,
        }
    }

    /// The client of this request, as the operation log names it: the session's client, or for
    /// a stateless (2026-07-28) request the client named in its `_meta`.
    fn caller(&self, context: &RequestContext<RoleServer>) -> crate::Caller {
        if let Some(subject) = token_subject(context).or_else(|| self.state.subject.get().cloned())
        {
            // An OAuth-protected endpoint: the token's subject is who calls.
            return crate::Caller {
                client_id: subject,
                source: crate::Source::Mcp,
                parent_log_id: None,
            };
        }
        let mut client_id = self.state.client_id.lock().expect("client id lock").clone();
        if client_id.is_empty() {
            // A session whose `notifications/initialized` went to another replica (a balancer
            // may send it anywhere) is named as on that replica.
            let transport_id = context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|p| p.headers.get("mcp-session-id"))
                .and_then(|v| v.to_str().ok());
            client_id = match (transport_id, context.peer.peer_info()) {
                (Some(id), Some(info)) => crate::session::client_id(Some(&info), id),
                _ => stateless_client_id(context.client_info().as_ref()),
            };
        }
        crate::Caller {
            client_id,
            source: crate::Source::Mcp,
            parent_log_id: None,
        }
    }

    /// The call of a client of this session (2025-era: asked directly). A client that declared
    /// no roots has the roots of every other such client (none): an upstream that last got
    /// those is not told they changed before its call (a round trip, and a log line the
    /// upstream may send to every session, per call of many rootless clients taking turns).
    fn session_call(&self, context: &RequestContext<RoleServer>) -> SessionCall {
        let declares_roots = context
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.roots.is_some());
        let roots_key = crate::relay::roots_key(declares_roots, || self.state.id.clone());
        SessionCall {
            caller: Caller {
                progress: ProgressTarget::new(
                    context.peer.clone(),
                    context.meta.get_progress_token(),
                ),
                asker: Asker::Session(context.peer.clone()),
                roots_key: Some(roots_key),
            },
        }
    }

    /// One MRTR round of a 2026-07-28 request (`method` on `target`): `start` runs the
    /// operation for the client's call; see `mrtr::Mrtr::round`.
    async fn stateless_round<F>(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        target: &str,
        request_state: Option<String>,
        input_responses: Option<rmcp::model::InputResponses>,
        start: impl FnOnce(SessionCall) -> F + Send + 'static,
    ) -> Result<Step, ErrorData>
    where
        F: std::future::Future<Output = crate::mrtr::Outcome> + Send + 'static,
    {
        let client = token_subject(context)
            .or_else(|| self.state.subject.get().cloned())
            .unwrap_or_else(|| stateless_client_id(context.client_info().as_ref()));
        let principal = format!("{}\n{client}\n{method}\n{target}", self.state.vmcp_id);
        // Stateless clients have no identity across requests but their name: an upstream that
        // last saw the roots of this client's name (or, for clients without roots, of any
        // client without roots, stateless or not) is not asked to fetch them again before
        // every call. Two instances of one client share their roots this way (docs/mcp.md
        // says so).
        let declares_roots = context
            .client_capabilities()
            .is_some_and(|c| c.roots.is_some());
        let roots_key = crate::relay::roots_key(declares_roots, || {
            format!("stateless\n{}\n{client}", self.state.vmcp_id)
        });
        self.gateway
            .mrtr
            .round(
                Round {
                    principal,
                    capabilities: context.client_capabilities(),
                    request_state,
                    input_responses,
                    progress: ProgressTarget::new(
                        context.peer.clone(),
                        context.meta.get_progress_token(),
                    ),
                },
                move |asker, progress| {
                    start(SessionCall {
                        caller: Caller {
                            progress,
                            asker,
                            roots_key: Some(roots_key),
                        },
                    })
                },
                self.stopped(context),
            )
            .await
    }

    /// How this vMCP offers its tools.
    fn tool_search(&self) -> ToolSearch {
        self.gateway
            .vmcp_entry(&self.state.vmcp_id)
            .map(|e| e.vmcp.tool_search)
            .unwrap_or_default()
    }

    /// The `search_tools` meta-tool: the matches as structured content and as text.
    async fn search(
        &self,
        context: &RequestContext<RoleServer>,
        op: Operation,
    ) -> Result<CallToolResponse, ErrorData> {
        let fill = crate::Fill::of(self.caller(context));
        let (tools, of) = tokio::select! {
            result = self.gateway.operate(&self.state.vmcp_id, op, fill, None) => result
                .and_then(crate::Output::into_search)
                .map_err(to_error_data)?,
            _ = self.stopped(context) => return Err(cancelled()),
        };
        let found = serde_json::json!({ "tools": tools, "of": of });
        let text = serde_json::to_string(&found).unwrap_or_default();
        let mut result = CallToolResult::structured(found);
        result.content = vec![ContentBlock::text(text)];
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result.into())
    }

    /// A list, logged like every operation (the face pages it).
    async fn list(
        &self,
        context: &RequestContext<RoleServer>,
        op: Operation,
    ) -> Result<Arc<crate::aggregate::Aggregate>, ErrorData> {
        let fill = crate::Fill::of(self.caller(context));
        self.gateway
            .operate(&self.state.vmcp_id, op, fill, None)
            .await
            .and_then(crate::Output::into_aggregate)
            .map_err(to_error_data)
    }

    /// An operation that relays a call to a member (tools, prompts, reads): for a 2026-07-28
    /// request, one MRTR round of it (`retry`: its `requestState` and `inputResponses`); for a
    /// session, the call with its client reachable, until it ends or the client cancels.
    async fn call(
        &self,
        context: &RequestContext<RoleServer>,
        op: Operation,
        fill: crate::Fill,
        retry: (Option<String>, Option<InputResponses>),
    ) -> Result<Step, ErrorData> {
        let searching = !self.tool_search().is_off();
        let to_error_data = move |e| error_data(e, searching);
        if is_stateless(context) {
            let (gateway, vmcp) = (self.gateway.clone(), self.state.vmcp_id.clone());
            let (method, target) = (op.method(), op.target().unwrap_or_default());
            return self
                .stateless_round(
                    context,
                    method,
                    &target,
                    retry.0,
                    retry.1,
                    move |call| async move {
                        gateway
                            .operate(&vmcp, op, fill, Some(&call))
                            .await
                            .and_then(crate::Output::into_server_result)
                            .map(marked_complete)
                            .map_err(to_error_data)
                    },
                )
                .await;
        }
        let call = self.session_call(context);
        tokio::select! {
            result = self.gateway.operate(&self.state.vmcp_id, op, fill, Some(&call)) => result
                .and_then(crate::Output::into_server_result)
                .map(|r| Step::Done(Box::new(marked_complete(r))))
                .map_err(to_error_data),
            _ = self.stopped(context) => Err(cancelled()),
        }
    }

    /// An operation that asks nothing of the client (completion, subscriptions), until it
    /// ends or the client cancels.
    async fn direct(
        &self,
        context: &RequestContext<RoleServer>,
        op: Operation,
    ) -> Result<ServerResult, ErrorData> {
        let fill = crate::Fill::of(self.caller(context));
        tokio::select! {
            result = self.gateway.operate(&self.state.vmcp_id, op, fill, None) => result
                .and_then(crate::Output::into_server_result)
                .map(marked_complete)
                .map_err(to_error_data),
            _ = self.stopped(context) => Err(cancelled()),
        }
    }

    /// Pushes what happens upstream to this session's client, until the client goes away.
    fn watch(&self, peer: Peer<RoleServer>) {
        let mut events = self.gateway.subscribe();
        // The task must not keep the session alive: it holds it weakly, and the session's end
        // (its `State` dropped with rmcp's handler) aborts it, even if no event ever comes.
        let gateway = self.gateway.clone();
        let state = Arc::downgrade(&self.state);
        let vmcp_id = self.state.vmcp_id.clone();
        let task = tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => GatewayEvent::VmcpChanged {
                        vmcp_id: vmcp_id.clone(),
                    },
                    Err(RecvError::Closed) => return,
                };
                let Some(state) = state.upgrade() else { return };
                let me = VmcpSession {
                    gateway: gateway.clone(),
                    state,
                };
                if peer.is_transport_closed() {
                    return;
                }
                let sent = match event {
                    GatewayEvent::CatalogChanged { server_id } if me.is_member(&server_id) => {
                        list_changed(&peer).await
                    }
                    GatewayEvent::VmcpChanged { vmcp_id } if vmcp_id == me.state.vmcp_id => {
                        list_changed(&peer).await
                    }
                    GatewayEvent::ResourceUpdated { server_id, uri }
                        if me.is_member(&server_id)
                            && me.state.subscriptions.lock().expect("lock").contains(&uri) =>
                    {
                        peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                            .await
                            .is_ok()
                    }
                    GatewayEvent::Log {
                        server_id,
                        level,
                        logger,
                        data,
                    } if me.is_member(&server_id)
                        && severity(level) >= severity(*me.state.level.lock().expect("lock")) =>
                    {
                        let mut message = LoggingMessageNotificationParam::new(level, data);
                        message.logger = logger;
                        peer.notify_logging_message(message).await.is_ok()
                    }
                    _ => true,
                };
                if !sent && peer.is_transport_closed() {
                    return;
                }
            }
        });
        *self.state.events.lock().expect("events lock") = Some(task.abort_handle());
    }
}

fn cancelled() -> ErrorData {
    ErrorData::internal_error("cancelled by the client", None)
}

async fn list_changed(peer: &Peer<RoleServer>) -> bool {
    peer.notify_tool_list_changed().await.is_ok()
        && peer.notify_resource_list_changed().await.is_ok()
        && peer.notify_prompt_list_changed().await.is_ok()
}

fn uuid_like() -> String {
    vmcp_domain::ids::new_log_id()
        .trim_start_matches("log_")
        .to_string()
}

/// Whether a request is of the 2026-07-28 era (stateless: no requests can be sent to its
/// client; rmcp gives such requests a peer whose info comes from the request's `_meta`).
fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

/// The subject of the request's verified OAuth access token (see `oauth::TokenSubject`).
fn token_subject(context: &RequestContext<RoleServer>) -> Option<String> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<crate::oauth::TokenSubject>())
        .map(|s| s.0.clone())
}

/// The client id of a stateless request: `name/version`, from its `_meta` (where clientInfo is
/// optional).
fn stateless_client_id(info: Option<&Implementation>) -> String {
    match info {
        Some(i) if !i.name.is_empty() => format!("{}/{}", i.name, i.version),
        _ => "mcp-client".to_string(),
    }
}

/// The client id of a session: `name/version#session`.
fn client_id(info: Option<&ClientInfo>, session: &str) -> String {
    let short = &session[..session.len().min(8)];
    match info {
        Some(i) => format!("{}/{}#{short}", i.client_info.name, i.client_info.version),
        None => format!("mcp-client#{short}"),
    }
}

impl ServerHandler for VmcpSession {
    fn get_info(&self) -> ServerInfo {
        let (name, description) = match self.gateway.vmcp_entry(&self.state.vmcp_id) {
            Some(e) => (e.vmcp.name.clone(), e.vmcp.description.clone()),
            None => (self.state.vmcp_id.clone(), String::new()),
        };
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let instructions = if description.is_empty() {
            format!("vMCP {name}: the tools, resources and prompts of its MCP servers.")
        } else {
            description
        };
        InitializeResult::new(capabilities)
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_server_info(
                Implementation::new(name.clone(), env!("CARGO_PKG_VERSION"))
                    .with_title(format!("vMCP {name}")),
            )
            .with_instructions(instructions)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // A resumed session hears `initialized` twice: from the replayed handshake, then from
        // its client (whose first request after `initialize` resumed it). Once is enough.
        if self.state.events.lock().expect("events lock").is_some() {
            return;
        }
        let transport_id = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        // The transport's id is the session's on every replica that resumes it.
        let client = client_id(
            context.peer.peer_info().as_deref(),
            transport_id.as_deref().unwrap_or(&self.state.id),
        );
        if let Some(transport_id) = transport_id {
            self.gateway
                .sessions
                .ends
                .lock()
                .expect("sessions lock")
                .insert(
                    transport_id.clone(),
                    (self.state.id.clone(), self.state.ended.clone()),
                );
            *self.state.transport_id.lock().expect("lock") = Some(transport_id);
        }
        *self.state.client_id.lock().expect("client id lock") = client.clone();
        self.gateway
            .sessions
            .open
            .lock()
            .expect("sessions lock")
            .insert(
                self.state.id.clone(),
                SessionInfo {
                    session_id: self.state.id.clone(),
                    vmcp_id: self.state.vmcp_id.clone(),
                    client_id: client,
                    opened_at: time::now(),
                },
            );
        self.watch(context.peer);
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let aggregate = self.list(&context, Operation::ListTools).await?;
        let tools = match self.tool_search() {
            ToolSearch::Off => aggregate.tools.clone(),
            ToolSearch::Search => meta_tools(aggregate.tools.len()),
            ToolSearch::Both => {
                // A member's own tool named like a meta-tool is reached with call_tool; listed
                // twice under one name, clients would refuse the whole list.
                let mut all = meta_tools(aggregate.tools.len());
                all.extend(
                    aggregate
                        .tools
                        .iter()
                        .filter(|t| t.name != SEARCH_TOOLS && t.name != CALL_TOOL)
                        .cloned(),
                );
                all
            }
        };
        let (tools, next) = page(&tools, cursor(&request))?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let fill = self.fill(request.meta.as_ref(), &context);
        let mut op = Operation::CallTool {
            name: request.name.into_owned(),
            arguments: request.arguments,
        };
        if !self.tool_search().is_off() {
            match meta_call(op)? {
                Meta::Search(search) => return self.search(&context, search).await,
                Meta::Call(call) => op = call,
            }
        }
        let retry = (request.request_state, request.input_responses);
        match self.call(&context, op, fill, retry).await? {
            Step::Input(input) => Ok(CallToolResponse::InputRequired(input)),
            Step::Done(done) => match *done {
                ServerResult::CallToolResult(r) => Ok(r.into()),
                _ => Err(other_result("tools/call")),
            },
        }
    }

    /// The client's roots changed: the upstreams that cache them are told (and ask again).
    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        let servers = self
            .gateway
            .supervisor()
            .relay()
            .servers_with_roots_of(&self.state.id);
        for server_id in servers {
            if let Ok((_, peer)) = self.gateway.peer_of(&server_id).await {
                let _ = peer.notify_roots_list_changed().await;
            }
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let aggregate = self.list(&context, Operation::ListResources).await?;
        let (resources, next) = page(&aggregate.resources, cursor(&request))?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let aggregate = self
            .list(&context, Operation::ListResourceTemplates)
            .await?;
        let (templates, next) = page(&aggregate.templates, cursor(&request))?;
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let fill = crate::Fill::of(self.caller(&context));
        let op = Operation::ReadResource { uri: request.uri };
        let retry = (request.request_state, request.input_responses);
        match self.call(&context, op, fill, retry).await? {
            Step::Input(input) => Ok(ReadResourceResponse::InputRequired(input)),
            Step::Done(done) => match *done {
                ServerResult::ReadResourceResult(r) => Ok(r.into()),
                _ => Err(other_result("resources/read")),
            },
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let op = Operation::Subscribe {
            uri: request.uri.clone(),
        };
        self.direct(&context, op).await?;
        self.state
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .insert(request.uri);
        self.pin();
        Ok(())
    }

    /// 2026-07-28 clients' `subscriptions/listen`: everything they ask for is accepted (URIs
    /// that no member offers simply never change).
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    /// Pushes the vMCP's list changes and the updates of the subscribed resources (subscribed
    /// upstream, as `resources/subscribe` does) until the client ends the subscription.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut events = self.gateway.subscribe();
        let accepted = context.accepted().clone();
        let uris: HashSet<String> = accepted
            .resource_subscriptions
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let caller = crate::Caller {
            client_id: stateless_client_id(None),
            source: crate::Source::Mcp,
            parent_log_id: None,
        };
        for uri in &uris {
            // A URI that no member offers, or whose server cannot subscribe, simply never
            // changes (the operation log says why).
            let op = Operation::Subscribe { uri: uri.clone() };
            let _ = self
                .gateway
                .operate(
                    &self.state.vmcp_id,
                    op,
                    crate::Fill::of(caller.clone()),
                    None,
                )
                .await;
        }
        let sink = context.sink().clone();
        let lists = [
            (
                accepted.tools_list_changed,
                ServerNotification::ToolListChangedNotification(Default::default()),
            ),
            (
                accepted.prompts_list_changed,
                ServerNotification::PromptListChangedNotification(Default::default()),
            ),
            (
                accepted.resources_list_changed,
                ServerNotification::ResourceListChangedNotification(Default::default()),
            ),
        ];
        let changed = || -> Vec<ServerNotification> {
            lists
                .iter()
                .filter(|(on, _)| *on == Some(true))
                .map(|(_, n)| n.clone())
                .collect()
        };
        loop {
            let event = tokio::select! {
                _ = context.cancelled() => return Ok(()),
                _ = self.state.ended.cancelled() => return Ok(()),
                event = events.recv() => event,
            };
            let event = match event {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => GatewayEvent::VmcpChanged {
                    vmcp_id: self.state.vmcp_id.clone(),
                },
                Err(RecvError::Closed) => return Ok(()),
            };
            let notifications: Vec<ServerNotification> = match event {
                GatewayEvent::CatalogChanged { server_id } if self.is_member(&server_id) => {
                    changed()
                }
                GatewayEvent::VmcpChanged { vmcp_id } if vmcp_id == self.state.vmcp_id => changed(),
                GatewayEvent::ResourceUpdated { server_id, uri }
                    if uris.contains(&uri) && self.is_member(&server_id) =>
                {
                    vec![ServerNotification::ResourceUpdatedNotification(
                        ResourceUpdatedNotification::new(ResourceUpdatedNotificationParam::new(
                            uri,
                        )),
                    )]
                }
                _ => Vec::new(),
            };
            for notification in notifications {
                if let Err(e) = sink.send(notification).await {
                    tracing::debug!(error = %e, "subscriptions/listen: the client is gone");
                    return Ok(());
                }
            }
        }
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let op = Operation::Unsubscribe {
            uri: request.uri.clone(),
        };
        self.direct(&context, op).await?;
        self.state
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let aggregate = self.list(&context, Operation::ListPrompts).await?;
        let (prompts, next) = page(&aggregate.prompts, cursor(&request))?;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let fill = self.fill(request.meta.as_ref(), &context);
        let op = Operation::GetPrompt {
            name: request.name,
            arguments: request.arguments,
        };
        let retry = (request.request_state, request.input_responses);
        match self.call(&context, op, fill, retry).await? {
            Step::Input(input) => Ok(GetPromptResponse::InputRequired(input)),
            Step::Done(done) => match *done {
                ServerResult::GetPromptResult(r) => Ok(r.into()),
                _ => Err(other_result("prompts/get")),
            },
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        match self.direct(&context, Operation::Complete(request)).await? {
            ServerResult::CompleteResult(r) => Ok(r),
            _ => Err(other_result("completion/complete")),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.state.level.lock().expect("level lock") = request.level;
        self.pin();
        Ok(())
    }
}

/// The meta-tools of tool search (docs/tool-search.md).
fn meta_tools(of: usize) -> Vec<Tool> {
    let schema = |v: serde_json::Value| match v {
        serde_json::Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    };
    vec![
        Tool::new(
            SEARCH_TOOLS,
            format!(
                "Search the {of} tools of this server by what you want to do, in a few words \
                 (e.g. \"take a screenshot of a web page\"). Returns the best matches, best \
                 first, each with its name, description and input schema; call one with \
                 call_tool. If none fits, search again with other words."
            ),
            schema(serde_json::json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1,
                              "description": "What you want to do, in a few words"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": crate::SEARCH_MAX,
                              "default": crate::SEARCH_DEFAULT,
                              "description": "How many tools to return"}
                },
                "required": ["query"]
            })),
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        Tool::new(
            CALL_TOOL,
            "Call a tool of this server by its name (as search_tools gives it) with its \
             arguments; answers exactly what calling the tool directly answers.",
            schema(serde_json::json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1,
                             "description": "The tool's name, from search_tools"},
                    "arguments": {"type": "object",
                                  "description": "The tool's arguments, as its input schema says"}
                },
                "required": ["name"]
            })),
        ),
    ]
}

const SEARCH_TOOLS: &str = "search_tools";
const CALL_TOOL: &str = "call_tool";

enum Meta {
    Search(Operation),
    Call(Operation),
}

/// A `tools/call` of a vMCP with tool search on: `search_tools` and `call_tool` are the
/// meta-tools (their arguments checked here, in MCP's words); any other name is a tool.
fn meta_call(op: Operation) -> Result<Meta, ErrorData> {
    let Operation::CallTool { name, arguments } = op else {
        return Ok(Meta::Call(op));
    };
    let args = arguments.clone().unwrap_or_default();
    match name.as_str() {
        SEARCH_TOOLS => {
            let query = match args.get("query") {
                Some(serde_json::Value::String(q)) => q.clone(),
                Some(_) => return Err(meta_error("search_tools: query must be a string")),
                None => return Err(meta_error("search_tools: query is required")),
            };
            let limit = match args.get("limit") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    meta_error(&format!(
                        "search_tools: limit must be an integer from 1 to {}",
                        crate::SEARCH_MAX
                    ))
                })?),
            };
            Ok(Meta::Search(Operation::SearchTools { query, limit }))
        }
        CALL_TOOL => {
            let name = match args.get("name") {
                Some(serde_json::Value::String(n)) if !n.trim().is_empty() => n.clone(),
                _ => {
                    return Err(meta_error(
                        "call_tool: name must be the name of a tool (search_tools gives them)",
                    ));
                }
            };
            let arguments = match args.get("arguments") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::Object(a)) => Some(a.clone()),
                Some(_) => return Err(meta_error("call_tool: arguments must be an object")),
            };
            Ok(Meta::Call(Operation::CallTool { name, arguments }))
        }
        _ => Ok(Meta::Call(Operation::CallTool { name, arguments })),
    }
}

fn meta_error(message: &str) -> ErrorData {
    ErrorData::invalid_params(message.to_string(), None)
}

fn cursor(request: &Option<PaginatedRequestParams>) -> Option<&str> {
    request.as_ref().and_then(|r| r.cursor.as_deref())
}

fn other_result(method: &str) -> ErrorData {
    ErrorData::internal_error(format!("{method} ended with another kind of result"), None)
}

/// A relayed result, for 2026-07-28 clients, which require `resultType` (2025-era upstreams
/// send none; rmcp strips it again for 2025-era clients).
fn marked_complete(mut result: ServerResult) -> ServerResult {
    match &mut result {
        ServerResult::CallToolResult(r) => {
            r.result_type.get_or_insert(ResultType::COMPLETE);
        }
        ServerResult::GetPromptResult(r) => {
            r.result_type.get_or_insert(ResultType::COMPLETE);
        }
        ServerResult::ReadResourceResult(r) => {
            r.result_type.get_or_insert(ResultType::COMPLETE);
        }
        ServerResult::CompleteResult(r) => {
            r.result_type.get_or_insert(ResultType::COMPLETE);
        }
        _ => {}
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_page_by_page_size_with_opaque_cursors_and_refuse_bad_ones() {
        let items: Vec<usize> = (0..PAGE_SIZE * 2 + 3).collect();
        let (first, next) = page(&items, None).unwrap();
        assert_eq!(first.len(), PAGE_SIZE);
        assert_eq!(first[0], 0);
        let (second, next) = page(&items, next.as_deref()).unwrap();
        assert_eq!(second[0], PAGE_SIZE);
        let (last, next) = page(&items, next.as_deref()).unwrap();
        assert_eq!(last, [PAGE_SIZE * 2, PAGE_SIZE * 2 + 1, PAGE_SIZE * 2 + 2]);
        assert_eq!(next, None);
        let (empty, next) = page::<usize>(&[], None).unwrap();
        assert!(empty.is_empty() && next.is_none());
        for bad in ["x", "-1", "99999"] {
            let e = page(&items, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{bad}");
        }
    }

    #[test]
    fn meta_tool_calls_are_checked_in_mcp_words() {
        let call = |name: &str, args: serde_json::Value| {
            meta_call(Operation::CallTool {
                name: name.into(),
                arguments: args.as_object().cloned(),
            })
        };
        let Ok(Meta::Search(Operation::SearchTools { query, limit })) = call(
            "search_tools",
            serde_json::json!({"query": "add", "limit": 3}),
        ) else {
            panic!("not a search")
        };
        assert_eq!((query.as_str(), limit), ("add", Some(3)));
        let Ok(Meta::Call(Operation::CallTool { name, arguments })) = call(
            "call_tool",
            serde_json::json!({"name": "a.add", "arguments": {"a": 1}}),
        ) else {
            panic!("not a call")
        };
        assert_eq!(name, "a.add");
        assert_eq!(arguments.unwrap()["a"], 1);
        // Any other name is a tool, untouched.
        assert!(matches!(
            call("a.add", serde_json::json!({})),
            Ok(Meta::Call(Operation::CallTool { .. }))
        ));
        for (name, args) in [
            ("search_tools", serde_json::json!({})),
            ("search_tools", serde_json::json!({"query": 3})),
            (
                "search_tools",
                serde_json::json!({"query": "x", "limit": -1}),
            ),
            ("call_tool", serde_json::json!({})),
            ("call_tool", serde_json::json!({"name": " "})),
            (
                "call_tool",
                serde_json::json!({"name": "a.add", "arguments": [1]}),
            ),
        ] {
            let Err(e) = call(name, args.clone()) else {
                panic!("{name} {args} was accepted")
            };
            assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{name} {args}");
        }
    }
}

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
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use vmcp_domain::{Timestamp, time};

use crate::aggregate::VmcpEntry;
use crate::mrtr::{Round, Step};
use crate::ops::SessionCall;
use crate::relay::{Asker, Caller, ProgressTarget};
use crate::{ErrorKind, Gateway, GatewayError, GatewayEvent};

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
    /// The end of each session, by the id its transport gave it (`Mcp-Session-Id`).
    ends: Mutex<HashMap<String, CancellationToken>>,
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
        token.map(|t| t.cancel()).is_some()
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
                gateway
                    .sessions
                    .ends
                    .lock()
                    .expect("sessions lock")
                    .remove(&transport_id);
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

fn rank(level: LoggingLevel) -> u8 {
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

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid MCP object")
}

/// A gateway error as a JSON-RPC error.
pub fn to_error_data(e: GatewayError) -> ErrorData {
    let message = format!("{}: {}", e.error, e.detail);
    match e.kind {
        ErrorKind::BadRequest => ErrorData::invalid_params(message, None),
        ErrorKind::NotFound if e.error.starts_with("resource") => {
            ErrorData::resource_not_found(message, None)
        }
        ErrorKind::NotFound => ErrorData::invalid_params(message, None),
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
        });
        Self { gateway, state }
    }

    pub fn session_id(&self) -> &str {
        &self.state.id
    }

    /// Resolves when the request of `context` is cancelled by its client, or its session ends.
    async fn stopped(&self, context: &RequestContext<RoleServer>) {
        tokio::select! {
            _ = context.ct.cancelled() => {}
            _ = self.state.ended.cancelled() => {}
        }
    }

    fn entry(&self) -> Result<Arc<VmcpEntry>, ErrorData> {
        self.gateway
            .vmcp_entry(&self.state.vmcp_id)
            .ok_or_else(|| ErrorData::internal_error("this vMCP was deleted", None))
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
        entry: &VmcpEntry,
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
            caller_args: entry.vmcp.mcp_substitution,
            params,
            depth: 0,
        }
    }

    /// The client of this request, as the operation log names it: the session's client, or for
    /// a stateless (2026-07-28) request the client named in its `_meta`.
    fn caller(&self, context: &RequestContext<RoleServer>) -> crate::Caller {
        let mut client_id = self.state.client_id.lock().expect("client id lock").clone();
        if client_id.is_empty() {
            client_id = stateless_client_id(context.client_info().as_ref());
        }
        crate::Caller {
            client_id,
            source: "mcp",
            parent_log_id: None,
        }
    }

    /// The call of a client of this session (2025-era: asked directly).
    fn session_call(&self, context: &RequestContext<RoleServer>) -> SessionCall {
        SessionCall {
            caller: Caller {
                progress: ProgressTarget::new(
                    context.peer.clone(),
                    context.meta.get_progress_token(),
                ),
                asker: Asker::Session(context.peer.clone()),
                roots_key: Some(self.state.id.clone()),
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
        let client = stateless_client_id(context.client_info().as_ref());
        let principal = format!("{}\n{client}\n{method}\n{target}", self.state.vmcp_id);
        // Stateless clients have no identity across requests but their name: an upstream that
        // last saw the roots of this client's name (or, for clients without roots, of another
        // client without roots) is not asked to fetch them again before every call. Two
        // instances of one client share their roots this way (docs/mcp.md says so).
        let declares_roots = context
            .client_capabilities()
            .is_some_and(|c| c.roots.is_some());
        let roots_key = if declares_roots {
            format!("stateless\n{}\n{client}", self.state.vmcp_id)
        } else {
            "stateless\nno roots".to_string()
        };
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

    /// Pushes what happens upstream to this session's client, until the client goes away.
    fn watch(&self, peer: Peer<RoleServer>) {
        let mut events = self.gateway.subscribe();
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => GatewayEvent::VmcpChanged {
                        vmcp_id: me.state.vmcp_id.clone(),
                    },
                    Err(RecvError::Closed) => return,
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
                    } if me.is_member(&server_id) => {
                        let level: LoggingLevel =
                            serde_json::from_value(json!(level)).unwrap_or(LoggingLevel::Info);
                        if rank(level) >= rank(*me.state.level.lock().expect("lock")) {
                            peer.notify_logging_message(from_json(json!({
                                "level": level, "logger": logger, "data": data
                            })))
                            .await
                            .is_ok()
                        } else {
                            true
                        }
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
        from_json(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {"listChanged": true},
                "logging": {},
                "completions": {}
            },
            "serverInfo": {"name": name, "title": format!("vMCP {name}"), "version": env!("CARGO_PKG_VERSION")},
            "instructions": if description.is_empty() {
                format!("vMCP {name}: the tools, resources and prompts of its MCP servers.")
            } else {
                description
            }
        }))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let client = client_id(context.peer.peer_info().as_deref(), &self.state.id);
        let transport_id = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        if let Some(transport_id) = transport_id {
            self.gateway
                .sessions
                .ends
                .lock()
                .expect("sessions lock")
                .insert(transport_id.clone(), self.state.ended.clone());
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
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let aggregate = self.gateway.prepared_aggregate(&*self.entry()?).await;
        let (tools, next) = page(
            &aggregate.tools,
            request.as_ref().and_then(|r| r.cursor.as_deref()),
        )?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let entry = self.entry()?;
        let fill = self.fill(&entry, request.meta.as_ref(), &context);
        if is_stateless(&context) {
            // A 2026-07-28 stateless request: what its upstream asks comes back as MRTR rounds.
            let (me, name) = (self.clone(), request.name.clone());
            let arguments = request.arguments.clone();
            let step = self
                .stateless_round(
                    &context,
                    "tools/call",
                    &request.name,
                    request.request_state.clone(),
                    request.input_responses.clone(),
                    move |call| async move {
                        me.gateway
                            .call_tool_in(&entry, &name, arguments, Some(&call), fill)
                            .await
                            .map(|mut r| {
                                r.result_type.get_or_insert(ResultType::COMPLETE);
                                ServerResult::CallToolResult(r)
                            })
                            .map_err(to_error_data)
                    },
                )
                .await?;
            return match step {
                Step::Input(input) => Ok(CallToolResponse::InputRequired(input)),
                Step::Done(done) => match *done {
                    ServerResult::CallToolResult(r) => Ok(r.into()),
                    _ => Err(ErrorData::internal_error(
                        "tools/call ended with another kind of result",
                        None,
                    )),
                },
            };
        }
        let call = self.session_call(&context);
        tokio::select! {
            result = self.gateway.call_tool_in(&entry, &request.name, request.arguments, Some(&call), fill) => {
                result.map(|mut r| {
                    r.result_type.get_or_insert(ResultType::COMPLETE);
                    r.into()
                }).map_err(to_error_data)
            }
            _ = self.stopped(&context) => Err(ErrorData::internal_error("cancelled by the client", None)),
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
        let entry = self.entry()?;
        let aggregate = self.gateway.prepared_aggregate(&entry).await;
        self.gateway.record_list(
            &entry,
            "resources/list",
            &self.caller(&context),
            aggregate.resources.len(),
        );
        let (resources, next) = page(
            &aggregate.resources,
            request.as_ref().and_then(|r| r.cursor.as_deref()),
        )?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let aggregate = self.gateway.prepared_aggregate(&*self.entry()?).await;
        let (templates, next) = page(
            &aggregate.templates,
            request.as_ref().and_then(|r| r.cursor.as_deref()),
        )?;
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let entry = self.entry()?;
        let caller = self.caller(&context);
        if is_stateless(&context) {
            let (me, uri) = (self.clone(), request.uri.clone());
            let step = self
                .stateless_round(
                    &context,
                    "resources/read",
                    &request.uri,
                    request.request_state.clone(),
                    request.input_responses.clone(),
                    move |call| async move {
                        me.gateway
                            .read_resource_logged(&entry, &uri, &caller, Some(&call))
                            .await
                            .map(|mut r| {
                                r.result_type.get_or_insert(ResultType::COMPLETE);
                                ServerResult::ReadResourceResult(r)
                            })
                            .map_err(to_error_data)
                    },
                )
                .await?;
            return match step {
                Step::Input(input) => Ok(ReadResourceResponse::InputRequired(input)),
                Step::Done(done) => match *done {
                    ServerResult::ReadResourceResult(r) => Ok(r.into()),
                    _ => Err(ErrorData::internal_error(
                        "resources/read ended with another kind of result",
                        None,
                    )),
                },
            };
        }
        let call = self.session_call(&context);
        tokio::select! {
            result = self.gateway.read_resource_logged(&entry, &request.uri, &caller, Some(&call)) => {
                result.map(|mut r| {
                    r.result_type.get_or_insert(ResultType::COMPLETE);
                    r.into()
                }).map_err(to_error_data)
            }
            _ = self.stopped(&context) => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let entry = self.entry()?;
        let aggregate = self.gateway.prepared_aggregate(&entry).await;
        let owner = aggregate
            .resource_owner(&request.uri)
            .map(String::from)
            .ok_or_else(|| {
                ErrorData::resource_not_found(
                    format!("no server of this vMCP offers {}", request.uri),
                    None,
                )
            })?;
        let (slot, peer) = self.gateway.peer_of(&owner).await.map_err(to_error_data)?;
        if slot
            .state()
            .protocol_version()
            .is_some_and(|v| v.as_str() >= "2026-07-28")
        {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "resources/subscribe: {} speaks protocol 2026-07-28, which has no resources/subscribe, and vMCP does not yet subscriptions/listen to upstreams, so updates of {} cannot be relayed; to get them, register {} with \"protocol\": \"initialize\"",
                    slot.name(),
                    request.uri,
                    slot.name()
                ),
                None,
            ));
        }
        let _ = peer
            .subscribe(SubscribeRequestParams::new(request.uri.clone()))
            .await;
        self.state
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .insert(request.uri);
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
        if !uris.is_empty() {
            let aggregate = self.gateway.prepared_aggregate(&*self.entry()?).await;
            for uri in &uris {
                let Some(owner) = aggregate.resource_owner(uri) else {
                    continue;
                };
                if let Ok((_, peer)) = self.gateway.peer_of(owner).await {
                    let _ = peer
                        .subscribe(SubscribeRequestParams::new(uri.clone()))
                        .await;
                }
            }
        }
        let sink = context.sink().clone();
        let lists = [
            (
                accepted.tools_list_changed,
                "notifications/tools/list_changed",
            ),
            (
                accepted.prompts_list_changed,
                "notifications/prompts/list_changed",
            ),
            (
                accepted.resources_list_changed,
                "notifications/resources/list_changed",
            ),
        ];
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
                GatewayEvent::CatalogChanged { server_id } if self.is_member(&server_id) => lists
                    .iter()
                    .filter(|(on, _)| *on == Some(true))
                    .map(|(_, method)| from_json(json!({ "method": method })))
                    .collect(),
                GatewayEvent::VmcpChanged { vmcp_id } if vmcp_id == self.state.vmcp_id => lists
                    .iter()
                    .filter(|(on, _)| *on == Some(true))
                    .map(|(_, method)| from_json(json!({ "method": method })))
                    .collect(),
                GatewayEvent::ResourceUpdated { server_id, uri }
                    if uris.contains(&uri) && self.is_member(&server_id) =>
                {
                    vec![from_json(json!({
                        "method": "notifications/resources/updated",
                        "params": {"uri": uri}
                    }))]
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
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Upstream subscriptions are shared by every session: only this session stops listening.
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
        let entry = self.entry()?;
        let aggregate = self.gateway.prepared_aggregate(&entry).await;
        self.gateway.record_list(
            &entry,
            "prompts/list",
            &self.caller(&context),
            aggregate.prompts.len(),
        );
        let (prompts, next) = page(
            &aggregate.prompts,
            request.as_ref().and_then(|r| r.cursor.as_deref()),
        )?;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let entry = self.entry()?;
        let fill = self.fill(&entry, request.meta.as_ref(), &context);
        if is_stateless(&context) {
            let (me, name, arguments) = (
                self.clone(),
                request.name.clone(),
                request.arguments.clone(),
            );
            let step = self
                .stateless_round(
                    &context,
                    "prompts/get",
                    &request.name,
                    request.request_state.clone(),
                    request.input_responses.clone(),
                    move |call| async move {
                        me.gateway
                            .get_prompt_in(&entry, &name, arguments, fill, Some(&call))
                            .await
                            .map(|mut r| {
                                r.result_type.get_or_insert(ResultType::COMPLETE);
                                ServerResult::GetPromptResult(r)
                            })
                            .map_err(to_error_data)
                    },
                )
                .await?;
            return match step {
                Step::Input(input) => Ok(GetPromptResponse::InputRequired(input)),
                Step::Done(done) => match *done {
                    ServerResult::GetPromptResult(r) => Ok(r.into()),
                    _ => Err(ErrorData::internal_error(
                        "prompts/get ended with another kind of result",
                        None,
                    )),
                },
            };
        }
        let call = self.session_call(&context);
        tokio::select! {
            result = self.gateway.get_prompt_in(&entry, &request.name, request.arguments, fill, Some(&call)) => {
                result.map(|mut r| {
                    r.result_type.get_or_insert(ResultType::COMPLETE);
                    r.into()
                }).map_err(to_error_data)
            }
            _ = self.stopped(&context) => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
    }

    async fn complete(
        &self,
        mut request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let entry = self.entry()?;
        let aggregate = self.gateway.prepared_aggregate(&entry).await;
        let owner = match &mut request.r#ref {
            Reference::Prompt(p) => {
                let route = aggregate.prompt(&p.name).cloned().ok_or_else(|| {
                    ErrorData::invalid_params(format!("no prompt named {:?}", p.name), None)
                })?;
                p.name = route.name;
                route.server_id
            }
            Reference::Resource(r) => aggregate
                .template_owner(&r.uri)
                .or_else(|| aggregate.resource_owner(&r.uri))
                .map(String::from)
                .ok_or_else(|| {
                    ErrorData::resource_not_found(format!("no resource template {:?}", r.uri), None)
                })?,
            _ => {
                return Err(ErrorData::invalid_params(
                    "completion/complete: unsupported reference type",
                    None,
                ));
            }
        };
        let (slot, peer) = self.gateway.peer_of(&owner).await.map_err(to_error_data)?;
        let timeout = slot.timeout();
        match tokio::time::timeout(timeout, peer.complete(request)).await {
            Ok(Ok(mut result)) => {
                // Relayed results carry no resultType from 2025-era upstreams; 2026-07-28
                // clients require it (rmcp strips it again for 2025-era clients).
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(result)
            }
            Ok(Err(e)) => Err(to_error_data(crate::ops::upstream_error(
                &slot,
                "completion/complete",
                "",
                e,
            ))),
            Err(_) => Err(to_error_data(crate::ops::timed_out(
                &slot,
                "completion/complete",
                "",
                timeout,
            ))),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.state.level.lock().expect("level lock") = request.level;
        Ok(())
    }
}

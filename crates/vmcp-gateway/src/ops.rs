//! The operation pipeline. Every operation on a vMCP, from either face (REST handlers, MCP
//! sessions, nested substitution calls), is one `Operation` run by `Gateway::operate`, which:
//!
//! 1. resolves the vMCP one way (its id or its name);
//! 2. starts the operation's log record, which is written however the operation ends: with its
//!    result, its error, or as cancelled when its future is dropped (the caller went away, the
//!    session ended) or panicked;
//! 3. routes the item to its member server through the aggregate (lists come from the
//!    aggregate's cache and never reach an upstream);
//! 4. fills the arguments (substitution, the vMCP's fixed and default arguments);
//! 5. sends the request (`send`): waits for the server's connection if it is being made, takes a
//!    permit of the server's `max_concurrent_calls`, relays progress and the upstream's requests
//!    to the calling client, answers 2026-07-28 `input_required` rounds, bounds every round by
//!    the server's timeout, and cancels the upstream request when dropped;
//! 6. maps every failure to a typed `GatewayError` (`ErrorKind`, `What`), which each face words
//!    in its own terms.

// resources/subscribe is legacy-only (2026-07-28 has subscriptions/listen), and still what
// every 2025-era client and upstream speaks.
#![allow(deprecated)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
    ClientRequest, CompleteRequest, CompleteRequestParams, CompleteResult, ErrorCode,
    GetPromptRequest, GetPromptRequestParams, GetPromptResult, InputRequest, JsonObject,
    ReadResourceRequest, ReadResourceRequestParams, ReadResourceResult, Reference, RequestId,
    ServerRequest, ServerResult, SubscribeRequest, SubscribeRequestParams,
};
use rmcp::service::Peer;
use rmcp::service::PeerRequestOptions;
use serde_json::{Map, Value, json};
use vmcp_domain::{PromptList, ResourceList, ServerStatus, ToolList, ids};

use crate::aggregate::{Aggregate, VmcpEntry};
use crate::error::{Hint, What};
use crate::substitution::{Caller, Fill};
use crate::supervisor::Slot;
use crate::{ErrorKind, Gateway, GatewayError, Result};

/// The MCP client session a call comes from: where its progress notifications and its
/// upstream's requests (sampling, elicitation, roots) go.
pub struct SessionCall {
    pub caller: crate::relay::Caller,
}

/// What a client asks of a vMCP: the same for REST, MCP and nested substitution calls.
#[derive(Debug, Clone)]
pub enum Operation {
    ListTools,
    ListResources,
    ListResourceTemplates,
    ListPrompts,
    /// The tools that best match a query (tool search): `limit` from 1 to `SEARCH_MAX`,
    /// default `SEARCH_DEFAULT`.
    SearchTools {
        query: String,
        limit: Option<u64>,
    },
    /// A tool by its exposed name, or `server.tool`.
    CallTool {
        name: String,
        arguments: Option<Map<String, Value>>,
    },
    /// A prompt by its exposed name, or `server.prompt`.
    GetPrompt {
        name: String,
        arguments: Option<Map<String, Value>>,
    },
    ReadResource {
        uri: String,
    },
    /// Completion of a prompt's (exposed name) or a resource template's argument.
    Complete(CompleteRequestParams),
    Subscribe {
        uri: String,
    },
    Unsubscribe {
        uri: String,
    },
}

impl Operation {
    /// The MCP method, as the operation log and the metrics name it.
    pub fn method(&self) -> &'static str {
        match self {
            Operation::ListTools => "tools/list",
            Operation::ListResources => "resources/list",
            Operation::ListResourceTemplates => "resources/templates/list",
            Operation::ListPrompts => "prompts/list",
            Operation::SearchTools { .. } => "tools/search",
            Operation::CallTool { .. } => "tools/call",
            Operation::GetPrompt { .. } => "prompts/get",
            Operation::ReadResource { .. } => "resources/read",
            Operation::Complete(_) => "completion/complete",
            Operation::Subscribe { .. } => "resources/subscribe",
            Operation::Unsubscribe { .. } => "resources/unsubscribe",
        }
    }

    /// What the operation is about (a tool, a prompt, a URI), for the log.
    pub fn target(&self) -> Option<String> {
        match self {
            Operation::CallTool { name, .. } | Operation::GetPrompt { name, .. } => {
                Some(name.clone())
            }
            Operation::SearchTools { query, .. } => Some(query.clone()),
            Operation::ReadResource { uri }
            | Operation::Subscribe { uri }
            | Operation::Unsubscribe { uri } => Some(uri.clone()),
            Operation::Complete(p) => Some(match &p.r#ref {
                Reference::Prompt(p) => p.name.clone(),
                Reference::Resource(r) => r.uri.clone(),
                _ => String::new(),
            }),
            _ => None,
        }
    }

    /// The arguments as the caller sent them, for the log (the filled ones may hold `@config:`
    /// secrets).
    fn logged_arguments(&self) -> Option<Value> {
        match self {
            Operation::CallTool { arguments, .. } | Operation::GetPrompt { arguments, .. } => {
                arguments.clone().map(Value::Object)
            }
            Operation::Complete(p) => serde_json::to_value(&p.argument).ok(),
            _ => None,
        }
    }
}

/// What an operation gives back.
pub enum Output {
    /// A list: the aggregate it is read from (each face renders and pages it), and how many
    /// items the list has.
    List {
        aggregate: Arc<Aggregate>,
        items: usize,
    },
    /// The tools found, best first (as listed), and how many the vMCP has.
    Search {
        tools: Vec<Value>,
        of: usize,
    },
    Tool(CallToolResult),
    Prompt(GetPromptResult),
    Resource(ReadResourceResult),
    Completion(CompleteResult),
    /// Done, nothing to return (subscriptions).
    Done,
}

impl Output {
    /// What the operation log keeps of the result.
    fn logged(&self) -> Option<Value> {
        match self {
            Output::List { items, .. } => Some(json!({ "items": items })),
            Output::Search { tools, .. } => Some(json!({
                "tools": tools.iter().map(|t| t["name"].clone()).collect::<Vec<_>>()
            })),
            Output::Tool(r) => serde_json::to_value(r).ok(),
            Output::Prompt(r) => serde_json::to_value(r).ok(),
            Output::Resource(r) => serde_json::to_value(r).ok(),
            Output::Completion(r) => serde_json::to_value(r).ok(),
            Output::Done => None,
        }
    }

    /// The result as an MCP result (lists have none: the faces page them).
    pub fn into_server_result(self) -> Result<ServerResult> {
        Ok(match self {
            Output::Tool(r) => ServerResult::CallToolResult(r),
            Output::Prompt(r) => ServerResult::GetPromptResult(r),
            Output::Resource(r) => ServerResult::ReadResourceResult(r),
            Output::Completion(r) => ServerResult::CompleteResult(r),
            Output::Done => ServerResult::empty(()),
            Output::List { .. } | Output::Search { .. } => return Err(mismatch("a result")),
        })
    }

    /// The tools found by a search, and how many the vMCP has.
    pub fn into_search(self) -> Result<(Vec<Value>, usize)> {
        match self {
            Output::Search { tools, of } => Ok((tools, of)),
            _ => Err(mismatch("search results")),
        }
    }

    pub fn into_aggregate(self) -> Result<Arc<Aggregate>> {
        match self {
            Output::List { aggregate, .. } => Ok(aggregate),
            _ => Err(mismatch("a list")),
        }
    }

    pub fn into_tool(self) -> Result<CallToolResult> {
        match self {
            Output::Tool(r) => Ok(r),
            _ => Err(mismatch("a tool result")),
        }
    }

    pub fn into_prompt(self) -> Result<GetPromptResult> {
        match self {
            Output::Prompt(r) => Ok(r),
            _ => Err(mismatch("a prompt")),
        }
    }

    pub fn into_resource(self) -> Result<ReadResourceResult> {
        match self {
            Output::Resource(r) => Ok(r),
            _ => Err(mismatch("resource contents")),
        }
    }
}

fn mismatch(expected: &str) -> GatewayError {
    GatewayError::internal(format!("the operation did not end with {expected}"))
}

/// An operation's log row, as it is being made.
struct Record {
    log_id: String,
    vmcp_id: String,
    method: &'static str,
    caller: Caller,
    at: vmcp_domain::Timestamp,
    started: std::time::Instant,
    config: Value,
    secrets: Arc<[String]>,
    server_id: Option<String>,
    target: Option<String>,
    arguments: Option<Value>,
}

/// The record of an operation in flight: written when the operation finishes, and also when
/// its future is dropped before (cancelled) or unwinds (panicked), so that no operation is
/// missing from the log.
struct Recording<'g> {
    gateway: &'g Gateway,
    record: Option<Record>,
}

impl<'g> Recording<'g> {
    fn start(gateway: &'g Gateway, entry: &VmcpEntry, op: &Operation, caller: &Caller) -> Self {
        Self {
            gateway,
            record: Some(Record {
                log_id: ids::new_log_id(),
                vmcp_id: entry.vmcp.vmcp_id.clone(),
                method: op.method(),
                caller: caller.clone(),
                at: vmcp_domain::time::now(),
                started: std::time::Instant::now(),
                config: entry.redacted_config.clone(),
                secrets: entry.secrets.clone(),
                server_id: None,
                target: op.target(),
                arguments: op.logged_arguments(),
            }),
        }
    }

    fn log_id(&self) -> String {
        self.record
            .as_ref()
            .map(|r| r.log_id.clone())
            .unwrap_or_default()
    }

    /// The member server the operation went to.
    fn server(&mut self, server_id: &str) {
        if let Some(r) = self.record.as_mut() {
            r.server_id = Some(server_id.to_string());
        }
    }

    /// Writes the row, and returns the result with the secrets masked in an error (an
    /// upstream's message may quote what it was sent).
    fn finish(mut self, result: Result<Output>) -> Result<Output> {
        let Some(record) = self.record.take() else {
            return result;
        };
        let secrets = self.gateway.secrets_of(&record);
        match &result {
            Ok(output) => self.gateway.write(record, Ok(output.logged())),
            Err(e) => self.gateway.write(record, Err(e)),
        }
        result.map_err(|mut e| {
            if let Some(clean) = vmcp_domain::secrets::scrub(&e.detail, &secrets) {
                e.detail = clean;
            }
            if let Some(clean) = vmcp_domain::secrets::scrub(&e.error, &secrets) {
                e.error = clean;
            }
            e
        })
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let why = if std::thread::panicking() {
                "the operation failed unexpectedly (a bug: see the server's log)"
            } else {
                "the caller went away, or its session ended, before the operation finished"
            };
            self.gateway
                .write(record, Err(&GatewayError::cancelled(why)));
        }
    }
}

/// Cancels an upstream request (`notifications/cancelled`) unless disarmed (`id = None`).
struct CancelOnDrop {
    peer: Peer<rmcp::RoleClient>,
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let peer = self.peer.clone();
        runtime.spawn(async move {
            let param =
                CancelledNotificationParam::new(Some(id), Some("the caller gave up".to_string()));
            let _ = peer.notify_cancelled(param).await;
        });
    }
}

/// A request to one upstream server, as the pipeline sends it (again, with the client's
/// answers, when a 2026-07-28 upstream asks for input).
enum Upstream {
    Tool(CallToolRequestParams),
    Prompt(GetPromptRequestParams),
    Read(ReadResourceRequestParams),
    Complete(CompleteRequestParams),
    Subscribe(SubscribeRequestParams),
}

impl Upstream {
    fn method(&self) -> &'static str {
        match self {
            Upstream::Tool(_) => "tools/call",
            Upstream::Prompt(_) => "prompts/get",
            Upstream::Read(_) => "resources/read",
            Upstream::Complete(_) => "completion/complete",
            Upstream::Subscribe(_) => "resources/subscribe",
        }
    }

    fn target(&self) -> String {
        match self {
            Upstream::Tool(p) => p.name.to_string(),
            Upstream::Prompt(p) => p.name.clone(),
            Upstream::Read(p) => p.uri.clone(),
            Upstream::Complete(p) => match &p.r#ref {
                Reference::Prompt(p) => p.name.clone(),
                Reference::Resource(r) => r.uri.clone(),
                _ => String::new(),
            },
            Upstream::Subscribe(p) => p.uri.clone(),
        }
    }

    fn request(&self) -> ClientRequest {
        match self {
            Upstream::Tool(p) => ClientRequest::CallToolRequest(CallToolRequest::new(p.clone())),
            Upstream::Prompt(p) => {
                ClientRequest::GetPromptRequest(GetPromptRequest::new(p.clone()))
            }
            Upstream::Read(p) => {
                ClientRequest::ReadResourceRequest(ReadResourceRequest::new(p.clone()))
            }
            Upstream::Complete(p) => {
                ClientRequest::CompleteRequest(CompleteRequest::new(p.clone()))
            }
            Upstream::Subscribe(p) => {
                ClientRequest::SubscribeRequest(SubscribeRequest::new(p.clone()))
            }
        }
    }

    /// The request again, with the client's answers to an `input_required` round.
    fn answer(
        &mut self,
        responses: Option<rmcp::model::InputResponses>,
        state: Option<String>,
    ) -> std::result::Result<(), ()> {
        match self {
            Upstream::Tool(p) => {
                p.input_responses = responses;
                p.request_state = state;
            }
            Upstream::Prompt(p) => {
                p.input_responses = responses;
                p.request_state = state;
            }
            Upstream::Read(p) => {
                p.input_responses = responses;
                p.request_state = state;
            }
            Upstream::Complete(_) | Upstream::Subscribe(_) => return Err(()),
        }
        Ok(())
    }
}

/// Tool search: how many tools a search returns unless asked, and at most.
pub const SEARCH_DEFAULT: u64 = 5;
pub const SEARCH_MAX: u64 = 50;

/// The longest an operation waits for member servers that are being connected on demand.
pub const ON_DEMAND_CONNECT_WAIT: Duration = Duration::from_secs(30);

impl Gateway {
    /// A vMCP by its id or its name: the one lookup of every face (REST paths, MCP URLs).
    pub fn vmcp(&self, id: &str) -> Result<Arc<VmcpEntry>> {
        self.vmcp_entry(id).ok_or_else(|| {
            GatewayError::not_found(
                What::Vmcp,
                "vMCP not found",
                if ids::is_id(ids::VMCP_PREFIX, id) {
                    format!("no vMCP with id {id}")
                } else {
                    format!("no vMCP has the id or name {id:?}")
                },
            )
        })
    }

    /// The aggregate of a vMCP after connecting, on demand, the members that are not connected
    /// (bounded wait). Members that fail stay out of the lists and are reported unavailable.
    pub async fn prepared_aggregate(&self, entry: &VmcpEntry) -> Arc<Aggregate> {
        let pending: Vec<Arc<Slot>> = entry
            .members(&self.supervisor)
            .into_iter()
            .filter(|s| {
                matches!(
                    s.state().status,
                    ServerStatus::Disconnected | ServerStatus::Connecting
                )
            })
            .collect();
        if !pending.is_empty() {
            join_all(pending.iter().map(|slot| {
                tokio::time::timeout(ON_DEMAND_CONNECT_WAIT, self.supervisor.connect(slot))
            }))
            .await;
        }
        entry.aggregate(&self.supervisor)
    }

    /// Runs an operation on the vMCP with this id or name: the one entry of both faces.
    pub async fn operate(
        &self,
        vmcp: &str,
        op: Operation,
        fill: Fill,
        session: Option<&SessionCall>,
    ) -> Result<Output> {
        let entry = self.vmcp(vmcp)?;
        self.operate_in(&entry, op, fill, session).await
    }

    /// Runs an operation on a vMCP already resolved (nested substitution calls).
    pub(crate) async fn operate_in(
        &self,
        entry: &VmcpEntry,
        op: Operation,
        fill: Fill,
        session: Option<&SessionCall>,
    ) -> Result<Output> {
        let mut recording = Recording::start(self, entry, &op, &fill.caller);
        let result = self.run(entry, op, fill, session, &mut recording).await;
        recording.finish(result)
    }

    async fn run(
        &self,
        entry: &VmcpEntry,
        op: Operation,
        fill: Fill,
        session: Option<&SessionCall>,
        recording: &mut Recording<'_>,
    ) -> Result<Output> {
        match op {
            Operation::ListTools
            | Operation::ListResources
            | Operation::ListResourceTemplates
            | Operation::ListPrompts => {
                let aggregate = self.prepared_aggregate(entry).await;
                let items = match op {
                    Operation::ListTools => aggregate.tools.len(),
                    Operation::ListResources => aggregate.resources.len(),
                    Operation::ListResourceTemplates => aggregate.templates.len(),
                    _ => aggregate.prompts.len(),
                };
                Ok(Output::List { aggregate, items })
            }
            Operation::SearchTools { query, limit } => {
                let limit = limit.unwrap_or(SEARCH_DEFAULT);
                if !(1..=SEARCH_MAX).contains(&limit) {
                    return Err(GatewayError::bad_request(format!(
                        "limit: must be from 1 to {SEARCH_MAX} (got {limit})"
                    )));
                }
                let query = query.trim();
                if query.is_empty() {
                    return Err(GatewayError::bad_request(
                        "query: must say what to look for (it is empty)",
                    ));
                }
                if query.chars().count() > 1000 {
                    return Err(GatewayError::bad_request(
                        "query: must be at most 1000 characters",
                    ));
                }
                let aggregate = self.prepared_aggregate(entry).await;
                if !aggregate.search_ready() {
                    // The first search after a list change builds the index: not on an async
                    // worker, where it would hold up every other request on it.
                    let building = aggregate.clone();
                    let _ = tokio::task::spawn_blocking(move || building.prepare_search()).await;
                }
                let tools = aggregate
                    .search_tools(query, usize::try_from(limit).unwrap_or(usize::MAX))
                    .into_iter()
                    .cloned()
                    .collect();
                Ok(Output::Search {
                    tools,
                    of: aggregate.tools.len(),
                })
            }
            Operation::CallTool { name, arguments } => {
                let aggregate = self
                    .aggregate_with(entry, |a| a.tool_by_any_name(&name).is_some())
                    .await;
                let route = aggregate
                    .tool_by_any_name(&name)
                    .ok_or_else(|| missing(What::Tool, &name, entry, &aggregate))?;
                recording.server(&route.server_id);
                let arguments = self
                    .fill_arguments(
                        entry,
                        Some(route),
                        arguments,
                        &fill.for_nested_of(&recording.log_id()),
                    )
                    .await?;
                let mut params = CallToolRequestParams::new(route.name.clone());
                params.arguments = Some(arguments);
                match self
                    .send(&route.server_id, Upstream::Tool(params), session)
                    .await?
                {
                    ServerResult::CallToolResult(r) => Ok(Output::Tool(r)),
                    _ => Err(unexpected(self, &route.server_id, "tools/call")),
                }
            }
            Operation::GetPrompt { name, arguments } => {
                let aggregate = self
                    .aggregate_with(entry, |a| a.prompt_by_any_name(&name).is_some())
                    .await;
                let route = aggregate
                    .prompt_by_any_name(&name)
                    .ok_or_else(|| missing(What::Prompt, &name, entry, &aggregate))?;
                recording.server(&route.server_id);
                let arguments = match arguments {
                    Some(a) => Some(
                        self.fill_arguments(
                            entry,
                            None,
                            Some(a),
                            &fill.for_nested_of(&recording.log_id()),
                        )
                        .await?,
                    ),
                    None => None,
                };
                let mut params = GetPromptRequestParams::new(route.name.clone());
                params.arguments = prompt_arguments(arguments)?;
                match self
                    .send(&route.server_id, Upstream::Prompt(params), session)
                    .await?
                {
                    ServerResult::GetPromptResult(r) => Ok(Output::Prompt(r)),
                    _ => Err(unexpected(self, &route.server_id, "prompts/get")),
                }
            }
            Operation::ReadResource { uri } => {
                let aggregate = self
                    .aggregate_with(entry, |a| a.resource_owner(&uri).is_some())
                    .await;
                let owner = aggregate
                    .resource_owner(&uri)
                    .ok_or_else(|| missing(What::Resource, &uri, entry, &aggregate))?;
                recording.server(owner);
                let params = ReadResourceRequestParams::new(uri.clone());
                match self.send(owner, Upstream::Read(params), session).await? {
                    ServerResult::ReadResourceResult(r) => Ok(Output::Resource(r)),
                    _ => Err(unexpected(self, owner, "resources/read")),
                }
            }
            Operation::Complete(mut params) => {
                let aggregate = self.prepared_aggregate(entry).await;
                let owner = match &mut params.r#ref {
                    Reference::Prompt(p) => {
                        let route = aggregate
                            .prompt_by_any_name(&p.name)
                            .ok_or_else(|| missing(What::Prompt, &p.name, entry, &aggregate))?;
                        p.name = route.name.clone();
                        route.server_id.clone()
                    }
                    Reference::Resource(r) => aggregate
                        .template_owner(&r.uri)
                        .or_else(|| aggregate.resource_owner(&r.uri))
                        .map(String::from)
                        .ok_or_else(|| missing(What::Resource, &r.uri, entry, &aggregate))?,
                    _ => {
                        return Err(GatewayError::bad_request(
                            "completion/complete: the reference is neither a prompt nor a resource",
                        ));
                    }
                };
                recording.server(&owner);
                match self
                    .send(&owner, Upstream::Complete(params), session)
                    .await?
                {
                    ServerResult::CompleteResult(r) => Ok(Output::Completion(r)),
                    _ => Err(unexpected(self, &owner, "completion/complete")),
                }
            }
            Operation::Subscribe { uri } => {
                let aggregate = self.prepared_aggregate(entry).await;
                let owner = aggregate
                    .resource_owner(&uri)
                    .ok_or_else(|| missing(What::Resource, &uri, entry, &aggregate))?;
                recording.server(owner);
                if let Some(slot) = self.supervisor.slot(owner)
                    && slot
                        .state()
                        .protocol_version()
                        .is_some_and(|v| v.as_str() >= "2026-07-28")
                {
                    return Err(GatewayError::not_found(
                        What::Method,
                        "not supported upstream",
                        format!(
                            "{} speaks protocol 2026-07-28, which has no resources/subscribe, and \
                             vMCP does not yet listen (subscriptions/listen) to upstreams, so \
                             updates of {uri} cannot be relayed; to get them, register {} with \
                             \"protocol\": \"initialize\"",
                            slot.name(),
                            slot.name()
                        ),
                    ));
                }
                self.send(
                    owner,
                    Upstream::Subscribe(SubscribeRequestParams::new(uri.clone())),
                    session,
                )
                .await?;
                Ok(Output::Done)
            }
            // Upstream subscriptions are shared by every session: only the caller stops
            // listening (its face forgets the URI).
            Operation::Unsubscribe { .. } => Ok(Output::Done),
        }
    }

    /// Sends a request to a member server, and answers its `input_required` rounds: see the
    /// module's documentation (step 5).
    async fn send(
        &self,
        server_id: &str,
        mut request: Upstream,
        session: Option<&SessionCall>,
    ) -> Result<ServerResult> {
        let (slot, peer) = self.peer_of(server_id).await?;
        let (method, target) = (request.method(), request.target());
        // The permit first: a call that waits for its turn is not in flight, so the server's
        // requests (sampling, elicitation) must not be routed to its client.
        let mut first_turn = Some(call_permit(&slot, method, &target).await?);
        let mut relayed = session.map(|s| self.supervisor.relay().begin(&slot.id, &s.caller));
        if let (Some(s), Upstream::Tool(_)) = (session, &request) {
            // The server caches its client's roots: make them this client's first.
            self.supervisor
                .relay()
                .sync_roots(&slot.id, &s.caller, &peer, slot.timeout())
                .await;
        }
        let timeout = slot.timeout();
        for _round in 0..rmcp::model::DEFAULT_MRTR_MAX_ROUNDS {
            let turn = match first_turn.take() {
                Some(turn) => turn,
                None => call_permit(&slot, method, &target).await?,
            };
            let handle = peer
                .send_cancellable_request(request.request(), PeerRequestOptions::no_options())
                .await
                .map_err(|e| upstream_error(&slot, method, &target, e))?;
            if let Some(r) = relayed.as_mut() {
                r.watch_progress(&handle.progress_token);
            }
            // Dropped before the answer (timeout, caller gone): the upstream request is
            // cancelled.
            let mut abandoned = CancelOnDrop {
                peer: peer.clone(),
                id: Some(handle.id.clone()),
            };
            let outcome = tokio::time::timeout(timeout, handle.await_response()).await;
            if outcome.is_ok() {
                abandoned.id = None;
            }
            match outcome {
                Ok(Ok(ServerResult::InputRequiredResult(input))) => {
                    // Nothing is in flight upstream while the client answers (which may take
                    // a person's time): the turn goes to others, and is taken again to retry.
                    drop(turn);
                    let (responses, state) = self
                        .client_inputs(&slot, input, session.map(|s| &s.caller))
                        .await?;
                    request.answer(responses, state).map_err(|()| {
                        GatewayError::new(
                            ErrorKind::Upstream,
                            "MCP server error",
                            format!(
                                "{} asked for client input (input_required) on {method}, \
                                 which cannot take any",
                                slot.name()
                            ),
                        )
                    })?;
                }
                Ok(Ok(result)) => {
                    if let Some(r) = &relayed {
                        r.flush_progress().await;
                    }
                    return Ok(result);
                }
                Ok(Err(e)) => return Err(upstream_error(&slot, method, &target, e)),
                Err(_) => return Err(timed_out(&slot, method, &target, timeout)),
            }
        }
        Err(too_many_rounds(&slot, &target))
    }

    /// The secret values of an operation's vMCP and server.
    fn secrets_of(&self, rec: &Record) -> Vec<String> {
        let server_secrets = rec
            .server_id
            .as_deref()
            .and_then(|id| self.supervisor.slot(id))
            .map(|slot| slot.secrets());
        rec.secrets
            .iter()
            .chain(server_secrets.iter().flat_map(|s| s.iter()))
            .cloned()
            .collect()
    }

    /// Writes an operation's row (through the operation log's queue: never waits) and its
    /// metrics.
    fn write(&self, mut rec: Record, outcome: std::result::Result<Option<Value>, &GatewayError>) {
        // Secrets of the vMCP and of the server never reach the log, even when an upstream
        // echoes them or a caller types one in.
        let secrets = self.secrets_of(&rec);
        let status = match &outcome {
            Ok(_) => crate::metrics::Outcome::Ok,
            Err(e) if e.kind == ErrorKind::Cancelled => crate::metrics::Outcome::Cancelled,
            Err(_) => crate::metrics::Outcome::Error,
        };
        let (result, truncated, success, error) = match outcome {
            Ok(Some(v)) => {
                let (v, truncated) = vmcp_domain::logs::logged_result(v, &secrets);
                (Some(v), truncated, true, None)
            }
            Ok(None) => (None, false, true, None),
            Err(e) => {
                let error = format!("{}: {}", e.error, e.detail);
                let error = vmcp_domain::secrets::scrub(&error, &secrets).unwrap_or(error);
                (None, false, false, Some(error))
            }
        };
        if let Some(clean) = rec
            .arguments
            .as_ref()
            .and_then(|a| vmcp_domain::secrets::scrub_value(a, &secrets))
        {
            rec.arguments = Some(clean);
        }
        // A search query or a URI is the caller's text too.
        if let Some(clean) = rec
            .target
            .as_deref()
            .and_then(|t| vmcp_domain::secrets::scrub(t, &secrets))
        {
            rec.target = Some(clean);
        }
        let elapsed = rec.started.elapsed().as_secs_f64();
        self.metrics.observe(
            &rec.vmcp_id,
            rec.server_id.as_deref().unwrap_or(""),
            rec.method,
            status,
            elapsed,
        );
        self.oplog.record(vmcp_domain::LogEntry {
            log_id: rec.log_id,
            client_id: rec.caller.client_id,
            vmcp_id: Some(rec.vmcp_id),
            method: rec.method.to_string(),
            mcp_server_id: rec.server_id,
            target: rec.target,
            arguments: rec.arguments,
            result,
            result_truncated: truncated,
            active_config_snapshot: Some(rec.config),
            timestamp: rec.at,
            duration_ms: elapsed * 1000.0,
            success,
            error,
            parent_log_id: rec.caller.parent_log_id,
            source: rec.caller.source.as_str().to_string(),
        });
    }

    // The REST face's operations: each is one `Operation`.

    pub async fn list_tools(&self, vmcp: &str, caller: &Caller) -> Result<Arc<ToolList>> {
        let a = self
            .operate(vmcp, Operation::ListTools, Fill::of(caller.clone()), None)
            .await?
            .into_aggregate()?;
        Ok(a.tool_list.clone())
    }

    pub async fn list_resources(&self, vmcp: &str, caller: &Caller) -> Result<Arc<ResourceList>> {
        let a = self
            .operate(
                vmcp,
                Operation::ListResources,
                Fill::of(caller.clone()),
                None,
            )
            .await?
            .into_aggregate()?;
        Ok(a.resource_list.clone())
    }

    pub async fn list_prompts(&self, vmcp: &str, caller: &Caller) -> Result<Arc<PromptList>> {
        let a = self
            .operate(vmcp, Operation::ListPrompts, Fill::of(caller.clone()), None)
            .await?
            .into_aggregate()?;
        Ok(a.prompt_list.clone())
    }

    /// The tools of a vMCP that best match `query` (tool search).
    pub async fn search_tools(
        &self,
        vmcp: &str,
        query: &str,
        limit: Option<u64>,
        caller: &Caller,
    ) -> Result<(Vec<Value>, usize)> {
        let op = Operation::SearchTools {
            query: query.to_string(),
            limit,
        };
        self.operate(vmcp, op, Fill::of(caller.clone()), None)
            .await?
            .into_search()
    }

    /// Calls a tool by its exposed name. A tool error (`isError`) is a result, not an error.
    pub async fn call_tool(
        &self,
        vmcp: &str,
        name: &str,
        arguments: Option<Map<String, Value>>,
        params: Option<Map<String, Value>>,
        caller: Caller,
    ) -> Result<CallToolResult> {
        let op = Operation::CallTool {
            name: name.to_string(),
            arguments,
        };
        self.operate(vmcp, op, Fill::rest(params, caller), None)
            .await?
            .into_tool()
    }

    pub async fn read_resource(
        &self,
        vmcp: &str,
        uri: &str,
        caller: &Caller,
    ) -> Result<ReadResourceResult> {
        let op = Operation::ReadResource {
            uri: uri.to_string(),
        };
        self.operate(vmcp, op, Fill::of(caller.clone()), None)
            .await?
            .into_resource()
    }

    pub async fn get_prompt(
        &self,
        vmcp: &str,
        name: &str,
        arguments: Option<Map<String, Value>>,
        params: Option<Map<String, Value>>,
        caller: Caller,
    ) -> Result<GetPromptResult> {
        let op = Operation::GetPrompt {
            name: name.to_string(),
            arguments,
        };
        self.operate(vmcp, op, Fill::rest(params, caller), None)
            .await?
            .into_prompt()
    }

    /// An upstream's `input_required` (2026-07-28 MRTR): each input request is asked of the
    /// client of this very call (`caller`; none for REST), within the server's timeout; the
    /// answers and the state to send back.
    async fn client_inputs(
        &self,
        slot: &Slot,
        input: rmcp::model::InputRequiredResult,
        caller: Option<&crate::relay::Caller>,
    ) -> Result<(Option<rmcp::model::InputResponses>, Option<String>)> {
        let mut responses = rmcp::model::InputResponses::new();
        for (key, request) in input.input_requests.unwrap_or_default() {
            let (request, method) = match request {
                InputRequest::CreateMessage(r) => (
                    ServerRequest::CreateMessageRequest(r),
                    "sampling/createMessage",
                ),
                InputRequest::Elicitation(r) => {
                    (ServerRequest::ElicitRequest(r), "elicitation/create")
                }
                InputRequest::ListRoots(r) => (ServerRequest::ListRootsRequest(r), "roots/list"),
                _ => {
                    return Err(GatewayError::internal(format!(
                        "{} asked for a kind of client input that vMCP does not know",
                        slot.name()
                    )));
                }
            };
            let asked = crate::relay::ask_caller(caller, request, method);
            let answer = match tokio::time::timeout(slot.timeout(), asked).await {
                Ok(answer) => answer,
                Err(_) => Err(rmcp::model::ErrorData::internal_error(
                    format!(
                        "the client did not answer within the server's timeout ({} s)",
                        slot.timeout().as_secs()
                    ),
                    None,
                )),
            }
            .map_err(|e| {
                GatewayError::internal(format!(
                    "{} asked for {method} (input_required) and it failed: {}",
                    slot.name(),
                    e.message
                ))
            })?;
            let value = serde_json::to_value(answer)
                .map_err(|e| GatewayError::internal(format!("{method} answer: {e}")))?;
            responses.insert(key, value);
        }
        Ok((
            (!responses.is_empty()).then_some(responses),
            input.request_state,
        ))
    }

    /// The cached aggregate when it has what the caller looks for; otherwise the aggregate
    /// after connecting the members that are not connected yet.
    async fn aggregate_with(
        &self,
        entry: &VmcpEntry,
        found: impl Fn(&Aggregate) -> bool,
    ) -> Arc<Aggregate> {
        let aggregate = entry.aggregate(&self.supervisor);
        if found(&aggregate) {
            return aggregate;
        }
        self.prepared_aggregate(entry).await
    }

    /// The live connection of a server, waiting for it when it is being (re)connected.
    pub(crate) async fn peer_of(
        &self,
        server_id: &str,
    ) -> Result<(Arc<Slot>, Peer<rmcp::RoleClient>)> {
        let slot = self.supervisor.slot(server_id).ok_or_else(|| {
            GatewayError::internal(format!("server {server_id} is not registered"))
        })?;
        if let Some(live) = slot.live() {
            return Ok((slot.clone(), live.peer));
        }
        let state = match slot.state().status {
            ServerStatus::Disconnected | ServerStatus::Connecting => {
                tokio::time::timeout(ON_DEMAND_CONNECT_WAIT, self.supervisor.connect(&slot))
                    .await
                    .unwrap_or_else(|_| slot.state())
            }
            _ => slot.state(),
        };
        match state.live {
            Some(live) => Ok((slot, live.peer)),
            None => Err(GatewayError::new(
                ErrorKind::Upstream,
                "MCP server unavailable",
                format!(
                    "{} is {}: {}",
                    slot.name(),
                    status_word(state.status),
                    state
                        .last_error
                        .unwrap_or_else(|| "no connection yet".to_string())
                ),
            )),
        }
    }
}

fn status_word(status: ServerStatus) -> &'static str {
    match status {
        ServerStatus::Connected => "connected",
        ServerStatus::Connecting => "still connecting",
        ServerStatus::Disconnected => "disconnected",
        ServerStatus::Error => "failing",
        ServerStatus::AuthRequired => "waiting for a sign-in (see its authorization_url)",
    }
}

/// An item that no available member offers: a 404, or a 502 when members are down (the item
/// may be theirs).
fn missing(what: What, name: &str, entry: &VmcpEntry, aggregate: &Aggregate) -> GatewayError {
    let vmcp = &entry.vmcp.name;
    let word = what.word();
    let hint = Hint::List {
        what,
        vmcp: vmcp.clone(),
    };
    let unavailable = aggregate.unavailable();
    // `server{separator}name` of a member that is up cannot be a down member's.
    let naming = &entry.vmcp.naming;
    let of_a_member_up = entry.vmcp.mcp_servers.iter().any(|m| {
        !unavailable.iter().any(|u| u.server_id == m.server_id)
            && [naming.separator.as_str(), "."]
                .iter()
                .any(|sep| name.starts_with(&format!("{}{sep}", m.name)))
    });
    if unavailable.is_empty() || of_a_member_up {
        let detail = match what {
            What::Resource => format!(
                "no server of vMCP {vmcp:?} lists {name:?} or has a resource template that matches it"
            ),
            _ => format!("vMCP {vmcp:?} has no {word} named {name:?}"),
        };
        return GatewayError::not_found(what, format!("{word} not found"), detail).with_hint(hint);
    }
    let down: Vec<String> = unavailable
        .iter()
        .map(|u| format!("{} ({})", u.name, u.error))
        .collect();
    GatewayError::new(
        ErrorKind::Upstream,
        format!("{word} unavailable"),
        format!(
            "no available server of vMCP {vmcp:?} offers the {word} {name:?}, and {} cannot be \
             asked: {}",
            if down.len() == 1 {
                "this member"
            } else {
                "these members"
            },
            down.join("; ")
        ),
    )
    .with_hint(hint)
}

/// An upstream that answered with the wrong kind of result.
fn unexpected(gateway: &Gateway, server_id: &str, method: &str) -> GatewayError {
    let name = gateway
        .supervisor
        .slot(server_id)
        .map_or_else(|| server_id.to_string(), |s| s.name());
    GatewayError::new(
        ErrorKind::Upstream,
        "MCP server error",
        format!("{name} answered {method} with another kind of result"),
    )
}

/// A permit to send `method` to the server of `slot`, waiting up to its timeout for a turn.
pub(crate) async fn call_permit(
    slot: &Slot,
    method: &str,
    target: &str,
) -> Result<tokio::sync::OwnedSemaphorePermit> {
    let timeout = slot.timeout();
    slot.call_permit(timeout).await.map_err(|limit| {
        GatewayError::new(
            ErrorKind::Timeout,
            "MCP server saturated",
            format!(
                "{} already has {limit} requests in flight (its max_concurrent_calls) and none \
                 finished within {} s (its timeout_seconds); {method} ({target}) was not sent",
                slot.name(),
                timeout.as_secs_f64()
            ),
        )
    })
}

pub(crate) fn timed_out(
    slot: &Slot,
    method: &str,
    target: &str,
    timeout: Duration,
) -> GatewayError {
    GatewayError::new(
        ErrorKind::Timeout,
        "MCP server timed out",
        format!(
            "{} did not answer {method} ({target}) within {} s (its timeout_seconds); the request was cancelled",
            slot.name(),
            timeout.as_secs_f64()
        ),
    )
}

/// An upstream that keeps answering `input_required`.
fn too_many_rounds(slot: &Slot, target: &str) -> GatewayError {
    GatewayError::internal(format!(
        "{} asked for client input {} times in a row (input_required) without finishing {target}",
        slot.name(),
        rmcp::model::DEFAULT_MRTR_MAX_ROUNDS
    ))
}

/// Maps an upstream failure to the error a client sees, by the JSON-RPC code it answered.
pub(crate) fn upstream_error(
    slot: &Slot,
    method: &str,
    target: &str,
    e: ServiceError,
) -> GatewayError {
    let server = slot.name();
    match e {
        ServiceError::McpError(data) => {
            let message = data.message.to_string();
            if data.code == ErrorCode::RESOURCE_NOT_FOUND {
                GatewayError::not_found(
                    What::Resource,
                    "not found upstream",
                    format!("{server} answered {method} ({target}): {message}"),
                )
            } else if data.code == ErrorCode::INVALID_PARAMS {
                GatewayError::new(
                    ErrorKind::BadRequest,
                    "invalid arguments",
                    format!("{server} rejected {method} ({target}): {message}"),
                )
            } else if data.code == ErrorCode::METHOD_NOT_FOUND {
                GatewayError::not_found(
                    What::Method,
                    "not supported upstream",
                    format!("{server} does not support {method}: {message}"),
                )
            } else {
                GatewayError::new(
                    ErrorKind::Upstream,
                    "MCP server error",
                    format!(
                        "{server} failed {method} ({target}) with error {}: {message}",
                        data.code.0
                    ),
                )
            }
        }
        ServiceError::Timeout { timeout } => timed_out(slot, method, target, timeout),
        e @ (ServiceError::TransportClosed | ServiceError::TransportSend(_)) => {
            slot.suspect();
            GatewayError::new(
                ErrorKind::Upstream,
                "MCP server connection lost",
                format!("{server} did not answer {method} ({target}): {e}; reconnecting"),
            )
        }
        other => GatewayError::new(
            ErrorKind::Upstream,
            "MCP server error",
            format!("{server} failed {method} ({target}): {other}"),
        ),
    }
}

/// MCP prompt arguments are strings: numbers and booleans are turned into their text.
fn prompt_arguments(arguments: Option<Map<String, Value>>) -> Result<Option<JsonObject>> {
    let Some(arguments) = arguments else {
        return Ok(None);
    };
    let mut out = JsonObject::new();
    for (k, v) in arguments {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(GatewayError::bad_request(format!(
                    "arguments.{k}: prompt arguments are strings, not {}",
                    match other {
                        Value::Null => "null",
                        Value::Array(_) => "arrays",
                        _ => "objects",
                    }
                )));
            }
        };
        out.insert(k, Value::String(text));
    }
    Ok(Some(out))
}

//! The protocol operations of a vMCP: list and call tools, list and read resources, list and get
//! prompts, routed through the aggregate to the member servers' shared connections.
//!
//! Lists come from the aggregate cache. A call looks its name up (O(1)), waits for the server's
//! connection if it is still being made, and sends the request with the server's timeout;
//! dropping the call's future (an HTTP client that went away) cancels the upstream request.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, CancelledNotificationParam, ClientRequest, ErrorCode,
    GetPromptRequestParams, GetPromptResult, InputRequest, JsonObject, ReadResourceRequestParams,
    ReadResourceResult, RequestId, ServerRequest, ServerResult,
};
use rmcp::model::{GetPromptResponse, ReadResourceResponse};
use rmcp::service::Peer;
use rmcp::service::PeerRequestOptions;
use serde_json::{Map, Value};
use vmcp_domain::{PromptList, ResourceList, ServerStatus, ToolList, ids};

use crate::aggregate::{Aggregate, VmcpEntry};
use crate::substitution::{Caller, Fill};
use crate::supervisor::Slot;
use crate::{ErrorKind, Gateway, GatewayError, Result};
use serde_json::json;

/// The MCP client session a call comes from: where its progress notifications and its
/// upstream's requests (sampling, elicitation, roots) go.
pub struct SessionCall {
    pub caller: crate::relay::Caller,
}

/// An operation being recorded.
pub(crate) struct Record {
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

impl Record {
    fn start(entry: &VmcpEntry, method: &'static str, caller: &Caller) -> Self {
        Self {
            log_id: ids::new_log_id(),
            vmcp_id: entry.vmcp.vmcp_id.clone(),
            method,
            caller: caller.clone(),
            at: vmcp_domain::time::now(),
            started: std::time::Instant::now(),
            config: entry.redacted_config.clone(),
            secrets: entry.secrets.clone(),
            server_id: None,
            target: None,
            arguments: None,
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
            let param: CancelledNotificationParam = serde_json::from_value(
                serde_json::json!({"requestId": id, "reason": "the caller gave up"}),
            )
            .expect("a cancelled notification");
            let _ = peer.notify_cancelled(param).await;
        });
    }
}

/// The longest an operation waits for member servers that are being connected on demand.
pub const ON_DEMAND_CONNECT_WAIT: Duration = Duration::from_secs(30);

impl Gateway {
    /// The runtime entry of a vMCP addressed by id (REST paths).
    /// A vMCP by its id or its name (REST accepts both, as the MCP URLs do).
    pub(crate) fn entry_by_id(&self, id: &str) -> Result<Arc<VmcpEntry>> {
        self.vmcp_entry(id).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::NotFound,
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

    pub async fn list_tools(&self, vmcp_id: &str, caller: &Caller) -> Result<Arc<ToolList>> {
        let entry = self.entry_by_id(vmcp_id)?;
        let rec = Record::start(&entry, "tools/list", caller);
        let list = self.prepared_aggregate(&entry).await.tool_list.clone();
        self.finish(
            rec,
            &Ok::<_, GatewayError>(json!({"tools": list.tools.len()})),
        );
        Ok(list)
    }

    pub async fn list_resources(
        &self,
        vmcp_id: &str,
        caller: &Caller,
    ) -> Result<Arc<ResourceList>> {
        let entry = self.entry_by_id(vmcp_id)?;
        let rec = Record::start(&entry, "resources/list", caller);
        let list = self.prepared_aggregate(&entry).await.resource_list.clone();
        self.finish(
            rec,
            &Ok::<_, GatewayError>(json!({"resources": list.resources.len()})),
        );
        Ok(list)
    }

    pub async fn list_prompts(&self, vmcp_id: &str, caller: &Caller) -> Result<Arc<PromptList>> {
        let entry = self.entry_by_id(vmcp_id)?;
        let rec = Record::start(&entry, "prompts/list", caller);
        let list = self.prepared_aggregate(&entry).await.prompt_list.clone();
        self.finish(
            rec,
            &Ok::<_, GatewayError>(json!({"prompts": list.prompts.len()})),
        );
        Ok(list)
    }

    /// Records an operation that an MCP session served from the aggregate (lists).
    pub fn record_list(
        &self,
        entry: &VmcpEntry,
        method: &'static str,
        caller: &Caller,
        items: usize,
    ) {
        let rec = Record::start(entry, method, caller);
        self.finish(rec, &Ok::<_, GatewayError>(json!({"items": items})));
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

    /// Writes the row of an operation that reached an upstream, and returns its result with the
    /// secrets masked in an error (an upstream's message may quote what it was sent).
    fn finish_upstream<T: serde::Serialize>(&self, rec: Record, result: Result<T>) -> Result<T> {
        let secrets = self.secrets_of(&rec);
        self.finish(rec, &result);
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

    /// Writes an operation's row (through the operation log's queue: never waits).
    fn finish<T: serde::Serialize>(&self, mut rec: Record, result: &Result<T>) {
        // Secrets of the vMCP and of the server never reach the log, even when an upstream
        // echoes them or a caller types one in.
        let secrets = self.secrets_of(&rec);
        let (result, truncated, success, error) = match result {
            Ok(v) => match serde_json::to_value(v) {
                Ok(v) => {
                    let (v, truncated) = vmcp_domain::logs::logged_result(v, &secrets);
                    (Some(v), truncated, true, None)
                }
                Err(_) => (None, false, true, None),
            },
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
        let elapsed = rec.started.elapsed().as_secs_f64();
        self.metrics.observe(
            &rec.vmcp_id,
            rec.server_id.as_deref().unwrap_or(""),
            rec.method,
            success,
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
            source: rec.caller.source.to_string(),
        });
    }

    /// Calls a tool of a vMCP by its exposed name. A tool error (`isError`) is a result, not
    /// an error.
    pub async fn call_tool(
        &self,
        vmcp_id: &str,
        name: &str,
        arguments: Option<Map<String, Value>>,
        params: Option<Map<String, Value>>,
        caller: Caller,
    ) -> Result<CallToolResult> {
        let entry = self.entry_by_id(vmcp_id)?;
        self.call_tool_in(&entry, name, arguments, None, Fill::rest(params, caller))
            .await
    }

    /// Calls a tool by its exposed name (or `server.tool`). Its arguments are filled first (see
    /// `fill_arguments`): a substitution that fails is a 400 and nothing is called upstream.
    pub async fn call_tool_in(
        &self,
        entry: &VmcpEntry,
        name: &str,
        arguments: Option<Map<String, Value>>,
        session: Option<&SessionCall>,
        fill: Fill,
    ) -> Result<CallToolResult> {
        let mut rec = Record::start(entry, "tools/call", &fill.caller);
        rec.target = Some(name.to_string());
        rec.arguments = arguments.clone().map(Value::Object);
        let result = self
            .call_tool_routed(entry, name, arguments, session, fill, &mut rec)
            .await;
        self.finish_upstream(rec, result)
    }

    async fn call_tool_routed(
        &self,
        entry: &VmcpEntry,
        name: &str,
        arguments: Option<Map<String, Value>>,
        session: Option<&SessionCall>,
        fill: Fill,
        rec: &mut Record,
    ) -> Result<CallToolResult> {
        let aggregate = self
            .aggregate_with(entry, |a| a.tool_by_any_name(name).is_some())
            .await;
        let Some(route) = aggregate.tool_by_any_name(name) else {
            return Err(not_found("tool", name, &entry.vmcp.name, &aggregate));
        };
        rec.server_id = Some(route.server_id.clone());
        let arguments = self
            .fill_arguments(
                entry,
                Some(route),
                arguments,
                &fill.for_nested_of(&rec.log_id),
            )
            .await?;
        // The log keeps the arguments as the caller sent them: the filled ones may hold
        // `@config:` secrets.
        let (slot, peer) = self.peer_of(&route.server_id).await?;
        let mut params = CallToolRequestParams::new(route.name.clone());
        params.arguments = Some(arguments);
        let mut relayed = session.map(|s| self.supervisor.relay().begin(&slot.id, &s.caller));
        if let Some(s) = session {
            // The server caches its client's roots: make them this client's first.
            self.supervisor
                .relay()
                .sync_roots(&slot.id, &s.caller, &peer, slot.timeout())
                .await;
        }
        let _permit = call_permit(&slot, "tools/call", &route.name).await?;
        // A 2026-07-28 upstream asks for client input by answering `input_required` (MRTR):
        // each input request is relayed like a mid-call request, and the call is sent again
        // with the answers.
        for _round in 0..rmcp::model::DEFAULT_MRTR_MAX_ROUNDS {
            let request: ClientRequest = serde_json::from_value(
                serde_json::json!({"method": "tools/call", "params": params}),
            )
            .map_err(|e| GatewayError::internal(format!("tools/call request: {e}")))?;
            let handle = peer
                .send_cancellable_request(request, PeerRequestOptions::no_options())
                .await
                .map_err(|e| upstream_error(&slot, "tools/call", &route.name, e))?;
            if let Some(r) = relayed.as_mut() {
                r.watch_progress(&handle.progress_token);
            }
            // Dropped before the answer (timeout, client gone): the upstream request is cancelled.
            let mut abandoned = CancelOnDrop {
                peer: peer.clone(),
                id: Some(handle.id.clone()),
            };
            let timeout = slot.timeout();
            let outcome = tokio::time::timeout(timeout, handle.await_response()).await;
            if outcome.is_ok() {
                abandoned.id = None;
            }
            match outcome {
                Ok(Ok(ServerResult::CallToolResult(result))) => return Ok(result),
                Ok(Ok(ServerResult::InputRequiredResult(input))) => {
                    let (responses, state) = self
                        .client_inputs(&slot, input, session.map(|s| &s.caller))
                        .await?;
                    params.input_responses = responses;
                    params.request_state = state;
                }
                Ok(Ok(_)) => {
                    return Err(upstream_error(
                        &slot,
                        "tools/call",
                        &route.name,
                        ServiceError::UnexpectedResponse,
                    ));
                }
                Ok(Err(e)) => return Err(upstream_error(&slot, "tools/call", &route.name, e)),
                Err(_) => return Err(timed_out(&slot, "tools/call", &route.name, timeout)),
            }
        }
        Err(too_many_rounds(&slot, &route.name))
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

    /// Reads a resource of a vMCP by URI.
    pub async fn read_resource(
        &self,
        vmcp_id: &str,
        uri: &str,
        caller: &Caller,
    ) -> Result<ReadResourceResult> {
        let entry = self.entry_by_id(vmcp_id)?;
        self.read_resource_logged(&entry, uri, caller, None).await
    }

    /// Reads a resource and records the operation (`session`: the MCP client it is read for).
    pub async fn read_resource_logged(
        &self,
        entry: &VmcpEntry,
        uri: &str,
        caller: &Caller,
        session: Option<&SessionCall>,
    ) -> Result<ReadResourceResult> {
        let mut rec = Record::start(entry, "resources/read", caller);
        rec.target = Some(uri.to_string());
        let aggregate = entry.aggregate(&self.supervisor);
        rec.server_id = aggregate.resource_owner(uri).map(String::from);
        let result = self.read_resource_in(entry, uri, session).await;
        self.finish_upstream(rec, result)
    }

    pub async fn read_resource_in(
        &self,
        entry: &VmcpEntry,
        uri: &str,
        session: Option<&SessionCall>,
    ) -> Result<ReadResourceResult> {
        let aggregate = self
            .aggregate_with(entry, |a| a.resource_owner(uri).is_some())
            .await;
        let Some(owner) = aggregate.resource_owner(uri) else {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                "resource not found",
                format!(
                    "no server of vMCP {:?} lists {uri:?} or has a resource template that matches it{}",
                    entry.vmcp.name,
                    unavailable_note(&aggregate)
                ),
            ));
        };
        let (slot, peer) = self.peer_of(owner).await?;
        let _permit = call_permit(&slot, "resources/read", uri).await?;
        let timeout = slot.timeout();
        let _relayed = session.map(|s| self.supervisor.relay().begin(&slot.id, &s.caller));
        let mut params = ReadResourceRequestParams::new(uri);
        for _round in 0..rmcp::model::DEFAULT_MRTR_MAX_ROUNDS {
            match tokio::time::timeout(timeout, peer.read_resource_once(params.clone())).await {
                Ok(Ok(ReadResourceResponse::Complete(result))) => return Ok(result),
                Ok(Ok(ReadResourceResponse::InputRequired(input))) => {
                    let (responses, state) = self
                        .client_inputs(&slot, input, session.map(|s| &s.caller))
                        .await?;
                    params.input_responses = responses;
                    params.request_state = state;
                }
                Ok(Ok(_)) => {
                    return Err(upstream_error(
                        &slot,
                        "resources/read",
                        uri,
                        ServiceError::UnexpectedResponse,
                    ));
                }
                Ok(Err(e)) => return Err(upstream_error(&slot, "resources/read", uri, e)),
                Err(_) => return Err(timed_out(&slot, "resources/read", uri, timeout)),
            }
        }
        Err(too_many_rounds(&slot, uri))
    }

    /// Renders a prompt of a vMCP by its exposed name.
    pub async fn get_prompt(
        &self,
        vmcp_id: &str,
        name: &str,
        arguments: Option<Map<String, Value>>,
        params: Option<Map<String, Value>>,
        caller: Caller,
    ) -> Result<GetPromptResult> {
        let entry = self.entry_by_id(vmcp_id)?;
        self.get_prompt_in(&entry, name, arguments, Fill::rest(params, caller), None)
            .await
    }

    /// Renders a prompt by its exposed name (or `server.prompt`), its arguments filled first.
    pub async fn get_prompt_in(
        &self,
        entry: &VmcpEntry,
        name: &str,
        arguments: Option<Map<String, Value>>,
        fill: Fill,
        session: Option<&SessionCall>,
    ) -> Result<GetPromptResult> {
        let mut rec = Record::start(entry, "prompts/get", &fill.caller);
        rec.target = Some(name.to_string());
        rec.arguments = arguments.clone().map(Value::Object);
        let result = self
            .get_prompt_routed(entry, name, arguments, fill, session, &mut rec)
            .await;
        self.finish_upstream(rec, result)
    }

    async fn get_prompt_routed(
        &self,
        entry: &VmcpEntry,
        name: &str,
        arguments: Option<Map<String, Value>>,
        fill: Fill,
        session: Option<&SessionCall>,
        rec: &mut Record,
    ) -> Result<GetPromptResult> {
        let aggregate = self
            .aggregate_with(entry, |a| a.prompt_by_any_name(name).is_some())
            .await;
        let Some(route) = aggregate.prompt_by_any_name(name) else {
            return Err(not_found("prompt", name, &entry.vmcp.name, &aggregate));
        };
        rec.server_id = Some(route.server_id.clone());
        let arguments = match arguments {
            Some(a) => Some(
                self.fill_arguments(entry, None, Some(a), &fill.for_nested_of(&rec.log_id))
                    .await?,
            ),
            None => None,
        };
        let arguments = prompt_arguments(arguments)?;
        let (slot, peer) = self.peer_of(&route.server_id).await?;
        let _permit = call_permit(&slot, "prompts/get", &route.name).await?;
        let mut params = GetPromptRequestParams::new(route.name.clone());
        params.arguments = arguments;
        let timeout = slot.timeout();
        let _relayed = session.map(|s| self.supervisor.relay().begin(&slot.id, &s.caller));
        for _round in 0..rmcp::model::DEFAULT_MRTR_MAX_ROUNDS {
            match tokio::time::timeout(timeout, peer.get_prompt_once(params.clone())).await {
                Ok(Ok(GetPromptResponse::Complete(result))) => return Ok(result),
                Ok(Ok(GetPromptResponse::InputRequired(input))) => {
                    let (responses, state) = self
                        .client_inputs(&slot, input, session.map(|s| &s.caller))
                        .await?;
                    params.input_responses = responses;
                    params.request_state = state;
                }
                Ok(Ok(_)) => {
                    return Err(upstream_error(
                        &slot,
                        "prompts/get",
                        &route.name,
                        ServiceError::UnexpectedResponse,
                    ));
                }
                Ok(Err(e)) => return Err(upstream_error(&slot, "prompts/get", &route.name, e)),
                Err(_) => return Err(timed_out(&slot, "prompts/get", &route.name, timeout)),
            }
        }
        Err(too_many_rounds(&slot, &route.name))
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
    }
}

fn unavailable_note(aggregate: &Aggregate) -> String {
    let down = aggregate.unavailable();
    if down.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = down.iter().map(|u| u.name.as_str()).collect();
        format!(
            " (unavailable, so not searched: {}; see their last_error)",
            names.join(", ")
        )
    }
}

fn not_found(what: &str, name: &str, vmcp: &str, aggregate: &Aggregate) -> GatewayError {
    GatewayError::new(
        ErrorKind::NotFound,
        format!("{what} not found"),
        format!(
            "vMCP {vmcp:?} has no {what} named {name:?}{}; list them with GET /api/vmcps/{{vmcp_id}}/{what}s",
            unavailable_note(aggregate)
        ),
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

/// Maps an upstream failure to the error a client sees.
/// An upstream that keeps answering `input_required`.
fn too_many_rounds(slot: &Slot, target: &str) -> GatewayError {
    GatewayError::internal(format!(
        "{} asked for client input {} times in a row (input_required) without finishing {target}",
        slot.name(),
        rmcp::model::DEFAULT_MRTR_MAX_ROUNDS
    ))
}

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
            let lower = message.to_lowercase();
            if data.code == ErrorCode::RESOURCE_NOT_FOUND
                || (data.code == ErrorCode::INVALID_PARAMS
                    && (lower.contains("not found") || lower.contains("unknown")))
            {
                GatewayError::new(
                    ErrorKind::NotFound,
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
                GatewayError::new(
                    ErrorKind::NotFound,
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

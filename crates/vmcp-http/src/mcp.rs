//! The MCP endpoints of every vMCP, on the API's port: streamable HTTP at `/vmcp/{vmcp}/mcp`
//! and the legacy HTTP+SSE transport at `/vmcp/{vmcp}/sse` (messages POSTed to
//! `/vmcp/{vmcp}/message?sessionId=..`). `{vmcp}` is the vMCP's id or its name.
//!
//! The protocol is rmcp's server side (`StreamableHttpService`, one per vMCP, whose sessions are
//! `VmcpSession`s), adapted to actix here: an actix request becomes an `http::Request`, and the
//! `http::Response`'s body streams back through actix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use vmcp_gateway::Gateway;
use vmcp_gateway::aggregate::VmcpEntry;
use vmcp_gateway::session::VmcpSession;
use vmcp_sse_server::{PostError, SseSessions};

use crate::AppState;
use crate::error::ApiError;

type HttpService = StreamableHttpService<VmcpSession, LocalSessionManager>;

/// Settings of the MCP endpoints.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// A streamable HTTP session unused for this long ends (its next request gets 404, and
    /// the client's SDK starts a new session).
    pub session_idle_timeout: Duration,
    /// At most this many streamable HTTP sessions are open at once, over all vMCPs; opening
    /// one more ends the least recently used.
    pub max_sessions: usize,
}

impl McpOptions {
    /// Default idle expiry: a desktop client left open over night still works.
    pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            session_idle_timeout: Self::DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
        }
    }
}

/// One vMCP's streamable HTTP service and its session manager.
#[derive(Clone)]
struct HttpEndpoint {
    service: HttpService,
    manager: Arc<LocalSessionManager>,
}

/// When each streamable HTTP session was last used, to end the least recently used one when
/// there are too many.
#[derive(Default)]
struct SessionUse {
    /// Transport session id -> (vMCP id, last use).
    last: HashMap<String, (String, Instant)>,
}

/// The MCP endpoints of every vMCP: one streamable HTTP service and one set of SSE sessions per
/// vMCP, made on first use.
pub struct McpEndpoints {
    gateway: Arc<Gateway>,
    options: McpOptions,
    /// Cancelled at shutdown: ends every session and its streams.
    closing: tokio_util::sync::CancellationToken,
    http: Mutex<HashMap<String, HttpEndpoint>>,
    sse: Mutex<HashMap<String, SseSessions>>,
    used: Mutex<SessionUse>,
}

impl McpEndpoints {
    pub fn new(gateway: Arc<Gateway>, options: McpOptions) -> Self {
        Self {
            gateway,
            options,
            closing: tokio_util::sync::CancellationToken::new(),
            http: Mutex::new(HashMap::new()),
            sse: Mutex::new(HashMap::new()),
            used: Mutex::new(SessionUse::default()),
        }
    }

    fn entry(&self, id_or_name: &str) -> Result<Arc<VmcpEntry>, ApiError> {
        Ok(self.gateway.vmcp(id_or_name)?)
    }

    fn http_endpoint(&self, vmcp_id: &str) -> HttpEndpoint {
        let mut services = self.http.lock().expect("services lock");
        services
            .entry(vmcp_id.to_string())
            .or_insert_with(|| {
                let gateway = self.gateway.clone();
                let id = vmcp_id.to_string();
                let closing = self.closing.clone();
                // Host and Origin are checked for every route by `crate::guard`.
                // Stateless (2026-07-28) requests whose answer is a single message get plain
                // JSON instead of an SSE stream (one write, nothing to end late); a call that
                // sends progress or asks for input first still streams.
                let mut config = StreamableHttpServerConfig::default()
                    .disable_allowed_hosts()
                    .disable_allowed_origins()
                    .with_json_response(true);
                config.cancellation_token = self.closing.child_token();
                let mut manager = LocalSessionManager::default();
                // rmcp ends a session after this long without activity; ours is judged first
                // (`touch`), so the margin only covers rmcp's own clock.
                manager.session_config.keep_alive =
                    Some(self.options.session_idle_timeout + Duration::from_secs(60));
                let manager = Arc::new(manager);
                let service = StreamableHttpService::new(
                    move || {
                        Ok(VmcpSession::ending_with(
                            gateway.clone(),
                            id.clone(),
                            closing.child_token(),
                        ))
                    },
                    manager.clone(),
                    config,
                );
                HttpEndpoint { service, manager }
            })
            .clone()
    }

    /// Notes a use of the session `session_id`. Returns false when it has been idle too long
    /// (it is then ended, and the request is answered as for an unknown session).
    async fn touch(&self, vmcp_id: &str, session_id: &str, endpoint: &HttpEndpoint) -> bool {
        let now = Instant::now();
        let expired = {
            let mut used = self.used.lock().expect("sessions lock");
            match used.last.get_mut(session_id) {
                Some((_, last))
                    if now.duration_since(*last) > self.options.session_idle_timeout =>
                {
                    used.last.remove(session_id);
                    true
                }
                Some((_, last)) => {
                    *last = now;
                    false
                }
                None => {
                    used.last
                        .insert(session_id.to_string(), (vmcp_id.to_string(), now));
                    false
                }
            }
        };
        if expired {
            self.end_session(session_id, endpoint).await;
        }
        !expired
    }

    /// A new session was opened: records it, forgets sessions that expired, and ends the least
    /// recently used ones while there are more than allowed.
    async fn opened(&self, vmcp_id: &str, session_id: &str) {
        let now = Instant::now();
        let evicted: Vec<(String, String)> = {
            let mut used = self.used.lock().expect("sessions lock");
            let idle = self.options.session_idle_timeout;
            let mut gone: Vec<(String, String)> = used
                .last
                .iter()
                .filter(|(_, (_, last))| now.duration_since(*last) > idle)
                .map(|(id, (vmcp, _))| (id.clone(), vmcp.clone()))
                .collect();
            used.last
                .insert(session_id.to_string(), (vmcp_id.to_string(), now));
            for (id, _) in &gone {
                used.last.remove(id);
            }
            while used.last.len() > self.options.max_sessions.max(1) {
                let oldest = used
                    .last
                    .iter()
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(id, (vmcp, _))| (id.clone(), vmcp.clone()));
                let Some((id, vmcp)) = oldest else { break };
                used.last.remove(&id);
                tracing::info!(session = %id, "too many MCP sessions: ending the least recently used");
                gone.push((id, vmcp));
            }
            gone
        };
        for (id, vmcp) in evicted {
            let endpoint = self.http.lock().expect("services lock").get(&vmcp).cloned();
            if let Some(endpoint) = endpoint {
                self.end_session(&id, &endpoint).await;
            }
        }
    }

    /// Ends a streamable HTTP session: its calls in flight are cancelled upstream, then the
    /// transport closes it.
    async fn end_session(&self, session_id: &str, endpoint: &HttpEndpoint) {
        use rmcp::transport::streamable_http_server::SessionManager;
        self.gateway.sessions.end(session_id);
        self.used
            .lock()
            .expect("sessions lock")
            .last
            .remove(session_id);
        let _ = endpoint.manager.close_session(&session_id.into()).await;
    }

    /// Whether the streamable HTTP session `session_id` of this vMCP is open.
    async fn has_session(&self, session_id: &str, endpoint: &HttpEndpoint) -> bool {
        use rmcp::transport::streamable_http_server::SessionManager;
        endpoint
            .manager
            .has_session(&session_id.into())
            .await
            .unwrap_or(false)
    }

    fn sse_sessions(&self, vmcp_id: &str) -> SseSessions {
        self.sse
            .lock()
            .expect("sse lock")
            .entry(vmcp_id.to_string())
            .or_default()
            .clone()
    }

    /// Ends every MCP session and its event streams (at shutdown, so that open streams do not
    /// hold the server's graceful stop).
    pub fn shutdown(&self) {
        self.closing.cancel();
    }

    /// The number of open legacy SSE sessions (streamable HTTP sessions are counted by the
    /// gateway's session registry).
    pub fn sse_session_count(&self) -> usize {
        self.sse
            .lock()
            .expect("sse lock")
            .values()
            .map(SseSessions::len)
            .sum()
    }
}

/// Adds the MCP routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(crate::body::MCP_BODY_LIMIT))
        .route("/vmcp/{vmcp}/mcp", web::route().to(streamable_http))
        .route("/vmcp/{vmcp}/sse", web::get().to(sse_open))
        .route("/vmcp/{vmcp}/message", web::post().to(sse_post));
}

/// A JSON-RPC error as the answer of an MCP endpoint (MCP clients read these, not the REST
/// API's error body).
pub fn jsonrpc_error(
    status: StatusCode,
    id: Option<serde_json::Value>,
    code: i32,
    message: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(serde_json::Value::Null),
        "error": {"code": code, "message": message.into()},
    }))
}

const PARSE_ERROR: i32 = -32700;
const INVALID_REQUEST: i32 = -32600;
const INVALID_PARAMS: i32 = -32602;
/// What MCP SDKs expect with the 404 of an unknown or expired session.
const SESSION_NOT_FOUND: i32 = -32001;

/// The methods of the protocol: a request for one of these whose parameters do not fit is
/// invalid params (-32602), not an unknown method.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
];

fn session_not_found(session_id: &str) -> HttpResponse {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        None,
        SESSION_NOT_FOUND,
        format!(
            "Session not found: {session_id:?} is not an open session of this vMCP (it ended or \
             expired); start a new session with initialize"
        ),
    )
}

fn is_json_content(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// Checks a POSTed body as the specification asks, before rmcp sees it: JSON content, valid
/// JSON (-32700), one JSON-RPC message (-32600), parameters that fit a known method (-32602).
pub fn check_message(req: &HttpRequest, body: &[u8]) -> Result<(), Box<HttpResponse>> {
    if !is_json_content(req) {
        return Err(Box::new(jsonrpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            INVALID_REQUEST,
            "Unsupported Media Type: send the body with Content-Type: application/json",
        )));
    }
    let depth = crate::json::nesting_depth(body);
    if depth > crate::json::MAX_DEPTH {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            None,
            INVALID_REQUEST,
            format!(
                "Invalid Request: the message nests arrays and objects {depth} levels deep; at \
                 most {}",
                crate::json::MAX_DEPTH
            ),
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            None,
            PARSE_ERROR,
            format!("Parse error: the body is not valid JSON ({e})"),
        ))
    })?;
    let Some(object) = value.as_object() else {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            None,
            INVALID_REQUEST,
            "Invalid Request: the body must be one JSON-RPC message (an object); batches are \
             not part of the protocol",
        )));
    };
    let id = object.get("id").cloned();
    let message: rmcp::model::ClientJsonRpcMessage = match serde_json::from_value(value.clone()) {
        Ok(m) => m,
        Err(e) => {
            let code = match object.get("method").and_then(|m| m.as_str()) {
                Some(m) if KNOWN_METHODS.contains(&m) => INVALID_PARAMS,
                _ => INVALID_REQUEST,
            };
            return Err(Box::new(jsonrpc_error(
                StatusCode::BAD_REQUEST,
                id,
                code,
                format!("Invalid message: {e}"),
            )));
        }
    };
    if let rmcp::model::ClientJsonRpcMessage::Request(r) = &message
        && let rmcp::model::ClientRequest::CustomRequest(c) = &r.request
        && KNOWN_METHODS.contains(&c.method.as_str())
    {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_PARAMS,
            format!(
                "Invalid params: the parameters of {} do not fit its schema",
                c.method
            ),
        )));
    }
    Ok(())
}

async fn streamable_http(
    req: HttpRequest,
    body: Bytes,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::http::Method;
    let endpoints = &state.mcp;
    let entry = match endpoints.entry(&path) {
        Ok(e) => e,
        Err(e) => {
            return Ok(jsonrpc_error(
                StatusCode::NOT_FOUND,
                None,
                INVALID_REQUEST,
                format!("{}: {}", e.body.error, e.body.detail),
            ));
        }
    };
    let vmcp_id = entry.vmcp.vmcp_id.clone();
    let endpoint = endpoints.http_endpoint(&vmcp_id);
    let session_id = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if req.method() == Method::POST
        && let Err(refusal) = check_message(&req, &body)
    {
        return Ok(*refusal);
    }
    if let Some(sid) = &session_id {
        // Sessions are per vMCP: another vMCP's session is as unknown as an expired one.
        if !endpoints.has_session(sid, &endpoint).await
            || !endpoints.touch(&vmcp_id, sid, &endpoint).await
        {
            return Ok(session_not_found(sid));
        }
        if req.method() == Method::DELETE {
            // Cancels the session's calls in flight upstream at once, then closes it.
            endpoints.end_session(sid, &endpoint).await;
            return Ok(HttpResponse::Ok().finish());
        }
    }
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| vmcp_gateway::GatewayError::bad_request(format!("bad request: {e}")))?;
    let response = endpoint.service.handle(request).await;
    let (parts, body) = response.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if session_id.is_none()
        && let Some(new) = parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        endpoints.opened(&vmcp_id, new).await;
    }
    let is_json = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if status.as_u16() >= 400 && !is_json {
        // rmcp's own refusals are plain text: give MCP clients a JSON-RPC error.
        let text = body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Ok(jsonrpc_error(status, None, INVALID_REQUEST, text));
    }
    let mut out = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        out.append_header((name.as_str(), value.as_bytes()));
    }
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(|never| match never {}));
    Ok(out.streaming::<_, std::convert::Infallible>(stream))
}

async fn sse_open(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = &state.mcp;
    let entry = endpoints.entry(&path)?;
    let sessions = endpoints.sse_sessions(&entry.vmcp.vmcp_id);
    // The session ends, and its calls in flight are cancelled upstream, when the stream does
    // (the client went away, or shutdown).
    let ended = endpoints.closing.child_token();
    let handler = VmcpSession::ending_with(
        state.gateway.clone(),
        entry.vmcp.vmcp_id.clone(),
        ended.clone(),
    );
    let (_, events) = sessions.open(handler, &format!("/vmcp/{}/message", path.as_str()));
    // actix notices a client that closed an event stream only when a write fails (the next
    // keep-alive, up to 30 s later): watch the socket itself, so that the session ends, and its
    // calls are cancelled, as soon as the client goes.
    let watched = ended.clone();
    actix_web::rt::spawn(async move {
        crate::client_gone::until_client_gone(&req, watched.cancelled()).await;
        watched.cancel();
    });
    let stop = ended.clone();
    let guard = ended.drop_guard();
    let events = events
        .take_until(stop.cancelled_owned())
        .take_until(endpoints.closing.clone().cancelled_owned())
        .map(move |chunk| {
            let _held = &guard;
            chunk
        });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(events.map(Ok::<_, std::convert::Infallible>)))
}

#[derive(serde::Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

async fn sse_post(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SessionQuery>,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = &state.mcp;
    let entry = endpoints.entry(&path)?;
    if let Err(refusal) = check_message(&req, &body) {
        return Ok(*refusal);
    }
    let sessions = endpoints.sse_sessions(&entry.vmcp.vmcp_id);
    match sessions.post(&query.session_id, &body).await {
        Ok(()) => Ok(HttpResponse::Accepted().body("Accepted")),
        Err(PostError::UnknownSession(id)) => Ok(session_not_found(&id)),
        Err(e) => Ok(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            None,
            INVALID_REQUEST,
            e.to_string(),
        )),
    }
}

//! The MCP endpoints of every vMCP, on the API's port: streamable HTTP at `/vmcp/{vmcp}/mcp`
//! and the legacy HTTP+SSE transport at `/vmcp/{vmcp}/sse` (messages POSTed to
//! `/vmcp/{vmcp}/message?sessionId=..`). `{vmcp}` is the vMCP's id or its name.
//!
//! The protocol is rmcp's server side (`StreamableHttpService`, one per vMCP, whose sessions are
//! `VmcpSession`s), adapted to actix here: an actix request becomes an `http::Request`, and the
//! `http::Response`'s body streams back through actix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
use vmcp_transport::sse_server::{PostError, SseSessions};

use crate::AppState;
use crate::error::ApiError;

type HttpService = StreamableHttpService<VmcpSession, LocalSessionManager>;

/// Settings of the MCP endpoints.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// Hosts (`name` or `name:port`) accepted in the `Host` header, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

/// The MCP endpoints of every vMCP: one streamable HTTP service and one set of SSE sessions per
/// vMCP, made on first use.
pub struct McpEndpoints {
    gateway: Arc<Gateway>,
    options: McpOptions,
    /// Cancelled at shutdown: ends every session and its streams.
    closing: tokio_util::sync::CancellationToken,
    http: Mutex<HashMap<String, HttpService>>,
    sse: Mutex<HashMap<String, SseSessions>>,
}

impl McpEndpoints {
    pub fn new(gateway: Arc<Gateway>, options: McpOptions) -> Self {
        Self {
            gateway,
            options,
            closing: tokio_util::sync::CancellationToken::new(),
            http: Mutex::new(HashMap::new()),
            sse: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, id_or_name: &str) -> Result<Arc<VmcpEntry>, ApiError> {
        self.gateway.vmcp_entry(id_or_name).ok_or_else(|| {
            vmcp_gateway::GatewayError::new(
                vmcp_gateway::ErrorKind::NotFound,
                "vMCP not found",
                format!("no vMCP has the id or name {id_or_name:?}"),
            )
            .into()
        })
    }

    fn http_service(&self, vmcp_id: &str) -> HttpService {
        let mut services = self.http.lock().expect("services lock");
        services
            .entry(vmcp_id.to_string())
            .or_insert_with(|| {
                let gateway = self.gateway.clone();
                let id = vmcp_id.to_string();
                let mut config = StreamableHttpServerConfig::default()
                    .with_allowed_hosts(self.options.allowed_hosts.clone());
                config.cancellation_token = self.closing.child_token();
                StreamableHttpService::new(
                    move || Ok(VmcpSession::new(gateway.clone(), id.clone())),
                    Arc::new(LocalSessionManager::default()),
                    config,
                )
            })
            .clone()
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

    /// Host validation for the SSE transport (rmcp does it for streamable HTTP).
    fn host_allowed(&self, req: &HttpRequest) -> bool {
        let Some(host) = req.headers().get("host").and_then(|h| h.to_str().ok()) else {
            return true;
        };
        let name = host
            .strip_prefix('[')
            .and_then(|h| h.split(']').next())
            .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(n, _)| n));
        self.options
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name))
    }
}

/// Adds the MCP routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/vmcp/{vmcp}/mcp", web::route().to(streamable_http))
        .route("/vmcp/{vmcp}/sse", web::get().to(sse_open))
        .route("/vmcp/{vmcp}/message", web::post().to(sse_post));
}

async fn streamable_http(
    req: HttpRequest,
    body: Bytes,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = &state.mcp;
    let entry = endpoints.entry(&path)?;
    let service = endpoints.http_service(&entry.vmcp.vmcp_id);
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| vmcp_gateway::GatewayError::bad_request(format!("bad request: {e}")))?;
    let is_delete = req.method() == actix_web::http::Method::DELETE;
    let response = service.handle(request).await;
    let (parts, body) = response.into_parts();
    let mut status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if is_delete && status == StatusCode::ACCEPTED {
        // A terminated session: some SDKs (Python) only take 200 or 204 as success here.
        status = StatusCode::OK;
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
    if !endpoints.host_allowed(&req) {
        return Ok(HttpResponse::Forbidden().body("Forbidden: Host header is not allowed"));
    }
    let entry = endpoints.entry(&path)?;
    let sessions = endpoints.sse_sessions(&entry.vmcp.vmcp_id);
    let handler = VmcpSession::new(state.gateway.clone(), entry.vmcp.vmcp_id.clone());
    let (_, events) = sessions.open(handler, &format!("/vmcp/{}/message", path.as_str()));
    let events = events.take_until(endpoints.closing.clone().cancelled_owned());
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
    if !endpoints.host_allowed(&req) {
        return Ok(HttpResponse::Forbidden().body("Forbidden: Host header is not allowed"));
    }
    let entry = endpoints.entry(&path)?;
    let sessions = endpoints.sse_sessions(&entry.vmcp.vmcp_id);
    match sessions.post(&query.session_id, &body).await {
        Ok(()) => Ok(HttpResponse::Accepted().body("Accepted")),
        Err(e @ PostError::UnknownSession(_)) => Err(vmcp_gateway::GatewayError::new(
            vmcp_gateway::ErrorKind::NotFound,
            "MCP session not found",
            e.to_string(),
        )
        .into()),
        Err(e) => Err(vmcp_gateway::GatewayError::bad_request(e.to_string()).into()),
    }
}

//! MCP client connections to upstream servers, on rmcp, over every transport vMCP supports:
//! stdio (a child process in its own process group), the legacy HTTP+SSE transport (written
//! here: rmcp dropped it) and streamable HTTP. `connect` returns an `Upstream` whichever the
//! transport; the rest of the gateway never asks which one it is.
//!
//! Architecture invariant: this crate knows nothing of vMCPs, the database or HTTP serving. What
//! an upstream sends on its own (notifications, requests such as sampling) goes to an
//! `UpstreamObserver` that the caller supplies.

pub mod lines;
mod log;
mod oauth;
pub mod proctree;
mod sse;
mod stdio;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{
    ClientCapabilities, ClientConfig, ClientResult, ElicitationCapability, ErrorData,
    Implementation, ProtocolVersion, ServerNotification, ServerPeerInfo, ServerRequest,
};
use rmcp::service::{
    ClientInitializeError, ClientLifecycleMode, ClientServiceExt, NotificationContext, Peer,
    RequestContext, RunningService, RxJsonRpcMessage, Service, TxJsonRpcMessage,
};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{StreamableHttpClientTransport, Transport};
use tokio_util::sync::CancellationToken;
use vmcp_domain::{ProtocolMode, ServerConfig, TransportType};

pub use crate::log::{LogBuffer, LogLine};
pub use crate::oauth::OAuthLink;
pub use crate::stdio::ProcessGroup;

/// What an upstream sends on its own initiative.
pub trait UpstreamObserver: Send + Sync + 'static {
    /// A notification (list changes, progress, log messages, resource updates, ...). Called on
    /// the connection's task: must not block.
    fn notification(&self, notification: ServerNotification);

    /// A request (sampling, elicitation, roots). Pings are answered here, not forwarded.
    fn request(
        &self,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>>;
}

/// The rmcp client service of one upstream connection.
pub struct Handler {
    observer: Arc<dyn UpstreamObserver>,
    info: ClientConfig,
}

impl Service<RoleClient> for Handler {
    async fn handle_request(
        &self,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        match request {
            ServerRequest::PingRequest(_) => Ok(ClientResult::empty(())),
            other => self.observer.request(other, context).await,
        }
    }

    async fn handle_notification(
        &self,
        notification: ServerNotification,
        _context: NotificationContext<RoleClient>,
    ) -> Result<(), ErrorData> {
        self.observer.notification(notification);
        Ok(())
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

/// How vMCP introduces itself to upstreams. It offers sampling, elicitation and roots so that
/// upstreams may ask for them; the gateway routes such requests to the client whose call caused
/// them, or refuses them clearly. (Roots and sampling are deprecated by SEP-2577, and still what
/// the servers in the field ask for.)
#[allow(deprecated)]
pub fn client_info() -> ClientConfig {
    let capabilities = ClientCapabilities::builder()
        .enable_roots()
        .enable_roots_list_changed()
        .enable_sampling()
        .enable_elicitation_with(
            ElicitationCapability::new()
                .with_form(Default::default())
                .with_url(Default::default()),
        )
        .build();
    ClientConfig::new(
        capabilities,
        Implementation::new("vmcp", env!("CARGO_PKG_VERSION")),
    )
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(#[source] Box<dyn std::error::Error + Send + Sync>);

enum LinkKind {
    Stdio(stdio::StdioTransport),
    Sse(sse::SseTransport),
    Http(StreamableHttpClientTransport<reqwest::Client>),
    /// Streamable HTTP with OAuth: the current access token on each request, refreshed (or
    /// obtained again, for client credentials) when it expires or is refused (`oauth.rs`).
    OAuthHttp(StreamableHttpClientTransport<oauth::OAuthHttpClient>),
}

/// One transport over the three kinds, which also says when the connection closed.
pub struct Link {
    kind: LinkKind,
    closed: CancellationToken,
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> LinkError {
    LinkError(Box::new(e))
}

impl Transport<RoleClient> for Link {
    type Error = LinkError;

    fn name() -> Cow<'static, str> {
        "upstream".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        match &mut self.kind {
            LinkKind::Stdio(t) => t.send(item).map(|r| r.map_err(boxed)).boxed(),
            LinkKind::Sse(t) => t.send(item).map(|r| r.map_err(boxed)).boxed(),
            LinkKind::Http(t) => t.send(item).map(|r| r.map_err(boxed)).boxed(),
            LinkKind::OAuthHttp(t) => t.send(item).map(|r| r.map_err(boxed)).boxed(),
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = match &mut self.kind {
            LinkKind::Stdio(t) => t.receive().await,
            LinkKind::Sse(t) => t.receive().await,
            LinkKind::Http(t) => t.receive().await,
            LinkKind::OAuthHttp(t) => t.receive().await,
        };
        if message.is_none() {
            self.closed.cancel();
        }
        message
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.closed.cancel();
        match &mut self.kind {
            LinkKind::Stdio(t) => t.close().await.map_err(boxed),
            LinkKind::Sse(t) => t.close().await.map_err(boxed),
            LinkKind::Http(t) => t.close().await.map_err(boxed),
            LinkKind::OAuthHttp(t) => t.close().await.map_err(boxed),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Config(String),
    #[error("{0}")]
    Sse(#[from] sse::SseError),
    #[error("no answer to the MCP handshake within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Handshake(String),
    /// The server answered 401 (or 403): it wants an OAuth access token (with more scopes).
    #[error("the server requires authorization (HTTP {status})")]
    AuthRequired {
        status: u16,
        /// Its `WWW-Authenticate` header.
        challenge: String,
    },
}

/// A live connection to an upstream MCP server.
pub struct Upstream {
    service: RunningService<RoleClient, Handler>,
    info: ServerPeerInfo,
    closed: CancellationToken,
    process: Option<ProcessGroup>,
}

/// How long each step of a shutdown may take before the next, harsher one.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

impl Upstream {
    /// Sends requests and notifications to the server.
    pub fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }

    /// What the server said about itself: protocol version, capabilities, implementation.
    pub fn info(&self) -> &ServerPeerInfo {
        &self.info
    }

    /// The process id (and group id) of a stdio server.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ProcessGroup::pid)
    }

    /// Resolves when the connection is closed (process exit, broken stream, shutdown).
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// For a stdio server that exited (or is exiting): how it ended.
    pub async fn exit_description(&mut self) -> Option<String> {
        match self.process.as_mut() {
            Some(p) => p.exit_description(Duration::from_millis(500)).await,
            None => None,
        }
    }

    /// Closes the connection; for stdio, ends the process group and reaps it.
    pub async fn shutdown(mut self) {
        if let Some(process) = self.process.as_mut() {
            // Closing the session may end the server: note its helpers while they are its own.
            process.note_descendants();
        }
        let _ = self.service.close_with_timeout(SHUTDOWN_GRACE).await;
        if let Some(process) = self.process.as_mut() {
            process.terminate(SHUTDOWN_GRACE).await;
        }
    }
}

fn header_map(config: &ServerConfig) -> Result<http::HeaderMap, ConnectError> {
    let mut map = http::HeaderMap::new();
    for (k, v) in &config.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ConnectError::Config(format!("invalid header name {k:?}")))?;
        let value = http::HeaderValue::from_str(v)
            .map_err(|_| ConnectError::Config(format!("invalid value for header {k:?}")))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// How long an idle connection to an HTTP upstream is kept for reuse.
const UPSTREAM_IDLE_CONNECTION: Duration = Duration::from_secs(4);

fn http_client(timeout: Duration) -> Result<reqwest::Client, ConnectError> {
    // No overall request timeout: SSE streams stay open. Requests are timed by the caller.
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        // Idle connections are dropped before the servers' own keep-alive ends them (5 s in
        // Node and uvicorn): a request sent on a connection the server closes at that moment
        // fails ("error sending request"), and a POST is not retried. The client matrix saw
        // two calls fail so against server-everything after an idle pause.
        .pool_idle_timeout(UPSTREAM_IDLE_CONNECTION)
        .build()
        .map_err(|e| ConnectError::Config(format!("cannot build the HTTP client: {e}")))
}

fn lifecycle(mode: ProtocolMode) -> ClientLifecycleMode {
    match mode {
        ProtocolMode::Initialize => ClientLifecycleMode::Initialize,
        ProtocolMode::Discover => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        ProtocolMode::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: None,
        },
    }
}

/// Connects to an upstream and completes the MCP handshake within the config's timeout.
/// `log` receives the server's stderr (stdio) and transport diagnostics.
/// `oauth`: for a streamable HTTP server with `config.auth`, the manager that holds (and
/// refreshes) its tokens, and for a client credentials grant its settings.
pub async fn connect(
    transport: TransportType,
    config: &ServerConfig,
    oauth: Option<OAuthLink>,
    observer: Arc<dyn UpstreamObserver>,
    log: &LogBuffer,
) -> Result<Upstream, ConnectError> {
    let timeout = config.timeout();
    let closed = CancellationToken::new();
    let (kind, mut process) = match transport {
        TransportType::Stdio => {
            let (t, group) = stdio::spawn(config, log).map_err(|source| ConnectError::Spawn {
                command: config.command.clone().unwrap_or_default(),
                source,
            })?;
            (LinkKind::Stdio(t), Some(group))
        }
        TransportType::Sse => {
            let url = config.url.as_deref().unwrap_or_default();
            let t = sse::connect(
                http_client(timeout)?,
                url,
                header_map(config)?,
                timeout,
                log.clone(),
            )
            .await?;
            (LinkKind::Sse(t), None)
        }
        TransportType::StreamableHttp => {
            let url = config.url.clone().unwrap_or_default();
            let headers: HashMap<_, _> = header_map(config)?
                .into_iter()
                .filter_map(|(k, v)| Some((k?, v)))
                .collect();
            let mut http_config = StreamableHttpClientTransportConfig::with_uri(url)
                .custom_headers(headers)
                .max_concurrent_requests(256)
                // The bound of a stdio line, for each message (SSE event or JSON body).
                .max_sse_event_size(stdio::MAX_LINE_BYTES)
                .max_json_response_size(stdio::MAX_LINE_BYTES)
                .reinit_on_expired_session(true);
            http_config.allow_stateless = true;
            let client = http_client(timeout)?;
            let kind = match oauth {
                Some(link) => LinkKind::OAuthHttp(StreamableHttpClientTransport::with_client(
                    oauth::OAuthHttpClient::new(client, link),
                    http_config,
                )),
                None => LinkKind::Http(StreamableHttpClientTransport::with_client(
                    client,
                    http_config,
                )),
            };
            (kind, None)
        }
    };
    let link = Link {
        kind,
        closed: closed.clone(),
    };
    let handler = Handler {
        observer,
        info: client_info(),
    };
    let mode = config.protocol.unwrap_or_default();
    let started =
        tokio::time::timeout(timeout, handler.serve_with_lifecycle(link, lifecycle(mode))).await;
    let service = match started {
        Ok(Ok(service)) => service,
        Ok(Err(e)) => {
            if let Some(auth) = auth_required(&e) {
                return Err(auth);
            }
            let mut message = describe_handshake_error(&e);
            if let Some(p) = process.as_mut() {
                // Give a dying process a moment, so that its exit status and last words are known.
                if let Some(exit) = p.exit_description(Duration::from_millis(500)).await {
                    message = format!("{exit} during the MCP handshake");
                }
                p.terminate(SHUTDOWN_GRACE).await;
            }
            return Err(ConnectError::Handshake(with_log_tail(message, log)));
        }
        Err(_) => {
            if let Some(p) = process.as_mut() {
                p.terminate(SHUTDOWN_GRACE).await;
            }
            return Err(ConnectError::Timeout(timeout));
        }
    };
    let info = service
        .peer()
        .peer_info()
        .map(|i| (*i).clone())
        .ok_or_else(|| ConnectError::Handshake("the server sent no initialize result".into()))?;
    Ok(Upstream {
        service,
        info,
        closed,
        process,
    })
}

/// The 401/403 of a streamable HTTP server, from deep inside a handshake error.
fn auth_required(e: &ClientInitializeError) -> Option<ConnectError> {
    let ClientInitializeError::TransportError { error, .. } = e else {
        return None;
    };
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error.error.as_ref());
    while let Some(err) = current {
        if let Some(http) = err.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            let status = match http {
                StreamableHttpError::AuthRequired(_) => 401,
                StreamableHttpError::InsufficientScope(_) => 403,
                _ => return None,
            };
            return Some(ConnectError::AuthRequired {
                status,
                challenge: http.auth_challenge().unwrap_or_default().to_string(),
            });
        }
        current = err.source();
    }
    None
}

fn describe_handshake_error(e: &ClientInitializeError) -> String {
    match e {
        ClientInitializeError::ConnectionClosed(_) => {
            "the connection closed during the MCP handshake".to_string()
        }
        ClientInitializeError::JsonRpcError(err) => {
            format!("the server refused the MCP handshake: {}", err.message)
        }
        other => format!("MCP handshake failed: {other}"),
    }
}

/// Appends the last lines of the server's log, which usually say why it failed.
pub fn with_log_tail(message: String, log: &LogBuffer) -> String {
    let tail = log.tail(3);
    if tail.is_empty() {
        message
    } else {
        format!("{message}; last output: {}", tail.join(" | "))
    }
}

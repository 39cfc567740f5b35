//! The MCP endpoints of every vMCP, on the API's port: streamable HTTP at `/vmcp/{vmcp}/mcp`
//! and the legacy HTTP+SSE transport at `/vmcp/{vmcp}/sse` (messages POSTed to
//! `/vmcp/{vmcp}/message?sessionId=..`). `{vmcp}` is the vMCP's id or its name.
//!
//! The protocol is rmcp's server side (`StreamableHttpService`, one per vMCP, whose sessions are
//! `VmcpSession`s), adapted to actix here: an actix request becomes an `http::Request`, and the
//! `http::Response`'s body streams back through actix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use vmcp_gateway::Gateway;
use vmcp_gateway::aggregate::VmcpEntry;
use vmcp_gateway::session::VmcpSession;
use vmcp_sse_server::{PostError, SseSessions};

use crate::AppState;
use crate::error::ApiError;
use crate::seal::{SessionKey, SessionSeal};

type HttpService = StreamableHttpService<VmcpSession, LocalSessionManager>;

/// Settings of the MCP endpoints.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// A streamable HTTP session unused for this long ends (its next request gets 404, and
    /// the client's SDK starts a new session). With a configured session key, replicas cannot
    /// know each other's uses: a session not held here is resumed while it is younger than
    /// `max(session_idle_timeout, 7 days)`.
    pub session_idle_timeout: Duration,
    /// At most this many streamable HTTP sessions are open at once here, over all vMCPs;
    /// opening one more ends the least recently used (with a configured session key it is
    /// only forgotten here: its id still resumes it).
    pub max_sessions: usize,
    /// An open session unused for this long, with no stream open and no state beyond what
    /// its id carries, is released from memory; its next request resumes it from its id.
    pub session_hold: Duration,
    /// Seals session ids (see `seal.rs`). A configured key is shared by the replicas, which
    /// then resume each other's sessions.
    pub session_key: SessionKey,
}

impl McpOptions {
    /// Default idle expiry: a desktop client left open over night still works.
    pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
    pub const DEFAULT_SESSION_HOLD: Duration = Duration::from_secs(120);
    /// The youngest age at which a session that this replica does not hold is refused.
    const RESUME_MIN_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

    /// How old a session may be to be resumed here without having been held here.
    fn resume_max_age(&self) -> Duration {
        self.session_idle_timeout.max(Self::RESUME_MIN_AGE)
    }
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            session_idle_timeout: Self::DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
            session_hold: Self::DEFAULT_SESSION_HOLD,
            session_key: SessionKey::random(),
        }
    }
}

/// One vMCP's streamable HTTP service and its session manager.
#[derive(Clone)]
struct HttpEndpoint {
    service: HttpService,
    manager: Arc<LocalSessionManager>,
}

/// The `initialize` parameters of sessions, for rmcp: a new session's are stored here by rmcp
/// and taken into its sealed id; a session about to be resumed from its id has them put here
/// for rmcp to replay (`try_restore_from_store`). Nothing stays: the id is the store.
#[derive(Default)]
struct SealedSessions {
    states: Mutex<HashMap<String, SessionState>>,
}

impl SealedSessions {
    fn put(&self, transport_id: &str, state: SessionState) {
        self.states
            .lock()
            .expect("sealed sessions lock")
            .insert(transport_id.to_string(), state);
    }

    fn take(&self, transport_id: &str) -> Option<SessionState> {
        self.states
            .lock()
            .expect("sealed sessions lock")
            .remove(transport_id)
    }
}

/// Takes a session's parameters back out of `SealedSessions` when the request that put them
/// there ends, however it ends (rmcp took them if it resumed the session).
struct Unstore {
    sealed: Arc<SealedSessions>,
    transport_id: String,
}

impl Drop for Unstore {
    fn drop(&mut self) {
        self.sealed.take(&self.transport_id);
    }
}

/// One turn at a time per session for the requests that may resume it here. rmcp counts a
/// session as present from the moment its restore begins, so a request that arrived with the
/// restoring one would reach the session before its replayed `initialize` and end it (500).
/// A request takes its session's turn to decide whether to restore, and keeps it until rmcp
/// has answered only if it restores; the others wait that long, then find the session ready.
/// The turn comes before the check, not after a check that finds the session missing: during
/// a restore rmcp already says the session is there, so only the turn tells a request to wait.
#[derive(Default)]
struct RestoreTurns {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RestoreTurns {
    async fn take(self: &Arc<Self>, transport_id: &str) -> RestoreTurn {
        let turn = self
            .turns
            .lock()
            .expect("restore turns lock")
            .entry(transport_id.to_string())
            .or_default()
            .clone();
        RestoreTurn {
            guard: Some(turn.lock_owned().await),
            turns: self.clone(),
            transport_id: transport_id.to_string(),
        }
    }
}

impl RestoreTurns {
    /// Forgets the turns nobody holds or waits for (a request dropped while it waited leaves
    /// its session's entry behind).
    fn forget_unused(&self) {
        self.turns
            .lock()
            .expect("restore turns lock")
            .retain(|_, turn| Arc::strong_count(turn) > 1);
    }
}

/// A session's turn (see `RestoreTurns`); the last one forgets the session's entry.
struct RestoreTurn {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    turns: Arc<RestoreTurns>,
    transport_id: String,
}

impl Drop for RestoreTurn {
    fn drop(&mut self) {
        let mut turns = self.turns.turns.lock().expect("restore turns lock");
        // The map's reference and this guard's: nobody else waits.
        if let Some(turn) = turns.get(&self.transport_id)
            && Arc::strong_count(turn) <= 2
        {
            turns.remove(&self.transport_id);
        }
        drop(self.guard.take());
    }
}

#[async_trait::async_trait]
impl SessionStore for SealedSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(self.take(session_id))
    }
    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        self.put(session_id, state.clone());
        Ok(())
    }
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.take(session_id);
        Ok(())
    }
}

/// A streamable HTTP session open here (by its transport id).
struct Held {
    vmcp_id: String,
    last: Instant,
    /// Requests being answered and streams open: the session is in use.
    busy: usize,
    /// Whether rmcp holds the session in memory (else its next request resumes it).
    in_memory: bool,
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
    /// The OAuth subject of each legacy SSE session of a protected endpoint, by session id:
    /// its messages are accepted with a token of that subject only.
    sse_subjects: Arc<Mutex<HashMap<String, String>>>,
    sealed: Arc<SealedSessions>,
    restores: Arc<RestoreTurns>,
    held: Mutex<HashMap<String, Held>>,
    sweeping: std::sync::atomic::AtomicBool,
    /// Streamable HTTP POSTs being answered (calls in flight), which a stop lets finish.
    posts: Arc<std::sync::atomic::AtomicUsize>,
    /// Set when the process is stopping: `/health` says so, so that load balancers move on.
    draining: std::sync::atomic::AtomicBool,
}

/// A POST being answered (see `McpEndpoints::posts`).
struct Posting(Arc<std::sync::atomic::AtomicUsize>);

impl Posting {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for Posting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Why a session id is not served.
enum Refused {
    /// Not sealed by our key, another vMCP's, ended, expired or evicted.
    Unknown,
}

/// A use of a session: while it lives (a request being answered, a stream open) the session
/// is not released from memory.
struct InUse {
    endpoints: Weak<McpEndpoints>,
    transport_id: String,
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(endpoints) = self.endpoints.upgrade()
            && let Some(held) = endpoints
                .held
                .lock()
                .expect("sessions lock")
                .get_mut(&self.transport_id)
        {
            held.busy = held.busy.saturating_sub(1);
            held.last = Instant::now();
        }
    }
}

impl McpEndpoints {
    pub fn new(gateway: Arc<Gateway>, options: McpOptions) -> Self {
        Self {
            gateway,
            options,
            closing: tokio_util::sync::CancellationToken::new(),
            http: Mutex::new(HashMap::new()),
            sse: Mutex::new(HashMap::new()),
            sse_subjects: Arc::default(),
            sealed: Arc::default(),
            restores: Arc::default(),
            held: Mutex::new(HashMap::new()),
            sweeping: std::sync::atomic::AtomicBool::new(false),
            posts: Arc::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
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
                config.session_store = Some(self.sealed.clone());
                let mut manager = LocalSessionManager::default();
                // rmcp ends a session after this long without activity; ours is judged first,
                // so the margin only covers rmcp's own clock.
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

    /// Admits a request of the session `seal` (opened from its id) to the vMCP `vmcp_id`:
    /// refuses another vMCP's, an ended one and one unused too long; resumes, with a shared
    /// key, one this replica does not hold. The use lasts as long as the returned guard.
    fn admit(self: &Arc<Self>, vmcp_id: &str, seal: &SessionSeal) -> Result<InUse, Refused> {
        if seal.vmcp_id != vmcp_id || self.gateway.sessions.is_revoked(&seal.transport_id) {
            return Err(Refused::Unknown);
        }
        let now = Instant::now();
        let shared_key = self.options.session_key.is_configured();
        let mut held = self.held.lock().expect("sessions lock");
        if let Some(h) = held.get_mut(&seal.transport_id) {
            let idle = now.duration_since(h.last);
            if h.busy > 0 || idle <= self.options.session_idle_timeout {
                h.busy += 1;
                h.last = now;
                return Ok(InUse {
                    endpoints: Arc::downgrade(self),
                    transport_id: seal.transport_id.clone(),
                });
            }
            held.remove(&seal.transport_id);
            if !shared_key {
                drop(held);
                self.end_later(vmcp_id, &seal.transport_id);
                return Err(Refused::Unknown);
            }
            // Unused here for long, but other replicas may have served it meanwhile.
        }
        // Replicas' clocks differ a little: a session begun "in the future" is young.
        let age = (vmcp_domain::time::now().timestamp() - seal.began).max(0);
        let resumable = shared_key
            && u64::try_from(age)
                .is_ok_and(|a| Duration::from_secs(a) < self.options.resume_max_age());
        if !resumable {
            return Err(Refused::Unknown);
        }
        held.insert(
            seal.transport_id.clone(),
            Held {
                vmcp_id: vmcp_id.to_string(),
                last: now,
                busy: 1,
                in_memory: false,
            },
        );
        drop(held);
        // A session resumed here counts against the cap like one opened here.
        self.enforce_cap(&seal.transport_id);
        Ok(InUse {
            endpoints: Arc::downgrade(self),
            transport_id: seal.transport_id.clone(),
        })
    }

    /// Ends (or, with a shared key, forgets) the least recently used sessions not in use while
    /// there are more than `max_sessions`; never `keep`.
    fn enforce_cap(self: &Arc<Self>, keep: &str) {
        let evicted: Vec<(String, String)> = {
            let mut held = self.held.lock().expect("sessions lock");
            let mut gone = Vec::new();
            while held.len() > self.options.max_sessions.max(1) {
                // A session in use (a request, an open stream) is not "least recently used".
                let oldest = held
                    .iter()
                    .filter(|(id, h)| id.as_str() != keep && h.busy == 0)
                    .min_by_key(|(_, h)| h.last)
                    .map(|(id, h)| (id.clone(), h.vmcp_id.clone()));
                let Some((id, vmcp)) = oldest else { break };
                held.remove(&id);
                tracing::info!(session = %id, "too many MCP sessions: ending the least recently used");
                gone.push((id, vmcp));
            }
            gone
        };
        for (id, vmcp) in evicted {
            self.end_later(&vmcp, &id);
        }
    }

    /// A new session was opened: records it, and ends (or, with a shared key, forgets) the
    /// least recently used ones while there are more than allowed.
    fn opened(self: &Arc<Self>, vmcp_id: &str, transport_id: &str) -> InUse {
        self.held.lock().expect("sessions lock").insert(
            transport_id.to_string(),
            Held {
                vmcp_id: vmcp_id.to_string(),
                last: Instant::now(),
                busy: 1,
                in_memory: true,
            },
        );
        self.enforce_cap(transport_id);
        self.start_sweeping();
        InUse {
            endpoints: Arc::downgrade(self),
            transport_id: transport_id.to_string(),
        }
    }

    /// Ends a session that was evicted or expired, off the request's path.
    fn end_later(self: &Arc<Self>, vmcp_id: &str, transport_id: &str) {
        let endpoint = self
            .http
            .lock()
            .expect("services lock")
            .get(vmcp_id)
            .cloned();
        if let Some(endpoint) = endpoint {
            let me = self.clone();
            let id = transport_id.to_string();
            tokio::spawn(async move { me.end_session(&id, &endpoint).await });
        }
    }

    /// Releases from memory the sessions unused for `session_hold` (their ids resume them),
    /// and forgets those unused for the idle timeout; every few seconds while any is held.
    fn start_sweeping(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::downgrade(self);
        let every = (self.options.session_hold / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(15));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                if me.closing.is_cancelled() {
                    return;
                }
                me.sweep().await;
            }
        });
    }

    async fn sweep(self: &Arc<Self>) {
        self.restores.forget_unused();
        let now = Instant::now();
        let (release, expired) = {
            let mut held = self.held.lock().expect("sessions lock");
            let mut release = Vec::new();
            let mut expired = Vec::new();
            for (id, h) in held.iter_mut() {
                // Ended at its client's request on another replica: close what is left here.
                if self.gateway.sessions.is_revoked(id) {
                    expired.push((id.clone(), h.vmcp_id.clone()));
                    continue;
                }
                if h.busy > 0 {
                    continue;
                }
                let idle = now.duration_since(h.last);
                if idle > self.options.session_idle_timeout {
                    expired.push((id.clone(), h.vmcp_id.clone()));
                } else if h.in_memory
                    && idle > self.options.session_hold
                    && !self.gateway.sessions.is_pinned(id)
                {
                    h.in_memory = false;
                    release.push((id.clone(), h.vmcp_id.clone()));
                }
            }
            for (id, _) in &expired {
                held.remove(id);
            }
            (release, expired)
        };
        for (id, vmcp) in expired {
            self.end_later(&vmcp, &id);
        }
        for (id, vmcp) in release {
            use rmcp::transport::streamable_http_server::SessionManager;
            // Used again since it was chosen: keep it (a request admitted after the close
            // below finds it gone and resumes it, see `streamable_http`).
            let reused = self
                .held
                .lock()
                .expect("sessions lock")
                .get(&id)
                .is_none_or(|h| h.busy > 0 || h.in_memory);
            if reused {
                continue;
            }
            let endpoint = self.http.lock().expect("services lock").get(&vmcp).cloned();
            if let Some(endpoint) = endpoint {
                tracing::debug!(session = %id, "MCP session unused: released from memory");
                self.gateway.sessions.end(&id);
                let _ = endpoint.manager.close_session(&id.as_str().into()).await;
            }
        }
    }

    /// Ends a streamable HTTP session: its calls in flight are cancelled upstream, then the
    /// transport closes it.
    async fn end_session(&self, transport_id: &str, endpoint: &HttpEndpoint) {
        use rmcp::transport::streamable_http_server::SessionManager;
        self.gateway.sessions.end(transport_id);
        self.held
            .lock()
            .expect("sessions lock")
            .remove(transport_id);
        let _ = endpoint.manager.close_session(&transport_id.into()).await;
    }

    /// Ends a session at its client's request: also every other replica refuses its id, until
    /// its age would refuse it anyway.
    async fn delete_session(self: &Arc<Self>, seal: &SessionSeal, endpoint: &HttpEndpoint) {
        let until = vmcp_domain::time::Timestamp::from_timestamp(seal.began, 0).unwrap_or_default()
            + self.options.resume_max_age()
            + Duration::from_secs(60);
        self.gateway
            .end_session_everywhere(&seal.transport_id, until);
        self.end_session(&seal.transport_id, endpoint).await;
    }

    /// Whether rmcp holds the session `transport_id` of this vMCP in memory.
    async fn in_memory(&self, transport_id: &str, endpoint: &HttpEndpoint) -> bool {
        use rmcp::transport::streamable_http_server::SessionManager;
        endpoint
            .manager
            .has_session(&transport_id.into())
            .await
            .unwrap_or(false)
    }

    /// The number of streamable HTTP sessions open here, and how many of them are in memory.
    pub fn session_counts(&self) -> (usize, usize) {
        let held = self.held.lock().expect("sessions lock");
        (held.len(), held.values().filter(|h| h.in_memory).count())
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

    /// The first step of a stop: `/health` answers 503 from now on (load balancers take this
    /// replica out), and the calls in flight (streamable HTTP POSTs) get up to `patience` to
    /// finish before the sessions end. Streams that only wait (GET) do not hold it.
    pub async fn drain(&self, patience: Duration) {
        use std::sync::atomic::Ordering;
        self.draining.store(true, Ordering::Release);
        let deadline = Instant::now() + patience;
        while self.posts.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.posts.load(Ordering::Acquire);
        if left > 0 {
            tracing::warn!(
                left,
                "stopping with MCP calls still in flight: they are cancelled"
            );
        }
    }

    /// Whether this process is stopping (see `drain`).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
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
    // A protected endpoint (docs/oauth.md): the token's subject goes with the request.
    let subject = match crate::oauth::authenticate(&req, &state, &path).await {
        Ok(subject) => subject.map(vmcp_gateway::oauth::TokenSubject),
        Err(refusal) => return Ok(refusal),
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
    let posting = (req.method() == Method::POST).then(|| Posting::new(&endpoints.posts));
    // The session's sealed id (what the client holds) and rmcp's id of it (inside the seal).
    let mut session: Option<(String, SessionSeal, InUse, InitializeRequestParams)> = None;
    if let Some(sid) = &session_id {
        // Sessions are per vMCP: another vMCP's session is as unknown as an expired one.
        let Some(seal) = endpoints.options.session_key.open(sid) else {
            return Ok(session_not_found(sid));
        };
        // A session of a protected endpoint is its subject's alone (and one opened before the
        // endpoint was protected is nobody's).
        if seal.subject.as_deref() != subject.as_ref().map(|s| s.0.as_str()) {
            return Ok(session_not_found(sid));
        }
        let Ok(in_use) = endpoints.admit(&vmcp_id, &seal) else {
            return Ok(session_not_found(sid));
        };
        if req.method() == Method::DELETE {
            // Cancels the session's calls in flight upstream at once, then closes it.
            endpoints.delete_session(&seal, &endpoint).await;
            return Ok(HttpResponse::Ok().finish());
        }
        let Ok(params) = serde_json::from_value::<InitializeRequestParams>(seal.initialize.clone())
        else {
            return Ok(session_not_found(sid));
        };
        if let Some(h) = endpoints
            .held
            .lock()
            .expect("sessions lock")
            .get_mut(&seal.transport_id)
        {
            h.in_memory = true;
        }
        session = Some((sid.clone(), seal, in_use, params));
    }
    let build = || {
        let mut builder = http::Request::builder()
            .method(req.method().as_str())
            .uri(req.uri().to_string());
        for (name, value) in req.headers() {
            if name.as_str() == "mcp-session-id" {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        if let Some((_, seal, _, _)) = &session {
            builder = builder.header("mcp-session-id", seal.transport_id.as_str());
        }
        if let Some(subject) = &subject {
            builder = builder.extension(subject.clone());
        }
        builder
            .body(Full::new(body.clone()))
            .map_err(|e| vmcp_gateway::GatewayError::bad_request(format!("bad request: {e}")))
    };
    let mut resumed = false;
    let response = loop {
        let turn = match &session {
            Some((_, seal, _, _)) => Some(endpoints.restores.take(&seal.transport_id).await),
            None => None,
        };
        // Released here, or never held here: rmcp resumes it by replaying its `initialize`.
        let restoring = match &session {
            Some((_, seal, _, params))
                if resumed || !endpoints.in_memory(&seal.transport_id, &endpoint).await =>
            {
                endpoints
                    .sealed
                    .put(&seal.transport_id, SessionState::new(params.clone()));
                Some(Unstore {
                    sealed: endpoints.sealed.clone(),
                    transport_id: seal.transport_id.clone(),
                })
            }
            _ => None,
        };
        // Kept while this request restores the session, until rmcp has answered it.
        let turn = if restoring.is_some() { turn } else { None };
        let response = endpoint.service.handle(build()?).await;
        drop(restoring);
        drop(turn);
        if session.is_some() && !resumed && response.status() == http::StatusCode::NOT_FOUND {
            // Released between the check and the request (it was unused): resume it.
            resumed = true;
            continue;
        }
        break response;
    };
    let (mut parts, body) = response.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // rmcp names the session by its own id: the client gets the sealed one.
    let mut in_use = None;
    match (&session, parts.headers.remove("mcp-session-id")) {
        (Some((sid, _, _, _)), Some(_)) => {
            parts.headers.insert(
                "mcp-session-id",
                http::HeaderValue::from_str(sid).expect("a sealed id is a header value"),
            );
        }
        (None, Some(new)) => {
            let transport_id = new.to_str().unwrap_or_default().to_string();
            let Some(state) = endpoints.sealed.take(&transport_id) else {
                return Err(vmcp_gateway::GatewayError::internal(
                    "a new MCP session has no initialize parameters",
                )
                .into());
            };
            let sealed = endpoints.options.session_key.seal(&SessionSeal {
                transport_id: transport_id.clone(),
                vmcp_id: vmcp_id.clone(),
                began: vmcp_domain::time::now().timestamp(),
                initialize: serde_json::to_value(&state.initialize_params)
                    .unwrap_or(serde_json::Value::Null),
                subject: subject.as_ref().map(|s| s.0.clone()),
            });
            parts.headers.insert(
                "mcp-session-id",
                http::HeaderValue::from_str(&sealed).expect("a sealed id is a header value"),
            );
            in_use = Some(endpoints.opened(&vmcp_id, &transport_id));
        }
        _ => {}
    }
    let in_use = in_use.or(session.map(|(_, _, u, _)| u));
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
    // The session stays in use (not released from memory) while its answer streams.
    let stream = body.into_data_stream().map(move |chunk| {
        let _in_use = &in_use;
        let _posting = &posting;
        chunk.map_err(|never| match never {})
    });
    Ok(out.streaming::<_, std::convert::Infallible>(stream))
}

async fn sse_open(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = &state.mcp;
    let entry = endpoints.entry(&path)?;
    let subject = match crate::oauth::authenticate(&req, &state, &path).await {
        Ok(subject) => subject,
        Err(refusal) => return Ok(refusal),
    };
    let sessions = endpoints.sse_sessions(&entry.vmcp.vmcp_id);
    // The session ends, and its calls in flight are cancelled upstream, when the stream does
    // (the client went away, or shutdown).
    let ended = endpoints.closing.child_token();
    let handler = VmcpSession::ending_with(
        state.gateway.clone(),
        entry.vmcp.vmcp_id.clone(),
        ended.clone(),
    )
    .with_subject(subject.clone());
    let (session_id, events) = sessions.open(handler, &format!("/vmcp/{}/message", path.as_str()));
    if let Some(subject) = subject {
        endpoints
            .sse_subjects
            .lock()
            .expect("sse lock")
            .insert(session_id.clone(), subject);
        // Forgotten with the session.
        let subjects = endpoints.sse_subjects.clone();
        let gone = ended.clone();
        actix_web::rt::spawn(async move {
            gone.cancelled().await;
            subjects.lock().expect("sse lock").remove(&session_id);
        });
    }
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
    match crate::oauth::authenticate(&req, &state, &path).await {
        // The session is its subject's alone.
        Ok(Some(subject))
            if endpoints
                .sse_subjects
                .lock()
                .expect("sse lock")
                .get(&query.session_id)
                != Some(&subject) =>
        {
            return Ok(session_not_found(&query.session_id));
        }
        Ok(_) => {}
        Err(refusal) => return Ok(refusal),
    }
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

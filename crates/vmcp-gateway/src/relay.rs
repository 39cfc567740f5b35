//! Mid-call traffic between upstream connections (shared by many client sessions) and the client
//! session whose call caused it.
//!
//! A session's call registers itself for the duration of the upstream request (`begin`): if the
//! client asked for progress, the upstream's progress notifications for the upstream request's
//! progress token (rmcp gives every request one) are forwarded to the client with the client's
//! own token, in order. Requests that an upstream sends to its client (sampling,
//! elicitation, roots) go to the session with the most recent call in flight on that server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{
    ClientResult, ErrorCode, ErrorData, NumberOrString, ProgressNotificationParam, ProgressToken,
    ServerRequest,
};
use rmcp::service::Peer;
use tokio::sync::mpsc;

struct Call {
    id: u64,
    peer: Peer<RoleServer>,
}

#[derive(Default)]
struct Progress {
    routes: HashMap<String, (Peer<RoleServer>, ProgressToken)>,
    early: std::collections::VecDeque<(std::time::Instant, String, ProgressNotificationParam)>,
}

/// How many early progress notifications are kept, and for how long.
const EARLY_MAX: usize = 256;
const EARLY_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// See the module documentation.
pub struct Relay {
    next: AtomicU64,
    /// Upstream progress tokens -> the client session and its token; and notifications that
    /// arrived before their call registered its token (kept briefly).
    progress: Mutex<Progress>,
    /// Server id -> the session calls in flight on it, oldest first.
    inflight: Mutex<HashMap<String, Vec<Call>>>,
    /// Progress notifications to forward, in arrival order.
    forward: mpsc::UnboundedSender<(Peer<RoleServer>, ProgressNotificationParam)>,
}

/// A call in flight; dropping it unregisters the call and its progress token.
pub struct CallGuard {
    relay: Arc<Relay>,
    server_id: String,
    id: u64,
    peer: Peer<RoleServer>,
    client_token: Option<ProgressToken>,
    token: Option<String>,
}

fn token_key(server_id: &str, token: &ProgressToken) -> String {
    match &token.0 {
        NumberOrString::String(s) => format!("{server_id}:{s}"),
        NumberOrString::Number(n) => format!("{server_id}:{n}"),
    }
}

impl CallGuard {
    /// The upstream request went out with `upstream` as its progress token: forward the
    /// progress notifications for it, if the client asked for progress.
    pub fn watch_progress(&mut self, upstream: &ProgressToken) {
        let Some(client) = self.client_token.clone() else {
            return;
        };
        let key = token_key(&self.server_id, upstream);
        let mut progress = self.relay.progress.lock().expect("progress lock");
        // Notifications that overtook this registration go first, in order.
        let mut kept = std::collections::VecDeque::new();
        for (at, k, mut param) in progress.early.drain(..) {
            if k == key {
                param.progress_token = client.clone();
                let _ = self.relay.forward.send((self.peer.clone(), param));
            } else {
                kept.push_back((at, k, param));
            }
        }
        progress.early = kept;
        progress
            .routes
            .insert(key.clone(), (self.peer.clone(), client));
        self.token = Some(key);
    }
}

/// How long a finished call's progress route stays: rmcp handles an upstream's notifications
/// on their own tasks, so the last ones may be handled just after the call's answer.
const ROUTE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            let relay = self.relay.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        tokio::time::sleep(ROUTE_GRACE).await;
                        relay
                            .progress
                            .lock()
                            .expect("progress lock")
                            .routes
                            .remove(&token);
                    });
                }
                Err(_) => {
                    relay
                        .progress
                        .lock()
                        .expect("progress lock")
                        .routes
                        .remove(&token);
                }
            }
        }
        let mut inflight = self.relay.inflight.lock().expect("inflight lock");
        if let Some(calls) = inflight.get_mut(&self.server_id) {
            calls.retain(|c| c.id != self.id);
            if calls.is_empty() {
                inflight.remove(&self.server_id);
            }
        }
    }
}

impl Relay {
    /// A relay whose forwarding task runs on `runtime`.
    pub fn new(runtime: &tokio::runtime::Handle) -> Arc<Self> {
        let (forward, mut rx) =
            mpsc::unbounded_channel::<(Peer<RoleServer>, ProgressNotificationParam)>();
        runtime.spawn(async move {
            while let Some((peer, param)) = rx.recv().await {
                let _ = peer.notify_progress(param).await;
            }
        });
        Arc::new(Self {
            next: AtomicU64::new(1),
            progress: Mutex::new(Progress::default()),
            inflight: Mutex::new(HashMap::new()),
            forward,
        })
    }

    /// Registers a session's call on a server (`client_token`: the progress token the client
    /// sent, if any).
    pub fn begin(
        self: &Arc<Self>,
        server_id: &str,
        peer: Peer<RoleServer>,
        client_token: Option<ProgressToken>,
    ) -> CallGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.inflight
            .lock()
            .expect("inflight lock")
            .entry(server_id.to_string())
            .or_default()
            .push(Call {
                id,
                peer: peer.clone(),
            });
        CallGuard {
            relay: self.clone(),
            server_id: server_id.to_string(),
            id,
            peer,
            client_token,
            token: None,
        }
    }

    /// An upstream's progress notification: forwarded to the session whose call it concerns.
    pub fn progress(&self, server_id: &str, mut param: ProgressNotificationParam) {
        let key = token_key(server_id, &param.progress_token);
        let mut progress = self.progress.lock().expect("progress lock");
        if let Some((peer, client_token)) = progress.routes.get(&key).cloned() {
            param.progress_token = client_token;
            let _ = self.forward.send((peer, param));
            return;
        }
        // Perhaps its call has not registered yet (or nobody asked for progress).
        let now = std::time::Instant::now();
        while progress
            .early
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > EARLY_TTL)
            || progress.early.len() >= EARLY_MAX
        {
            progress.early.pop_front();
        }
        progress.early.push_back((now, key, param));
    }

    /// A request from an upstream to its client: asked of the session with the most recent call
    /// in flight on that server.
    pub async fn request(
        &self,
        server_id: &str,
        server_name: &str,
        request: ServerRequest,
        method: &str,
    ) -> Result<ClientResult, ErrorData> {
        let peer = self
            .inflight
            .lock()
            .expect("inflight lock")
            .get(server_id)
            .and_then(|calls| calls.last())
            .map(|c| c.peer.clone());
        let Some(peer) = peer else {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "{method} is not available: no MCP client session has a call in flight on {server_name}"
                ),
                None,
            ));
        };
        let capable = peer.peer_info().is_some_and(|info| {
            let caps = &info.capabilities;
            match method {
                "sampling/createMessage" => caps.sampling.is_some(),
                "elicitation/create" => caps.elicitation.is_some(),
                "roots/list" => caps.roots.is_some(),
                _ => true,
            }
        });
        if !capable {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "{method} is not available: the MCP client of this call did not declare that capability"
                ),
                None,
            ));
        }
        peer.send_request(request).await.map_err(|e| match e {
            rmcp::ServiceError::McpError(data) => data,
            other => ErrorData::internal_error(
                format!("the MCP client did not answer {method}: {other}"),
                None,
            ),
        })
    }
}

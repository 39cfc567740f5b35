// Roots are deprecated by SEP-2577 but are what upstreams and clients speak today.
#![allow(deprecated)]

//! Mid-call traffic between upstream connections (shared by many client sessions) and the client
//! session whose call caused it.
//!
//! A session's call registers itself for the duration of the upstream request (`begin`): if the
//! client asked for progress, the upstream's progress notifications for the upstream request's
//! progress token (rmcp gives every request one) are forwarded to the client with the client's
//! own token, in order. Requests that an upstream sends to its client (sampling,
//! elicitation, roots) go to the client with the most recent call in flight on that server: a
//! 2025-era session is asked directly; a 2026-07-28 stateless call is asked through its MRTR
//! loop (`Asker::Stateless`, see `mrtr`), which answers its client with `input_required`.
//!
//! Roots: upstreams are shared and cache their client's roots, so the relay remembers, per
//! server, whether it ever asked for roots and whose roots it last got. Before a call of another
//! client goes out, `sync_roots` tells the upstream `notifications/roots/list_changed` and waits
//! (briefly) for its `roots/list` to be answered by the calling client. A `roots/list` with no
//! call in flight is answered with the roots the upstream last saw (asked again of their session
//! when it is still open), or an empty list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use rmcp::model::{
    ClientCapabilities, ClientResult, ErrorCode, ErrorData, ListRootsResult, NumberOrString,
    ProgressNotificationParam, ProgressToken, ServerRequest,
};
use rmcp::service::Peer;
use rmcp::{RoleClient, RoleServer};
use tokio::sync::{Notify, mpsc, oneshot};

/// A request of an upstream for the client of a call, and where its answer goes.
pub struct Ask {
    pub request: ServerRequest,
    pub method: String,
    pub reply: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

/// How the client of a call is asked what an upstream asks it.
#[derive(Clone)]
pub enum Asker {
    /// A 2025-era session: a request on its connection.
    Session(Peer<RoleServer>),
    /// A 2026-07-28 stateless request, which cannot be sent requests: its MRTR loop turns each
    /// ask into an `input_required` answer. `capabilities` are those of the request's `_meta`.
    Stateless {
        capabilities: Option<ClientCapabilities>,
        asks: mpsc::UnboundedSender<Ask>,
    },
}

impl Asker {
    fn declares(&self, method: &str) -> bool {
        let check = |caps: &ClientCapabilities| match method {
            "sampling/createMessage" => caps.sampling.is_some(),
            "elicitation/create" => caps.elicitation.is_some(),
            "roots/list" => caps.roots.is_some(),
            _ => true,
        };
        match self {
            Asker::Session(peer) => peer.peer_info().is_some_and(|i| check(&i.capabilities)),
            Asker::Stateless { capabilities, .. } => capabilities.as_ref().is_some_and(check),
        }
    }

    fn is_gone(&self) -> bool {
        match self {
            Asker::Session(peer) => peer.is_transport_closed(),
            Asker::Stateless { asks, .. } => asks.is_closed(),
        }
    }

    async fn ask(&self, request: ServerRequest, method: &str) -> Result<ClientResult, ErrorData> {
        match self {
            Asker::Session(peer) => peer.send_request(request).await.map_err(|e| match e {
                rmcp::ServiceError::McpError(data) => data,
                other => ErrorData::internal_error(
                    format!("the MCP client did not answer {method}: {other}"),
                    None,
                ),
            }),
            Asker::Stateless { asks, .. } => {
                let (reply, answer) = oneshot::channel();
                let ask = Ask {
                    request,
                    method: method.to_string(),
                    reply,
                };
                if asks.send(ask).is_err() {
                    return Err(ErrorData::internal_error(
                        format!("{method}: the call of this client has ended"),
                        None,
                    ));
                }
                answer.await.unwrap_or_else(|_| {
                    Err(ErrorData::internal_error(
                        format!(
                            "the MCP client did not answer {method}: its call ended or its requestState expired"
                        ),
                        None,
                    ))
                })
            }
        }
    }
}

/// What an upstream's `input_required` asks of the client of one known call (`caller`; `None`
/// for a REST caller, which can answer nothing and has no roots).
pub async fn ask_caller(
    caller: Option<&Caller>,
    request: ServerRequest,
    method: &str,
) -> Result<ClientResult, ErrorData> {
    match caller {
        Some(c) if c.asker.declares(method) => c.asker.ask(request, method).await,
        _ if method == "roots/list" => {
            Ok(ClientResult::ListRootsResult(ListRootsResult::default()))
        }
        Some(_) => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "{method} is not available: the MCP client of this call did not declare that capability"
            ),
            None,
        )),
        None => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("{method} is not available to REST callers: call through an MCP client"),
            None,
        )),
    }
}

/// Where a call's progress notifications go: the client's connection and the progress token
/// it sent, if any. A 2026-07-28 call moves to each MRTR round's request (`set`).
#[derive(Clone)]
pub struct ProgressTarget(Arc<Mutex<(Peer<RoleServer>, Option<ProgressToken>)>>);

impl ProgressTarget {
    pub fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Self {
        Self(Arc::new(Mutex::new((peer, token))))
    }

    /// From now on, progress goes where `other` says.
    pub fn set(&self, other: &ProgressTarget) {
        let next = other.get();
        *self.0.lock().expect("progress target lock") = next;
    }

    fn get(&self) -> (Peer<RoleServer>, Option<ProgressToken>) {
        self.0.lock().expect("progress target lock").clone()
    }
}

/// The client of a call: where its progress goes, how it is asked, and who it is (for roots).
#[derive(Clone)]
pub struct Caller {
    pub progress: ProgressTarget,
    pub asker: Asker,
    /// Identifies the client's roots across calls: its session's id, a stateless client's
    /// name and version, or `NO_ROOTS` for every client that declared none. `None` (a caller
    /// with no roots identity) makes every call re-synchronise the roots of a server that uses
    /// them.
    pub roots_key: Option<String>,
}

struct Call {
    id: u64,
    caller: Caller,
}

/// What the relay knows of one server's interest in roots.
#[derive(Default)]
struct Roots {
    /// The server asked for roots at least once.
    asked: bool,
    /// It did not ask again after `notifications/roots/list_changed`: it is not told again.
    ignores_changes: bool,
    /// Whose roots it last got, and how to ask them again (open sessions only).
    owner: Option<String>,
    owner_asker: Option<Asker>,
    last: Option<ListRootsResult>,
    requests: u64,
    answers: u64,
}

/// The roots key of every client that declared no roots, sessions and stateless requests
/// alike: their roots are the same (none).
pub const NO_ROOTS: &str = "no roots";

/// A caller's roots key: `own` for a client that declared roots, else `NO_ROOTS`.
pub fn roots_key(declares_roots: bool, own: impl FnOnce() -> String) -> String {
    if declares_roots {
        own()
    } else {
        NO_ROOTS.to_string()
    }
}

/// How long `sync_roots` waits for an upstream to ask for roots after being told they changed.
pub const ROOTS_ASK_WAIT: Duration = Duration::from_secs(1);
/// How long a call waits after its roots were answered, for the server to store them.
const ROOTS_SETTLE: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Progress {
    routes: HashMap<String, ProgressTarget>,
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
    /// Server id -> its roots (see the module documentation); `roots_moved` wakes waiters.
    roots: Mutex<HashMap<String, Roots>>,
    roots_moved: Notify,
    /// Progress notifications to forward, in arrival order.
    forward: mpsc::UnboundedSender<Forward>,
}

/// What the forwarding task does, in order. (Progress is the common item: not boxed.)
#[allow(clippy::large_enum_variant)]
enum Forward {
    Progress(Peer<RoleServer>, ProgressNotificationParam),
    /// Everything queued before is forwarded: tell the waiter.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// A call in flight; dropping it unregisters the call and its progress token.
pub struct CallGuard {
    relay: Arc<Relay>,
    server_id: String,
    id: u64,
    progress: ProgressTarget,
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
        let key = token_key(&self.server_id, upstream);
        let mut progress = self.relay.progress.lock().expect("progress lock");
        // Notifications that overtook this registration go first, in order.
        let mut kept = std::collections::VecDeque::new();
        for (at, k, mut param) in progress.early.drain(..) {
            if k == key {
                let (peer, client) = self.progress.get();
                if let Some(client) = client {
                    param.progress_token = client;
                    let _ = self.relay.forward.send(Forward::Progress(peer, param));
                }
            } else {
                kept.push_back((at, k, param));
            }
        }
        progress.early = kept;
        // A new round of the same call (MRTR) has a new token: the last round's route goes.
        if let Some(old) = self.token.take()
            && old != key
        {
            progress.routes.remove(&old);
        }
        progress.routes.insert(key.clone(), self.progress.clone());
        self.token = Some(key);
    }
}

/// How long a finished call's progress route stays: rmcp handles an upstream's notifications
/// on their own tasks, so the last ones may be handled just after the call's answer.
const ROUTE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl CallGuard {
    /// Before a call's answer goes to its client: the progress notifications the upstream sent
    /// before its answer are forwarded first (rmcp hands notifications to their own tasks, so
    /// the last one may still be on its way when the answer arrives; a client must not see the
    /// answer before it).
    pub async fn flush_progress(&self) {
        // Only a call whose client asked for progress waits (no cost on the others).
        if self.token.is_none() || self.progress.get().1.is_none() {
            return;
        }
        // Let the notification tasks the transport already spawned run.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.relay.forward.send(Forward::Barrier(done)).is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), flushed).await;
        }
    }
}

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
        let (forward, mut rx) = mpsc::unbounded_channel::<Forward>();
        runtime.spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    Forward::Progress(peer, param) => {
                        let _ = peer.notify_progress(param).await;
                    }
                    Forward::Barrier(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Arc::new(Self {
            next: AtomicU64::new(1),
            progress: Mutex::new(Progress::default()),
            inflight: Mutex::new(HashMap::new()),
            roots: Mutex::new(HashMap::new()),
            roots_moved: Notify::new(),
            forward,
        })
    }

    /// Registers a client's call on a server.
    pub fn begin(self: &Arc<Self>, server_id: &str, caller: &Caller) -> CallGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.inflight
            .lock()
            .expect("inflight lock")
            .entry(server_id.to_string())
            .or_default()
            .push(Call {
                id,
                caller: caller.clone(),
            });
        CallGuard {
            relay: self.clone(),
            server_id: server_id.to_string(),
            id,
            progress: caller.progress.clone(),
            token: None,
        }
    }

    /// An upstream's progress notification: forwarded to the session whose call it concerns.
    pub fn progress(&self, server_id: &str, mut param: ProgressNotificationParam) {
        let key = token_key(server_id, &param.progress_token);
        let mut progress = self.progress.lock().expect("progress lock");
        if let Some(target) = progress.routes.get(&key) {
            let (peer, client_token) = target.get();
            if let Some(client_token) = client_token {
                param.progress_token = client_token;
                let _ = self.forward.send(Forward::Progress(peer, param));
            }
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

    /// A request from an upstream to its client: asked of the client with the most recent call
    /// in flight on that server (`roots/list`: see `roots_request`).
    pub async fn request(
        &self,
        server_id: &str,
        server_name: &str,
        request: ServerRequest,
        method: &str,
    ) -> Result<ClientResult, ErrorData> {
        if method == "roots/list" {
            return self.roots_request(server_id, request).await;
        }
        let Some(caller) = self.latest(server_id) else {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "{method} is not available: no MCP client has a call in flight on {server_name} (vMCP relays it only to the client whose call caused it)"
                ),
                None,
            ));
        };
        if !caller.asker.declares(method) {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "{method} is not available: the MCP client of this call did not declare that capability"
                ),
                None,
            ));
        }
        caller.asker.ask(request, method).await
    }

    fn latest(&self, server_id: &str) -> Option<Caller> {
        self.inflight
            .lock()
            .expect("inflight lock")
            .get(server_id)
            .and_then(|calls| calls.last())
            .map(|c| c.caller.clone())
    }

    fn with_roots<T>(&self, server_id: &str, f: impl FnOnce(&mut Roots) -> T) -> T {
        let mut roots = self.roots.lock().expect("roots lock");
        let out = f(roots.entry(server_id.to_string()).or_default());
        self.roots_moved.notify_waiters();
        out
    }

    /// An upstream's `roots/list`: the roots of the client whose call is in flight (empty when
    /// it declared no roots); with none in flight, those the upstream last saw, or none.
    async fn roots_request(
        &self,
        server_id: &str,
        request: ServerRequest,
    ) -> Result<ClientResult, ErrorData> {
        self.with_roots(server_id, |r| {
            r.asked = true;
            r.requests += 1;
        });
        let answer = match self.latest(server_id) {
            Some(caller) => {
                let roots = if caller.asker.declares("roots/list") {
                    match caller.asker.ask(request, "roots/list").await {
                        Ok(ClientResult::ListRootsResult(r)) => Ok(r),
                        Ok(_) => Err(ErrorData::internal_error(
                            "the MCP client answered roots/list with something else",
                            None,
                        )),
                        Err(e) => Err(e),
                    }
                } else {
                    Ok(ListRootsResult::default())
                };
                roots.inspect(|roots| {
                    self.with_roots(server_id, |r| {
                        r.owner = caller.roots_key.clone();
                        r.owner_asker = match &caller.asker {
                            Asker::Session(_) if caller.roots_key.is_some() => {
                                Some(caller.asker.clone())
                            }
                            _ => None,
                        };
                        r.last = Some(roots.clone());
                    })
                })
            }
            None => {
                let (asker, last) = self.with_roots(server_id, |r| {
                    (
                        r.owner_asker.clone().filter(|a| !a.is_gone()),
                        r.last.clone(),
                    )
                });
                let fresh = match asker.filter(|a| a.declares("roots/list")) {
                    Some(asker) => match tokio::time::timeout(
                        Duration::from_secs(5),
                        asker.ask(request, "roots/list"),
                    )
                    .await
                    {
                        Ok(Ok(ClientResult::ListRootsResult(r))) => Some(r),
                        _ => None,
                    },
                    None => None,
                };
                if let Some(roots) = &fresh {
                    self.with_roots(server_id, |r| r.last = Some(roots.clone()));
                }
                Ok(fresh.or(last).unwrap_or_default())
            }
        };
        self.with_roots(server_id, |r| r.answers += 1);
        answer.map(ClientResult::ListRootsResult)
    }

    /// Before a call of `caller` goes to `upstream`: if the server caches roots that are not
    /// this client's, tell it they changed and wait for its `roots/list` (asked of this call's
    /// client, which must be registered with `begin`) to be answered, at most `ROOTS_ASK_WAIT`
    /// for the server to ask and `answer_wait` for the client to answer.
    pub async fn sync_roots(
        &self,
        server_id: &str,
        caller: &Caller,
        upstream: &Peer<RoleClient>,
        answer_wait: Duration,
    ) {
        let start = self.with_roots(server_id, |r| {
            let mine = caller.roots_key.is_some() && r.owner == caller.roots_key;
            (r.asked && !r.ignores_changes && !mine).then_some((r.requests, r.answers))
        });
        let Some((requests, answers)) = start else {
            return;
        };
        if upstream.notify_roots_list_changed().await.is_err() {
            return;
        }
        let asked = self
            .wait_roots(server_id, ROOTS_ASK_WAIT, |r| r.requests > requests)
            .await;
        if !asked {
            tracing::debug!(server = %server_id, "the server did not ask for roots after roots/list_changed; not told again");
            self.with_roots(server_id, |r| r.ignores_changes = true);
            return;
        }
        if self
            .wait_roots(server_id, answer_wait, |r| r.answers > answers)
            .await
        {
            // The answer is on its way: give the server a moment to store the roots before
            // the call arrives (servers handle messages concurrently).
            tokio::time::sleep(ROOTS_SETTLE).await;
        }
    }

    async fn wait_roots(
        &self,
        server_id: &str,
        wait: Duration,
        done: impl Fn(&Roots) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.roots_moved.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self
                .roots
                .lock()
                .expect("roots lock")
                .get(server_id)
                .is_some_and(&done)
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// The servers whose cached roots are those of `roots_key` (told when that client says its
    /// roots changed).
    pub fn servers_with_roots_of(&self, roots_key: &str) -> Vec<String> {
        self.roots
            .lock()
            .expect("roots lock")
            .iter()
            .filter(|(_, r)| r.owner.as_deref() == Some(roots_key))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

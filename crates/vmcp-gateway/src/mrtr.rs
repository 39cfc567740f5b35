// Sampling and roots are deprecated by SEP-2577 but are what upstreams and clients speak today.
#![allow(deprecated)]

//! Multi round-trip requests (MRTR) for 2026-07-28 clients, which cannot be sent requests in
//! the middle of a call. A stateless client's call runs in its own task; when its upstream asks
//! something of the client (sampling, elicitation, roots, see `relay::Asker::Stateless`), the
//! call is parked here and the client gets `input_required` with that request and a
//! `requestState`. The client retries the same request with `inputResponses` and the
//! `requestState`: the answer goes to the parked upstream request and the call goes on (and may
//! ask again).
//!
//! `requestState` is untrusted: it is only an opaque random handle (244 random bits) to the
//! parked call, which is bound to its principal (the vMCP, the client as its `_meta` names it,
//! and the method and target of the request) and expires: an expired call is cancelled
//! upstream. The table is bounded.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, ClientResult, CreateMessageResult, ElicitResult, ErrorData, InputRequest,
    InputRequiredResult, InputResponses, ListRootsResult, ServerRequest, ServerResult,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::relay::{Ask, Asker, ProgressTarget};

/// What a call's task ends with.
pub type Outcome = Result<ServerResult, ErrorData>;

/// One request of a stateless client's call: who asks (`principal`: the vMCP, the client and
/// the request), with what (`capabilities`, and on a retry `request_state` and
/// `input_responses`), and where this round's progress goes.
pub struct Round {
    pub principal: String,
    pub capabilities: Option<ClientCapabilities>,
    pub request_state: Option<String>,
    pub input_responses: Option<InputResponses>,
    pub progress: ProgressTarget,
}

/// What to answer the client now.
pub enum Step {
    Done(Box<ServerResult>),
    Input(InputRequiredResult),
}

struct Pending {
    key: String,
    method: String,
    reply: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

struct Parked {
    principal: String,
    expires: Instant,
    generation: u64,
    task: JoinHandle<Outcome>,
    asks: mpsc::UnboundedReceiver<Ask>,
    pending: Pending,
    progress: ProgressTarget,
}

/// How long a parked call waits for its client's retry, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// How many calls may wait for their clients at once.
pub const MAX_PARKED: usize = 1024;

/// The parked calls of the gateway (see the module documentation).
pub struct Mrtr {
    parked: Mutex<HashMap<String, Parked>>,
    next: AtomicU64,
    ttl: Duration,
    max: usize,
}

fn invalid(message: String) -> ErrorData {
    ErrorData::invalid_params(message, None)
}

fn input_request(request: ServerRequest) -> Option<InputRequest> {
    match request {
        ServerRequest::CreateMessageRequest(r) => Some(InputRequest::CreateMessage(r)),
        ServerRequest::ElicitRequest(r) => Some(InputRequest::Elicitation(r)),
        ServerRequest::ListRootsRequest(r) => Some(InputRequest::ListRoots(r)),
        _ => None,
    }
}

fn client_result(method: &str, value: serde_json::Value) -> Result<ClientResult, String> {
    let parsed = match method {
        "sampling/createMessage" => serde_json::from_value::<CreateMessageResult>(value)
            .map(|r| ClientResult::CreateMessageResult(Box::new(r))),
        "elicitation/create" => {
            serde_json::from_value::<ElicitResult>(value).map(ClientResult::ElicitResult)
        }
        _ => serde_json::from_value::<ListRootsResult>(value).map(ClientResult::ListRootsResult),
    };
    parsed.map_err(|e| e.to_string())
}

impl Mrtr {
    pub fn new(ttl: Duration, max: usize) -> Arc<Self> {
        Arc::new(Self {
            parked: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            ttl,
            max,
        })
    }

    /// How many calls wait for their clients.
    pub fn parked(&self) -> usize {
        self.parked.lock().expect("mrtr lock").len()
    }

    /// Runs (or resumes) one round of a stateless client's call. Without a `request_state`,
    /// `start` is given the `Asker` and progress target of the call and its future is run in a
    /// task; with one, the parked call is resumed with the `input_responses`, if `principal` is
    /// the one it was parked for. `stopped` resolves when the client gives up (the call is then
    /// cancelled).
    pub async fn round<F>(
        self: &Arc<Self>,
        round: Round,
        start: impl FnOnce(Asker, ProgressTarget) -> F,
        stopped: impl Future<Output = ()>,
    ) -> Result<Step, ErrorData>
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let Round {
            principal,
            capabilities,
            request_state,
            input_responses,
            progress,
        } = round;
        let (mut task, mut asks, progress) = match request_state {
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                let asker = Asker::Stateless {
                    capabilities,
                    asks: tx,
                };
                (tokio::spawn(start(asker, progress.clone())), rx, progress)
            }
            Some(handle) => {
                let (task, asks, parked) =
                    self.resume(&principal, &handle, input_responses.unwrap_or_default())?;
                parked.set(&progress);
                (task, asks, parked)
            }
        };
        // If this round is dropped (its HTTP request went away) while the call runs and is not
        // parked, the call ends with it instead of running on unseen.
        let mut unattended = AbortOnDrop(Some(task.abort_handle()));
        tokio::pin!(stopped);
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                done = &mut task => {
                    unattended.0 = None;
                    return match done {
                        Ok(outcome) => outcome.map(|r| Step::Done(Box::new(r))),
                        Err(e) => Err(ErrorData::internal_error(format!("the call failed: {e}"), None)),
                    };
                }
                ask = asks.recv(), if open => {
                    let Some(ask) = ask else {
                        open = false;
                        continue;
                    };
                    let Some(request) = input_request(ask.request) else {
                        let _ = ask.reply.send(Err(ErrorData::internal_error(
                            format!("{} cannot be asked of a 2026-07-28 client", ask.method),
                            None,
                        )));
                        continue;
                    };
                    let n = self.next.fetch_add(1, Ordering::Relaxed);
                    let key = format!("vmcp-{n}");
                    let pending = Pending { key: key.clone(), method: ask.method, reply: ask.reply };
                    unattended.0 = None;
                    let handle = self.park(principal, task, asks, pending, progress)?;
                    let mut requests = rmcp::model::InputRequests::new();
                    requests.insert(key, request);
                    return Ok(Step::Input(InputRequiredResult::new(Some(requests), Some(handle))));
                }
                _ = &mut stopped => {
                    task.abort();
                    return Err(ErrorData::internal_error("cancelled by the client", None));
                }
            }
        }
    }

    fn park(
        self: &Arc<Self>,
        principal: String,
        task: JoinHandle<Outcome>,
        asks: mpsc::UnboundedReceiver<Ask>,
        pending: Pending,
        progress: ProgressTarget,
    ) -> Result<String, ErrorData> {
        let handle = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let generation = self.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut parked = self.parked.lock().expect("mrtr lock");
            if parked.len() >= self.max {
                task.abort();
                return Err(ErrorData::internal_error(
                    format!(
                        "too many calls ({}) are waiting for their clients' input; try again later",
                        self.max
                    ),
                    None,
                ));
            }
            parked.insert(
                handle.clone(),
                Parked {
                    principal,
                    expires: Instant::now() + self.ttl,
                    generation,
                    task,
                    asks,
                    pending,
                    progress,
                },
            );
        }
        let me = Arc::downgrade(self);
        let key = handle.clone();
        let ttl = self.ttl;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            let Some(me) = me.upgrade() else { return };
            let mut parked = me.parked.lock().expect("mrtr lock");
            if parked.get(&key).is_some_and(|p| p.generation == generation)
                && let Some(p) = parked.remove(&key)
            {
                // Dropping the call cancels its upstream request.
                p.task.abort();
            }
        });
        Ok(handle)
    }

    fn resume(
        &self,
        principal: &str,
        handle: &str,
        mut responses: InputResponses,
    ) -> Result<
        (
            JoinHandle<Outcome>,
            mpsc::UnboundedReceiver<Ask>,
            ProgressTarget,
        ),
        ErrorData,
    > {
        let mut parked = self.parked.lock().expect("mrtr lock");
        let Some(p) = parked.remove(handle) else {
            return Err(invalid(format!(
                "requestState is unknown or expired: no call of this vMCP waits for it (calls wait {}s for their input, on the replica that holds them, and not across restarts); send the request again without requestState and inputResponses",
                self.ttl.as_secs()
            )));
        };
        if p.principal != principal {
            parked.insert(handle.to_string(), p);
            return Err(invalid(
                "requestState belongs to another request: retry exactly the request that got it (same vMCP, method, name or URI, and clientInfo)".to_string(),
            ));
        }
        if p.expires <= Instant::now() {
            p.task.abort();
            return Err(invalid(
                "requestState has expired and its call was cancelled; send the request again without requestState and inputResponses".to_string(),
            ));
        }
        let key = p.pending.key.clone();
        let Some(value) = responses.remove(&key) else {
            let method = p.pending.method.clone();
            parked.insert(handle.to_string(), p);
            return Err(invalid(format!(
                "inputResponses has no {key:?}: the answer to the {method} request of that key is required, with the same requestState"
            )));
        };
        let result = match client_result(&p.pending.method, value) {
            Ok(r) => r,
            Err(e) => {
                let method = p.pending.method.clone();
                parked.insert(handle.to_string(), p);
                return Err(invalid(format!(
                    "inputResponses[{key:?}] is not a valid {method} result: {e}"
                )));
            }
        };
        drop(parked);
        let _ = p.pending.reply.send(Ok(result));
        Ok((p.task, p.asks, p.progress))
    }
}

/// Aborts a task when dropped, unless disarmed (`.0 = None`).
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

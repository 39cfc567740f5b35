//! The server side of the legacy HTTP+SSE transport, independent of any HTTP framework: `open`
//! starts a session and returns the bytes of its event stream (first an `endpoint` event naming
//! where to POST, then `message` events); `post` delivers a client message to its session.
//! An HTTP layer only maps a GET to `open` and a POST to `post`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage, serve_server};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServerHandler};
use tokio::sync::mpsc;

/// Interval of the keep-alive comments on idle streams.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostError {
    #[error("no SSE session {0}: open the stream again (GET) and use the endpoint it announces")]
    UnknownSession(String),
    #[error("the body is not a JSON-RPC message: {0}")]
    BadMessage(String),
    #[error("the session is closing")]
    Closed,
}

/// The sessions of one legacy SSE endpoint.
#[derive(Clone, Default)]
pub struct SseSessions {
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
}

struct ChannelTransport {
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let tx = self.to_client.clone();
        async move {
            tx.send(item)
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed"))
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        self.from_client.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.from_client.close();
        Ok(())
    }
}

fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl SseSessions {
    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Opens a session served by `handler`. `message_path` is where clients POST (the session
    /// id is appended as `?sessionId=`). The returned stream is the response body; the session
    /// ends when the stream is dropped (the client went away).
    pub fn open<S: ServerHandler>(
        &self,
        handler: S,
        message_path: &str,
    ) -> (String, impl Stream<Item = Bytes> + Send + 'static) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (in_tx, from_client) = mpsc::channel(64);
        let (to_client, mut out_rx) = mpsc::channel::<ServerJsonRpcMessage>(64);
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(id.clone(), in_tx);
        let (bytes_tx, bytes_rx) = mpsc::channel::<Bytes>(64);
        let endpoint = format!("{message_path}?sessionId={id}");
        let sessions = self.sessions.clone();
        let session_id = id.clone();
        tokio::spawn(async move {
            let transport = ChannelTransport {
                to_client,
                from_client,
            };
            let running = tokio::spawn(async move {
                match serve_server(handler, transport).await {
                    Ok(service) => {
                        let _ = service.waiting().await;
                    }
                    Err(e) => tracing::debug!("SSE session ended before initialize: {e}"),
                }
            });
            if bytes_tx.send(event("endpoint", &endpoint)).await.is_ok() {
                let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
                keep_alive.tick().await;
                loop {
                    let chunk = tokio::select! {
                        message = out_rx.recv() => match message {
                            Some(m) => match serde_json::to_string(&m) {
                                Ok(json) => event("message", &json),
                                Err(_) => continue,
                            },
                            None => break,
                        },
                        _ = keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                    };
                    if bytes_tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
            sessions.lock().expect("sessions lock").remove(&session_id);
            running.abort();
        });
        let stream = futures::stream::unfold(bytes_rx, |mut rx| async move {
            rx.recv().await.map(|b| (b, rx))
        });
        (id, stream)
    }

    /// Delivers a POSTed message to its session.
    pub async fn post(&self, session_id: &str, body: &[u8]) -> Result<(), PostError> {
        let sender = self
            .sessions
            .lock()
            .expect("sessions lock")
            .get(session_id)
            .cloned()
            .ok_or_else(|| PostError::UnknownSession(session_id.to_string()))?;
        let message: ClientJsonRpcMessage =
            serde_json::from_slice(body).map_err(|e| PostError::BadMessage(e.to_string()))?;
        sender.send(message).await.map_err(|_| PostError::Closed)
    }
}

//! The legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp no longer has: GET the SSE
//! URL, wait for the `endpoint` event, then POST each message to that endpoint and read the
//! answers as `message` events on the stream.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use url::Url;

use crate::LogBuffer;

/// Largest event accepted on a legacy SSE stream, in bytes (the bound of a stdio line). A
/// longer one ends the stream, which is then reconnected.
pub const MAX_EVENT_BYTES: usize = crate::stdio::MAX_LINE_BYTES;

/// `stream` with a bound on the size of each SSE event (the bytes between blank lines): past
/// it, the stream ends with an error instead of growing without end.
fn bounded_events(
    stream: impl futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>>,
    max: usize,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    let mut event_bytes = 0usize;
    let mut after_newline = false;
    stream.map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        for &b in chunk.iter() {
            match b {
                b'\n' => {
                    if after_newline {
                        event_bytes = 0;
                    }
                    after_newline = true;
                }
                b'\r' => {}
                _ => {
                    after_newline = false;
                    event_bytes += 1;
                }
            }
        }
        if event_bytes > max {
            return Err(std::io::Error::other(format!(
                "an SSE event is longer than {max} bytes"
            )));
        }
        Ok(chunk)
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("the SSE stream at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not an SSE stream (content type {content_type:?})")]
    NotEventStream { url: String, content_type: String },
    #[error("the SSE stream ended before sending its endpoint event")]
    NoEndpoint,
    #[error("no endpoint event on the SSE stream within {0:?}")]
    EndpointTimeout(Duration),
    #[error("the endpoint event's URL {0:?} is invalid")]
    BadEndpoint(String),
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("POST to the message endpoint answered {status}: {body}")]
    PostStatus { status: u16, body: String },
    #[error("cannot encode message: {0}")]
    Encode(#[from] serde_json::Error),
}

pub struct SseTransport {
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    messages: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Opens the stream and waits (at most `timeout`) for the endpoint event.
pub async fn connect(
    client: reqwest::Client,
    url: &str,
    headers: HeaderMap,
    timeout: Duration,
    log: LogBuffer,
) -> Result<SseTransport, SseError> {
    let base = Url::parse(url).map_err(|_| SseError::BadEndpoint(url.to_string()))?;
    let response = client
        .get(base.clone())
        .headers(headers.clone())
        .header(ACCEPT, "text/event-stream")
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(SseError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        return Err(SseError::NotEventStream {
            url: url.to_string(),
            content_type,
        });
    }
    let mut events = sse_stream::SseStream::from_bytes_stream(bounded_events(
        response.bytes_stream(),
        MAX_EVENT_BYTES,
    ));
    let endpoint = tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                break;
            };
            if event.event.as_deref() == Some("endpoint") {
                let data = event.data.unwrap_or_default();
                return base
                    .join(data.trim())
                    .map_err(|_| SseError::BadEndpoint(data));
            }
        }
        Err(SseError::NoEndpoint)
    })
    .await
    .map_err(|_| SseError::EndpointTimeout(timeout))??;

    let (tx, messages) = mpsc::channel(256);
    let reader = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    log.push(&format!("[vmcp] SSE stream failed: {e}"));
                    break;
                }
            };
            if !matches!(event.event.as_deref(), None | Some("message")) {
                continue;
            }
            let Some(data) = event.data else { continue };
            match serde_json::from_str(&data) {
                Ok(message) => {
                    if tx.send(message).await.is_err() {
                        break;
                    }
                }
                Err(e) => log.push(&format!("[vmcp] SSE message is not JSON-RPC ({e}): {data}")),
            }
        }
        // Dropping `tx` ends `receive`: the connection is closed.
    });
    Ok(SseTransport {
        client,
        endpoint,
        headers,
        messages,
        reader,
    })
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json");
        async move {
            let body = serde_json::to_vec(&item)?;
            let response = request.body(body).send().await?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(SseError::PostStatus {
                    status: status.as_u16(),
                    body: body.chars().take(500).collect(),
                });
            }
            Ok(())
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        self.messages.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.messages.close();
        Ok(())
    }
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

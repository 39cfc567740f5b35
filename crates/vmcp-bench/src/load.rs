//! Closed-loop load: `concurrency` workers call as fast as they can until `total` calls are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rmcp::model::{CallToolRequestParams, ClientRequest, ListToolsRequest, ServerResult};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// What a benchmark calls.
pub enum Target {
    /// `tools/call` of `tool` over an MCP session.
    McpCall {
        peer: Peer<RoleClient>,
        tool: String,
    },
    /// `tools/list` over an MCP session, every page (bypassing the client's cache).
    McpList { peer: Peer<RoleClient> },
    /// `POST url` with a JSON body (REST tools/call).
    RestPost {
        http: reqwest::Client,
        url: String,
        body: Value,
    },
    /// `GET url`.
    RestGet { http: reqwest::Client, url: String },
}

/// An MCP client session (kept alive as long as this value).
pub type Session = RunningService<RoleClient, ()>;

pub async fn mcp_session(url: &str) -> Result<Session> {
    ().serve(StreamableHttpClientTransport::from_uri(url.to_string()))
        .await
        .with_context(|| format!("MCP session with {url}"))
}

impl Target {
    async fn once(&self) -> Result<()> {
        match self {
            Target::McpCall { peer, tool } => {
                let mut params = CallToolRequestParams::new(tool.clone());
                params.arguments = json!({"text": "hello"}).as_object().cloned();
                let r = peer.call_tool(params).await?;
                if r.is_error == Some(true) {
                    bail!("tool error: {r:?}");
                }
            }
            Target::McpList { peer } => {
                let mut cursor = None;
                loop {
                    let request = ClientRequest::ListToolsRequest(ListToolsRequest {
                        method: Default::default(),
                        params: cursor.take().map(|c| {
                            let mut p = rmcp::model::PaginatedRequestParams::default();
                            p.cursor = Some(c);
                            p
                        }),
                        extensions: Default::default(),
                    });
                    match peer.send_request(request).await? {
                        ServerResult::ListToolsResult(r) => match r.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        },
                        other => bail!("unexpected answer {other:?}"),
                    }
                }
            }
            Target::RestPost { http, url, body } => {
                let r = http.post(url).json(body).send().await?;
                if !r.status().is_success() {
                    bail!("{url}: {}", r.status());
                }
                r.bytes().await?;
            }
            Target::RestGet { http, url } => {
                let r = http.get(url).send().await?;
                if !r.status().is_success() {
                    bail!("{url}: {}", r.status());
                }
                r.bytes().await?;
            }
        }
        Ok(())
    }
}

/// Latencies of one run, and its wall time.
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Sample {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied().unwrap_or_default()
    }

    pub fn p50_ms(&self) -> f64 {
        self.percentile(0.5).as_secs_f64() * 1e3
    }

    pub fn p99_ms(&self) -> f64 {
        self.percentile(0.99).as_secs_f64() * 1e3
    }

    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `warmup` calls, then `total` calls with `concurrency` workers.
pub async fn run(
    target: Arc<Target>,
    concurrency: usize,
    total: usize,
    warmup: usize,
) -> Result<Sample> {
    for _ in 0..warmup {
        target.once().await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (target, next) = (target.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total / concurrency + 1);
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                target.once().await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for w in workers {
        latencies.extend(w.await??);
    }
    Ok(Sample {
        latencies,
        elapsed: started.elapsed(),
    })
}

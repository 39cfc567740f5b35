//! `vmcp-bench --drive URL`: the rmcp client as one of the clients of `cargo xtask replicas`.
//! Opens MCP sessions (one per worker) on URL and calls TOOL until CALLS calls are made or
//! SECONDS have passed, tolerating failures (a replica may die under it); prints one JSON line:
//! `{"ok", "failed", "session_errors", "per_second", "p50_ms", "p99_ms", "errors"}`.
//! A session error is an answer that says the session is unknown ("Session not found"): what
//! replicas must never give (-32001 alone is not one: SDKs use it for their own timeouts too).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::load::{Sample, mcp_session};

/// How long opening a session (initialize, then initialized) may take.
const OPEN_WITHIN: Duration = Duration::from_secs(30);
/// How long closing a session (DELETE, bounded by rmcp at 5 s, and the transport's end) may take.
const CLOSE_WITHIN: Duration = Duration::from_secs(15);

pub struct Drive {
    pub url: String,
    pub tool: String,
    pub workers: usize,
    pub calls: usize,
    pub seconds: f64,
}

pub async fn run(d: Drive) -> Result<serde_json::Value> {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(d.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..d.workers {
        let (url, tool, next) = (d.url.clone(), d.tool.clone(), next.clone());
        let calls = d.calls;
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut failed = 0usize;
            let mut session_errors = 0usize;
            let mut errors = Vec::new();
            // Every wait is bounded: a request the gateway never answers is a failure to report,
            // not a run that hangs (a balancer holds an unanswered request for its server timeout).
            let session = tokio::time::timeout(OPEN_WITHIN, mcp_session(&url))
                .await
                .map_err(|_| anyhow::anyhow!("initialize not answered within {OPEN_WITHIN:?}"))??;
            let protocol = session
                .peer_info()
                .map(|i| i.protocol_version.to_string())
                .unwrap_or_default();
            while next.fetch_add(1, Ordering::Relaxed) < calls && Instant::now() < deadline {
                let mut params = CallToolRequestParams::new(tool.clone());
                params.arguments = json!({"message": format!("w{w}")}).as_object().cloned();
                let t = Instant::now();
                match tokio::time::timeout(
                    Duration::from_secs(20),
                    session.peer().call_tool(params),
                )
                .await
                {
                    Ok(Ok(r)) if r.is_error != Some(true) => ok.push(t.elapsed()),
                    other => {
                        failed += 1;
                        let text = format!("{other:?}");
                        if text.to_lowercase().contains("session not found") {
                            session_errors += 1;
                        }
                        if errors.len() < 5 {
                            errors.push(text.chars().take(300).collect::<String>());
                        }
                    }
                }
            }
            // Every call has its answer by now: a close that does not end is the client's own
            // (rmcp bounds its DELETE at 5 s), said on stderr, and the process does not wait on it.
            if tokio::time::timeout(CLOSE_WITHIN, session.cancel())
                .await
                .is_err()
            {
                eprintln!("drive: worker {w}: the session did not close within {CLOSE_WITHIN:?}");
            }
            anyhow::Ok((ok, failed, session_errors, errors, protocol))
        }));
    }
    let (mut ok, mut failed, mut session_errors, mut errors) = (Vec::new(), 0, 0, Vec::new());
    let mut protocol = String::new();
    for t in tasks {
        match t.await? {
            Ok((o, f, s, e, p)) => {
                protocol = p;
                ok.extend(o);
                failed += f;
                session_errors += s;
                errors.extend(e);
            }
            Err(e) => {
                failed += 1;
                errors.push(format!("session: {e:#}"));
            }
        }
    }
    let sample = Sample {
        latencies: ok,
        elapsed: started.elapsed(),
    };
    Ok(json!({
        "client": "rmcp",
        "protocol": protocol,
        "ok": sample.latencies.len(),
        "failed": failed,
        "session_errors": session_errors,
        "per_second": sample.per_second(),
        "p50_ms": sample.p50_ms(),
        "p99_ms": sample.p99_ms(),
        "errors": errors,
    }))
}

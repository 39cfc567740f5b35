//! The same workload through the Python original (PyPI `1xn-vmcp` 0.6.1) and through vMCP: an MCP
//! client calls the fixture's `echo` over each one's MCP endpoint, the fixture upstream over
//! streamable HTTP for both.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::load::{self, Sample, Target};
use crate::procs::{Bins, HttpFixture, Server};
use crate::stats::Scratch;
use crate::{Report, progress, row};

async fn post(http: &reqwest::Client, url: &str, body: Option<Value>) -> Result<Value> {
    let mut r = http.post(url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() || body["success"] == false {
        bail!("{url}: {status}: {body}");
    }
    Ok(body)
}

pub async fn side_by_side(
    bins: &Bins,
    python: &Path,
    quick: bool,
    report: &mut Report,
) -> Result<()> {
    let fixture = HttpFixture::start(bins, "fx").await?;

    progress!(
        "python: starting the Python original ({})",
        python.display()
    );
    let home = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut original = Command::new(python)
        .args([
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--no-open",
        ])
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", python.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        if let Ok(Some(status)) = original.try_wait() {
            bail!("the Python original exited: {status}");
        }
        if started.elapsed() > Duration::from_secs(180) {
            bail!("the Python original did not answer /health within 180 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = started.elapsed();
    let installed = post(
        &http,
        &format!("{base}/api/mcps/install"),
        Some(json!({"name": "fx", "mode": "http", "url": fixture.mcp_url, "auto_connect": false})),
    )
    .await?;
    let sid = installed["data"]["id"]
        .as_str()
        .context("server id")?
        .to_string();
    let connected = post(&http, &format!("{base}/api/mcps/{sid}/connect"), None).await?;
    anyhow::ensure!(
        connected["data"]["status"] == "connected",
        "the Python original did not connect the fixture: {connected}"
    );
    post(
        &http,
        &format!("{base}/api/vmcps/create"),
        Some(
            json!({"name": "bench", "vmcp_config": {"selected_servers": [
                {"server_id": sid, "name": "fx", "transport_type": "http", "url": fixture.mcp_url}
            ]}}),
        ),
    )
    .await?;
    let theirs = load::mcp_session(&format!("{base}/private/bench/vmcp")).await?;

    progress!("python: starting vMCP");
    let db = Scratch::sqlite()?;
    let server = Server::start(bins, &db.url).await?;
    let fx = server
        .add_server("fx", "streamable_http", json!({"url": fixture.mcp_url}))
        .await?;
    server.add_vmcp("bench", &[fx], true).await?;
    let ours = load::mcp_session(&format!("{}/vmcp/bench/mcp", server.base)).await?;

    let target = |s: &load::Session, tool: &str| {
        Arc::new(Target::McpCall {
            peer: s.peer().clone(),
            tool: tool.into(),
        })
    };
    let (theirs_t, ours_t) = (target(&theirs, "fx_echo"), target(&ours, "fx.echo"));
    let mut table = format!(
        "The same MCP client calls the same upstream tool (the fixture's `echo`, over streamable \
         HTTP) through each gateway's MCP endpoint. The Python original answered `/health` \
         {:.1} s after start (it tries to reach demo servers on the internet first); vMCP {:.0} ms.\n\n\
         | gateway | concurrency | p50 ms | p99 ms | calls/s |\n| --- | --- | --- | --- | --- |\n",
        ready.as_secs_f64(),
        server.ready_after.as_secs_f64() * 1e3,
    );
    let mut ratios = String::from(
        "\n| concurrency | p50: Python / vMCP | throughput: vMCP / Python |\n| --- | --- | --- |\n",
    );
    for c in [1usize, 16, 64] {
        // The original serves about 15 calls a second: keep its runs to a couple of minutes.
        let total = match (quick, c) {
            (true, 1) => 100,
            (true, _) => 400,
            (false, 1) => 200,
            (false, 16) => 500,
            (false, _) => 1_000,
        };
        progress!("python: the Python original, concurrency {c}, {total} calls");
        let p: Sample = load::run(theirs_t.clone(), c, total, 20).await?;
        progress!("python: vMCP, concurrency {c}, {total} calls");
        let v: Sample = load::run(ours_t.clone(), c, total, 20).await?;
        table.push_str(&row("Python original 0.6.1", c, &p));
        table.push_str(&row("vMCP", c, &v));
        ratios.push_str(&format!(
            "| {c} | {:.1}x | {:.1}x |\n",
            p.p50_ms() / v.p50_ms(),
            v.per_second() / p.per_second()
        ));
    }
    table.push_str(&ratios);
    report.section("Against the Python original", &table);
    drop(theirs);
    drop(ours);
    server.stop().await?;
    let _ = original.kill().await;
    Ok(())
}

//! The processes a benchmark runs: the vMCP server and fixture MCP servers, on loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The release binaries.
#[derive(Debug, Clone)]
pub struct Bins {
    pub vmcp: PathBuf,
    pub fixture: PathBuf,
}

impl Bins {
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let bins = Self {
            vmcp: dir.join("vmcp"),
            fixture: dir.join("vmcp-fixture"),
        };
        for b in [&bins.vmcp, &bins.fixture] {
            if !b.exists() {
                bail!(
                    "{} is missing: run `cargo xtask bench` (it builds the release binaries)",
                    b.display()
                );
            }
        }
        Ok(bins)
    }

    pub fn fixture_stdio(&self, name: &str, extra: &[&str]) -> Value {
        let mut args = vec!["stdio".to_string(), "--name".into(), name.into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        json!({"command": self.fixture.display().to_string(), "args": args})
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running vMCP server.
pub struct Server {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
    /// From spawn to the first healthy answer.
    pub ready_after: Duration,
}

impl Server {
    pub async fn start(bins: &Bins, database_url: &str) -> Result<Self> {
        let port = free_port()?;
        let started = Instant::now();
        let child = Command::new(&bins.vmcp)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .args(["--log", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bins.vmcp.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{base}/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("vMCP did not become healthy within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            ready_after: started.elapsed(),
            child,
            base,
            http,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Resident memory in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.pid())
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status}: {body}");
        }
        Ok(body)
    }

    pub async fn add_server(&self, name: &str, transport: &str, config: Value) -> Result<String> {
        let body = self
            .api(
                reqwest::Method::POST,
                "/api/mcp-servers",
                Some(json!({"name": name, "transport_type": transport, "config": config})),
            )
            .await?;
        Ok(body["server_id"].as_str().context("server_id")?.to_string())
    }

    pub async fn add_vmcp(&self, name: &str, servers: &[String], prefix: bool) -> Result<String> {
        let members: Vec<Value> = servers.iter().map(|s| json!({"server_id": s})).collect();
        let body = self
            .api(
                reqwest::Method::POST,
                "/api/vmcps",
                Some(json!({"name": name, "mcp_servers": members, "naming": {"prefix": prefix}})),
            )
            .await?;
        Ok(body["vmcp_id"].as_str().context("vmcp_id")?.to_string())
    }

    /// SIGTERM, and wait for the exit.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("vMCP did not stop within 30 s of SIGTERM");
            }
        }
        Ok(())
    }
}

pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// A fixture serving streamable HTTP.
pub struct HttpFixture {
    _child: Child,
    pub mcp_url: String,
}

impl HttpFixture {
    pub async fn start(bins: &Bins, name: &str) -> Result<Self> {
        let mut child = Command::new(&bins.fixture)
            .args(["http", "--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the fixture did not print its address")??
            .context("the fixture exited")?;
        let base = line
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected fixture line {line:?}"))?
            .to_string();
        // Keep draining stdout so the fixture never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            _child: child,
            mcp_url: format!("{base}/mcp"),
        })
    }
}

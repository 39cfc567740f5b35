//! What the binary's tests share: a running `vmcp` and a few requests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The repository's root (its `deploy/`, `xtask/` and docs).
pub fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Drop for Running {
    /// A test that fails leaves no server behind: SIGTERM (so that it ends its upstreams), then
    /// SIGKILL after 5 s.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmcp"));
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env_remove("VMCP_DATABASE_URL")
            .env_remove("VMCP_BIND")
            .env_remove("VMCP_API_TOKENS")
            .env_remove("VMCP_ALLOW_UNAUTHENTICATED")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    pub fn base(&mut self) -> String {
        let line = self.wait_for("listening on http://");
        let addr = line.split("listening on http://").nth(1).unwrap();
        format!("http://{}", addr.split_whitespace().next().unwrap())
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        self.wait_for("stopped");
        status
    }
}

pub fn post_ok(
    client: &reqwest::blocking::Client,
    url: String,
    body: serde_json::Value,
    status: u16,
) -> serde_json::Value {
    let r = client.post(&url).json(&body).send().unwrap();
    let got = r.status().as_u16();
    let answer: serde_json::Value = r.json().unwrap_or_default();
    assert_eq!(got, status, "POST {url}: {answer}");
    answer
}

/// Registers a stdio server from `config` and a vMCP over it (with `active_config`); returns
/// their ids.
pub fn register_vmcp(
    client: &reqwest::blocking::Client,
    base: &str,
    name: &str,
    config: serde_json::Value,
    active_config: serde_json::Value,
) -> (String, String) {
    let server = post_ok(
        client,
        format!("{base}/api/mcp-servers"),
        serde_json::json!({"name": name, "transport_type": "stdio", "config": config}),
        201,
    );
    let sid = server["server_id"].as_str().unwrap().to_string();
    let vmcp = post_ok(
        client,
        format!("{base}/api/vmcps"),
        serde_json::json!({"name": name, "mcp_servers": [{"server_id": sid}],
                           "active_config": active_config}),
        201,
    );
    (sid, vmcp["vmcp_id"].as_str().unwrap().to_string())
}

pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmcp"));
    cmd.args(args)
        .env(
            "VMCP_DATABASE_URL",
            format!("sqlite://{}/v.db", dir.path().display()),
        )
        .env("NO_COLOR", "1")
        .env_remove("VMCP_API_TOKENS")
        .env_remove("VMCP_ALLOW_UNAUTHENTICATED");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

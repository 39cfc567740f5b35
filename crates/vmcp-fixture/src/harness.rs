//! Starting fixtures from tests, and finding leftover processes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `vmcp-fixture` binary, next to the running test's target directory (or `VMCP_FIXTURE`).
/// `cargo test --workspace` builds it; a single crate's tests need `cargo build -p vmcp-fixture`
/// first, and benchmarks `cargo build --release -p vmcp-fixture`.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VMCP_FIXTURE") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/vmcp-fixture
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target directory");
    let path = dir.join("vmcp-fixture");
    static CHECKED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    CHECKED.get_or_init(|| {
        assert!(
            path.is_file(),
            "{} is missing: run `cargo test --workspace` (or `cargo build -p vmcp-fixture` first)",
            path.display()
        );
        let out = Command::new(&path)
            .arg("--fingerprint")
            .output()
            .expect("run the fixture");
        let built = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            built == crate::FINGERPRINT,
            "{} is stale (built from other sources than this test): run `cargo test --workspace` \
             (or `cargo build -p vmcp-fixture` first)",
            path.display()
        );
    });
    path
}

/// A stdio server config for the fixture, as the API takes it.
pub fn stdio_config(name: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["stdio".to_string(), "--name".into(), name.into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    serde_json::json!({"command": binary().display().to_string(), "args": args})
}

/// A fixture serving HTTP (streamable HTTP at /mcp, legacy SSE at /sse), killed when dropped.
pub struct HttpFixture {
    child: Child,
    pub base: String,
    pub port: u16,
}

impl HttpFixture {
    pub fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_on(0, name, extra)
    }

    /// Starts on a given port (0: any free one).
    pub fn start_on(port: u16, name: &str, extra: &[&str]) -> Self {
        Self::start_with(&binary(), port, name, extra)
    }

    /// Starts a given fixture binary.
    pub fn start_with(binary: &std::path::Path, port: u16, name: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(["http", "--port", &port.to_string(), "--name", name])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fixture");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .expect("the fixture prints its address")
            .expect("readable stdout");
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            child,
            base: format!("http://{addr}"),
            port,
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn sse_url(&self) -> String {
        format!("{}/sse", self.base)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Live (not zombie) processes whose process group is one of `pgids`, as (pid, command line).
pub fn processes_in_groups(pgids: &[u32]) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (state, pgrp) = (
            fields.first().copied(),
            fields.get(2).and_then(|p| p.parse::<u32>().ok()),
        );
        if state == Some("Z") {
            continue;
        }
        if let Some(pgrp) = pgrp
            && pgids.contains(&pgrp)
        {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            found.push((pid, cmd));
        }
    }
    found
}

/// Waits (at most `limit`) until no live process is left in `pgids`; returns what is left.
pub fn wait_groups_gone(pgids: &[u32], limit: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_in_groups(pgids);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live processes (not zombies) whose command line contains `marker`: (pid, parent pid).
pub fn processes_with(marker: &str) -> Vec<(i32, i32)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut rest = stat[stat.rfind(')')? + 2..].split_whitespace();
            let state = rest.next()?;
            let ppid: i32 = rest.next()?.parse().ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (state != "Z" && text.contains(marker)).then_some((pid, ppid))
        })
        .collect()
}

//! Shared pieces of the tasks: paths, commands, Python tools, a running vMCP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where downloaded tools (Python virtualenvs, npm packages) are kept between runs:
/// `VMCP_TOOLS_DIR`, else `~/.cache/vmcp-tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("VMCP_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(root);
            home.join(".cache").join("vmcp-tools")
        })
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Builds the `vmcp` binary (debug, or release) and returns its path.
pub fn build_vmcp(release: bool) -> anyhow::Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--quiet", "-p", "vmcp", "--bin", "vmcp"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    Ok(target_dir()
        .join(if release { "release" } else { "debug" })
        .join("vmcp"))
}

/// A Python virtualenv under the tools dir with the given pinned requirements installed.
pub fn python_venv(name: &str, requirements: &[&str]) -> anyhow::Result<PathBuf> {
    let dir = tools_dir().join(name);
    let marker = dir.join("requirements.installed");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    eprintln!(
        "setting up Python tools in {}: {}",
        dir.display(),
        requirements.join(" ")
    );
    std::fs::create_dir_all(&dir)?;
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements))?;
    std::fs::write(&marker, wanted)?;
    Ok(dir)
}

/// npm packages installed (pinned) in a directory under the tools dir; returns the directory
/// (binaries in `node_modules/.bin`).
pub fn npm_packages(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let dir = tools_dir().join(name);
    let marker = dir.join("packages.installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    eprintln!(
        "installing npm packages in {}: {}",
        dir.display(),
        packages.join(" ")
    );
    std::fs::create_dir_all(&dir)?;
    if !dir.join("package.json").exists() {
        std::fs::write(dir.join("package.json"), "{\"private\": true}\n")?;
    }
    run(Command::new("npm")
        .current_dir(&dir)
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .args(packages))?;
    std::fs::write(&marker, wanted)?;
    Ok(dir)
}

/// An empty scratch directory under the target dir, for one run of a task.
pub fn scratch_dir(task: &str) -> anyhow::Result<PathBuf> {
    let dir = target_dir()
        .join("xtask")
        .join(format!("{task}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A `vmcp` server process on a free loopback port, killed when dropped.
pub struct VmcpProcess {
    child: Child,
    pub base: String,
}

impl VmcpProcess {
    /// Starts `binary` with a fresh database in `data_dir` and waits until it listens.
    pub fn start(binary: &Path, data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let db = format!("sqlite://{}", data_dir.join("vmcp.db").display());
        let mut cmd = Command::new(binary);
        cmd.env("VMCP_BIND", "127.0.0.1:0")
            .env("VMCP_DATABASE_URL", &db)
            .env("VMCP_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = rx.try_recv() {
                return Ok(Self {
                    child,
                    base: format!("http://{addr}"),
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("vmcp exited before listening: {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("vmcp did not start listening within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl VmcpProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for VmcpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

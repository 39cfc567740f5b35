//! `cargo xtask clients`: the real-client matrix. Builds vMCP, then runs
//! `xtask/python/clients_run.sh`, which installs the pinned clients (TypeScript SDK 1.x, the
//! TypeScript client 2.x in default and auto negotiation, the Python SDK 2.x in auto and legacy
//! mode, mcp-remote) and server-everything, and drives every operation through a vMCP's
//! streamable HTTP and legacy SSE endpoints, through `vmcp bridge` and mcp-remote, with
//! server-everything as the upstream over streamable HTTP and over stdio. Fails on any failed
//! check; the table and per-client latency go to stdout and `matrix.json`.

use std::process::Command;

use anyhow::Context;

use crate::util;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let binary = util::build_vmcp(false)?;
    let out = util::scratch_dir("clients")?;
    let latency = args.first().cloned().unwrap_or_else(|| "100".into());
    util::run(
        Command::new("bash")
            .arg(util::root().join("xtask/python/clients_run.sh"))
            .arg(&binary)
            .env("MATRIX_OUT", &out)
            .env("MATRIX_LATENCY", latency)
            .env("VMCP_TOOLS_DIR", util::tools_dir()),
    )
    .context("the real-client matrix failed")?;
    println!("matrix and logs in {}", out.display());
    Ok(())
}

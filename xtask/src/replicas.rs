//! `cargo xtask replicas [--quick] [--sessions N]`: three replicas of the release build on one
//! Postgres database behind HAProxy and behind nginx (Debian's packages, installed when missing;
//! nginx runs `deploy/nginx.conf` as shipped), driven by the official Python and TypeScript SDK
//! clients and the rmcp client; `/ws` through nginx; a replica stopped under load and started
//! again; a change through one replica seen through the others; throughput over 1, 2 and 3
//! replicas; 10,000 idle sessions. `xtask/python/replicas.py` has the checks; the figures go to
//! docs/benchmarks.md (between its `replicas` markers). Needs Postgres:
//! `VMCP_TEST_DATABASE_URL` (or `VMCP_BENCH_POSTGRES`), an admin URL.

use std::process::Command;

use anyhow::{Context, bail};

use crate::util;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => pass.push(a.clone()),
            "--sessions" => {
                pass.push(a.clone());
                pass.push(it.next().context("--sessions N")?.clone());
            }
            other => {
                bail!("usage: cargo xtask replicas [--quick] [--sessions N]; unknown {other:?}")
            }
        }
    }
    let postgres = std::env::var("VMCP_BENCH_POSTGRES")
        .or_else(|_| std::env::var("VMCP_TEST_DATABASE_URL"))
        .context(
            "cargo xtask replicas needs Postgres: set VMCP_TEST_DATABASE_URL \
             (e.g. postgres://postgres@127.0.0.1:5432/test)",
        )?;
    eprintln!("replicas: building the release binaries");
    util::run(util::cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "vmcp",
        "-p",
        "vmcp-bench",
    ]))?;
    let release = util::target_dir().join("release");
    let out = util::scratch_dir("replicas")?;
    util::run(
        Command::new("bash")
            .arg(util::root().join("xtask/python/replicas_run.sh"))
            .arg(release.join("vmcp"))
            .arg(release.join("vmcp-bench"))
            .args(&pass)
            .env("REPLICAS_OUT", &out)
            .env("REPLICAS_POSTGRES", postgres)
            .env("REPLICAS_REPORT", util::root().join("docs/benchmarks.md"))
            .env("VMCP_TOOLS_DIR", util::tools_dir()),
    )
    .context("the replica test failed")?;
    println!("logs and replicas.json in {}", out.display());
    Ok(())
}

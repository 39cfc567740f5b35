//! `cargo xtask bench [--quick] [--python] [--only SECTIONS]`: builds the release binaries and
//! runs `vmcp-bench` (crates/vmcp-bench), which prints its progress and a report; the full run
//! keeps the report in `docs/benchmarks.md`.

use std::net::TcpStream;
use std::time::Duration;

use anyhow::bail;

use crate::util;

const PYTHON_ORIGINAL: &[&str] = &[
    "1xn-vmcp==0.6.1",
    "pydantic==2.12.4",
    "pydantic-core==2.41.5",
    "fastapi==0.121.1",
    "starlette==0.49.3",
    "sqlalchemy==2.0.44",
    "sse-starlette==3.0.3",
    "uvicorn==0.38.0",
    "anyio==4.11.0",
    "httpx==0.28.1",
];

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut python = false;
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                quick = true;
                pass.push(a.clone());
            }
            "--python" => python = true,
            "--only" => {
                pass.push(a.clone());
                pass.push(it.next().cloned().unwrap_or_default());
            }
            other => bail!(
                "usage: cargo xtask bench [--quick] [--python] [--only SECTIONS]; unknown {other:?}"
            ),
        }
    }
    eprintln!("bench: building the release binaries");
    util::run(util::cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "vmcp",
        "-p",
        "vmcp-fixture",
        "-p",
        "vmcp-bench",
    ]))?;
    let release = util::target_dir().join("release");
    let mut cmd = std::process::Command::new(release.join("vmcp-bench"));
    cmd.arg("--bin-dir").arg(&release).args(&pass);
    let postgres = std::env::var("VMCP_BENCH_POSTGRES")
        .or_else(|_| std::env::var("VMCP_TEST_DATABASE_URL"))
        .ok()
        .or_else(|| {
            TcpStream::connect_timeout(&"127.0.0.1:5432".parse().ok()?, Duration::from_secs(1))
                .ok()
                .map(|_| POSTGRES.to_string())
        });
    if python {
        // The Python original installs in a venv only with the versions of its lock file.
        let venv = util::python_venv("venv-python-original", PYTHON_ORIGINAL)?;
        cmd.arg("--python-vmcp").arg(venv.join("bin").join("vmcp"));
    }
    if let Some(url) = postgres {
        cmd.env("VMCP_BENCH_POSTGRES", url);
    }
    // The full run is the published one; a quick run is a smoke test and stays out of docs/.
    let out = if quick {
        util::target_dir().join("benchmarks-quick.md")
    } else {
        util::root().join("docs").join("benchmarks.md")
    };
    cmd.arg("--out").arg(&out);
    cmd.env("VMCP_TOOLS_DIR", util::tools_dir());
    util::run(&mut cmd)
}

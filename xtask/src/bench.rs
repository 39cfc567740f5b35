//! `cargo xtask bench [--quick] [--python] [--clients] [--only SECTIONS]`: builds the release
//! binaries and runs `vmcp-bench` (crates/vmcp-bench), which prints its progress and a report; the
//! full run keeps the report in `docs/benchmarks.md`. `--clients` (or `--only clients`) adds the
//! latency and throughput of every client of the real-client matrix, direct and through a vMCP
//! (`xtask/python/clients_run.sh` on the release binary), as a section of that report.

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
    let mut clients = false;
    let mut only_clients = false;
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                quick = true;
                pass.push(a.clone());
            }
            "--python" => python = true,
            "--clients" => clients = true,
            "--only" => {
                let sections = it.next().cloned().unwrap_or_default();
                let rest: Vec<&str> = sections.split(',').filter(|s| *s != "clients").collect();
                if rest.len() < sections.split(',').count() {
                    clients = true;
                    only_clients = rest.is_empty();
                }
                if !rest.is_empty() {
                    pass.push(a.clone());
                    pass.push(rest.join(","));
                }
            }
            other => bail!(
                "usage: cargo xtask bench [--quick] [--python] [--clients] [--only SECTIONS]; \
                 unknown {other:?}"
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
    if !only_clients {
        util::run(&mut cmd)?;
    }
    if clients {
        clients_section(&release.join("vmcp"), &out, if quick { 50 } else { 300 })?;
    }
    Ok(())
}

const CLIENTS_BEGIN: &str = "<!-- clients:begin -->";
const CLIENTS_END: &str = "<!-- clients:end -->";

/// Runs the real-client matrix on the release binary and puts its latency table in `report`,
/// between markers (replacing an earlier one).
fn clients_section(
    binary: &std::path::Path,
    report: &std::path::Path,
    calls: u32,
) -> anyhow::Result<()> {
    eprintln!("bench: the real-client matrix, {calls} calls per client and path");
    let out = util::scratch_dir("bench-clients")?;
    // Checks that fail do not stop the measurement; the table says what was measured.
    let _ = std::process::Command::new("bash")
        .arg(util::root().join("xtask/python/clients_run.sh"))
        .arg(binary)
        .env("MATRIX_OUT", &out)
        .env("MATRIX_LATENCY", calls.to_string())
        .env("VMCP_TOOLS_DIR", util::tools_dir())
        .status()?;
    let table = std::fs::read_to_string(out.join("latency.md"))
        .map_err(|e| anyhow::anyhow!("the client matrix wrote no latency table: {e}"))?;
    let section = format!(
        "{CLIENTS_BEGIN}\n## Per client: direct vs through a vMCP\n\n\
         tools/call `echo` of @modelcontextprotocol/server-everything, {calls} sequential calls \
         (p50/p99), then {calls} calls 16 at a time on one session (calls/s), for every client of \
         the real-client matrix (`cargo xtask clients`), release build, everything on this \
         machine. \"direct\" is the same client on server-everything's own streamable HTTP \
         endpoint; through a vMCP the upstream is that same endpoint (\"over http\") or the \
         same server over stdio.\n\n{table}{CLIENTS_END}\n"
    );
    let old = std::fs::read_to_string(report).unwrap_or_default();
    let new = match (old.find(CLIENTS_BEGIN), old.find(CLIENTS_END)) {
        (Some(b), Some(e)) if b < e => {
            format!(
                "{}{section}{}",
                &old[..b],
                &old[e + CLIENTS_END.len()..].trim_start_matches('\n')
            )
        }
        _ => format!("{}\n{section}", old.trim_end()),
    };
    std::fs::write(report, new)?;
    eprintln!("bench: per-client table written to {}", report.display());
    Ok(())
}

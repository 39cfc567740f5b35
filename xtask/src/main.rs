//! Project tasks, run as `cargo xtask <task>`.

mod bench;
mod clients;
mod conformance;
mod fuzz;
mod interop;
mod oauth;
mod replicas;
mod schemathesis;
mod sdk;
#[cfg(test)]
mod tidy;
mod ui;
mod util;

use anyhow::bail;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  openapi     write openapi.yaml from the code (a test fails when it is stale)
  bench [--quick] [--python] [--only calls,list,memory,stats,python]
              end-to-end benchmarks (release build): direct vs through a vMCP, lists,
              memory, start-up, /api/stats at 1M rows, the log writer, and with --python
              the Python original; writes docs/benchmarks.md
  clients [N] the real-client matrix: official TypeScript (1.x, 2.x default and auto) and
              Python (2.x auto and legacy) SDK clients, mcp-remote and `vmcp bridge`, every
              operation through a vMCP's endpoints over server-everything, and per-client
              latency of N sequential calls (default 100) against a direct call
  replicas [--quick] [--sessions N]
              three replicas on one Postgres behind HAProxy (installed when missing), driven
              by the Python and TypeScript SDK clients and the rmcp client: no session error,
              a replica stopped under load, config changes seen through the others,
              throughput over 1-3 replicas, N idle sessions (default 10,000); needs
              VMCP_TEST_DATABASE_URL; writes its section of docs/benchmarks.md
  oauth       OAuth on both sides with real parts: oidc-provider (npm) as the authorization
              server, vMCP signing in to a Python-SDK upstream that demands it, the TypeScript
              and Python SDK clients signing in to a protected vMCP, and the conformance
              suite's authorization scenarios with vMCP as the client
  conformance run the official MCP conformance suite against a vMCP fronting the fixture
  ui [--screenshots]
              the dashboard in Debian's Chromium (installed when missing) driven by Playwright
              for Python: register, create, call, stats, live log, a down server; without and
              with a token; --screenshots refreshes docs/ui/
  fuzz [S]    run each fuzz target (cargo-fuzz, nightly) for S seconds (default 60)
  interop     run vMCP against servers nobody here wrote: npm server-everything over stdio
              (npx), SSE and streamable HTTP, and a Python SDK server; no process may leak
  schemathesis [S]
              property-based tests of the running server against openapi.yaml (PyPI
              schemathesis, fixed seed, S seconds, default 120): no bug 5xx, statuses,
              headers and bodies as documented, auth enforced
  sdk         generate a Python client from openapi.yaml (openapi-python-client, warnings are
              errors) and drive every endpoint of a running server through it
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("openapi") => openapi(),
        Some("sdk") => sdk::run(),
        Some("interop") => interop::run(),
        Some("conformance") => conformance::run(),
        Some("clients") => clients::run(&args[1..]),
        Some("replicas") => replicas::run(&args[1..]),
        Some("oauth") => oauth::run(),
        Some("ui") => ui::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("schemathesis") => schemathesis::run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}

fn openapi() -> anyhow::Result<()> {
    let path = util::root().join("openapi.yaml");
    let yaml = vmcp_http::openapi_yaml();
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if old == yaml {
        println!("openapi.yaml is up to date");
    } else {
        std::fs::write(&path, yaml)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

//! `cargo xtask schemathesis [SECONDS]`: property-based tests of the running server against
//! `openapi.yaml` with schemathesis (PyPI), a fixed seed and a time bound.

use std::process::Command;

use anyhow::{Context, bail};

use crate::util::{self, VmcpProcess};

const VERSION: &str = "schemathesis==4.32.5";
const SEED: &str = "1";
const TOKEN: &str = "schemathesis-token-0123456789";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: u64 = match args.first() {
        Some(s) => s
            .parse()
            .with_context(|| format!("{s:?} is not a number of seconds"))?,
        None => 120,
    };
    let venv = util::python_venv("venv-schemathesis", &[VERSION])?;
    let binary = util::build_vmcp(false)?;
    let work = util::scratch_dir("schemathesis")?;
    // Tokens on, so every operation also proves it refuses a request without one; PATH empty,
    // so the made-up commands of fuzzed stdio servers cannot start anything.
    let server = VmcpProcess::start(
        &binary,
        &work,
        &[("VMCP_API_TOKENS", TOKEN), ("PATH", "/nonexistent")],
    )?;
    println!(
        "schemathesis {VERSION}: every check but not_a_server_error (replaced by not_a_bug), \
         positive_data_acceptance and ensure_resource_availability (see docs/security.md), \
         seed {SEED}, {seconds} s"
    );
    let run = || -> anyhow::Result<(bool, String)> {
        let out = Command::new(venv.join("bin/schemathesis"))
            .current_dir(&work)
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env("PYTHONPATH", util::root().join("xtask/python"))
            .args(["run"])
            .arg(util::root().join("openapi.yaml"))
            .args(["--url", &server.base])
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
            .args(["--checks", "all"])
            .args([
                "--exclude-checks",
                "not_a_server_error,positive_data_acceptance,ensure_resource_availability",
            ])
            .args(["--seed", SEED, "--max-examples", "50", "--workers", "1"])
            .args(["--max-time", &seconds.to_string()])
            .args(["--request-timeout", "20", "--no-color"])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("cannot run schemathesis")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        Ok((out.status.success(), text))
    };
    let (mut ok, text) = run()?;
    // A crash inside the tool itself (a Python "Runtime Error" with no failure of the API) is
    // retried once; a failure of the API never is.
    if !ok && !text.contains("\nFailures:") && text.contains("Runtime Error") {
        eprintln!("schemathesis crashed without finding a failure; running it once more");
        ok = run()?.0;
    }
    // A graceful stop: upstream processes the fuzzer connected are ended too.
    let pid = server.pid().to_string();
    util::run(Command::new("kill").args(["-TERM", &pid]))?;
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(server);
    if !ok {
        bail!(
            "schemathesis found failures (seed {SEED}; replay with `st replay ID` in {})",
            work.display()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

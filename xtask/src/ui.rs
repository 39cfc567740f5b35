//! `cargo xtask ui`: the dashboard in a real browser. Builds vMCP and the fixture, installs
//! what a fresh machine lacks (Debian's Chromium, Playwright for Python, pinned, in the tools
//! dir), and runs `xtask/python/ui_run.sh` twice: without tokens, and with one (the sign-in
//! path). `--screenshots` refreshes the pictures in `docs/ui/`.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::util;

const PLAYWRIGHT: &str = "playwright==1.65.2";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let screenshots = args.iter().any(|a| a == "--screenshots");
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!("installing Debian's chromium (apt-get)");
        util::run(Command::new("apt-get").args(["update", "-qq"]))?;
        util::run(Command::new("apt-get").args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
            "fonts-dejavu-core",
        ]))
        .context("apt-get install chromium (run as root, or install it yourself)")?;
    }
    let venv = util::python_venv("venv-ui", &[PLAYWRIGHT])?;
    let vmcp = util::build_vmcp(false)?;
    util::run(util::cargo().args([
        "build",
        "--quiet",
        "-p",
        "vmcp-fixture",
        "--bin",
        "vmcp-fixture",
    ]))?;
    let fixture = util::target_dir().join("debug").join("vmcp-fixture");
    let script = util::root().join("xtask/python/ui_run.sh");
    let python = venv.join("bin/python");
    let mut plain = Command::new("bash");
    plain
        .arg(&script)
        .arg(&vmcp)
        .arg(&fixture)
        .env("PYTHON", &python);
    if screenshots {
        plain.arg("--screenshots").arg(util::root().join("docs/ui"));
    }
    util::run(&mut plain).context("the dashboard's browser test failed (no token)")?;
    util::run(
        Command::new("bash")
            .arg(&script)
            .arg(&vmcp)
            .arg(&fixture)
            .env("PYTHON", &python)
            .env("UI_TOKEN", "ui-test-token-0123456789abcdef"),
    )
    .context("the dashboard's browser test failed (with a token)")?;
    Ok(())
}

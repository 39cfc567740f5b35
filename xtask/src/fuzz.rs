//! `cargo xtask fuzz [SECONDS]`: runs the fuzz targets (cargo-fuzz, on the nightly toolchain)
//! for a bounded time each (default 60 s), installing nightly and cargo-fuzz when missing.

use std::process::Command;

use anyhow::Context;

use crate::util;

/// (crate directory, target)
const TARGETS: &[(&str, &str)] = &[
    ("crates/vmcp-substitution", "parse"),
    ("crates/vmcp-transport", "stdio_reader"),
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: u64 = match args.first() {
        Some(s) => s.parse().context("usage: cargo xtask fuzz [SECONDS]")?,
        None => 60,
    };
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        eprintln!("installing the nightly toolchain (cargo-fuzz needs it)");
        util::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("installing cargo-fuzz");
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for (dir, target) in TARGETS {
        println!("fuzzing {dir} {target} for {seconds} s");
        util::run(
            Command::new("cargo")
                .current_dir(util::root().join(dir))
                .args(["+nightly", "fuzz", "run", target, "--"])
                .arg(format!("-max_total_time={seconds}")),
        )
        .with_context(|| format!("the fuzz target {target} of {dir} failed"))?;
    }
    Ok(())
}

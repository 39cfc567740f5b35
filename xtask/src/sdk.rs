//! `cargo xtask sdk`: an SDK generated from openapi.yaml drives every endpoint.

use std::process::Command;

use anyhow::Context;

use crate::util::{self, VmcpProcess};

pub fn run() -> anyhow::Result<()> {
    let venv = util::python_venv("venv-sdk", &["openapi-python-client==0.29.1"])?;
    let work = tempfile_dir()?;
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        "post_hooks: []\nproject_name_override: vmcp-client\npackage_name_override: vmcp_client\n",
    )?;
    println!("generating the Python client from openapi.yaml (warnings are errors)");
    util::run(
        Command::new(venv.join("bin/openapi-python-client"))
            .current_dir(&work)
            .args(["generate", "--fail-on-warning", "--path"])
            .arg(util::root().join("openapi.yaml"))
            .arg("--config")
            .arg(&config),
    )
    .context("openapi-python-client rejected openapi.yaml")?;

    let binary = util::build_vmcp(false)?;
    util::run(util::cargo().args(["build", "--quiet", "-p", "vmcp-fixture"]))?;
    let fixture = util::target_dir().join("debug/vmcp-fixture");
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;
    let server = VmcpProcess::start(&binary, &data, &[])?;
    util::run(
        Command::new(venv.join("bin/python"))
            .env("PYTHONPATH", work.join("vmcp-client"))
            .arg(util::root().join("xtask/python/drive_sdk.py"))
            .arg(&server.base)
            .arg(&fixture),
    )?;
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = util::target_dir()
        .join("xtask")
        .join(format!("sdk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

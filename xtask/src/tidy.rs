//! Checks of the tree that `cargo test` runs: the layering of the crates, and docs that stay true.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::root;

/// The normal (non-dev) dependencies of a crate, by name.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let path = root().join("crates").join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest: toml::Table = text.parse().unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

fn crates() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Each crate, and what it must never depend on.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "vmcp-domain",
        &[
            "diesel",
            "actix-web",
            "rmcp",
            "tokio",
            "reqwest",
            "vmcp-store",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
    (
        "vmcp-store",
        &[
            "actix-web",
            "rmcp",
            "tokio",
            "reqwest",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
    (
        "vmcp-gateway",
        &["actix-web", "diesel", "vmcp-http", "utoipa"],
    ),
    ("vmcp-http", &["diesel", "vmcp-store"]),
    (
        "vmcp-transport",
        &[
            "diesel",
            "actix-web",
            "vmcp-store",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
    (
        "vmcp-substitution",
        &[
            "diesel",
            "actix-web",
            "tokio",
            "rmcp",
            "reqwest",
            "vmcp-domain",
            "vmcp-store",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
    // The benchmarks drive vMCP from outside, over HTTP, like its users.
    ("vmcp-bench", &["actix-web", "vmcp-http"]),
    (
        "vmcp-fixture",
        &[
            "diesel",
            "actix-web",
            "vmcp-store",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
];

#[test]
fn layering_holds() {
    for (krate, forbidden) in FORBIDDEN {
        let deps = dependencies(krate);
        for f in *forbidden {
            assert!(
                !deps.contains(*f),
                "{krate} must not depend on {f} (see ARCHITECTURE.md)"
            );
        }
    }
    // Every crate has a rule.
    for c in crates() {
        assert!(
            c == "vmcp" || FORBIDDEN.iter().any(|(k, _)| *k == c),
            "crates/{c} has no layering rule in xtask/src/tidy.rs"
        );
    }
}

#[test]
fn architecture_md_maps_every_crate() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for c in crates() {
        assert!(
            text.contains(&format!("`crates/{c}`")),
            "ARCHITECTURE.md does not describe crates/{c}"
        );
    }
}

#[test]
fn readme_shows_how_to_run_and_test() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(text.contains("cargo run --release"));
    assert!(text.contains("cargo test --workspace"));
    for doc in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = doc.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            assert!(
                text.contains(&format!("docs/{name}")),
                "README.md does not link docs/{name}"
            );
        }
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo test --workspace"));
    assert!(ci.contains("VMCP_TEST_DATABASE_URL"));
    assert!(Path::new(&root().join(".ci/run")).exists());
}

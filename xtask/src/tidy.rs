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
    // The HTTP layer reaches upstreams only through the gateway.
    (
        "vmcp-http",
        &["diesel", "vmcp-store", "vmcp-transport", "reqwest"],
    ),
    // Tool search is pure: JSON in, ranks out.
    (
        "vmcp-search",
        &[
            "diesel",
            "actix-web",
            "tokio",
            "rmcp",
            "reqwest",
            "vmcp-domain",
            "vmcp-store",
            "vmcp-transport",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
    // The legacy SSE server half knows rmcp and bytes, nothing of vMCP or of any HTTP stack.
    (
        "vmcp-sse-server",
        &[
            "diesel",
            "actix-web",
            "hyper",
            "reqwest",
            "vmcp-domain",
            "vmcp-store",
            "vmcp-transport",
            "vmcp-gateway",
            "vmcp-http",
        ],
    ),
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

/// The `.rs` files under `dir`, with their text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let shown = path
                .strip_prefix(root())
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((shown, text));
        }
    }
    out
}

/// Every request an operation sends upstream leaves from the pipeline (`ops.rs::send`), where
/// the server's limit, its timeout, cancellation and the log apply; nothing else in the gateway
/// or the HTTP layer sends one (the supervisor's catalog listing and ping are not operations).
#[test]
fn every_upstream_request_of_an_operation_goes_through_the_pipeline() {
    let sending = [
        "send_cancellable_request",
        "read_resource_once",
        "get_prompt_once",
        ".call_tool(params",
        "peer.call_tool(",
        "peer.get_prompt(",
        "peer.read_resource(",
        "peer.complete(",
        "peer.subscribe(",
        "peer.unsubscribe(",
        "().send_request(",
    ];
    for dir in ["crates/vmcp-gateway/src", "crates/vmcp-http/src"] {
        for (path, text) in sources(&root().join(dir)) {
            if path.ends_with("vmcp-gateway/src/ops.rs") {
                continue;
            }
            for s in sending {
                assert!(
                    !text.contains(s),
                    "{path} sends an upstream request ({s}) outside the pipeline (ops.rs)"
                );
            }
        }
    }
}

/// Errors are classified by their type (`ErrorKind`, `What`), never by their words.
#[test]
fn no_error_is_classified_by_its_text() {
    let matching = [
        ".error.starts_with(",
        ".error.contains(",
        ".error.ends_with(",
        ".detail.starts_with(",
        ".detail.contains(",
        ".message.contains(",
        ".message.starts_with(",
        "to_lowercase().contains(",
        "lower.contains(",
    ];
    for dir in ["crates/vmcp-gateway/src", "crates/vmcp-http/src"] {
        for (path, text) in sources(&root().join(dir)) {
            for s in matching {
                assert!(
                    !text.contains(s),
                    "{path} classifies an error by its text ({s}); use ErrorKind / What"
                );
            }
        }
    }
}

/// The `VMCP_*` variables of every flag of the binary (`env = "VMCP_..."`).
fn binary_variables() -> BTreeSet<String> {
    let main = std::fs::read_to_string(root().join("crates/vmcp/src/main.rs")).unwrap();
    main.split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(String::from)
        .collect()
}

/// Every `VMCP_*` name a word of `text` mentions.
fn mentioned_variables(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("VMCP_") && w.len() > 5)
        .map(String::from)
        .collect()
}

/// The deployment files (docs/deployment.md, deploy/) and docs/configuration.md set only
/// variables the binary reads: a renamed flag cannot leave a manifest setting nothing.
#[test]
fn deployment_files_set_only_variables_the_binary_reads() {
    let known = binary_variables();
    assert!(known.contains("VMCP_SESSION_KEY"), "{known:?}");
    let mut files = vec![
        root().join("docs/deployment.md"),
        root().join("docs/configuration.md"),
    ];
    for dir in ["deploy", "deploy/kubernetes"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    // Variables of the tests and tools, not of the binary.
    let not_flags = [
        "VMCP_TEST_DATABASE_URL",
        "VMCP_BENCH_POSTGRES",
        "VMCP_TOOLS_DIR",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for var in mentioned_variables(&text) {
            assert!(
                known.contains(&var) || not_flags.contains(&var.as_str()),
                "{} sets {var}, which the binary does not read (its variables: {known:?})",
                file.display()
            );
        }
    }
}

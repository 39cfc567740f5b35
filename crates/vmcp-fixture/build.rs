// Fingerprints the fixture's sources, so that tests can tell a stale `vmcp-fixture` binary
// (built from other sources than the harness they link) and say what to rebuild.
use std::hash::{Hash, Hasher};

fn main() {
    let mut files: Vec<_> = std::fs::read_dir("src")
        .expect("src")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        std::fs::read(f).expect("source").hash(&mut hasher);
    }
    println!(
        "cargo:rustc-env=FIXTURE_FINGERPRINT={:016x}",
        hasher.finish()
    );
}

//! A test MCP server for vMCP (the `vmcp-fixture` binary), and a harness that other crates'
//! tests use to start it and to check that no process is left behind.

pub mod harness;
pub mod server;

/// A fingerprint of the fixture's sources; the binary prints it for `--fingerprint`.
pub const FINGERPRINT: &str = env!("FIXTURE_FINGERPRINT");

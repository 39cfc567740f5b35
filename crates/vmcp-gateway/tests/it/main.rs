//! The gateway against real MCP servers: the fixture over stdio, legacy SSE and streamable HTTP.

mod faults;
mod oplog;
mod support;
mod transports;

/// A server id as the HTTP layer parses it from a path.
pub fn sid(id: impl AsRef<str>) -> vmcp_domain::ids::ServerId {
    vmcp_domain::ids::ServerId::parse(id.as_ref()).expect("a server id")
}

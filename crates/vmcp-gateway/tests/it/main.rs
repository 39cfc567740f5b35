//! The gateway against real MCP servers: the fixture over stdio, legacy SSE and streamable HTTP.

mod faults;
mod oplog;
mod support;
mod transports;

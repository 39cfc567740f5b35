//! Domain types of vMCP: what an MCP server registration and a virtual MCP server (vMCP) are, the
//! rules that make them valid, and the documents they are exchanged as (API bodies, exports).
//!
//! Architecture invariant: this crate knows nothing of storage, HTTP or the MCP protocol. It has
//! no IO; everything here is plain data and pure functions.

pub mod auth;
pub mod error;
pub mod ids;
pub mod logs;
pub mod objects;
pub mod ops;
pub mod replica;
pub mod secrets;
pub mod server;
pub mod text;
pub mod time;
pub mod vmcp;

pub use auth::{AuthType, OAuthGrant, UpstreamAuth, VmcpAuth};
pub use error::ValidationError;
pub use logs::{LogEntry, Pagination, Stats, StatsFilter, StatsQuery, StatsResponse};
pub use ops::{
    HiddenItem, PromptGetRequest, PromptList, PromptResult, ResourceContents, ResourceList,
    ResourceReadRequest, ToolCallRequest, ToolList, ToolResult, ToolSearchResult,
    UnavailableServer,
};
pub use server::{
    Capabilities, ConnectResponse, DisconnectResponse, McpServer, McpServerInput, ProtocolMode,
    ServerConfig, ServerInfo, ServerLogLine, ServerLogs, ServerStatus, TransportType,
};
pub use time::Timestamp;
pub use vmcp::{
    ImportServerEntry, Naming, ToolCustomization, ToolSearch, Vmcp, VmcpExport, VmcpImport,
    VmcpInput, VmcpServerEntry, VmcpServerInput,
};

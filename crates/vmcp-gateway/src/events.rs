//! What happens in the gateway, for whoever listens: aggregation caches, MCP sessions, the
//! WebSocket.

use vmcp_domain::ServerStatus;

/// The lists a server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Resources,
    Prompts,
}

impl ListKind {
    pub const ALL: [ListKind; 3] = [ListKind::Tools, ListKind::Resources, ListKind::Prompts];

    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Resources => "resources",
            ListKind::Prompts => "prompts",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    /// A server's connection state changed.
    ServerStatus {
        server_id: String,
        status: ServerStatus,
        last_error: Option<String>,
        /// The replica that reports it; `None`: this one.
        replica: Option<String>,
    },
    /// A server's catalog (tools, resources, templates or prompts) changed.
    CatalogChanged { server_id: String },
    /// A subscribed resource changed on a server.
    ResourceUpdated { server_id: String, uri: String },
    /// A server sent a log message (`notifications/message`).
    Log {
        server_id: String,
        #[allow(deprecated)]
        level: rmcp::model::LoggingLevel,
        logger: Option<String>,
        data: serde_json::Value,
    },
    /// A vMCP was created, updated or deleted.
    VmcpChanged { vmcp_id: String },
    /// An operation on a vMCP finished (what the operation log records).
    Operation(Box<vmcp_domain::LogEntry>),
}

//! MCP server registrations: how to reach a server (transport and config) and what we know of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ValidationError, time::Timestamp};

/// Longest accepted per-request timeout, in seconds (a day).
pub const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;

/// How vMCP talks to an MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportType {
    /// A local command speaking JSON-RPC over its stdin and stdout.
    Stdio,
    /// The legacy HTTP+SSE transport (protocol 2024-11-05): a GET event stream plus POSTed messages.
    Sse,
    /// The streamable HTTP transport (protocol 2025-03-26 and later). `http` is accepted as an alias.
    #[serde(alias = "http")]
    StreamableHttp,
}

impl TransportType {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportType::Stdio => "stdio",
            TransportType::Sse => "sse",
            TransportType::StreamableHttp => "streamable_http",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdio" => Some(Self::Stdio),
            "sse" => Some(Self::Sse),
            "streamable_http" | "http" => Some(Self::StreamableHttp),
            _ => None,
        }
    }
}

/// How a connection to the server starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolMode {
    /// The `initialize` handshake (protocol 2024-11-05 to 2025-11-25): what most servers speak.
    #[default]
    Initialize,
    /// `server/discover` and per-request metadata (the stateless protocol 2026-07-28).
    Discover,
    /// Try `server/discover`, and fall back to `initialize` when the server is older.
    Auto,
}

/// Headers that the transports set themselves; a config may not override them.
pub const RESERVED_HEADERS: &[&str] =
    &["accept", "content-type", "mcp-session-id", "last-event-id"];

/// How to reach the server. Which fields apply depends on `transport_type`:
/// `stdio` takes `command` (required), `args`, `env` and `cwd`; `sse` and `streamable_http` take
/// `url` (required) and `headers`. Every transport takes `timeout_seconds`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/path"]}))]
pub struct ServerConfig {
    /// stdio: the program to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// stdio: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// stdio: environment variables added to the gateway's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// stdio: the working directory (default: the gateway's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// sse / streamable_http: the endpoint (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// sse / streamable_http: headers sent with every request (for example `Authorization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Longest wait for one request to this server, in seconds (default 60). The connection
    /// handshake has the same limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0, maximum = 86400)]
    pub timeout_seconds: Option<f64>,
    /// How the connection starts (default `initialize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolMode>,
    /// Most requests (tools/call, resources/read, prompts/get) in flight to this server at once
    /// (default 64, at most 10000); more wait their turn, up to `timeout_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10000)]
    pub max_concurrent_calls: Option<u32>,
    /// Names of `env` variables and `headers` (any case) whose values are secret although their
    /// names do not say so (names with `key`, `token`, `secret`, `password`, ... and values such
    /// as `Bearer ...` or `ghp_...` are secret anyway): masked in answers and scrubbed from logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["SERVICE_ID"]))]
    pub secret_keys: Vec<String>,
    /// streamable_http: OAuth to this server (see `UpstreamAuth` and docs/oauth.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::UpstreamAuth>,
}

/// In-flight requests to one server when its config sets no `max_concurrent_calls`.
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 64;
const MAX_CONCURRENT_CALLS: u32 = 10_000;

/// The request timeout when a server's config sets none.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 60.0;

impl ServerConfig {
    /// The per-request timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS))
    }

    /// How many requests may be in flight to the server at once.
    pub fn max_concurrent_calls(&self) -> usize {
        self.max_concurrent_calls
            .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS) as usize
    }
}

impl ServerConfig {
    /// Checks the config against the rules of its transport.
    pub fn validate(&self, transport: TransportType) -> Result<(), ValidationError> {
        let misplaced = |field: &str| {
            ValidationError::new(
                format!("config.{field}"),
                format!(
                    "is not used by transport_type \"{}\"; remove it",
                    transport.as_str()
                ),
            )
        };
        match transport {
            TransportType::Stdio => {
                match &self.command {
                    Some(c) if !c.trim().is_empty() => {
                        if c.contains('\0') {
                            return Err(ValidationError::new(
                                "config.command",
                                "must not contain NUL characters",
                            ));
                        }
                    }
                    _ => {
                        return Err(ValidationError::new(
                            "config.command",
                            "is required for transport_type \"stdio\" (the program to start, e.g. \"npx\")",
                        ));
                    }
                }
                if let Some(i) = self.args.iter().position(|a| a.contains('\0')) {
                    return Err(ValidationError::new(
                        format!("config.args[{i}]"),
                        "must not contain NUL characters",
                    ));
                }
                for (k, v) in &self.env {
                    if k.is_empty() || k.contains('=') || k.contains('\0') {
                        return Err(ValidationError::new(
                            "config.env",
                            format!(
                                "variable name {k:?} is invalid: it must be non-empty, without '=' or NUL"
                            ),
                        ));
                    }
                    if v.contains('\0') {
                        return Err(ValidationError::new(
                            format!("config.env.{k}"),
                            "must not contain NUL characters",
                        ));
                    }
                }
                if let Some(cwd) = &self.cwd
                    && (cwd.trim().is_empty() || cwd.contains('\0'))
                {
                    return Err(ValidationError::new(
                        "config.cwd",
                        "must be a non-empty directory path",
                    ));
                }
                if self.url.is_some() {
                    return Err(misplaced("url"));
                }
                if !self.headers.is_empty() {
                    return Err(misplaced("headers"));
                }
            }
            TransportType::Sse | TransportType::StreamableHttp => {
                let Some(raw) = &self.url else {
                    return Err(ValidationError::new(
                        "config.url",
                        format!(
                            "is required for transport_type \"{}\" (e.g. \"http://127.0.0.1:3001/{}\")",
                            transport.as_str(),
                            if transport == TransportType::Sse {
                                "sse"
                            } else {
                                "mcp"
                            }
                        ),
                    ));
                };
                match url::Url::parse(raw) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                    Ok(u) => {
                        return Err(ValidationError::new(
                            "config.url",
                            format!(
                                "must be an http:// or https:// URL with a host, not {:?}",
                                u.scheme()
                            ),
                        ));
                    }
                    Err(e) => {
                        return Err(ValidationError::new(
                            "config.url",
                            format!("is not a valid URL ({e}): {raw:?}"),
                        ));
                    }
                }
                for (k, v) in &self.headers {
                    if k.is_empty() || !k.bytes().all(is_header_name_byte) {
                        return Err(ValidationError::new(
                            "config.headers",
                            format!("header name {k:?} is invalid: use letters, digits and -"),
                        ));
                    }
                    if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                        return Err(ValidationError::new(
                            format!("config.headers.{k}"),
                            "is set by the transport itself and cannot be configured",
                        ));
                    }
                    if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                        return Err(ValidationError::new(
                            format!("config.headers.{k}"),
                            "must not contain control characters or line breaks",
                        ));
                    }
                }
                if self.command.is_some() {
                    return Err(misplaced("command"));
                }
                if !self.args.is_empty() {
                    return Err(misplaced("args"));
                }
                if !self.env.is_empty() {
                    return Err(misplaced("env"));
                }
                if self.cwd.is_some() {
                    return Err(misplaced("cwd"));
                }
            }
        }
        validate_secret_keys(&self.secret_keys, "config.secret_keys")?;
        if let Some(auth) = &self.auth {
            if transport != TransportType::StreamableHttp {
                return Err(ValidationError::new(
                    "config.auth",
                    "OAuth is supported for transport_type \"streamable_http\" only (the MCP \
                     authorization specification covers HTTP transports; stdio servers take \
                     credentials from env)",
                ));
            }
            auth.validate("config.auth")?;
        }
        if let Some(t) = self.timeout_seconds
            && !(t.is_finite() && t > 0.0 && t <= MAX_TIMEOUT_SECONDS)
        {
            return Err(ValidationError::new(
                "config.timeout_seconds",
                format!("must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS}"),
            ));
        }
        if let Some(n) = self.max_concurrent_calls
            && !(1..=MAX_CONCURRENT_CALLS).contains(&n)
        {
            return Err(ValidationError::new(
                "config.max_concurrent_calls",
                format!("must be between 1 and {MAX_CONCURRENT_CALLS}"),
            ));
        }
        Ok(())
    }
}

/// Most names in a `secret_keys` list.
pub const MAX_SECRET_KEYS: usize = 100;

/// Checks a `secret_keys` list: at most 100 names, each 1 to 128 characters without control
/// characters.
pub fn validate_secret_keys(keys: &[String], field: &str) -> Result<(), ValidationError> {
    if keys.len() > MAX_SECRET_KEYS {
        return Err(ValidationError::new(
            field,
            format!("lists {} names; at most {MAX_SECRET_KEYS}", keys.len()),
        ));
    }
    for (i, k) in keys.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 || k.chars().any(char::is_control) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                "must be a name of 1 to 128 characters without control characters",
            ));
        }
    }
    Ok(())
}

fn is_header_name_byte(b: u8) -> bool {
    // RFC 9110 token characters.
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `name` is a valid MCP server name: 1 to 64 of `[A-Za-z0-9_-]`. No dots, so that
/// `server.tool` splits unambiguously.
pub fn validate_server_name(name: &str) -> Result<(), ValidationError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ValidationError::new(
            "name",
            format!(
                "{name:?} is not a valid MCP server name: use 1 to 64 letters, digits, '_' or '-' (no dots or spaces)"
            ),
        ));
    }
    Ok(())
}

/// The body of `POST /api/mcp-servers` and `PUT /api/mcp-servers/{server_id}`. A PUT replaces the
/// whole definition: an omitted `description` becomes empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "github-mcp",
    "description": "GitHub integration",
    "transport_type": "stdio",
    "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]}
}))]
pub struct McpServerInput {
    /// Unique name, 1 to 64 of `[A-Za-z0-9_-]`; tools are exposed as `{name}.{tool}`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    /// At most 2000 characters; tabs and line breaks, no other control characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    pub transport_type: TransportType,
    pub config: ServerConfig,
}

impl McpServerInput {
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_server_name(&self.name)?;
        validate_description(self.description.as_deref())?;
        self.config.validate(self.transport_type)
    }
}

pub(crate) fn validate_description(d: Option<&str>) -> Result<(), ValidationError> {
    let Some(d) = d else { return Ok(()) };
    if d.chars().count() > 2000 {
        return Err(ValidationError::new(
            "description",
            "is too long: at most 2000 characters",
        ));
    }
    crate::text::check_text("description", d)
}

/// Connection state of an MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    Connected,
    Connecting,
    #[default]
    Disconnected,
    Error,
    /// The server demands OAuth and a person must sign in: open `authorization_url`.
    AuthRequired,
}

/// What an MCP server says it is (its `serverInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What a connected server offers, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    /// Tool names.
    pub tools: Vec<String>,
    /// Resource URIs.
    pub resources: Vec<String>,
    /// Resource URI templates.
    pub resource_templates: Vec<String>,
    /// Prompt names.
    pub prompts: Vec<String>,
}

/// The answer to `POST /api/mcp-servers/{server_id}/connect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "status": "connected",
    "capabilities": {"tools": ["list_files", "read_file", "write_file"], "resources": ["file:///tmp/notes.txt"],
                     "resource_templates": [], "prompts": []},
    "protocol_version": "2025-11-25",
    "server_info": {"name": "secure-filesystem-server", "version": "0.2.0"},
    "last_error": null
}))]
pub struct ConnectResponse {
    pub status: ServerStatus,
    pub capabilities: Capabilities,
    pub protocol_version: Option<String>,
    pub server_info: Option<ServerInfo>,
    pub last_error: Option<String>,
    /// With status `auth_required`: where a person signs in (see docs/oauth.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
}

/// The answer to `POST /api/mcp-servers/{server_id}/disconnect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "disconnected"}))]
pub struct DisconnectResponse {
    pub status: ServerStatus,
}

/// A line a server wrote to stderr (or a transport diagnostic), as `GET .../logs` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerLogLine {
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub text: String,
}

/// The answer to `GET /api/mcp-servers/{server_id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerLogs {
    pub server_id: String,
    /// Oldest first; at most the last 500 lines.
    pub lines: Vec<ServerLogLine>,
}

/// A registered MCP server, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "server_id": "server_3f2a9c0d1e4b5a6f",
    "name": "filesystem",
    "description": "Local filesystem access",
    "transport_type": "stdio",
    "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/path"]},
    "status": "connected",
    "last_connected": "2024-01-15T10:30:00.000Z",
    "last_error": null,
    "protocol_version": "2025-11-25",
    "server_info": {"name": "secure-filesystem-server", "version": "0.2.0"},
    "created_at": "2024-01-15T10:00:00.000Z",
    "updated_at": "2024-01-15T10:00:00.000Z"
}))]
pub struct McpServer {
    pub server_id: String,
    pub name: String,
    pub description: String,
    pub transport_type: TransportType,
    pub config: ServerConfig,
    pub status: ServerStatus,
    /// When the last connection succeeded.
    #[serde(with = "crate::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_connected: Option<Timestamp>,
    /// What went wrong last, when `status` is `error`.
    pub last_error: Option<String>,
    /// The MCP protocol version negotiated with the server (while connected).
    pub protocol_version: Option<String>,
    /// What the server says it is (while connected).
    pub server_info: Option<ServerInfo>,
    /// While `status` is `auth_required`: where a person signs in to let vMCP use the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: serde_json::Value) -> McpServerInput {
        serde_json::from_value(v).unwrap()
    }

    fn check_err(v: serde_json::Value, expected: &str) {
        let err = input(v).validate().unwrap_err();
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn accepts_the_reference_examples() {
        let i = input(json!({
            "name": "github-mcp", "description": "GitHub integration", "transport_type": "stdio",
            "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]}
        }));
        i.validate().unwrap();
        let i = input(json!({
            "name": "remote", "transport_type": "http",
            "config": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}}
        }));
        assert_eq!(i.transport_type, TransportType::StreamableHttp);
        i.validate().unwrap();
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "has.dot", "has space", &"x".repeat(65)] {
            let e = validate_server_name(bad).unwrap_err();
            assert_eq!(e.field, "name");
        }
        validate_server_name(&"x".repeat(64)).unwrap();
        validate_server_name("a_B-9").unwrap();
    }

    #[test]
    fn rejects_configs_that_do_not_fit_the_transport() {
        check_err(
            json!({"name": "a", "transport_type": "stdio", "config": {}}),
            "config.command: is required for transport_type \"stdio\" (the program to start, e.g. \"npx\")",
        );
        check_err(
            json!({"name": "a", "transport_type": "stdio", "config": {"command": "x", "url": "http://h"}}),
            "config.url: is not used by transport_type \"stdio\"; remove it",
        );
        check_err(
            json!({"name": "a", "transport_type": "sse", "config": {"url": "ftp://h/x"}}),
            "config.url: must be an http:// or https:// URL with a host, not \"ftp\"",
        );
        check_err(
            json!({"name": "a", "transport_type": "streamable_http", "config": {"url": "not a url"}}),
            "config.url: is not a valid URL (relative URL without a base): \"not a url\"",
        );
        check_err(
            json!({"name": "a", "transport_type": "sse", "config": {"url": "http://h/sse", "headers": {"X": "a\r\nb"}}}),
            "config.headers.X: must not contain control characters or line breaks",
        );
        check_err(
            json!({"name": "a", "transport_type": "stdio", "config": {"command": "x", "timeout_seconds": 0}}),
            "config.timeout_seconds: must be a number of seconds above 0 and at most 86400",
        );
        check_err(
            json!({"name": "a", "transport_type": "stdio", "config": {"command": "x", "max_concurrent_calls": 0}}),
            "config.max_concurrent_calls: must be between 1 and 10000",
        );
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let err = serde_json::from_value::<McpServerInput>(json!({
            "name": "a", "transport_type": "stdio", "config": {"comand": "x"}
        }))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("unknown field `comand`"),
            "{err}"
        );
    }

    #[test]
    fn config_serializes_only_what_is_set() {
        let c = ServerConfig {
            command: Some("npx".into()),
            args: vec!["-y".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"command": "npx", "args": ["-y"]})
        );
    }
}

//! Bodies of the vMCP protocol operations of the REST API: list and call tools, list and read
//! resources, list and get prompts. MCP objects (tools, results, ...) pass through as JSON,
//! exactly as the upstream server sent them, apart from the exposed names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ServerStatus;

/// The body of `POST /api/vmcps/{vmcp_id}/tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "filesystem.read_file", "arguments": {"path": "/path/to/file.txt"}}))]
pub struct ToolCallRequest {
    /// The tool's name as the vMCP lists it (for example `filesystem.read_file`).
    pub name: String,
    /// The tool's arguments. Omitted: `{}`. Strings may hold substitution patterns
    /// (`@config:key`, `@param:name`, `@tool(..)`, `@resource(..)`, `@prompt(..)`; `@@` is `@`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Map<String, Value>>,
    /// Values for `@param:` substitutions of this call, overriding the vMCP's `active_config`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
}

/// The body of `POST /api/vmcps/{vmcp_id}/resources/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"uri": "file:///path/to/file.txt"}))]
pub struct ResourceReadRequest {
    /// The resource's URI, as a server of the vMCP lists it or as one of its templates matches.
    pub uri: String,
}

/// The body of `POST /api/vmcps/{vmcp_id}/prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "code_review", "arguments": {"language": "python"}}))]
pub struct PromptGetRequest {
    /// The prompt's name as the vMCP lists it.
    pub name: String,
    /// The prompt's arguments, after variable substitution. MCP prompt arguments are strings:
    /// numbers and booleans are converted to their text; other values are a 400.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Map<String, Value>>,
    /// Values for `@param:` substitutions of this call, overriding the vMCP's `active_config`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
}

/// A member server whose items are missing from a list, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnavailableServer {
    pub server_id: String,
    pub name: String,
    pub status: ServerStatus,
    /// What went wrong, as the server's `last_error` says it.
    pub error: String,
}

/// An item hidden by another of the same exposed name (no-prefix naming), or a resource URI
/// that a server of better priority also lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HiddenItem {
    /// The exposed name (or the URI, for resources).
    pub name: String,
    /// The server whose item is hidden.
    pub server: String,
    /// The server whose item is listed instead (better priority).
    pub shadowed_by: String,
}

/// `GET /api/vmcps/{vmcp_id}/tools`: the merged tools, in priority order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "tools": [{"name": "filesystem.read_file", "description": "Read a file from the filesystem",
               "inputSchema": {"type": "object", "properties": {"path": {"type": "string", "description": "File path"}}, "required": ["path"]}}],
    "unavailable": [], "hidden": []
}))]
pub struct ToolList {
    /// MCP tool definitions (`name`, `title`, `description`, `inputSchema`, `outputSchema`,
    /// `annotations`, `icons`, `_meta`), unchanged apart from the exposed name.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    /// Member servers that could not be listed (down, failing, still connecting).
    pub unavailable: Vec<UnavailableServer>,
    /// Tools hidden by a same-named tool of a server with better priority.
    pub hidden: Vec<HiddenItem>,
}

/// `GET /api/vmcps/{vmcp_id}/tools/search`: the tools that best match a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "query": "take a screenshot of the page",
    "tools": [{"name": "browser.take_screenshot", "description": "Capture the page as PNG",
               "inputSchema": {"type": "object", "properties": {"fullPage": {"type": "boolean"}}}}],
    "of": 48
}))]
pub struct ToolSearchResult {
    /// The query, as searched.
    pub query: String,
    /// The best matches, best first: MCP tool definitions as the tools list gives them.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    /// How many tools the vMCP has (what the search chose from).
    pub of: usize,
}

/// `GET /api/vmcps/{vmcp_id}/resources`: the merged resources and resource templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "resources": [{"uri": "file:///tmp/notes.txt", "name": "notes.txt", "mimeType": "text/plain"}],
    "resourceTemplates": [{"uriTemplate": "file:///{path}", "name": "file"}],
    "unavailable": [], "hidden": []
}))]
pub struct ResourceList {
    /// MCP resources, addressed by their own URIs (never renamed).
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<Value>,
    /// MCP resource templates (RFC 6570 `uriTemplate`).
    #[serde(rename = "resourceTemplates")]
    #[schema(value_type = Vec<Object>)]
    pub resource_templates: Vec<Value>,
    pub unavailable: Vec<UnavailableServer>,
    /// URIs listed by several servers: the server with better priority serves them.
    pub hidden: Vec<HiddenItem>,
}

/// `GET /api/vmcps/{vmcp_id}/prompts`: the merged prompts, in priority order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "prompts": [{"name": "github.code_review", "description": "Review a change",
                 "arguments": [{"name": "language", "required": true}]}],
    "unavailable": [], "hidden": []
}))]
pub struct PromptList {
    #[schema(value_type = Vec<Object>)]
    pub prompts: Vec<Value>,
    pub unavailable: Vec<UnavailableServer>,
    pub hidden: Vec<HiddenItem>,
}

/// The result of `tools/call`, exactly as the server answered (the MCP `CallToolResult`). A tool
/// that failed answers `isError: true` with a 200: the failure is the tool's, not the call's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"content": [{"type": "text", "text": "File contents here..."}]}))]
pub struct ToolResult {
    /// Content blocks: `text`, `image`, `audio`, `resource_link`, `resource`.
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    #[serde(
        rename = "structuredContent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub structured_content: Option<Value>,
    #[serde(rename = "isError", default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Map<String, Value>>,
}

/// The result of `resources/read` (the MCP `ReadResourceResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"contents": [{"uri": "file:///path/to/file.txt", "mimeType": "text/plain", "text": "..."}]}))]
pub struct ResourceContents {
    /// Each with `uri`, `mimeType` and either `text` or base64 `blob`.
    #[schema(value_type = Vec<Object>)]
    pub contents: Vec<Value>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Map<String, Value>>,
}

/// The result of `prompts/get` (the MCP `GetPromptResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"description": "Review code", "messages": [{"role": "user", "content": {"type": "text", "text": "Review this python code"}}]}))]
pub struct PromptResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Each with `role` and one content block.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Map<String, Value>>,
}

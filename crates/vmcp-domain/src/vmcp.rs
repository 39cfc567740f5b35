//! Virtual MCP servers: a named group of MCP servers with priorities and an `active_config`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{
    McpServerInput, ServerConfig, TransportType, ValidationError, server::validate_description,
    time::Timestamp,
};

/// Longest vMCP name, in characters.
pub const MAX_VMCP_NAME_CHARS: usize = 100;

/// Checks a vMCP name: 1 to 100 characters, no surrounding whitespace, no control,
/// bidirectional or invisible characters (`text::check_name`), no `/` (names appear in URLs), and
/// not shaped like a generated vMCP id (`vmcp_` + 16 hex digits),
/// so that a client can address a vMCP by id or by name without ambiguity.
pub fn validate_vmcp_name(name: &str) -> Result<(), ValidationError> {
    let problem = if name.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if name.chars().count() > MAX_VMCP_NAME_CHARS {
        Some(format!(
            "is too long: at most {MAX_VMCP_NAME_CHARS} characters"
        ))
    } else if name.trim() != name {
        Some("must not start or end with whitespace".to_string())
    } else if name.contains('/') {
        Some("must not contain '/'".to_string())
    } else if let Err(e) = crate::text::check_name("name", name) {
        Some(e.message)
    } else if name
        .strip_prefix("vmcp_")
        .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Some("must not have the shape of a vMCP id (vmcp_ followed by 16 hex digits)".to_string())
    } else {
        None
    };
    match problem {
        Some(p) => Err(ValidationError::new("name", p)),
        None => Ok(()),
    }
}

/// How a vMCP names the tools and prompts of its servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"prefix": true, "separator": "."}))]
pub struct Naming {
    /// Expose tools and prompts as `{server}{separator}{name}` (the default). Without a prefix,
    /// a name that several servers offer goes to the server with the better priority, and the
    /// others are reported as hidden in list responses.
    #[serde(default = "yes")]
    pub prefix: bool,
    /// Between the server's name and the tool's: 1 to 3 of `.`, `_`, `-` (default `.`; use `_`
    /// or `__` for clients that only accept `^[a-zA-Z0-9_-]{1,64}$`).
    #[serde(default = "dot")]
    #[schema(pattern = "^[._-]{1,3}$")]
    pub separator: String,
}

fn yes() -> bool {
    true
}

fn dot() -> String {
    ".".to_string()
}

impl Default for Naming {
    fn default() -> Self {
        Self {
            prefix: true,
            separator: dot(),
        }
    }
}

impl Naming {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let s = &self.separator;
        if s.is_empty() || s.chars().count() > 3 || !s.chars().all(|c| matches!(c, '.' | '_' | '-'))
        {
            return Err(ValidationError::new(
                "naming.separator",
                format!("{s:?} is not a valid separator: use 1 to 3 of '.', '_', '-'"),
            ));
        }
        Ok(())
    }

    /// The name a client sees for `name` of server `server`.
    pub fn expose(&self, server: &str, name: &str) -> String {
        if self.prefix {
            format!("{server}{}{name}", self.separator)
        } else {
            name.to_string()
        }
    }
}

/// How a vMCP's MCP endpoint offers its tools (`tool_search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolSearch {
    /// Every tool is listed (the default).
    #[default]
    Off,
    /// Only the meta-tools `search_tools` and `call_tool` are listed: an agent searches the
    /// catalog instead of carrying every schema (the tools stay callable by name).
    Search,
    /// Every tool and the two meta-tools, for clients that defer loading tools themselves.
    Both,
}

impl ToolSearch {
    pub fn is_off(&self) -> bool {
        *self == ToolSearch::Off
    }
}

/// How a vMCP changes one tool of one of its servers. Keyed in `tools` by `server.tool` (the
/// server's name and the tool's own name, whatever the naming).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "create_issue", "description": "Open an issue in our repository",
                          "fixed": {"repo": "@config:default_repo"}, "defaults": {"labels": ["triage"]}}))]
pub struct ToolCustomization {
    /// Hide the tool: not listed, not callable through this vMCP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Expose the tool under this name instead (1 to 128 of `[A-Za-z0-9_.-]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,128}$")]
    pub name: Option<String>,
    /// Replace the tool's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arguments always sent, whatever the caller says; removed from the schema clients see.
    /// Values may use substitution (`@config:default_repo`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub fixed: Map<String, Value>,
    /// Arguments sent when the caller omits them (no longer required in the schema). Values may
    /// use substitution.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub defaults: Map<String, Value>,
}

/// Checks the `tools` customizations of a vMCP.
pub fn validate_tools(
    tools: &std::collections::BTreeMap<String, ToolCustomization>,
) -> Result<(), ValidationError> {
    let mut renamed = std::collections::BTreeSet::new();
    for (key, c) in tools {
        let field = format!("tools.{key}");
        let Some((server, tool)) = key.split_once('.') else {
            return Err(ValidationError::new(
                field,
                "keys are server.tool: the server's name, a dot, the tool's own name",
            ));
        };
        if crate::server::validate_server_name(server).is_err()
            || tool.is_empty()
            || tool.chars().any(char::is_control)
        {
            return Err(ValidationError::new(
                field,
                "keys are server.tool: the server's name, a dot, the tool's own name",
            ));
        }
        if let Some(name) = &c.name {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
            if !ok {
                return Err(ValidationError::new(
                    format!("{field}.name"),
                    format!("{name:?} is not a valid tool name: 1 to 128 of [A-Za-z0-9_.-]"),
                ));
            }
            if !renamed.insert(name.clone()) {
                return Err(ValidationError::new(
                    format!("{field}.name"),
                    format!("another tool is already renamed {name:?}"),
                ));
            }
        }
        if let Some(d) = &c.description {
            crate::text::check_text(&format!("{field}.description"), d)?;
        }
        if let Some(k) = c.fixed.keys().find(|k| c.defaults.contains_key(*k)) {
            return Err(ValidationError::new(
                format!("{field}.defaults.{k}"),
                "an argument is either fixed or defaulted, not both",
            ));
        }
    }
    Ok(())
}

/// One member of a vMCP, as written in a create or update body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmcpServerInput {
    #[schema(pattern = "^server_[A-Za-z0-9_-]{1,64}$")]
    pub server_id: String,
    /// Smaller is higher priority. Omitted: the entry's 1-based position in the list.
    #[serde(default)]
    pub priority: Option<i32>,
}

/// The body of `POST /api/vmcps` and `PUT /api/vmcps/{vmcp_id}`. A PUT replaces the whole vMCP:
/// an omitted `description` becomes empty, an omitted `mcp_servers` empty, an omitted
/// `active_config` `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "My vMCP",
    "description": "Description of the vMCP",
    "mcp_servers": [{"server_id": "server_3f2a9c0d1e4b5a6f", "priority": 1}],
    "active_config": {"api_key": "value"}
}))]
pub struct VmcpInput {
    /// 1 to 100 characters (see `docs/api.md` for the characters refused).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// At most 2000 characters; tabs and line breaks, no other control characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[serde(default)]
    pub mcp_servers: Vec<VmcpServerInput>,
    /// Configuration values, read by `@config:` and `@param:` substitutions. Must be an object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub active_config: Option<Map<String, Value>>,
    /// How tools and prompts are named; omitted: `{"prefix": true, "separator": "."}`.
    #[serde(default, deserialize_with = "crate::objects::optional")]
    pub naming: Option<Naming>,
    /// Tool customizations, keyed by `server.tool`.
    #[serde(default, deserialize_with = "crate::objects::optional_map_of")]
    pub tools: Option<std::collections::BTreeMap<String, ToolCustomization>>,
    /// Apply variable substitution to the arguments that MCP clients send (off by default: an
    /// LLM could be talked into sending `@config:api_key` to another server). Fixed and default
    /// arguments are substituted for every caller.
    #[serde(default)]
    pub mcp_substitution: Option<bool>,
    /// How the MCP endpoint offers the tools: `off` (every tool listed, the default), `search`
    /// (only `search_tools` and `call_tool`), `both`. See docs/tool-search.md.
    #[serde(default)]
    pub tool_search: Option<ToolSearch>,
    /// Require OAuth access tokens on the MCP endpoint (see docs/oauth.md); absent: the
    /// server-wide setting (`--oauth-issuer`) or the API tokens.
    #[serde(default)]
    pub auth: Option<crate::VmcpAuth>,
    /// Keys of `active_config` (at any depth, any case) whose values are secret although their
    /// names do not say so: masked in answers and exports, scrubbed from logs.
    #[serde(default)]
    pub secret_keys: Option<Vec<String>>,
}

/// A vMCP member after defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub server_id: String,
    pub priority: i32,
}

impl VmcpInput {
    /// Validates the input and returns its members with their priorities resolved.
    pub fn validate(&self) -> Result<Vec<Membership>, ValidationError> {
        validate_vmcp_name(&self.name)?;
        validate_description(self.description.as_deref())?;
        if let Some(k) = &self.secret_keys {
            crate::server::validate_secret_keys(k, "secret_keys")?;
        }
        if let Some(n) = &self.naming {
            n.validate()?;
        }
        if let Some(t) = &self.tools {
            validate_tools(t)?;
        }
        if let Some(a) = &self.auth {
            a.validate("auth")?;
        }
        let mut members: Vec<Membership> = Vec::with_capacity(self.mcp_servers.len());
        for (i, m) in self.mcp_servers.iter().enumerate() {
            if !crate::ids::is_id(crate::ids::SERVER_PREFIX, &m.server_id) {
                return Err(ValidationError::new(
                    format!("mcp_servers[{i}].server_id"),
                    format!("{:?} is not an MCP server id (server_...)", m.server_id),
                ));
            }
            if members.iter().any(|x| x.server_id == m.server_id) {
                return Err(ValidationError::new(
                    format!("mcp_servers[{i}].server_id"),
                    format!("{} is listed more than once", m.server_id),
                ));
            }
            members.push(Membership {
                server_id: m.server_id.clone(),
                priority: m.priority.unwrap_or(i as i32 + 1),
            });
        }
        Ok(members)
    }
}

/// A member of a vMCP, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmcpServerEntry {
    pub server_id: String,
    pub name: String,
    pub priority: i32,
}

/// A vMCP, as the API returns it. `mcp_servers` is ordered by priority (smaller first), then by
/// the order it was given in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "vmcp_id": "vmcp_0b1c2d3e4f5a6b7c",
    "name": "Development vMCP",
    "description": "For local development tasks",
    "mcp_servers": [{"server_id": "server_3f2a9c0d1e4b5a6f", "name": "filesystem", "priority": 1}],
    "active_config": {},
    "created_at": "2024-01-15T10:30:00.000Z",
    "updated_at": "2024-01-15T10:30:00.000Z"
}))]
pub struct Vmcp {
    pub vmcp_id: String,
    pub name: String,
    pub description: String,
    pub mcp_servers: Vec<VmcpServerEntry>,
    #[schema(value_type = Object)]
    pub active_config: Map<String, Value>,
    pub naming: Naming,
    /// Tool customizations, keyed by `server.tool`.
    pub tools: std::collections::BTreeMap<String, ToolCustomization>,
    /// Whether MCP clients' arguments go through variable substitution.
    pub mcp_substitution: bool,
    /// How the MCP endpoint offers the tools (see docs/tool-search.md).
    #[serde(default)]
    pub tool_search: ToolSearch,
    /// OAuth required on the MCP endpoint (see docs/oauth.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::VmcpAuth>,
    /// Keys of `active_config` (at any depth, any case) whose values are secret although their
    /// names do not say so: masked in answers and exports, scrubbed from logs.
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// Problems found on save that do not stop it, e.g. a customized tool that no server of
    /// the vMCP offers (it is kept, and applies when the tool appears).
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The version of the export document format that this build writes.
pub const EXPORT_VERSION: u32 = 1;

/// A self-contained vMCP document: the vMCP and the full definitions of its servers, by name, so
/// that it can be imported on another installation. `POST /api/vmcps/import` accepts it as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmcpExport {
    /// Format version of this document (currently 1).
    #[schema(minimum = 1, maximum = 1)]
    pub vmcp_export_version: u32,
    pub name: String,
    pub description: String,
    pub mcp_servers: Vec<ExportedServer>,
    #[schema(value_type = Object)]
    pub active_config: Map<String, Value>,
    #[serde(default)]
    pub naming: Naming,
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, ToolCustomization>,
    #[serde(default)]
    pub mcp_substitution: bool,
    #[serde(default, skip_serializing_if = "ToolSearch::is_off")]
    pub tool_search: ToolSearch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::VmcpAuth>,
    /// Keys of `active_config` (at any depth, any case) whose values are secret although their
    /// names do not say so: masked in answers and exports, scrubbed from logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_keys: Vec<String>,
}

/// A server definition inside an export document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportedServer {
    pub name: String,
    pub description: String,
    pub transport_type: TransportType,
    pub config: ServerConfig,
    pub priority: i32,
}

/// The body of `POST /api/vmcps/import`: either an export document, or the plain create shape
/// (members by `server_id`). Each member is one of:
/// - `server_id`: an existing server;
/// - `name` alone: an existing server with that name;
/// - `name`, `transport_type` and `config` (and optionally `description`): a definition. An
///   existing server with the same name and the same transport and config is reused; one with the
///   same name but another definition is a conflict (409); otherwise the server is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Imported vMCP",
    "description": "Imported configuration",
    "mcp_servers": [{
        "name": "filesystem", "priority": 1, "transport_type": "stdio",
        "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]}
    }],
    "active_config": {}
}))]
pub struct VmcpImport {
    /// Format version when the body is an export document; absent for the plain create shape.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1)]
    pub vmcp_export_version: Option<u32>,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[serde(default)]
    pub mcp_servers: Vec<ImportServerEntry>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub active_config: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "crate::objects::optional")]
    pub naming: Option<Naming>,
    #[serde(default, deserialize_with = "crate::objects::optional_map_of")]
    pub tools: Option<std::collections::BTreeMap<String, ToolCustomization>>,
    #[serde(default)]
    pub mcp_substitution: Option<bool>,
    #[serde(default)]
    pub tool_search: Option<ToolSearch>,
    /// Require OAuth access tokens on the MCP endpoint (see docs/oauth.md); absent: the
    /// server-wide setting (`--oauth-issuer`) or the API tokens.
    #[serde(default)]
    pub auth: Option<crate::VmcpAuth>,
    /// Keys of `active_config` (at any depth, any case) whose values are secret although their
    /// names do not say so: masked in answers and exports, scrubbed from logs.
    #[serde(default)]
    pub secret_keys: Option<Vec<String>>,
}

/// One member of an imported vMCP (see `VmcpImport`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportServerEntry {
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub transport_type: Option<TransportType>,
    #[serde(default)]
    pub config: Option<ServerConfig>,
}

/// What an import entry refers to, once validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportMember {
    ById {
        server_id: String,
        priority: i32,
    },
    ByName {
        name: String,
        priority: i32,
    },
    Define {
        server: Box<McpServerInput>,
        priority: i32,
    },
}

impl VmcpImport {
    /// Validates the document and says what each member refers to.
    pub fn validate(&self) -> Result<Vec<ImportMember>, ValidationError> {
        if let Some(v) = self.vmcp_export_version
            && v != EXPORT_VERSION
        {
            return Err(ValidationError::new(
                "vmcp_export_version",
                format!("version {v} is not supported; this build reads version {EXPORT_VERSION}"),
            ));
        }
        validate_vmcp_name(&self.name)?;
        validate_description(self.description.as_deref())?;
        if let Some(k) = &self.secret_keys {
            crate::server::validate_secret_keys(k, "secret_keys")?;
        }
        if let Some(n) = &self.naming {
            n.validate()?;
        }
        if let Some(t) = &self.tools {
            validate_tools(t)?;
        }
        if let Some(a) = &self.auth {
            a.validate("auth")?;
        }
        let mut out = Vec::with_capacity(self.mcp_servers.len());
        for (i, e) in self.mcp_servers.iter().enumerate() {
            let priority = e.priority.unwrap_or(i as i32 + 1);
            let at = |f: &str| format!("mcp_servers[{i}].{f}");
            let member = match (&e.server_id, &e.transport_type, &e.config) {
                (Some(id), None, None) => {
                    if !crate::ids::is_id(crate::ids::SERVER_PREFIX, id) {
                        return Err(ValidationError::new(
                            at("server_id"),
                            format!("{id:?} is not an MCP server id (server_...)"),
                        ));
                    }
                    ImportMember::ById {
                        server_id: id.clone(),
                        priority,
                    }
                }
                (Some(_), _, _) => {
                    return Err(ValidationError::new(
                        at("server_id"),
                        "give either server_id (an existing server) or a definition (name, transport_type, config), not both",
                    ));
                }
                (None, None, None) => match &e.name {
                    Some(name) => {
                        crate::server::validate_server_name(name)
                            .map_err(|err| ValidationError::new(at("name"), err.message))?;
                        ImportMember::ByName {
                            name: name.clone(),
                            priority,
                        }
                    }
                    None => {
                        return Err(ValidationError::new(
                            format!("mcp_servers[{i}]"),
                            "needs server_id, or name (an existing server), or name, transport_type and config (a definition)",
                        ));
                    }
                },
                (None, Some(t), Some(c)) => {
                    let Some(name) = &e.name else {
                        return Err(ValidationError::new(
                            at("name"),
                            "is required with a server definition",
                        ));
                    };
                    let server = McpServerInput {
                        name: name.clone(),
                        description: e.description.clone(),
                        transport_type: *t,
                        config: c.clone(),
                    };
                    server.validate().map_err(|err| {
                        ValidationError::new(format!("mcp_servers[{i}].{}", err.field), err.message)
                    })?;
                    ImportMember::Define {
                        server: Box::new(server),
                        priority,
                    }
                }
                (None, None, Some(_)) => {
                    return Err(ValidationError::new(
                        at("transport_type"),
                        "is required with config",
                    ));
                }
                (None, Some(_), None) => {
                    return Err(ValidationError::new(
                        at("config"),
                        "is required with transport_type",
                    ));
                }
            };
            let name_of = |m: &ImportMember| match m {
                ImportMember::ById { server_id, .. } => format!("id:{server_id}"),
                ImportMember::ByName { name, .. } => format!("name:{name}"),
                ImportMember::Define { server, .. } => format!("name:{}", server.name),
            };
            let key = name_of(&member);
            if out.iter().any(|m| name_of(m) == key) {
                return Err(ValidationError::new(
                    format!("mcp_servers[{i}]"),
                    "this server is listed more than once",
                ));
            }
            out.push(member);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vmcp_names() {
        validate_vmcp_name("Development vMCP").unwrap();
        validate_vmcp_name("vmcp_tools").unwrap();
        for (bad, why) in [
            ("", "must not be empty"),
            ("  ", "must not be empty"),
            (" x", "must not start or end with whitespace"),
            ("a/b", "must not contain '/'"),
            (
                "vmcp_0123456789abcdef",
                "must not have the shape of a vMCP id (vmcp_ followed by 16 hex digits)",
            ),
        ] {
            assert_eq!(validate_vmcp_name(bad).unwrap_err().message, why, "{bad:?}");
        }
    }

    #[test]
    fn priorities_default_to_position_and_duplicates_are_refused() {
        let i: VmcpInput = serde_json::from_value(json!({
            "name": "v", "mcp_servers": [
                {"server_id": "server_a"}, {"server_id": "server_b", "priority": 7}, {"server_id": "server_c"}
            ]
        }))
        .unwrap();
        let m = i.validate().unwrap();
        assert_eq!(
            m.iter().map(|m| m.priority).collect::<Vec<_>>(),
            vec![1, 7, 3]
        );
        let i: VmcpInput = serde_json::from_value(json!({
            "name": "v", "mcp_servers": [{"server_id": "server_a"}, {"server_id": "server_a"}]
        }))
        .unwrap();
        assert_eq!(
            i.validate().unwrap_err().to_string(),
            "mcp_servers[1].server_id: server_a is listed more than once"
        );
    }

    #[test]
    fn import_entries_are_classified() {
        let i: VmcpImport = serde_json::from_value(json!({
            "name": "v", "mcp_servers": [
                {"server_id": "server_a", "name": "ignored"},
                {"name": "existing"},
                {"name": "fs", "transport_type": "stdio", "config": {"command": "npx"}, "priority": 9}
            ]
        }))
        .unwrap();
        let m = i.validate().unwrap();
        assert!(
            matches!(&m[0], ImportMember::ById { server_id, priority: 1 } if server_id == "server_a")
        );
        assert!(matches!(&m[1], ImportMember::ByName { name, priority: 2 } if name == "existing"));
        assert!(
            matches!(&m[2], ImportMember::Define { server, priority: 9 } if server.name == "fs")
        );
    }

    #[test]
    fn import_errors_name_the_entry() {
        let check = |v: serde_json::Value, expected: &str| {
            let i: VmcpImport = serde_json::from_value(v).unwrap();
            assert_eq!(i.validate().unwrap_err().to_string(), expected);
        };
        check(
            json!({"name": "v", "mcp_servers": [{"priority": 1}]}),
            "mcp_servers[0]: needs server_id, or name (an existing server), or name, transport_type and config (a definition)",
        );
        check(
            json!({"name": "v", "mcp_servers": [{"name": "x", "transport_type": "stdio", "config": {}}]}),
            "mcp_servers[0].config.command: is required for transport_type \"stdio\" (the program to start, e.g. \"npx\")",
        );
        check(
            json!({"name": "v", "vmcp_export_version": 2}),
            "vmcp_export_version: version 2 is not supported; this build reads version 1",
        );
        check(
            json!({"name": "v", "mcp_servers": [{"name": "a"}, {"name": "a", "transport_type": "stdio", "config": {"command": "x"}}]}),
            "mcp_servers[1]: this server is listed more than once",
        );
    }
}

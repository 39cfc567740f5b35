//! A vMCP as one MCP server: the merged catalog of its member servers, in priority order, with
//! exposed names and the routes back to each item's server.
//!
//! An `Aggregate` is built from the supervisor's catalog caches, never from an upstream round
//! trip or the database, and is kept until one of its inputs changes: the vMCP's definition (a
//! new `VmcpEntry` replaces the old one), or a member's catalog or status (its key changes).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde_json::Value;
use vmcp_domain::{
    HiddenItem, PromptList, ResourceList, ServerStatus, ToolCustomization, ToolList,
    UnavailableServer, Vmcp,
};

use crate::supervisor::{Catalog, Slot, Supervisor};
use crate::uri_template::UriTemplate;

/// Where an exposed name leads: a server, the item's own name there, and the vMCP's
/// customization of it (fixed and default arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub server_id: String,
    pub name: String,
    pub custom: Option<Arc<ToolCustomization>>,
}

/// A tool's input schema as clients see it: fixed arguments removed, defaulted ones optional.
fn customized_schema(tool: &mut Tool, c: &ToolCustomization) {
    let mut schema = (*tool.input_schema).clone();
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for k in c.fixed.keys() {
            props.remove(k);
        }
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| {
            r.as_str()
                .is_none_or(|r| !c.fixed.contains_key(r) && !c.defaults.contains_key(r))
        });
    }
    tool.input_schema = Arc::new(schema);
}

/// One member server as the merge sees it: plain data, read from its slot.
#[derive(Debug, Clone)]
pub struct Member {
    pub server_id: String,
    pub name: String,
    pub catalog: Arc<Catalog>,
    pub status: ServerStatus,
    pub error: Option<String>,
}

impl Member {
    fn key(&self) -> MemberKey {
        MemberKey {
            server_id: self.server_id.clone(),
            catalog: Arc::as_ptr(&self.catalog) as usize,
            status: self.status,
            error: self.error.clone(),
        }
    }
}

/// One member's contribution to an aggregate's key: its catalog (by identity) and status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberKey {
    server_id: String,
    catalog: usize,
    status: ServerStatus,
    error: Option<String>,
}

/// The merged catalog of a vMCP.
pub struct Aggregate {
    key: Vec<MemberKey>,
    /// Exposed tools, in priority order, for MCP sessions.
    pub tools: Vec<Tool>,
    tool_routes: HashMap<String, Route>,
    pub prompts: Vec<Prompt>,
    prompt_routes: HashMap<String, Route>,
    pub resources: Vec<Resource>,
    resource_owners: HashMap<String, String>,
    pub templates: Vec<ResourceTemplate>,
    template_owners: Vec<(UriTemplate, String)>,
    /// Server id -> name, for every member.
    server_names: HashMap<String, String>,
    /// Server id -> its tools' own names, for connected members.
    tool_names: HashMap<String, Vec<String>>,
    /// The search index over the exposed tools, built on the first search (a list change makes
    /// a new aggregate, and so a new index).
    search: OnceLock<vmcp_search::Index>,
    /// The REST list bodies, built once.
    pub tool_list: Arc<ToolList>,
    pub resource_list: Arc<ResourceList>,
    pub prompt_list: Arc<PromptList>,
}

impl Aggregate {
    /// The server and original name of an exposed tool name.
    pub fn tool(&self, name: &str) -> Option<&Route> {
        self.tool_routes.get(name)
    }

    pub fn prompt(&self, name: &str) -> Option<&Route> {
        self.prompt_routes.get(name)
    }

    /// The server that serves a resource URI: one that lists it (by priority), else one whose
    /// template matches it (by priority).
    pub fn resource_owner(&self, uri: &str) -> Option<&str> {
        if let Some(owner) = self.resource_owners.get(uri) {
            return Some(owner);
        }
        self.template_owners
            .iter()
            .find(|(t, _)| t.matches(uri))
            .map(|(_, owner)| owner.as_str())
    }

    /// The server that owns a resource template (for completion).
    pub fn template_owner(&self, uri_template: &str) -> Option<&str> {
        self.templates
            .iter()
            .zip(&self.template_owners)
            .find(|(t, _)| t.uri_template == uri_template)
            .map(|(_, (_, owner))| owner.as_str())
    }

    /// An exposed tool name, or a `server.tool` canonical name, to its route.
    pub fn tool_by_any_name(&self, name: &str) -> Option<&Route> {
        self.tool_routes.get(name).or_else(|| {
            let (server, tool) = name.split_once('.')?;
            self.tool_routes.values().find(|r| {
                r.name == tool
                    && self
                        .server_names
                        .get(&r.server_id)
                        .is_some_and(|s| s == server)
            })
        })
    }

    /// An exposed prompt name, or `server.prompt`, to its route.
    pub fn prompt_by_any_name(&self, name: &str) -> Option<&Route> {
        self.prompt_routes.get(name).or_else(|| {
            let (server, prompt) = name.split_once('.')?;
            self.prompt_routes.values().find(|r| {
                r.name == prompt
                    && self
                        .server_names
                        .get(&r.server_id)
                        .is_some_and(|s| s == server)
            })
        })
    }

    /// The id of the member server with this name.
    pub fn server_id_of(&self, name: &str) -> Option<&str> {
        self.server_names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.as_str())
    }

    /// Whether a member server (connected or not) lists a tool of this own name.
    pub fn server_has_tool(&self, server: &str, tool: &str) -> Option<bool> {
        let id = self.server_id_of(server)?;
        self.tool_names
            .get(id)
            .map(|names| names.iter().any(|n| n == tool))
    }

    /// Whether the search index is built (it is, from the first search on).
    pub fn search_ready(&self) -> bool {
        self.search.get().is_some()
    }

    /// Builds the search index if it is not built: CPU work (every tool's text is embedded,
    /// 74 ms at 1,000 tools), for a blocking thread rather than an async worker.
    pub fn prepare_search(&self) {
        self.search_index();
    }

    /// The exposed tools that best match `query`, best first (as listed: renamed, described
    /// and with their schemas as the vMCP customizes them; hidden tools are not there).
    pub fn search_tools(&self, query: &str, limit: usize) -> Vec<&Value> {
        self.search_index()
            .search(query, limit)
            .into_iter()
            .map(|hit| &self.tool_list.tools[hit.index])
            .collect()
    }

    fn search_index(&self) -> &vmcp_search::Index {
        self.search.get_or_init(|| {
            let docs: Vec<vmcp_search::Document> = self
                .tool_list
                .tools
                .iter()
                .map(|tool| {
                    let server = tool["name"]
                        .as_str()
                        .and_then(|n| self.tool_routes.get(n))
                        .and_then(|r| self.server_names.get(&r.server_id))
                        .map_or("", String::as_str);
                    vmcp_search::Document::from_tool(server, tool)
                })
                .collect();
            vmcp_search::Index::build(&docs)
        })
    }

    /// The servers listed as unavailable.
    pub fn unavailable(&self) -> &[UnavailableServer] {
        &self.tool_list.unavailable
    }
}

/// A vMCP's definition as the runtime holds it, with its cached aggregate.
pub struct VmcpEntry {
    pub vmcp: Vmcp,
    aggregate: Mutex<Option<Arc<Aggregate>>>,
    /// `active_config` as the operation log shows it (secrets masked).
    pub(crate) redacted_config: serde_json::Value,
    /// The secret values of `active_config`, masked wherever they show up in logged text.
    pub(crate) secrets: Arc<[String]>,
}

impl VmcpEntry {
    pub fn new(vmcp: Vmcp) -> Self {
        Self {
            redacted_config: vmcp_domain::logs::redact(&vmcp.active_config, &vmcp.secret_keys),
            secrets: vmcp_domain::secrets::config_secret_values(
                &vmcp.active_config,
                &vmcp.secret_keys,
            )
            .into(),
            vmcp,
            aggregate: Mutex::new(None),
        }
    }

    /// The member slots, in priority order (a member the supervisor does not know is skipped:
    /// it cannot happen while the store's foreign keys hold).
    pub fn members(&self, supervisor: &Supervisor) -> Vec<Arc<Slot>> {
        self.vmcp
            .mcp_servers
            .iter()
            .filter_map(|m| supervisor.slot(&m.server_id))
            .collect()
    }

    /// The current aggregate: the cached one while no member changed, else a new one.
    pub fn aggregate(&self, supervisor: &Supervisor) -> Arc<Aggregate> {
        let members: Vec<Member> = self
            .members(supervisor)
            .into_iter()
            .map(|slot| {
                let state = slot.state();
                Member {
                    server_id: slot.id.clone(),
                    name: slot.name(),
                    catalog: slot.catalog(),
                    status: state.status,
                    error: state.last_error,
                }
            })
            .collect();
        let mut cached = self.aggregate.lock().expect("aggregate lock");
        if let Some(a) = cached.as_ref()
            && a.key.len() == members.len()
            && a.key.iter().zip(&members).all(|(k, m)| *k == m.key())
        {
            return a.clone();
        }
        let built = Arc::new(build(&self.vmcp, members));
        *cached = Some(built.clone());
        built
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("MCP model types serialize")
}

/// Merges the members' catalogs, in priority order (`members` is in that order), as the vMCP's
/// `naming` and tool customizations say. Pure: plain data in, plain data out.
pub fn build(vmcp: &Vmcp, members: Vec<Member>) -> Aggregate {
    let naming = &vmcp.naming;
    let mut tools = Vec::new();
    let mut tool_routes: HashMap<String, Route> = HashMap::new();
    let mut prompts = Vec::new();
    let mut prompt_routes: HashMap<String, Route> = HashMap::new();
    let mut resources = Vec::new();
    let mut resource_owners: HashMap<String, String> = HashMap::new();
    let mut templates = Vec::new();
    let mut template_owners: Vec<(UriTemplate, String)> = Vec::new();
    let mut hidden_tools = Vec::new();
    let mut hidden_prompts = Vec::new();
    let mut hidden_resources = Vec::new();
    let mut unavailable = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut tool_names: HashMap<String, Vec<String>> = HashMap::new();
    let mut key = Vec::with_capacity(members.len());

    for member in members {
        let member_key = member.key();
        let Member {
            server_id,
            name: server,
            catalog,
            ..
        } = member;
        names.insert(server_id.clone(), server.clone());
        if member_key.status != ServerStatus::Connected {
            unavailable.push(UnavailableServer {
                server_id: server_id.clone(),
                name: server.clone(),
                status: member_key.status,
                error: member_key.error.clone().unwrap_or_else(|| {
                    match member_key.status {
                        ServerStatus::Connecting => "still connecting",
                        _ => "not connected",
                    }
                    .to_string()
                }),
            });
        }
        if member_key.status == ServerStatus::Connected {
            tool_names.insert(
                server_id.clone(),
                catalog.tools.iter().map(|t| t.name.to_string()).collect(),
            );
        }
        key.push(member_key);
        let owner_name = |routes: &HashMap<String, Route>, exposed: &str| {
            routes
                .get(exposed)
                .and_then(|r| names.get(&r.server_id))
                .cloned()
                .unwrap_or_default()
        };
        for tool in &catalog.tools {
            let custom = vmcp.tools.get(&format!("{server}.{}", tool.name));
            if custom.is_some_and(|c| c.hidden) {
                continue;
            }
            let exposed = match custom.and_then(|c| c.name.clone()) {
                Some(name) => name,
                None => naming.expose(&server, &tool.name),
            };
            match tool_routes.entry(exposed.clone()) {
                Entry::Occupied(_) => hidden_tools.push(HiddenItem {
                    shadowed_by: owner_name(&tool_routes, &exposed),
                    name: exposed,
                    server: server.clone(),
                }),
                Entry::Vacant(v) => {
                    v.insert(Route {
                        server_id: server_id.clone(),
                        name: tool.name.to_string(),
                        custom: custom.map(|c| Arc::new(c.clone())),
                    });
                    let mut t = tool.clone();
                    t.name = exposed.into();
                    if let Some(c) = custom {
                        if let Some(d) = &c.description {
                            t.description = Some(d.clone().into());
                        }
                        customized_schema(&mut t, c);
                    }
                    tools.push(t);
                }
            }
        }
        for prompt in &catalog.prompts {
            let exposed = naming.expose(&server, &prompt.name);
            match prompt_routes.entry(exposed.clone()) {
                Entry::Occupied(_) => hidden_prompts.push(HiddenItem {
                    shadowed_by: owner_name(&prompt_routes, &exposed),
                    name: exposed,
                    server: server.clone(),
                }),
                Entry::Vacant(v) => {
                    v.insert(Route {
                        server_id: server_id.clone(),
                        name: prompt.name.clone(),
                        custom: None,
                    });
                    let mut p = prompt.clone();
                    p.name = exposed;
                    prompts.push(p);
                }
            }
        }
        for resource in &catalog.resources {
            match resource_owners.entry(resource.uri.clone()) {
                Entry::Occupied(o) => hidden_resources.push(HiddenItem {
                    name: resource.uri.clone(),
                    server: server.clone(),
                    shadowed_by: names.get(o.get()).cloned().unwrap_or_default(),
                }),
                Entry::Vacant(v) => {
                    v.insert(server_id.clone());
                    resources.push(resource.clone());
                }
            }
        }
        for template in &catalog.templates {
            // The same template from several servers is listed once, as resources are: the
            // server with the better priority owns it, the others are reported hidden.
            if let Some(i) = templates
                .iter()
                .position(|t: &ResourceTemplate| t.uri_template == template.uri_template)
            {
                hidden_resources.push(HiddenItem {
                    name: template.uri_template.clone(),
                    server: server.clone(),
                    shadowed_by: names
                        .get(&template_owners[i].1)
                        .cloned()
                        .unwrap_or_default(),
                });
                continue;
            }
            template_owners.push((
                UriTemplate::parse(&template.uri_template),
                server_id.clone(),
            ));
            templates.push(template.clone());
        }
    }

    let tool_list = Arc::new(ToolList {
        tools: tools.iter().map(to_json).collect(),
        unavailable: unavailable.clone(),
        hidden: hidden_tools,
    });
    let resource_list = Arc::new(ResourceList {
        resources: resources.iter().map(to_json).collect(),
        resource_templates: templates.iter().map(to_json).collect(),
        unavailable: unavailable.clone(),
        hidden: hidden_resources,
    });
    let prompt_list = Arc::new(PromptList {
        prompts: prompts.iter().map(to_json).collect(),
        unavailable,
        hidden: hidden_prompts,
    });
    Aggregate {
        key,
        tools,
        tool_routes,
        prompts,
        prompt_routes,
        resources,
        resource_owners,
        templates,
        template_owners,
        server_names: names,
        tool_names,
        search: OnceLock::new(),
        tool_list,
        resource_list,
        prompt_list,
    }
}

#[cfg(test)]
mod tests {
    //! The merge over plain data: collisions, priorities, hiding, renaming, templates.

    use super::*;
    use serde_json::json;

    fn tool(name: &str, description: &str) -> Tool {
        serde_json::from_value(json!({
            "name": name,
            "description": description,
            "inputSchema": {
                "type": "object",
                "properties": {"repo": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["repo", "limit"]
            }
        }))
        .unwrap()
    }

    fn resource(uri: &str) -> Resource {
        serde_json::from_value(json!({"uri": uri, "name": uri})).unwrap()
    }

    fn template(uri_template: &str) -> ResourceTemplate {
        serde_json::from_value(json!({"uriTemplate": uri_template, "name": uri_template})).unwrap()
    }

    fn prompt(name: &str) -> Prompt {
        serde_json::from_value(json!({"name": name})).unwrap()
    }

    fn member(name: &str, catalog: Catalog) -> Member {
        Member {
            server_id: format!("server_{name}"),
            name: name.to_string(),
            catalog: Arc::new(catalog),
            status: ServerStatus::Connected,
            error: None,
        }
    }

    /// A vMCP over servers in this (priority) order, as the store gives it.
    fn vmcp(servers: &[&str], naming: serde_json::Value, tools: serde_json::Value) -> Vmcp {
        let entries: Vec<serde_json::Value> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"server_id": format!("server_{s}"), "name": s, "priority": i}))
            .collect();
        serde_json::from_value(json!({
            "vmcp_id": "vmcp_0123456789abcdef",
            "name": "test",
            "description": "",
            "mcp_servers": entries,
            "active_config": {},
            "naming": naming,
            "tools": tools,
            "mcp_substitution": false,
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z"
        }))
        .unwrap()
    }

    fn names(a: &Aggregate) -> Vec<String> {
        a.tools.iter().map(|t| t.name.to_string()).collect()
    }

    #[test]
    fn prefixed_names_keep_every_tool_in_priority_order() {
        let v = vmcp(
            &["git", "fs"],
            json!({"prefix": true, "separator": "."}),
            json!({}),
        );
        let a = build(
            &v,
            vec![
                member(
                    "git",
                    Catalog {
                        tools: vec![tool("status", "git status"), tool("search", "grep")],
                        ..Default::default()
                    },
                ),
                member(
                    "fs",
                    Catalog {
                        tools: vec![tool("search", "find files")],
                        ..Default::default()
                    },
                ),
            ],
        );
        assert_eq!(names(&a), ["git.status", "git.search", "fs.search"]);
        assert_eq!(a.tool("fs.search").unwrap().server_id, "server_fs");
        assert_eq!(a.tool("fs.search").unwrap().name, "search");
        assert!(a.tool_list.hidden.is_empty());
        assert_eq!(a.tool_list.tools.len(), 3);
    }

    #[test]
    fn without_prefix_the_better_priority_wins_and_the_other_is_reported_hidden() {
        let v = vmcp(
            &["git", "fs"],
            json!({"prefix": false, "separator": "."}),
            json!({}),
        );
        let a = build(
            &v,
            vec![
                member(
                    "git",
                    Catalog {
                        tools: vec![tool("search", "grep")],
                        prompts: vec![prompt("review")],
                        ..Default::default()
                    },
                ),
                member(
                    "fs",
                    Catalog {
                        tools: vec![tool("search", "find files"), tool("read", "read")],
                        prompts: vec![prompt("review")],
                        ..Default::default()
                    },
                ),
            ],
        );
        assert_eq!(names(&a), ["search", "read"]);
        assert_eq!(a.tool("search").unwrap().server_id, "server_git");
        let hidden = &a.tool_list.hidden;
        assert_eq!(hidden.len(), 1);
        assert_eq!(
            (
                hidden[0].name.as_str(),
                hidden[0].server.as_str(),
                hidden[0].shadowed_by.as_str()
            ),
            ("search", "fs", "git")
        );
        assert_eq!(a.prompts.len(), 1);
        assert_eq!(a.prompt("review").unwrap().server_id, "server_git");
        assert_eq!(a.prompt_list.hidden.len(), 1);
        // A hidden tool is not reachable, not even as `server.tool`; the exposed one is.
        assert!(a.tool_by_any_name("fs.search").is_none());
        assert_eq!(
            a.tool_by_any_name("git.search").unwrap().server_id,
            "server_git"
        );
    }

    #[test]
    fn customization_hides_renames_describes_and_fixes_arguments() {
        let v = vmcp(
            &["git"],
            json!({"prefix": true, "separator": "_"}),
            json!({
                "git.status": {"hidden": true},
                "git.search": {
                    "name": "find_code",
                    "description": "Search the code",
                    "fixed": {"repo": "vmcp"},
                    "defaults": {"limit": 5}
                }
            }),
        );
        let a = build(
            &v,
            vec![member(
                "git",
                Catalog {
                    tools: vec![
                        tool("status", "s"),
                        tool("search", "grep"),
                        tool("log", "l"),
                    ],
                    ..Default::default()
                },
            )],
        );
        assert_eq!(names(&a), ["find_code", "git_log"]);
        assert!(a.tool("git_status").is_none());
        assert!(a.tool_by_any_name("git.status").is_none());
        let found = &a.tools[0];
        assert_eq!(found.description.as_deref(), Some("Search the code"));
        let schema = serde_json::to_value(&*found.input_schema).unwrap();
        assert_eq!(schema["properties"], json!({"limit": {"type": "integer"}}));
        assert_eq!(schema["required"], json!([]));
        let route = a.tool("find_code").unwrap();
        assert_eq!(route.name, "search");
        assert_eq!(route.custom.as_ref().unwrap().fixed["repo"], json!("vmcp"));
    }

    #[test]
    fn resources_and_templates_are_listed_once_and_duplicates_reported_hidden() {
        let v = vmcp(&["a", "b", "c"], json!({}), json!({}));
        let catalog = || Catalog {
            resources: vec![resource("file:///readme")],
            templates: vec![template("file:///{path}"), template("db://{table}")],
            ..Default::default()
        };
        let a = build(
            &v,
            vec![
                member("a", catalog()),
                member("b", catalog()),
                member("c", catalog()),
            ],
        );
        assert_eq!(a.resources.len(), 1);
        assert_eq!(a.templates.len(), 2);
        assert_eq!(a.resource_list.resource_templates.len(), 2);
        assert_eq!(a.resource_list.hidden.len(), 2 + 4);
        assert_eq!(a.resource_owner("file:///readme"), Some("server_a"));
        assert_eq!(a.resource_owner("file:///notes.txt"), Some("server_a"));
        // `{path}` is a simple expansion: it does not span a `/` (RFC 6570).
        assert_eq!(a.resource_owner("file:///src/main.rs"), None);
        assert_eq!(a.template_owner("db://{table}"), Some("server_a"));
        assert_eq!(a.resource_owner("http://elsewhere"), None);
    }

    #[test]
    fn a_member_that_is_down_is_reported_unavailable_and_contributes_nothing() {
        let v = vmcp(&["up", "down"], json!({}), json!({}));
        let mut down = member("down", Catalog::default());
        down.status = ServerStatus::Error;
        down.error = Some("exited with status 1".into());
        let a = build(
            &v,
            vec![
                member(
                    "up",
                    Catalog {
                        tools: vec![tool("t", "t")],
                        ..Default::default()
                    },
                ),
                down,
            ],
        );
        assert_eq!(names(&a), ["up.t"]);
        let unavailable = a.unavailable();
        assert_eq!(unavailable.len(), 1);
        assert_eq!(unavailable[0].name, "down");
        assert_eq!(unavailable[0].error, "exited with status 1");
        assert_eq!(a.server_has_tool("down", "t"), None);
        assert_eq!(a.server_has_tool("up", "t"), Some(true));
    }
}

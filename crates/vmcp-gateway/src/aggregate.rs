//! A vMCP as one MCP server: the merged catalog of its member servers, in priority order, with
//! exposed names and the routes back to each item's server.
//!
//! An `Aggregate` is built from the supervisor's catalog caches, never from an upstream round
//! trip or the database, and is kept until one of its inputs changes: the vMCP's definition (a
//! new `VmcpEntry` replaces the old one), or a member's catalog or status (its key changes).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

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
        let members = self.members(supervisor);
        let snapshot: Vec<(Arc<Slot>, Arc<Catalog>, MemberKey)> = members
            .into_iter()
            .map(|slot| {
                let catalog = slot.catalog();
                let state = slot.state();
                let key = MemberKey {
                    server_id: slot.id.clone(),
                    catalog: Arc::as_ptr(&catalog) as usize,
                    status: state.status,
                    error: state.last_error,
                };
                (slot, catalog, key)
            })
            .collect();
        let mut cached = self.aggregate.lock().expect("aggregate lock");
        if let Some(a) = cached.as_ref()
            && a.key.len() == snapshot.len()
            && a.key.iter().zip(&snapshot).all(|(k, (_, _, s))| k == s)
        {
            return a.clone();
        }
        let built = Arc::new(build(&self.vmcp, snapshot));
        *cached = Some(built.clone());
        built
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("MCP model types serialize")
}

fn build(vmcp: &Vmcp, members: Vec<(Arc<Slot>, Arc<Catalog>, MemberKey)>) -> Aggregate {
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

    for (slot, catalog, member_key) in members {
        let server = slot.name();
        names.insert(slot.id.clone(), server.clone());
        if member_key.status != ServerStatus::Connected {
            unavailable.push(UnavailableServer {
                server_id: slot.id.clone(),
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
                slot.id.clone(),
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
                        server_id: slot.id.clone(),
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
                        server_id: slot.id.clone(),
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
                    v.insert(slot.id.clone());
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
            template_owners.push((UriTemplate::parse(&template.uri_template), slot.id.clone()));
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
        tool_list,
        resource_list,
        prompt_list,
    }
}

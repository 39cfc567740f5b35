//! vMCPs and their members.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value};
use vmcp_domain::vmcp::{ImportMember, Membership};
use vmcp_domain::{
    McpServer, Naming, ValidationError, Vmcp, VmcpImport, VmcpInput, VmcpServerEntry, ids, time,
};

use crate::schema::{mcp_servers, vmcp_servers, vmcps};
use crate::{
    DbConnection, Result, Store, StoreError, is_foreign_key_violation, is_unique_violation, servers,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = vmcps)]
struct VmcpRow {
    id: String,
    name: String,
    description: String,
    active_config: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    naming: String,
    settings: String,
}

/// What the `settings` column holds.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Settings {
    #[serde(default)]
    tools: std::collections::BTreeMap<String, vmcp_domain::ToolCustomization>,
    #[serde(default)]
    mcp_substitution: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    secret_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "vmcp_domain::ToolSearch::is_off")]
    tool_search: vmcp_domain::ToolSearch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<vmcp_domain::VmcpAuth>,
}

fn settings_text(
    tools: &Option<std::collections::BTreeMap<String, vmcp_domain::ToolCustomization>>,
    mcp_substitution: Option<bool>,
    secret_keys: &Option<Vec<String>>,
    tool_search: Option<vmcp_domain::ToolSearch>,
    auth: &Option<vmcp_domain::VmcpAuth>,
) -> String {
    serde_json::to_string(&Settings {
        tools: tools.clone().unwrap_or_default(),
        mcp_substitution: mcp_substitution.unwrap_or(false),
        secret_keys: secret_keys.clone().unwrap_or_default(),
        tool_search: tool_search.unwrap_or_default(),
        auth: auth.clone(),
    })
    .expect("settings serialize")
}

impl VmcpRow {
    fn into_domain(self, members: Vec<VmcpServerEntry>) -> Result<Vmcp> {
        let active_config: Map<String, Value> =
            serde_json::from_str(&self.active_config).map_err(|e| {
                StoreError::Config(format!(
                    "stored vMCP {} has an unreadable active_config: {e}",
                    self.id
                ))
            })?;
        let naming: Naming = serde_json::from_str(&self.naming).map_err(|e| {
            StoreError::Config(format!(
                "stored vMCP {} has unreadable naming settings: {e}",
                self.id
            ))
        })?;
        let settings: Settings = serde_json::from_str(&self.settings).map_err(|e| {
            StoreError::Config(format!(
                "stored vMCP {} has unreadable settings: {e}",
                self.id
            ))
        })?;
        Ok(Vmcp {
            naming,
            tools: settings.tools,
            mcp_substitution: settings.mcp_substitution,
            tool_search: settings.tool_search,
            auth: settings.auth,
            secret_keys: settings.secret_keys,
            warnings: Vec::new(),
            vmcp_id: self.id,
            name: self.name,
            description: self.description,
            mcp_servers: members,
            active_config,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
        })
    }
}

/// The fields of a vMCP as written, whatever body they came from.
struct VmcpFields<'a> {
    name: &'a str,
    description: &'a str,
    active_config: String,
    naming: String,
    settings: String,
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a vMCP named {name:?} already exists: choose another name"
    ))
}

fn map_unique(name: &str) -> impl FnOnce(diesel::result::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            name_taken(name)
        } else {
            e.into()
        }
    }
}

/// Members of the given vMCPs (all when `None`), each list ordered by priority, then position.
fn load_members(
    conn: &mut DbConnection,
    only: Option<&str>,
) -> Result<HashMap<String, Vec<VmcpServerEntry>>> {
    let mut query = vmcp_servers::table
        .inner_join(mcp_servers::table)
        .select((
            vmcp_servers::vmcp_id,
            vmcp_servers::server_id,
            mcp_servers::name,
            vmcp_servers::priority,
        ))
        .order((
            vmcp_servers::vmcp_id,
            vmcp_servers::priority,
            vmcp_servers::position,
        ))
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(vmcp_servers::vmcp_id.eq(id.to_string()));
    }
    let rows: Vec<(String, String, String, i32)> = query.load(conn)?;
    let mut out: HashMap<String, Vec<VmcpServerEntry>> = HashMap::new();
    for (vmcp_id, server_id, name, priority) in rows {
        out.entry(vmcp_id).or_default().push(VmcpServerEntry {
            server_id,
            name,
            priority,
        });
    }
    Ok(out)
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "vMCP",
        id: id.to_string(),
    }
}

fn get(conn: &mut DbConnection, id: &str) -> Result<Vmcp> {
    let row: VmcpRow = vmcps::table
        .find(id)
        .select(VmcpRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))?;
    let mut members = load_members(conn, Some(id))?;
    row.into_domain(members.remove(id).unwrap_or_default())
}

/// Checks that every member names an existing server.
fn check_members_exist(conn: &mut DbConnection, members: &[Membership]) -> Result<()> {
    let wanted: Vec<&str> = members.iter().map(|m| m.server_id.as_str()).collect();
    let found: Vec<String> = mcp_servers::table
        .filter(mcp_servers::id.eq_any(&wanted))
        .select(mcp_servers::id)
        .load(conn)?;
    if let Some(i) = members.iter().position(|m| !found.contains(&m.server_id)) {
        return Err(ValidationError::new(
            format!("mcp_servers[{i}].server_id"),
            format!(
                "no MCP server with id {} exists (see GET /api/mcp-servers)",
                members[i].server_id
            ),
        )
        .into());
    }
    Ok(())
}

fn insert_members(conn: &mut DbConnection, vmcp_id: &str, members: &[Membership]) -> Result<()> {
    // One statement per member: multi-row inserts are not available across both backends.
    for (i, m) in members.iter().enumerate() {
        diesel::insert_into(vmcp_servers::table)
            .values((
                vmcp_servers::vmcp_id.eq(vmcp_id),
                vmcp_servers::server_id.eq(&m.server_id),
                vmcp_servers::priority.eq(m.priority),
                vmcp_servers::position.eq(i as i32),
            ))
            .execute(conn)
            .map_err(|e| {
                // check_members_exist saw the server; another request deleted it since.
                if is_foreign_key_violation(&e) {
                    StoreError::Conflict(format!(
                        "MCP server {} (mcp_servers[{i}]) was deleted while this vMCP was being saved; nothing was changed",
                        m.server_id
                    ))
                } else {
                    e.into()
                }
            })?;
    }
    Ok(())
}

fn insert(conn: &mut DbConnection, fields: &VmcpFields, members: &[Membership]) -> Result<Vmcp> {
    check_members_exist(conn, members)?;
    let id = ids::new_vmcp_id();
    let now = time::now().naive_utc();
    diesel::insert_into(vmcps::table)
        .values((
            vmcps::id.eq(&id),
            vmcps::name.eq(fields.name),
            vmcps::description.eq(fields.description),
            vmcps::active_config.eq(&fields.active_config),
            vmcps::naming.eq(&fields.naming),
            vmcps::settings.eq(&fields.settings),
            vmcps::created_at.eq(now),
            vmcps::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(map_unique(fields.name))?;
    insert_members(conn, &id, members)?;
    get(conn, &id)
}

fn naming_text(naming: &Option<Naming>) -> String {
    serde_json::to_string(&naming.clone().unwrap_or_default()).expect("naming serializes")
}

fn config_text(config: &Option<Map<String, Value>>) -> String {
    match config {
        Some(c) => serde_json::to_string(c).expect("a JSON map always serializes"),
        None => "{}".to_string(),
    }
}

impl Store {
    /// All vMCPs, oldest first.
    pub fn list_vmcps(&self) -> Result<Vec<Vmcp>> {
        let mut conn = self.conn()?;
        let rows: Vec<VmcpRow> = vmcps::table
            .order((vmcps::created_at, vmcps::id))
            .select(VmcpRow::as_select())
            .load(&mut *conn)?;
        let mut members = load_members(&mut conn, None)?;
        rows.into_iter()
            .map(|r| {
                let m = members.remove(&r.id).unwrap_or_default();
                r.into_domain(m)
            })
            .collect()
    }

    pub fn get_vmcp(&self, id: &str) -> Result<Vmcp> {
        get(&mut *self.conn()?, id)
    }

    /// The id of the vMCP with this name, if any.
    pub fn find_vmcp_id_by_name(&self, name: &str) -> Result<Option<String>> {
        Ok(vmcps::table
            .filter(vmcps::name.eq(name))
            .select(vmcps::id)
            .first(&mut *self.conn()?)
            .optional()?)
    }

    /// Creates a vMCP; `members` come from `input.validate()`.
    pub fn create_vmcp(&self, input: &VmcpInput, members: &[Membership]) -> Result<Vmcp> {
        let fields = VmcpFields {
            name: &input.name,
            description: input.description.as_deref().unwrap_or(""),
            active_config: config_text(&input.active_config),
            naming: naming_text(&input.naming),
            settings: settings_text(
                &input.tools,
                input.mcp_substitution,
                &input.secret_keys,
                input.tool_search,
                &input.auth,
            ),
        };
        self.write(|conn| insert(conn, &fields, members))
    }

    /// Replaces a vMCP (name, description, members, config); `members` come from
    /// `input.validate()`.
    pub fn update_vmcp(&self, id: &str, input: &VmcpInput, members: &[Membership]) -> Result<Vmcp> {
        self.write(|conn| {
            // The update comes first: it locks the row (on Postgres), so that a concurrent delete
            // waits for this transaction, and it says whether the vMCP exists.
            let updated = diesel::update(vmcps::table.find(id))
                .set((
                    vmcps::name.eq(&input.name),
                    vmcps::description.eq(input.description.as_deref().unwrap_or("")),
                    vmcps::active_config.eq(config_text(&input.active_config)),
                    vmcps::naming.eq(naming_text(&input.naming)),
                    vmcps::settings.eq(settings_text(
                        &input.tools,
                        input.mcp_substitution,
                        &input.secret_keys,
                        input.tool_search,
                        &input.auth,
                    )),
                    vmcps::updated_at.eq(time::now().naive_utc()),
                ))
                .execute(conn)
                .map_err(map_unique(&input.name))?;
            if updated == 0 {
                return Err(not_found(id));
            }
            check_members_exist(conn, members)?;
            diesel::delete(vmcp_servers::table.filter(vmcp_servers::vmcp_id.eq(id)))
                .execute(conn)?;
            insert_members(conn, id, members)?;
            get(conn, id)
        })
    }

    pub fn delete_vmcp(&self, id: &str) -> Result<Vmcp> {
        self.write(|conn| {
            let vmcp = get(conn, id)?;
            // The vMCP's row first, as an update takes its locks (the row, then the members):
            // the other order can deadlock with a concurrent update on Postgres.
            // Another request may have deleted it since `get`: then this one did not.
            if diesel::delete(vmcps::table.find(id)).execute(conn)? == 0 {
                return Err(not_found(id));
            }
            // The foreign key cascades; this says so where both backends can see it.
            diesel::delete(vmcp_servers::table.filter(vmcp_servers::vmcp_id.eq(id)))
                .execute(conn)?;
            Ok(vmcp)
        })
    }

    /// A vMCP and the full definitions of its servers, in member order.
    pub fn get_vmcp_with_servers(&self, id: &str) -> Result<(Vmcp, Vec<McpServer>)> {
        self.conn()?.transaction(|conn| {
            let vmcp = get(conn, id)?;
            let servers = vmcp
                .mcp_servers
                .iter()
                .map(|m| servers::get(conn, &m.server_id))
                .collect::<Result<Vec<_>>>()?;
            Ok((vmcp, servers))
        })
    }

    /// Imports a document (see `VmcpImport`) in one transaction: the servers it defines are
    /// reused or created, then the vMCP is created. On any error nothing is written.
    pub fn import_vmcp(&self, doc: &VmcpImport, plan: &[ImportMember]) -> Result<Vmcp> {
        self.write(|conn| {
            let mut members = Vec::with_capacity(plan.len());
            for (i, m) in plan.iter().enumerate() {
                let (server_id, priority) = match m {
                    ImportMember::ById {
                        server_id,
                        priority,
                    } => (server_id.clone(), *priority),
                    ImportMember::ByName { name, priority } => {
                        let Some(s) = servers::find_by_name(conn, name)? else {
                            return Err(ValidationError::new(
                                format!("mcp_servers[{i}].name"),
                                format!(
                                    "no MCP server named {name:?} exists here; include its definition (transport_type and config)"
                                ),
                            )
                            .into());
                        };
                        (s.server_id, *priority)
                    }
                    ImportMember::Define { server, priority } => {
                        match servers::find_by_name(conn, &server.name)? {
                            Some(existing)
                                if existing.transport_type == server.transport_type
                                    && existing.config == server.config =>
                            {
                                (existing.server_id, *priority)
                            }
                            Some(_) => {
                                return Err(StoreError::Conflict(format!(
                                    "mcp_servers[{i}]: an MCP server named {:?} already exists with a different definition; rename the server in the document or reference the existing one by name only",
                                    server.name
                                )));
                            }
                            None => (servers::insert(conn, server)?.server_id, *priority),
                        }
                    }
                };
                if members.iter().any(|m: &Membership| m.server_id == server_id) {
                    return Err(ValidationError::new(
                        format!("mcp_servers[{i}]"),
                        format!("refers to server {server_id}, which an earlier entry already lists"),
                    )
                    .into());
                }
                members.push(Membership {
                    server_id,
                    priority,
                });
            }
            let fields = VmcpFields {
                name: &doc.name,
                description: doc.description.as_deref().unwrap_or(""),
                active_config: config_text(&doc.active_config),
                naming: naming_text(&doc.naming),
                settings: settings_text(
                    &doc.tools,
                    doc.mcp_substitution,
                    &doc.secret_keys,
                    doc.tool_search,
                    &doc.auth,
                ),
            };
            insert(conn, &fields, &members)
        })
    }
}

//! MCP server registrations.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use vmcp_domain::{
    McpServer, McpServerInput, ServerConfig, ServerStatus, TransportType, ids, time,
};

use crate::schema::{mcp_servers, vmcp_servers, vmcps};
use crate::{
    DbConnection, Result, Store, StoreError, is_foreign_key_violation, is_unique_violation,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = mcp_servers)]
pub(crate) struct ServerRow {
    id: String,
    name: String,
    description: String,
    transport_type: String,
    config: String,
    last_connected: Option<NaiveDateTime>,
    last_error: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl ServerRow {
    pub(crate) fn into_domain(self) -> Result<McpServer> {
        let transport_type = TransportType::parse(&self.transport_type).ok_or_else(|| {
            StoreError::Config(format!(
                "stored MCP server {} has an unknown transport {:?}",
                self.id, self.transport_type
            ))
        })?;
        let config: ServerConfig = serde_json::from_str(&self.config).map_err(|e| {
            StoreError::Config(format!(
                "stored MCP server {} has an unreadable config: {e}",
                self.id
            ))
        })?;
        Ok(McpServer {
            server_id: self.id,
            name: self.name,
            description: self.description,
            transport_type,
            config,
            status: ServerStatus::Disconnected,
            last_connected: self.last_connected.map(|t| t.and_utc()),
            last_error: self.last_error,
            protocol_version: None,
            server_info: None,
            authorization_url: None,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
        })
    }
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "an MCP server named {name:?} already exists: choose another name"
    ))
}

fn config_json(config: &ServerConfig) -> String {
    serde_json::to_string(config).expect("a server config always serializes")
}

/// Inserts a server; the caller has validated `input`.
pub(crate) fn insert(conn: &mut DbConnection, input: &McpServerInput) -> Result<McpServer> {
    let id = ids::new_server_id();
    let now = time::now().naive_utc();
    diesel::insert_into(mcp_servers::table)
        .values((
            mcp_servers::id.eq(&id),
            mcp_servers::name.eq(&input.name),
            mcp_servers::description.eq(input.description.as_deref().unwrap_or("")),
            mcp_servers::transport_type.eq(input.transport_type.as_str()),
            mcp_servers::config.eq(config_json(&input.config)),
            mcp_servers::created_at.eq(now),
            mcp_servers::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                name_taken(&input.name)
            } else {
                e.into()
            }
        })?;
    get(conn, &id)
}

pub(crate) fn get(conn: &mut DbConnection, id: &str) -> Result<McpServer> {
    mcp_servers::table
        .find(id)
        .select(ServerRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: "MCP server",
            id: id.to_string(),
        })?
        .into_domain()
}

pub(crate) fn find_by_name(conn: &mut DbConnection, name: &str) -> Result<Option<McpServer>> {
    mcp_servers::table
        .filter(mcp_servers::name.eq(name))
        .select(ServerRow::as_select())
        .first(conn)
        .optional()?
        .map(ServerRow::into_domain)
        .transpose()
}

impl Store {
    /// All servers, oldest first.
    pub fn list_servers(&self) -> Result<Vec<McpServer>> {
        mcp_servers::table
            .order((mcp_servers::created_at, mcp_servers::id))
            .select(ServerRow::as_select())
            .load(&mut *self.conn()?)?
            .into_iter()
            .map(ServerRow::into_domain)
            .collect()
    }

    pub fn get_server(&self, id: &str) -> Result<McpServer> {
        get(&mut *self.conn()?, id)
    }

    pub fn get_server_by_name(&self, name: &str) -> Result<Option<McpServer>> {
        find_by_name(&mut *self.conn()?, name)
    }

    /// Creates a server; the caller has validated `input`.
    pub fn create_server(&self, input: &McpServerInput) -> Result<McpServer> {
        self.write(|conn| insert(conn, input))
    }

    /// Replaces a server's definition; the caller has validated `input`.
    pub fn update_server(&self, id: &str, input: &McpServerInput) -> Result<McpServer> {
        self.write(|conn| {
            let updated = diesel::update(mcp_servers::table.find(id))
                .set((
                    mcp_servers::name.eq(&input.name),
                    mcp_servers::description.eq(input.description.as_deref().unwrap_or("")),
                    mcp_servers::transport_type.eq(input.transport_type.as_str()),
                    mcp_servers::config.eq(config_json(&input.config)),
                    mcp_servers::updated_at.eq(time::now().naive_utc()),
                ))
                .execute(conn)
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        name_taken(&input.name)
                    } else {
                        e.into()
                    }
                })?;
            if updated == 0 {
                return Err(StoreError::NotFound {
                    what: "MCP server",
                    id: id.to_string(),
                });
            }
            get(conn, id)
        })
    }

    /// Deletes a server that no vMCP uses; otherwise `InUse`, and nothing changes.
    pub fn delete_server(&self, id: &str) -> Result<McpServer> {
        self.write(|conn| {
            let server = get(conn, id)?;
            let users: Vec<String> = vmcp_servers::table
                .inner_join(vmcps::table)
                .filter(vmcp_servers::server_id.eq(id))
                .order(vmcps::name)
                .select(vmcps::name)
                .load(conn)?;
            if !users.is_empty() {
                return Err(StoreError::InUse {
                    name: server.name,
                    vmcps: users,
                });
            }
            let deleted = diesel::delete(mcp_servers::table.find(id))
                .execute(conn)
                .map_err(|e| {
                    // A vMCP took the server as a member after the check above.
                    if is_foreign_key_violation(&e) {
                        StoreError::Conflict(format!(
                            "MCP server {} was added to a vMCP while it was being deleted; remove it from the vMCP first",
                            server.name
                        ))
                    } else {
                        e.into()
                    }
                })?;
            // Another request may have deleted it since `get`: then this one did not.
            if deleted == 0 {
                return Err(StoreError::NotFound {
                    what: "MCP server",
                    id: id.to_string(),
                });
            }
            Ok(server)
        })
    }

    /// Remembers whether the server should be connected (again after a restart).
    pub fn set_auto_connect(&self, id: &str, on: bool) -> Result<()> {
        self.write(|conn| {
            diesel::update(mcp_servers::table.find(id))
                .set(mcp_servers::auto_connect.eq(on))
                .execute(conn)?;
            Ok(())
        })
    }

    /// The servers to connect at start.
    pub fn auto_connect_ids(&self) -> Result<Vec<String>> {
        Ok(mcp_servers::table
            .filter(mcp_servers::auto_connect.eq(true))
            .order(mcp_servers::created_at)
            .select(mcp_servers::id)
            .load(&mut *self.conn()?)?)
    }

    /// Records the outcome of a connection attempt: `last_connected` when it succeeded, and
    /// `last_error` (cleared on success).
    pub fn record_connection(
        &self,
        id: &str,
        connected_at: Option<vmcp_domain::Timestamp>,
        last_error: Option<&str>,
    ) -> Result<()> {
        // An upstream's error text may hold a NUL, which Postgres cannot store.
        let last_error = last_error.map(vmcp_domain::text::storable);
        let last_error = last_error.as_deref();
        self.write(|conn| {
            let target = mcp_servers::table.find(id);
            match connected_at {
                Some(t) => diesel::update(target)
                    .set((
                        mcp_servers::last_connected.eq(Some(t.naive_utc())),
                        mcp_servers::last_error.eq(last_error),
                    ))
                    .execute(conn)?,
                None => diesel::update(target)
                    .set(mcp_servers::last_error.eq(last_error))
                    .execute(conn)?,
            };
            Ok(())
        })
    }
}

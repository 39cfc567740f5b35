//! Management of MCP servers and vMCPs: validation, then the store.

use vmcp_domain::ids::{ServerId, VmcpId};
use vmcp_domain::vmcp::{EXPORT_VERSION, ExportedServer};
use vmcp_domain::{
    ConnectResponse, DisconnectResponse, McpServer, McpServerInput, ServerLogLine, ServerLogs,
    ServerStatus, Vmcp, VmcpExport, VmcpImport, VmcpInput, secrets,
};

use crate::{ErrorKind, Gateway, GatewayError, Result};

impl Gateway {
    /// A stored server with its live connection state.
    fn with_live_state(&self, mut server: McpServer) -> McpServer {
        if let Some(slot) = self.supervisor.slot(&server.server_id) {
            let state = slot.state();
            server.status = state.status;
            server.last_error = state.last_error.clone();
            server.last_connected = state.last_connected.or(server.last_connected);
            server.protocol_version = state.protocol_version();
            server.server_info = state.server_info();
            server.authorization_url = state.authorization_url.clone();
        }
        server
    }

    pub async fn list_servers(&self) -> Result<Vec<McpServer>> {
        let servers = self.db(|s| s.list_servers()).await?;
        Ok(servers
            .into_iter()
            .map(|s| self.with_live_state(s))
            .collect())
    }

    pub async fn get_server(&self, id: &ServerId) -> Result<McpServer> {
        let id = id.as_str();
        let id = id.to_string();
        let server = self.db(move |s| s.get_server(&id)).await?;
        Ok(self.with_live_state(server))
    }

    pub async fn create_server(&self, mut input: McpServerInput) -> Result<McpServer> {
        let _turn = self.writes.lock().await;
        input.config.restore_masked(None, "config")?;
        input.validate()?;
        let server = self.db(move |s| s.create_server(&input)).await?;
        self.supervisor.upsert(&server);
        self.refresh_log_secrets();
        Ok(self.with_live_state(server))
    }

    /// Replaces a server's definition. A connected server whose transport or config changed is
    /// reconnected with the new definition.
    /// Secret values sent back as the mask keep their stored value.
    pub async fn update_server(
        &self,
        id: &ServerId,
        mut input: McpServerInput,
    ) -> Result<McpServer> {
        let _turn = self.writes.lock().await;
        let id = id.as_str();
        let key = id.to_string();
        let stored = self.db(move |s| s.get_server(&key)).await?;
        // A kept client secret goes only where it went before: with another URL, vMCP would
        // send it to whatever authorization server the new URL names.
        let masked_secret = input
            .config
            .auth
            .as_ref()
            .and_then(|a| a.client_secret.as_deref())
            == Some(secrets::SECRET_MASK);
        if masked_secret && input.config.url != stored.config.url {
            return Err(GatewayError::bad_request(
                "config.auth.client_secret: the URL changes, so send the client secret again \
                 (the kept one is not sent to another server's authorization server)",
            ));
        }
        if input.config.has_mask() {
            input
                .config
                .restore_masked(Some(&stored.config), "config")?;
        }
        input.validate()?;
        // Tokens are for one resource and one client: a new URL or new OAuth settings start
        // over (the old tokens are revoked).
        let signed_out = stored.config.auth.is_some()
            && (stored.config.auth != input.config.auth || stored.config.url != input.config.url);
        let id = id.to_string();
        let server = self.db(move |s| s.update_server(&id, &input)).await?;
        if signed_out {
            let notes = self
                .supervisor
                .oauth()
                .forget(&server.server_id, stored.config.auth.as_ref())
                .await;
            tracing::info!(server = %server.name, outcome = %notes.join(", "), "OAuth settings changed: tokens forgotten");
        }
        self.supervisor.upsert(&server);
        self.refresh_log_secrets();
        Ok(self.with_live_state(server))
    }

    /// Deletes a server that no vMCP uses, disconnecting it first.
    pub async fn delete_server(&self, id: &ServerId) -> Result<McpServer> {
        let _turn = self.writes.lock().await;
        let id = id.as_str();
        let id = id.to_string();
        let key = id.clone();
        // Its OAuth rows go with it: what to revoke is read first.
        let kept = self.supervisor.oauth().kept(&id).await;
        let server = self.db(move |s| s.delete_server(&key)).await?;
        self.supervisor.remove(&id).await;
        if server.config.auth.is_some() {
            // Tokens of a deleted server are revoked at its authorization server.
            let notes = self
                .supervisor
                .oauth()
                .revoke_all(kept, server.config.auth.as_ref())
                .await;
            if !notes.is_empty() {
                tracing::info!(server = %server.name, outcome = %notes.join(", "), "OAuth tokens forgotten");
            }
        }
        Ok(server)
    }

    /// Connects a server and waits for the outcome. The server stays wanted: if it fails or
    /// later dies, it is reconnected with backoff (also after a restart of vMCP) until
    /// `disconnect_server`.
    pub async fn connect_server(&self, id: &ServerId) -> Result<ConnectResponse> {
        let id = id.as_str();
        let key = id.to_string();
        let server = self.db(move |s| s.get_server(&key)).await?;
        let slot = self.supervisor.upsert(&server);
        let key = id.to_string();
        self.db(move |s| s.set_auto_connect(&key, true)).await?;
        self.cluster.set_wanted(id, true);
        let state = self.supervisor.connect(&slot).await;
        match state.status {
            ServerStatus::Connected => Ok(ConnectResponse {
                status: state.status,
                capabilities: slot.catalog().names(),
                protocol_version: state.protocol_version(),
                server_info: state.server_info(),
                last_error: None,
                authorization_url: None,
            }),
            // A sign-in is needed: not a failure, the answer says where to go.
            ServerStatus::AuthRequired => Ok(ConnectResponse {
                status: state.status,
                capabilities: Default::default(),
                protocol_version: None,
                server_info: None,
                last_error: state.last_error.clone(),
                authorization_url: state.authorization_url.clone(),
            }),
            _ => {
                let detail = state.last_error.clone().unwrap_or_else(|| {
                    format!("no connection within {:?}; still trying", slot.timeout())
                });
                Err(GatewayError::new(
                    ErrorKind::Upstream,
                    "cannot connect to the MCP server",
                    format!(
                        "{}: {detail} (vMCP keeps retrying; see GET /api/mcp-servers/{id}/logs, or disconnect it)",
                        server.name
                    ),
                ))
            }
        }
    }

    /// Disconnects a server (ending its process, for stdio) and stops reconnecting it.
    pub async fn disconnect_server(&self, id: &ServerId) -> Result<DisconnectResponse> {
        let id = id.as_str();
        let key = id.to_string();
        self.db(move |s| {
            s.get_server(&key)?;
            s.set_auto_connect(&key, false)
        })
        .await?;
        self.cluster.set_wanted(id, false);
        if let Some(slot) = self.supervisor.slot(id) {
            self.supervisor.stop(&slot).await;
        }
        Ok(DisconnectResponse {
            status: ServerStatus::Disconnected,
        })
    }

    /// What the server wrote to stderr, and transport diagnostics, newest last.
    pub async fn server_logs(&self, id: &ServerId) -> Result<ServerLogs> {
        let id = id.as_str();
        let Some(slot) = self.supervisor.slot(id) else {
            // Not registered in this process: it does not exist (or was just deleted).
            let key = id.to_string();
            self.db(move |s| s.get_server(&key)).await?;
            return Ok(ServerLogs {
                server_id: id.to_string(),
                lines: Vec::new(),
            });
        };
        Ok(ServerLogs {
            server_id: id.to_string(),
            lines: slot
                .log()
                .lines()
                .into_iter()
                .map(|l| ServerLogLine {
                    at: l.at,
                    text: l.text,
                })
                .collect(),
        })
    }

    /// Adds what is wrong but kept: customizations of tools that no member offers.
    fn with_warnings(&self, mut vmcp: Vmcp) -> Vmcp {
        if vmcp.tools.is_empty() {
            return vmcp;
        }
        let aggregate = self
            .vmcp_entry(&vmcp.vmcp_id)
            .map(|e| e.aggregate(&self.supervisor));
        for key in vmcp.tools.keys() {
            let Some((server, tool)) = key.split_once('.') else {
                continue;
            };
            if !vmcp.mcp_servers.iter().any(|m| m.name == server) {
                vmcp.warnings.push(format!(
                    "tools.{key}: no server of this vMCP is named {server:?} (kept: it applies if one is added)"
                ));
            } else if aggregate
                .as_ref()
                .and_then(|a| a.server_has_tool(server, tool))
                == Some(false)
            {
                vmcp.warnings.push(format!(
                    "tools.{key}: {server} has no tool named {tool:?} (kept: it applies if the tool appears)"
                ));
            }
        }
        vmcp
    }

    pub async fn list_vmcps(&self) -> Result<Vec<Vmcp>> {
        self.db(|s| s.list_vmcps()).await
    }

    pub async fn get_vmcp(&self, id: &VmcpId) -> Result<Vmcp> {
        let id = id.as_str();
        let id = id.to_string();
        let vmcp = self.db(move |s| s.get_vmcp(&id)).await?;
        Ok(self.with_warnings(vmcp))
    }

    pub async fn create_vmcp(&self, mut input: VmcpInput) -> Result<Vmcp> {
        let _turn = self.writes.lock().await;
        if let Some(config) = &mut input.active_config {
            secrets::restore_config(config, None, "active_config")?;
        }
        let members = input.validate()?;
        let vmcp = self.db(move |s| s.create_vmcp(&input, &members)).await?;
        self.cache_vmcp(&vmcp);
        Ok(self.with_warnings(vmcp))
    }

    /// Secret `active_config` values sent back as the mask keep their stored value.
    pub async fn update_vmcp(&self, id: &VmcpId, mut input: VmcpInput) -> Result<Vmcp> {
        let _turn = self.writes.lock().await;
        let id = id.as_str();
        if let Some(config) = &mut input.active_config
            && secrets::config_has_mask(config)
        {
            let key = id.to_string();
            let stored = self.db(move |s| s.get_vmcp(&key)).await?;
            secrets::restore_config(config, Some(&stored.active_config), "active_config")?;
        }
        let members = input.validate()?;
        let id = id.to_string();
        let vmcp = self
            .db(move |s| s.update_vmcp(&id, &input, &members))
            .await?;
        self.cache_vmcp(&vmcp);
        Ok(self.with_warnings(vmcp))
    }

    pub async fn delete_vmcp(&self, id: &VmcpId) -> Result<Vmcp> {
        let _turn = self.writes.lock().await;
        let id = id.as_str();
        let id = id.to_string();
        let vmcp = self.db(move |s| s.delete_vmcp(&id)).await?;
        self.forget_vmcp(&vmcp.vmcp_id);
        Ok(vmcp)
    }

    /// A self-contained document of the vMCP and its servers' definitions.
    pub async fn export_vmcp(&self, id: &VmcpId) -> Result<VmcpExport> {
        let id = id.as_str();
        let id = id.to_string();
        let (vmcp, servers) = self.db(move |s| s.get_vmcp_with_servers(&id)).await?;
        let mcp_servers = vmcp
            .mcp_servers
            .iter()
            .zip(servers)
            .map(|(member, server)| ExportedServer {
                name: server.name,
                description: server.description,
                transport_type: server.transport_type,
                config: server.config,
                priority: member.priority,
            })
            .collect();
        Ok(VmcpExport {
            vmcp_export_version: EXPORT_VERSION,
            name: vmcp.name,
            description: vmcp.description,
            mcp_servers,
            active_config: vmcp.active_config,
            naming: vmcp.naming,
            tools: vmcp.tools,
            mcp_substitution: vmcp.mcp_substitution,
            tool_search: vmcp.tool_search,
            auth: vmcp.auth,
            secret_keys: vmcp.secret_keys,
        })
    }

    /// Masked secrets in the document (from an export without `include_secrets`) are taken
    /// from the existing server of the same name; with none, the import is refused.
    pub async fn import_vmcp(&self, mut doc: VmcpImport) -> Result<Vmcp> {
        let _turn = self.writes.lock().await;
        if let Some(config) = &mut doc.active_config {
            secrets::restore_config(config, None, "active_config")?;
        }
        for i in 0..doc.mcp_servers.len() {
            let entry = &doc.mcp_servers[i];
            let (Some(name), Some(config)) = (entry.name.clone(), entry.config.as_ref()) else {
                continue;
            };
            if !config.has_mask() {
                continue;
            }
            let existing = self.db(move |s| s.get_server_by_name(&name)).await?;
            if let Some(config) = doc.mcp_servers[i].config.as_mut() {
                config.restore_masked(
                    existing.as_ref().map(|s| &s.config),
                    &format!("mcp_servers[{i}].config"),
                )?;
            }
        }
        let plan = doc.validate()?;
        let (vmcp, servers) = self
            .db(move |s| {
                let vmcp = s.import_vmcp(&doc, &plan)?;
                Ok((vmcp, s.list_servers()?))
            })
            .await?;
        // The import may have created servers.
        for server in &servers {
            if self.supervisor.slot(&server.server_id).is_none() {
                self.supervisor.upsert(server);
            }
        }
        self.cache_vmcp(&vmcp);
        Ok(self.with_warnings(vmcp))
    }
}

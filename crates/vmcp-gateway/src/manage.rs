//! Management of MCP servers and vMCPs: validation, then the store.

use vmcp_domain::vmcp::{EXPORT_VERSION, ExportedServer};
use vmcp_domain::{McpServer, McpServerInput, Vmcp, VmcpExport, VmcpImport, VmcpInput, ids};

use crate::{Gateway, GatewayError, Result};

fn check_id(prefix: &str, what: &str, id: &str) -> Result<()> {
    if ids::is_id(prefix, id) {
        Ok(())
    } else {
        Err(GatewayError::bad_request(format!(
            "{id:?} is not a valid {what} id: {what} ids look like {prefix}0123456789abcdef"
        )))
    }
}

impl Gateway {
    pub async fn list_servers(&self) -> Result<Vec<McpServer>> {
        self.db(|s| s.list_servers()).await
    }

    pub async fn get_server(&self, id: &str) -> Result<McpServer> {
        check_id(ids::SERVER_PREFIX, "MCP server", id)?;
        let id = id.to_string();
        self.db(move |s| s.get_server(&id)).await
    }

    pub async fn create_server(&self, input: McpServerInput) -> Result<McpServer> {
        input.validate()?;
        self.db(move |s| s.create_server(&input)).await
    }

    pub async fn update_server(&self, id: &str, input: McpServerInput) -> Result<McpServer> {
        check_id(ids::SERVER_PREFIX, "MCP server", id)?;
        input.validate()?;
        let id = id.to_string();
        self.db(move |s| s.update_server(&id, &input)).await
    }

    pub async fn delete_server(&self, id: &str) -> Result<McpServer> {
        check_id(ids::SERVER_PREFIX, "MCP server", id)?;
        let id = id.to_string();
        self.db(move |s| s.delete_server(&id)).await
    }

    pub async fn list_vmcps(&self) -> Result<Vec<Vmcp>> {
        self.db(|s| s.list_vmcps()).await
    }

    pub async fn get_vmcp(&self, id: &str) -> Result<Vmcp> {
        check_id(ids::VMCP_PREFIX, "vMCP", id)?;
        let id = id.to_string();
        self.db(move |s| s.get_vmcp(&id)).await
    }

    pub async fn create_vmcp(&self, input: VmcpInput) -> Result<Vmcp> {
        let members = input.validate()?;
        self.db(move |s| s.create_vmcp(&input, &members)).await
    }

    pub async fn update_vmcp(&self, id: &str, input: VmcpInput) -> Result<Vmcp> {
        check_id(ids::VMCP_PREFIX, "vMCP", id)?;
        let members = input.validate()?;
        let id = id.to_string();
        self.db(move |s| s.update_vmcp(&id, &input, &members)).await
    }

    pub async fn delete_vmcp(&self, id: &str) -> Result<Vmcp> {
        check_id(ids::VMCP_PREFIX, "vMCP", id)?;
        let id = id.to_string();
        self.db(move |s| s.delete_vmcp(&id)).await
    }

    /// A self-contained document of the vMCP and its servers' definitions.
    pub async fn export_vmcp(&self, id: &str) -> Result<VmcpExport> {
        check_id(ids::VMCP_PREFIX, "vMCP", id)?;
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
        })
    }

    pub async fn import_vmcp(&self, doc: VmcpImport) -> Result<Vmcp> {
        let plan = doc.validate()?;
        self.db(move |s| s.import_vmcp(&doc, &plan)).await
    }
}

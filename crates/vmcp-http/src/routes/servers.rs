//! `/api/mcp-servers`: registering, updating and removing MCP servers.

use actix_web::{HttpResponse, delete, get, post, put, web};
use vmcp_domain::{ConnectResponse, DisconnectResponse, McpServer, McpServerInput, ServerLogs};

use super::MessageBody;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::json::Json;

/// The server id of a path, parsed once here (400 when it is not one).
fn server_id(path: &str) -> Result<vmcp_domain::ids::ServerId, ApiError> {
    vmcp_domain::ids::ServerId::parse(path).map_err(|e| vmcp_gateway::GatewayError::from(e).into())
}

const TAG: &str = "mcp_servers";

/// List MCP servers
///
/// Returns every registered MCP server, oldest first.
#[utoipa::path(
    tag = TAG,
    responses(
        (status = 200, description = "All registered MCP servers", body = Vec<McpServer>),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/mcp-servers")]
pub async fn list_servers(
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<McpServer>>, ApiError> {
    Ok(web::Json(
        state
            .gateway
            .list_servers()
            .await?
            .into_iter()
            .map(McpServer::masked)
            .collect(),
    ))
}

/// Get an MCP server
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)", pattern = "^server_[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The MCP server", body = McpServer),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No MCP server has this id", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/mcp-servers/{server_id}")]
pub async fn get_server(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<McpServer>, ApiError> {
    Ok(web::Json(
        state.gateway.get_server(&server_id(&path)?).await?.masked(),
    ))
}

/// Register an MCP server
///
/// `config` depends on `transport_type`: `stdio` needs `command` (and takes `args`, `env`, `cwd`);
/// `sse` and `streamable_http` (alias `http`) need `url` (and take `headers`).
#[utoipa::path(
    tag = TAG,
    request_body = McpServerInput,
    responses(
        (status = 201, description = "The server was registered", body = McpServer),
        (status = 400, description = "The body is invalid (name, transport or config)", body = ErrorBody),
        (status = 409, description = "A server with this name exists", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[post("/mcp-servers")]
pub async fn create_server(
    state: web::Data<AppState>,
    body: Json<McpServerInput>,
) -> Result<HttpResponse, ApiError> {
    let server = state.gateway.create_server(body.into_inner()).await?;
    Ok(HttpResponse::Created().json(server.masked()))
}

/// Update an MCP server
///
/// Replaces the whole definition: an omitted `description` becomes empty.
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)", pattern = "^server_[A-Za-z0-9_-]{1,64}$")),
    request_body = McpServerInput,
    responses(
        (status = 200, description = "The updated server", body = McpServer),
        (status = 400, description = "The id or the body is invalid", body = ErrorBody),
        (status = 404, description = "No MCP server has this id", body = ErrorBody),
        (status = 409, description = "Another server has this name", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[put("/mcp-servers/{server_id}")]
pub async fn update_server(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<McpServerInput>,
) -> Result<web::Json<McpServer>, ApiError> {
    Ok(web::Json(
        state
            .gateway
            .update_server(&server_id(&path)?, body.into_inner())
            .await?
            .masked(),
    ))
}

/// Delete an MCP server
///
/// A server that vMCPs use cannot be deleted: remove it from them first (409 names them).
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)", pattern = "^server_[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The server was deleted", body = MessageBody,
            example = json!({"message": "MCP server deleted successfully"})),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No MCP server has this id", body = ErrorBody),
        (status = 409, description = "vMCPs still use this server", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[delete("/mcp-servers/{server_id}")]
pub async fn delete_server(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MessageBody>, ApiError> {
    state.gateway.delete_server(&server_id(&path)?).await?;
    Ok(web::Json(MessageBody {
        message: "MCP server deleted successfully".into(),
    }))
}

/// Connect to an MCP server
///
/// Starts the server (stdio) or opens the connection (SSE, streamable HTTP), completes the MCP
/// handshake, lists what it offers, and answers with its capabilities. The server stays wanted:
/// if it fails or dies later, vMCP reconnects it with backoff (also after a restart) until it is
/// disconnected. Connecting a connected server answers at once.
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)", pattern = "^server_[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Connected; what the server offers", body = ConnectResponse),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No MCP server has this id", body = ErrorBody),
        (status = 502, description = "The server could not be reached or failed its handshake (the detail says why; vMCP keeps retrying)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[post("/mcp-servers/{server_id}/connect")]
pub async fn connect_server(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConnectResponse>, ApiError> {
    Ok(web::Json(
        state.gateway.connect_server(&server_id(&path)?).await?,
    ))
}

/// Disconnect from an MCP server
///
/// Closes the connection (a stdio server's whole process group is ended) and stops
/// reconnecting it. vMCP operations that need the server connect it again on demand.
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)", pattern = "^server_[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Disconnected", body = DisconnectResponse),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No MCP server has this id", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[post("/mcp-servers/{server_id}/disconnect")]
pub async fn disconnect_server(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<DisconnectResponse>, ApiError> {
    Ok(web::Json(
        state.gateway.disconnect_server(&server_id(&path)?).await?,
    ))
}

/// An MCP server's log
///
/// The last 500 lines the server wrote to stderr (stdio), with vMCP's own diagnostics about it
/// (stdout lines that were not JSON-RPC, failed lists), oldest first. Kept in memory across
/// reconnects; useful when a server fails to start.
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)", pattern = "^server_[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The server's recent output", body = ServerLogs),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No MCP server has this id", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/mcp-servers/{server_id}/logs")]
pub async fn server_logs(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ServerLogs>, ApiError> {
    Ok(web::Json(
        state.gateway.server_logs(&server_id(&path)?).await?,
    ))
}

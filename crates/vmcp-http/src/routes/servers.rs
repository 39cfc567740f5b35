//! `/api/mcp-servers`: registering, updating and removing MCP servers.

use actix_web::{HttpResponse, delete, get, post, put, web};
use vmcp_domain::{McpServer, McpServerInput};

use super::MessageBody;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::json::Json;

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
    Ok(web::Json(state.gateway.list_servers().await?))
}

/// Get an MCP server
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)")),
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
    Ok(web::Json(state.gateway.get_server(&path).await?))
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
    Ok(HttpResponse::Created().json(server))
}

/// Update an MCP server
///
/// Replaces the whole definition: an omitted `description` becomes empty.
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)")),
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
            .update_server(&path, body.into_inner())
            .await?,
    ))
}

/// Delete an MCP server
///
/// A server that vMCPs use cannot be deleted: remove it from them first (409 names them).
#[utoipa::path(
    tag = TAG,
    params(("server_id" = String, Path, description = "The server's id (server_...)")),
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
    state.gateway.delete_server(&path).await?;
    Ok(web::Json(MessageBody {
        message: "MCP server deleted successfully".into(),
    }))
}

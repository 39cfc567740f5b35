//! `/api/vmcps`: virtual MCP servers, their export and import.

use actix_web::{HttpResponse, delete, get, post, put, web};
use vmcp_domain::{Vmcp, VmcpExport, VmcpImport, VmcpInput};

use super::MessageBody;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::json::Json;

const TAG: &str = "vmcps";

/// `/api/vmcps/import` is its own path (POST only), not a vMCP id: other methods on it are a 405
/// (answered by the fallback, which knows the routes), not a 400 about the id or the body.
fn not_import(ctx: &actix_web::guard::GuardContext) -> bool {
    !ctx.head().uri.path().ends_with("/vmcps/import")
}

/// List vMCPs
///
/// Returns every vMCP, oldest first, each with its servers in priority order.
#[utoipa::path(
    tag = TAG,
    responses(
        (status = 200, description = "All vMCPs", body = Vec<Vmcp>),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/vmcps")]
pub async fn list_vmcps(state: web::Data<AppState>) -> Result<web::Json<Vec<Vmcp>>, ApiError> {
    Ok(web::Json(
        state
            .gateway
            .list_vmcps()
            .await?
            .into_iter()
            .map(Vmcp::masked)
            .collect(),
    ))
}

/// Get a vMCP
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    responses(
        (status = 200, description = "The vMCP", body = Vmcp),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/vmcps/{vmcp_id}", guard = "not_import")]
pub async fn get_vmcp(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<Vmcp>, ApiError> {
    Ok(web::Json(
        state
            .gateway
            .get_vmcp(&state.gateway.resolve_vmcp_id(&path)?)
            .await?
            .masked(),
    ))
}

/// Create a vMCP
///
/// `mcp_servers` lists existing servers by id; an omitted `priority` is the entry's 1-based
/// position. Smaller priorities come first.
#[utoipa::path(
    tag = TAG,
    request_body = VmcpInput,
    responses(
        (status = 201, description = "The vMCP was created", body = Vmcp),
        (status = 400, description = "The body is invalid, or names an unknown server", body = ErrorBody),
        (status = 409, description = "A vMCP with this name exists", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[post("/vmcps")]
pub async fn create_vmcp(
    state: web::Data<AppState>,
    body: Json<VmcpInput>,
) -> Result<HttpResponse, ApiError> {
    let vmcp = state.gateway.create_vmcp(body.into_inner()).await?;
    Ok(HttpResponse::Created().json(vmcp.masked()))
}

/// Update a vMCP
///
/// Same body as create. Replaces the whole vMCP: an omitted `description` becomes empty, an
/// omitted `mcp_servers` empty, an omitted `active_config` `{}`.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    request_body = VmcpInput,
    responses(
        (status = 200, description = "The updated vMCP", body = Vmcp),
        (status = 400, description = "The id or the body is invalid", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
        (status = 409, description = "Another vMCP has this name", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[put("/vmcps/{vmcp_id}", guard = "not_import")]
pub async fn update_vmcp(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<VmcpInput>,
) -> Result<web::Json<Vmcp>, ApiError> {
    Ok(web::Json(
        state
            .gateway
            .update_vmcp(&state.gateway.resolve_vmcp_id(&path)?, body.into_inner())
            .await?
            .masked(),
    ))
}

/// Delete a vMCP
///
/// Its servers stay registered.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    responses(
        (status = 200, description = "The vMCP was deleted", body = MessageBody),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[delete("/vmcps/{vmcp_id}", guard = "not_import")]
pub async fn delete_vmcp(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MessageBody>, ApiError> {
    state
        .gateway
        .delete_vmcp(&state.gateway.resolve_vmcp_id(&path)?)
        .await?;
    Ok(web::Json(MessageBody {
        message: "vMCP deleted successfully".into(),
    }))
}

/// Import a vMCP
///
/// Accepts an export document (servers by definition: identical ones are reused, new ones
/// created, a same-name server with another definition is a 409) or the plain create shape
/// (servers by `server_id`). All or nothing: on any error nothing is stored.
#[utoipa::path(
    tag = TAG,
    request_body = VmcpImport,
    responses(
        (status = 201, description = "The vMCP was imported", body = Vmcp),
        (status = 400, description = "The document is invalid, or names an unknown server", body = ErrorBody),
        (status = 409, description = "The vMCP name is taken, or a server definition clashes", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[post("/vmcps/import")]
pub async fn import_vmcp(
    state: web::Data<AppState>,
    body: Json<VmcpImport>,
) -> Result<HttpResponse, ApiError> {
    let vmcp = state.gateway.import_vmcp(body.into_inner()).await?;
    Ok(HttpResponse::Created().json(vmcp.masked()))
}

/// Export a vMCP
///
/// A self-contained document: the vMCP and the full definitions of its servers, by name.
/// `POST /api/vmcps/import` takes it as is, here or on another installation. Secrets (servers'
/// secret `env` and `headers` values, secret `active_config` values) are masked unless
/// `include_secrets=true`; an import of a masked document takes them from the existing servers
/// of the same names, and is refused where there are none.
#[utoipa::path(
    tag = TAG,
    params(
        ("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name"),
        ExportQuery,
    ),
    responses(
        (status = 200, description = "The export document", body = VmcpExport),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/vmcps/{vmcp_id}/export")]
pub async fn export_vmcp(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<web::Json<VmcpExport>, ApiError> {
    let export = state
        .gateway
        .export_vmcp(&state.gateway.resolve_vmcp_id(&path)?)
        .await?;
    Ok(web::Json(if query.include_secrets {
        export
    } else {
        export.masked()
    }))
}

/// Options of `GET /api/vmcps/{vmcp_id}/export`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Include secret values as stored (default false: masked as "********").
    #[serde(default)]
    pub include_secrets: bool,
}

//! `/api/vmcps/{vmcp_id}/{tools,resources,prompts}`: a vMCP used as one MCP server, over REST.
//!
//! If the HTTP client goes away before the answer, actix drops the handler's future, and the
//! upstream request is cancelled with it.

use std::future::Future;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use vmcp_domain::{
    PromptGetRequest, PromptList, PromptResult, ResourceContents, ResourceList,
    ResourceReadRequest, ToolCallRequest, ToolList, ToolResult, ToolSearchResult,
};
use vmcp_gateway::{Caller, GatewayError};

use crate::AppState;
use crate::client_gone::until_client_gone;
use crate::error::{ApiError, ErrorBody};
use crate::json::Json;

const TAG: &str = "vmcp operations";

/// The REST caller, for the operation log: the `X-Client-Id` header, else `rest-api`.
fn caller(req: &HttpRequest) -> Caller {
    Caller::rest(
        req.headers()
            .get("x-client-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().chars().take(200).collect::<String>())
            .filter(|v| !v.is_empty()),
    )
}

fn json_response<T: serde::Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok().json(value)
}

/// Runs an upstream operation, dropping it (which cancels the upstream request) if the client
/// goes away first.
async fn guarded<T>(
    req: &HttpRequest,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, ApiError> {
    match until_client_gone(req, work).await {
        Some(result) => Ok(result?),
        None => {
            tracing::debug!(path = %req.path(), "client went away; upstream request cancelled");
            Err(GatewayError::bad_request("the client closed the connection").into())
        }
    }
}

/// List a vMCP's tools
///
/// The tools of every member server, in priority order, named as the vMCP's `naming` says
/// (`{server}.{tool}` by default), each with its `inputSchema`, `outputSchema`, `annotations`,
/// `title` and `icons` as the server defines them. Served from a cache kept fresh by the servers'
/// `list_changed` notifications. Members that are not connected are connected first (bounded
/// wait); a member that is down does not fail the list: it is named in `unavailable`, with why.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    responses(
        (status = 200, description = "The merged tools", body = ToolList),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
    )
)]
#[get("/vmcps/{vmcp_id}/tools")]
pub async fn list_tools(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = state.gateway.list_tools(&path, &caller(&req)).await?;
    Ok(json_response(&*list))
}

/// Search a vMCP's tools
///
/// The tools that best match what you want to do (BM25 over names, descriptions, parameters and
/// server names, with stemming and common synonyms), best first, as the tools list gives them
/// (renamed, described and hidden as the vMCP customizes them). The same search as the MCP
/// meta-tool `search_tools` (see docs/tool-search.md).
#[utoipa::path(
    tag = TAG,
    params(
        ("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name"),
        SearchQuery,
    ),
    responses(
        (status = 200, description = "The best matches", body = ToolSearchResult),
        (status = 400, description = "The query is empty or too long, or limit is out of range", body = ErrorBody),
        (status = 404, description = "No vMCP has this id or name", body = ErrorBody),
    )
)]
#[get("/vmcps/{vmcp_id}/tools/search")]
pub async fn search_tools(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let (tools, of) = state
        .gateway
        .search_tools(&path, &query.q, query.limit, &caller(&req))
        .await?;
    Ok(json_response(&ToolSearchResult {
        query: query.q.trim().to_string(),
        tools,
        of,
    }))
}

/// The query of `GET /api/vmcps/{vmcp_id}/tools/search`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What you want to do, in a few words (1 to 1000 characters).
    #[param(min_length = 1, max_length = 1000)]
    pub q: String,
    /// How many tools to return (1 to 50, default 5).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u64>,
}

/// Call a tool of a vMCP
///
/// Routes the call to the tool's server and answers with its result unchanged (`content` of any
/// type, `structuredContent`, `isError`, `_meta`). A tool that reports a failure (`isError:
/// true`) is a 200. The call is bounded by the server's `timeout_seconds`.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    request_body = ToolCallRequest,
    responses(
        (status = 200, description = "The tool's result, as the server gave it", body = ToolResult),
        (status = 400, description = "The body is invalid, or the server rejected the arguments (invalid params)", body = ErrorBody),
        (status = 404, description = "No vMCP has this id, or it has no tool of this name", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 502, description = "The tool's server is unavailable or failed", body = ErrorBody),
        (status = 504, description = "The tool's server did not answer in time", body = ErrorBody),
    )
)]
#[post("/vmcps/{vmcp_id}/tools/call")]
pub async fn call_tool(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ToolCallRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let result = guarded(
        &req,
        state
            .gateway
            .call_tool(&path, &body.name, body.arguments, body.params, caller(&req)),
    )
    .await?;
    // `resultType` is the 2026-07-28 protocol's, not the API's (see ToolResult).
    let mut result = result;
    result.result_type = None;
    Ok(json_response(&result))
}

/// List a vMCP's resources
///
/// The resources and resource templates of every member server, in priority order. Resources
/// keep their own URIs; a URI that several servers list is served by the one with the better
/// priority (the others are in `hidden`).
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    responses(
        (status = 200, description = "The merged resources and templates", body = ResourceList),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
    )
)]
#[get("/vmcps/{vmcp_id}/resources")]
pub async fn list_resources(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = state.gateway.list_resources(&path, &caller(&req)).await?;
    Ok(json_response(&*list))
}

/// Read a resource of a vMCP
///
/// Routed by URI: to the server that lists it, else to the server one of whose templates
/// matches it, ties broken by priority.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    request_body = ResourceReadRequest,
    responses(
        (status = 200, description = "The resource's contents, as the server gave them", body = ResourceContents),
        (status = 400, description = "The body is invalid", body = ErrorBody),
        (status = 404, description = "No vMCP has this id, or no server of it offers this URI", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 502, description = "The resource's server is unavailable or failed", body = ErrorBody),
        (status = 504, description = "The resource's server did not answer in time", body = ErrorBody),
    )
)]
#[post("/vmcps/{vmcp_id}/resources/read")]
pub async fn read_resource(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ResourceReadRequest>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req);
    let mut result = guarded(&req, state.gateway.read_resource(&path, &body.uri, &who)).await?;
    result.result_type = None;
    Ok(json_response(&result))
}

/// List a vMCP's prompts
///
/// The prompts of every member server, in priority order, named like tools.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    responses(
        (status = 200, description = "The merged prompts", body = PromptList),
        (status = 400, description = "The id is malformed", body = ErrorBody),
        (status = 404, description = "No vMCP has this id", body = ErrorBody),
    )
)]
#[get("/vmcps/{vmcp_id}/prompts")]
pub async fn list_prompts(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = state.gateway.list_prompts(&path, &caller(&req)).await?;
    Ok(json_response(&*list))
}

/// Get a prompt of a vMCP
///
/// Renders the prompt on its server with the given arguments.
#[utoipa::path(
    tag = TAG,
    params(("vmcp_id" = String, Path, description = "The vMCP's id (vmcp_...) or its name")),
    request_body = PromptGetRequest,
    responses(
        (status = 200, description = "The rendered prompt, as the server gave it", body = PromptResult),
        (status = 400, description = "The body is invalid, or the server rejected the arguments", body = ErrorBody),
        (status = 404, description = "No vMCP has this id, or it has no prompt of this name", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 502, description = "The prompt's server is unavailable or failed", body = ErrorBody),
        (status = 504, description = "The prompt's server did not answer in time", body = ErrorBody),
    )
)]
#[post("/vmcps/{vmcp_id}/prompts/get")]
pub async fn get_prompt(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<PromptGetRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let result = guarded(
        &req,
        state
            .gateway
            .get_prompt(&path, &body.name, body.arguments, body.params, caller(&req)),
    )
    .await?;
    let mut result = result;
    result.result_type = None;
    Ok(json_response(&result))
}

//! `/health`.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ErrorBody;

/// The server's health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0", "database": "sqlite", "mcp_sessions": 2,
    "mcp_sessions_in_memory": 1, "replica": "vmcp-0:8000", "config_revision": 12, "listening": true}))]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Open MCP client sessions held by this replica, over every vMCP's endpoints
    /// (streamable HTTP and SSE). 2026-07-28 clients hold none between requests.
    pub mcp_sessions: usize,
    /// Of those, the ones in memory: an unused streamable HTTP session is released and
    /// resumed from its id when it is used again.
    pub mcp_sessions_in_memory: usize,
    /// This replica's id (the answering one, behind a load balancer).
    pub replica: String,
    /// The latest configuration revision this replica applied (Postgres; 0 on SQLite).
    pub config_revision: i64,
    /// Whether this replica hears configuration changes from the database (Postgres).
    pub listening: bool,
}

/// The live replicas on this database
///
/// Each replica runs its own upstream connections: this lists every live replica (refreshed
/// every 5 s) with its view of each server. On SQLite, only this one.
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, description = "The live replicas, oldest first", body = Vec<vmcp_domain::replica::Replica>),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/replicas")]
pub async fn replicas(
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<vmcp_domain::replica::Replica>>, crate::error::ApiError> {
    Ok(web::Json(state.gateway.replicas().await?))
}

/// Health check
///
/// 200 when the server runs and its database answers; 503 otherwise.
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database is unavailable, or the process is stopping", body = ErrorBody),
    )
)]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    if state.mcp.is_draining() {
        return HttpResponse::ServiceUnavailable().json(ErrorBody {
            error: "stopping".into(),
            detail: "this vMCP process is stopping: its calls in flight finish, new ones go \
                     to another replica"
                .into(),
        });
    }
    match state.gateway.health().await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            database: state.gateway.store().backend().as_str().into(),
            mcp_sessions: state.mcp.session_counts().0 + state.mcp.sse_session_count(),
            mcp_sessions_in_memory: state.mcp.session_counts().1 + state.mcp.sse_session_count(),
            replica: state.gateway.cluster.replica_id().into(),
            config_revision: state.gateway.cluster.revision(),
            listening: state.gateway.cluster.is_listening(),
        }),
        Err(e) => HttpResponse::ServiceUnavailable().json(ErrorBody {
            error: e.error,
            detail: e.detail,
        }),
    }
}

//! `/health`.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ErrorBody;

/// The server's health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0", "database": "sqlite", "mcp_sessions": 2}))]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Open MCP client sessions, over every vMCP's endpoints (streamable HTTP and SSE).
    pub mcp_sessions: usize,
}

/// Health check
///
/// 200 when the server runs and its database answers; 503 otherwise.
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    match state.gateway.health().await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            database: state.gateway.store().backend().as_str().into(),
            mcp_sessions: state.gateway.sessions.count(),
        }),
        Err(e) => HttpResponse::ServiceUnavailable().json(ErrorBody {
            error: e.error,
            detail: e.detail,
        }),
    }
}

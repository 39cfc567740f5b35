//! `/api/stats`, `/metrics` and the live `/ws`.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use vmcp_domain::{StatsQuery, StatsResponse};
use vmcp_gateway::GatewayEvent;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// Usage statistics and logs
///
/// Figures over the operations that match the filters (computed in SQL) and one page of them,
/// newest first. `active_clients` counts distinct `client_id`s; `total_vmcps` distinct vMCPs;
/// `avg_tools_per_call` is `total_tool_calls / active_clients` (tool calls per client). Dates
/// are ISO 8601 (`2024-01-15` or `2024-01-15T10:30:00Z`); a date alone as `end_date` includes
/// that day.
#[utoipa::path(
    tag = "stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "The figures and a page of logs", body = StatsResponse),
        (status = 400, description = "A bad date, page or page_size", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    query: web::Query<StatsQuery>,
) -> Result<web::Json<StatsResponse>, ApiError> {
    Ok(web::Json(state.gateway.stats(query.into_inner()).await?))
}

/// Prometheus metrics
///
/// Operations by vMCP, server, method and outcome with latency histograms, upstream status,
/// the operation log's queue depth and drops, open MCP sessions; in the OpenMetrics text format,
/// labelled `application/openmetrics-text` for a client that asks for it (Prometheus does) and
/// `text/plain` otherwise.
#[utoipa::path(
    tag = "stats",
    responses((status = 200, description = "Metrics in the OpenMetrics text format (which Prometheus reads); application/openmetrics-text when the Accept header asks for it", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let openmetrics = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    HttpResponse::Ok()
        .content_type(if openmetrics {
            vmcp_gateway::metrics::CONTENT_TYPE
        } else {
            "text/plain; charset=utf-8"
        })
        .body(state.gateway.metrics_text())
}

/// Filters of a `/ws` subscription (query parameters).
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct WsFilter {
    /// Only log entries of this vMCP.
    pub vmcp_id: Option<String>,
    /// Only log entries of this client.
    pub client_id: Option<String>,
    /// Only log entries of this method.
    pub method: Option<String>,
}

/// How often the server pings, and how long it waits for any answer before it gives up.
const PING_EVERY: Duration = Duration::from_secs(15);
const PATIENCE: Duration = Duration::from_secs(45);

/// The live WebSocket (see docs/websocket.md): server status changes, new log entries (filtered
/// by `vmcp_id`, `client_id`, `method`), vMCP and catalog changes, as JSON text messages.
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    filter: web::Query<WsFilter>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)?;
    let mut feed = state.gateway.watch_feed();
    let replica = state.gateway.cluster.replica_id().to_string();
    let filter = filter.into_inner();
    actix_web::rt::spawn(async move {
        let hello = json!({"type": "hello", "version": env!("CARGO_PKG_VERSION")});
        if session.text(hello.to_string()).await.is_err() {
            return;
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut last_heard = Instant::now();
        let reason = loop {
            // Changes and finished operations come on two channels; both are sent alike.
            let event = tokio::select! {
                event = feed.events.recv() => event,
                event = feed.operations.recv() => event,
                message = futures_util::StreamExt::next(&mut incoming) => {
                    match message {
                        Some(Ok(actix_ws::Message::Ping(bytes))) => {
                            last_heard = Instant::now();
                            if session.pong(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => last_heard = Instant::now(),
                    }
                    continue;
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > PATIENCE {
                        break "no answer to pings".to_string();
                    }
                    if session.ping(b"vmcp").await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let message = match event {
                Ok(e) => message_for(&e, &filter, &replica),
                Err(RecvError::Lagged(n)) => break format!("too slow: {n} messages behind"),
                Err(RecvError::Closed) => break "the server is stopping".to_string(),
            };
            if let Some(m) = message
                && session.text(m.to_string()).await.is_err()
            {
                return;
            }
        };
        let _ = session
            .close(Some(actix_ws::CloseReason {
                code: actix_ws::CloseCode::Policy,
                description: Some(reason),
            }))
            .await;
    });
    Ok(response)
}

fn message_for(
    event: &GatewayEvent,
    filter: &WsFilter,
    this_replica: &str,
) -> Option<serde_json::Value> {
    Some(match event {
        GatewayEvent::ServerStatus {
            server_id,
            status,
            last_error,
            replica,
        } => {
            let replica = replica.as_deref().unwrap_or(this_replica);
            json!({"type": "server_status", "server_id": server_id, "status": status,
                "last_error": last_error, "replica": replica})
        }
        GatewayEvent::CatalogChanged { server_id } => {
            json!({"type": "catalog_changed", "server_id": server_id})
        }
        GatewayEvent::VmcpChanged { vmcp_id } => {
            json!({"type": "vmcp_changed", "vmcp_id": vmcp_id})
        }
        GatewayEvent::Operation(entry) => {
            let keep = filter
                .vmcp_id
                .as_ref()
                .is_none_or(|v| entry.vmcp_id.as_ref() == Some(v))
                && filter
                    .client_id
                    .as_ref()
                    .is_none_or(|c| &entry.client_id == c)
                && filter.method.as_ref().is_none_or(|m| &entry.method == m);
            if !keep {
                return None;
            }
            json!({"type": "log", "entry": entry})
        }
        GatewayEvent::ResourceUpdated { .. } | GatewayEvent::Log { .. } => return None,
    })
}

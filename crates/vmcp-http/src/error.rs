//! Every error the API answers has the body `{"error": "...", "detail": "..."}`: those of the
//! gateway, of actix's extractors (bad JSON, wrong content type, bad query), and of routing
//! (unknown path, wrong method).

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vmcp_gateway::{ErrorKind, GatewayError, Hint, What};

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": "vMCP not found", "detail": "no vMCP with id vmcp_0b1c2d3e4f5a6b7c"}))]
pub struct ErrorBody {
    /// A short summary of the error.
    pub error: String,
    /// What happened, and where possible what to change.
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                detail: detail.into(),
            },
        }
    }

    pub fn bad_request(error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.body.error, self.body.detail)
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let status = match e.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound { .. } => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            // Nobody sees it (the client went away), but the access log does.
            ErrorKind::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Where to look next, in REST's words.
        let detail = match &e.hint {
            Some(Hint::List { what, vmcp }) => {
                let list = match what {
                    What::Prompt => "prompts",
                    What::Resource => "resources",
                    _ => "tools",
                };
                format!("{}; list them with GET /api/vmcps/{vmcp}/{list}", e.detail)
            }
            None => e.detail,
        };
        Self::new(status, e.error, detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| ApiError::bad_request("invalid path", err.to_string()).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request("invalid query parameters", err.to_string()).into()
    })
}

/// The paths of the API with the methods each accepts, to tell an unknown path (404) from a
/// known path with the wrong method (405).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<Method>)>,
}

impl RouteTable {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .trim_matches('/')
                    .split('/')
                    .map(str::to_string)
                    .collect();
                let mut methods = Vec::new();
                for (m, op) in [
                    (Method::GET, &item.get),
                    (Method::PUT, &item.put),
                    (Method::POST, &item.post),
                    (Method::DELETE, &item.delete),
                    (Method::PATCH, &item.patch),
                ] {
                    if op.is_some() {
                        methods.push(m);
                    }
                }
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods allowed on `path`, if it is a known path. A literal segment wins over a
    /// parameter, as in routing (`/api/vmcps/import` is not `/api/vmcps/{vmcp_id}`).
    fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(Vec<bool>, Vec<Method>)> = None;
        for (segments, methods) in &self.routes {
            let matches = segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| (s.starts_with('{') && !p.is_empty()) || s == p);
            if !matches {
                continue;
            }
            // Literal segments, left to right: the more specific route compares greater.
            let literal: Vec<bool> = segments.iter().map(|s| !s.starts_with('{')).collect();
            match &mut best {
                Some((b, m)) if *b == literal => m.extend(methods.iter().cloned()),
                Some((b, _)) if *b > literal => {}
                _ => best = Some((literal, methods.clone())),
            }
        }
        best.map(|(_, m)| m)
    }
}

/// The answer to any request that no route took.
pub async fn not_routed(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    let path = req.path();
    match table.allowed(path) {
        Some(methods) if !methods.contains(req.method()) => {
            let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
            let allow = allow.join(", ");
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, allow.clone()))
                .json(ErrorBody {
                    error: "method not allowed".into(),
                    detail: format!("{} is not allowed on {path}; use {allow}", req.method()),
                })
        }
        _ => HttpResponse::NotFound().json(ErrorBody {
            error: "not found".into(),
            detail: format!(
                "no route for {} {path}; see /docs for the API",
                req.method()
            ),
        }),
    }
}

/// Middleware: an error answer that some layer made without a body, or with a body that is not
/// JSON (Swagger UI's missing files, the WebSocket handshake, extractors of other crates), gets
/// the documented `{"error", "detail"}` body, keeping its status and headers.
pub async fn json_errors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let method = req.method().clone();
    let path = req.path().to_string();
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json || status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let text = actix_web::body::to_bytes_limited(body, 64 * 1024)
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let detail = if text.is_empty() {
        format!("{method} {path}: {error}")
    } else {
        format!("{method} {path}: {text}")
    };
    let mut out = HttpResponse::build(status);
    for (name, value) in head.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.append_header((name.clone(), value.clone()));
        }
    }
    let res = out.json(ErrorBody { error, detail });
    Ok(actix_web::dev::ServiceResponse::new(req, res))
}

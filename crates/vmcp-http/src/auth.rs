//! Bearer tokens for everything but `/health` and the API's documentation, and CORS.
//!
//! Invariants: with no token configured every request passes (local use stays as simple as
//! `vmcp`); with tokens, a request to a protected path passes only with
//! `Authorization: Bearer <one of them>` (or, for the browser-made `/ws` handshake, an
//! `access_token` query parameter), compared in time that does not depend on the tokens'
//! contents. A refusal is 401 with the usual error body and a `WWW-Authenticate: Bearer` header.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::AppState;
use crate::error::ErrorBody;

/// Who may use the server, under which host names, and from which web origins.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    /// Accepted bearer tokens; empty: no authentication.
    pub tokens: Vec<String>,
    /// Origins allowed to call the API from a browser (`*` for any); empty: CORS off.
    pub cors_origins: Vec<String>,
    /// Names (`name` or `name:port`) accepted in the `Host` header of every request; `*`
    /// accepts any. Default: loopback names (see `crate::guard`).
    pub allowed_hosts: Vec<String>,
    /// The whole body of a request must arrive within this time (see `crate::body`).
    pub body_read_timeout: std::time::Duration,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            cors_origins: Vec::new(),
            allowed_hosts: crate::guard::loopback_hosts(),
            body_read_timeout: crate::body::BODY_READ_TIMEOUT,
        }
    }
}

impl SecurityOptions {
    /// Whether `presented` is one of the tokens. Every token is compared, each over the whole
    /// presented value, so the time taken says nothing about how much of a token matched.
    pub fn accepts(&self, presented: &str) -> bool {
        let mut found = false;
        for token in &self.tokens {
            found |= constant_time_eq(presented.as_bytes(), token.as_bytes());
        }
        found
    }
}

/// Compares in time that depends on `presented`'s length only.
fn constant_time_eq(presented: &[u8], secret: &[u8]) -> bool {
    if secret.is_empty() {
        return false;
    }
    let mut diff = presented.len() ^ secret.len();
    for (i, b) in presented.iter().enumerate() {
        diff |= usize::from(b ^ secret[i % secret.len()]);
    }
    std::hint::black_box(diff) == 0
}

/// Paths open without a token: the health check, the API's own description and the dashboard's
/// static files (they hold no data; the dashboard asks for a token to call the API).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health"
            | "/openapi.json"
            | "/openapi.yaml"
            // OAuth: browsers coming back from a sign-in carry no token (the one-time state is
            // the credential); the metadata documents are public by their specifications.
            | "/api/oauth/callback"
            | "/oauth/client-metadata.json"
    ) || path.starts_with("/.well-known/oauth-protected-resource/")
        || path == "/docs"
        || path.starts_with("/docs/")
        || path == "/ui"
        || path.starts_with("/ui/")
}

/// The token a request presents, if any.
fn presented(req: &ServiceRequest) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    // Browsers cannot set headers on a WebSocket handshake (RFC 6750 section 2.3).
    if req.path() == "/ws" {
        return web::Query::<std::collections::HashMap<String, String>>::from_query(
            req.query_string(),
        )
        .ok()?
        .get("access_token")
        .cloned();
    }
    None
}

/// The 401 answer.
pub fn unauthorized(detail: &str, invalid: bool) -> HttpResponse {
    let challenge = if invalid {
        r#"Bearer realm="vmcp", error="invalid_token", error_description="the token is not accepted""#
    } else {
        r#"Bearer realm="vmcp""#
    };
    HttpResponse::build(StatusCode::UNAUTHORIZED)
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(ErrorBody {
            error: "unauthorized".into(),
            detail: detail.into(),
        })
}

/// The middleware: lets public paths and authorized requests through.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let security = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.security.clone());
    let Some(security) = security.filter(|s| !s.tokens.is_empty()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if is_public(req.path()) || req.method() == actix_web::http::Method::OPTIONS {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    // The MCP endpoints of a vMCP that requires OAuth check the client's access token
    // themselves (crate::oauth): the API tokens are not for them.
    // (The segment decoded as the router decodes it, so that both name the same vMCP.)
    if let Some(vmcp) = req
        .path()
        .strip_prefix("/vmcp/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|seg| percent_encoding::percent_decode_str(seg).decode_utf8().ok())
        && let Some(state) = req.app_data::<web::Data<AppState>>()
        && state.gateway.mcp_protected(&vmcp)
    {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    match presented(&req) {
        Some(token) if security.accepts(&token) => Ok(next.call(req).await?.map_into_boxed_body()),
        Some(_) => Ok(req.into_response(unauthorized(
            "the bearer token is not one this server accepts",
            true,
        ))),
        None => Ok(req.into_response(unauthorized(
            "this server requires a token: send the header \"Authorization: Bearer <token>\" \
             (one of the tokens given to vmcp with --api-token or VMCP_API_TOKENS)",
            false,
        ))),
    }
}

/// The CORS middleware for `origins` (empty: none, so browsers keep their same-origin rule).
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_headers(["mcp-session-id", "www-authenticate"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        for o in origins {
            cors = cors.allowed_origin(o);
        }
    }
    cors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_tokens_are_accepted() {
        let s = SecurityOptions {
            tokens: vec!["alpha-token".into(), "beta".into()],
            ..Default::default()
        };
        assert!(s.accepts("alpha-token"));
        assert!(s.accepts("beta"));
        for wrong in [
            "",
            "alpha",
            "alpha-token2",
            "alpha-tokeN",
            "bet",
            "betabeta",
            "beta ",
        ] {
            assert!(!s.accepts(wrong), "{wrong:?} accepted");
        }
        assert!(!SecurityOptions::default().accepts(""));
    }

    #[test]
    fn public_paths() {
        for p in ["/health", "/docs", "/docs/index.html", "/openapi.json"] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/api/vmcps",
            "/ws",
            "/metrics",
            "/vmcp/x/mcp",
            "/docsx",
            "/healthz",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }
}

//! OAuth at the HTTP layer (docs/oauth.md): the protected-resource metadata of each protected
//! vMCP endpoint (RFC 9728), the bearer check of its requests (401 with the challenge that
//! points clients to the metadata, 403 for missing scopes), the callback of upstream sign-ins,
//! and vMCP's client ID metadata document.
//!
//! Invariant: a protected endpoint accepts only tokens for its own URL (`aud`); the static API
//! tokens are not accepted there (they are not meant for the vMCP's clients), and every other
//! route keeps the static tokens.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use vmcp_gateway::oauth::verify::{Denied, TokenIdentity};
use vmcp_gateway::oauth::{Callback, Protection};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::routes::MessageBody;

/// The origin a request was made to, from its `Host`, when that can be trusted as vMCP's own
/// name: the allowed-hosts guard checked it against a list (not `*`). Forwarded headers are
/// ignored: behind a proxy or TLS, `--public-url` says the origin.
fn request_base(req: &HttpRequest, state: &AppState) -> Option<String> {
    if state.security.allowed_hosts.iter().any(|h| h == "*") {
        return None;
    }
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    // An allowed name with any port is allowed: only this server's own port names it (a
    // token for another service on the same host must not pass for one of ours).
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().ok() != Some(req.app_config().local_addr().port())
    {
        return None;
    }
    Some(format!("http://{host}"))
}

/// How the endpoint of `vmcp` is protected, as seen from this request (whose path is
/// `/vmcp/{vmcp}/...` or the metadata's `/.well-known/oauth-protected-resource/vmcp/{vmcp}/mcp`).
pub fn protection(req: &HttpRequest, state: &AppState, vmcp: &str) -> Option<Protection> {
    // The segment as the client spelled it: its URL is the resource it asks tokens for.
    let path = req.path();
    let rest = path
        .strip_prefix("/.well-known/oauth-protected-resource")
        .unwrap_or(path);
    let raw = rest
        .strip_prefix("/vmcp/")
        .and_then(|r| r.split('/').next());
    state
        .gateway
        .mcp_protection(vmcp, raw, request_base(req, state).as_deref())
}

/// The answer when vMCP cannot tell the URL its clients' tokens must be for.
fn no_resource_url() -> HttpResponse {
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(ErrorBody {
        error: "OAuth is not usable here".into(),
        detail: "this vMCP endpoint requires OAuth, but vMCP cannot tell its own URL (the \
                 tokens' audience): any host name is allowed (--allowed-hosts *) or the request \
                 has no Host. Start vMCP with --public-url (VMCP_PUBLIC_URL)"
            .into(),
    })
}

/// `s` as the content of a quoted string of a challenge (RFC 6750 section 3: printable ASCII
/// without `"` and `\\`; anything else, e.g. from an attacker's `kid`, becomes `?`).
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn challenge(p: &Protection, error: Option<(&str, &str)>, scopes: &[String]) -> String {
    let mut c = format!(r#"Bearer resource_metadata="{}""#, quoted(&p.metadata_url));
    let scopes = if scopes.is_empty() {
        &p.auth.scopes
    } else {
        scopes
    };
    if !scopes.is_empty() {
        c.push_str(&format!(r#", scope="{}""#, quoted(&scopes.join(" "))));
    }
    if let Some((code, description)) = error {
        c.push_str(&format!(
            r#", error="{code}", error_description="{}""#,
            quoted(description)
        ));
    }
    c
}

fn refusal(status: StatusCode, challenge: String, error: &str, detail: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(ErrorBody {
            error: error.into(),
            detail,
        })
}

/// The request's token subject if the endpoint of `vmcp` is protected (`None`: it is not), or
/// the refusal to answer with. Every MCP route of a vMCP calls this first.
pub async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    vmcp: &str,
) -> Result<Option<String>, HttpResponse> {
    match protection(req, state, vmcp) {
        Some(p) => Ok(Some(check(req, state, &p).await?.subject)),
        None => Ok(None),
    }
}

/// Checks the bearer token of a request to a protected endpoint.
async fn check(
    req: &HttpRequest,
    state: &AppState,
    protection: &Protection,
) -> Result<TokenIdentity, HttpResponse> {
    if protection.resources.is_empty() {
        return Err(no_resource_url());
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let Some(token) = token else {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            challenge(protection, None, &[]),
            "unauthorized",
            format!(
                "this vMCP endpoint requires an OAuth access token from {} (send \
                 \"Authorization: Bearer <token>\"; its metadata: {})",
                protection.auth.issuer, protection.metadata_url
            ),
        ));
    };
    match state.gateway.verify_token(&token, protection).await {
        Ok(identity) => Ok(identity),
        Err(Denied::Invalid(why)) => Err(refusal(
            StatusCode::UNAUTHORIZED,
            challenge(protection, Some(("invalid_token", &why)), &[]),
            "unauthorized",
            why,
        )),
        Err(Denied::InsufficientScope(missing)) => {
            let detail = format!("the access token lacks the scope(s) {}", missing.join(", "));
            Err(refusal(
                StatusCode::FORBIDDEN,
                challenge(
                    protection,
                    Some(("insufficient_scope", &detail)),
                    &protection.auth.scopes,
                ),
                "forbidden",
                detail,
            ))
        }
        Err(Denied::Unavailable(why)) => Err(HttpResponse::build(StatusCode::BAD_GATEWAY).json(
            ErrorBody {
                error: "cannot verify the access token".into(),
                detail: why,
            },
        )),
    }
}

/// `GET /.well-known/oauth-protected-resource/vmcp/{vmcp}/mcp` (RFC 9728).
async fn resource_metadata(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let vmcp = path.into_inner();
    let Some(p) = protection(&req, &state, &vmcp) else {
        return HttpResponse::NotFound().json(ErrorBody {
            error: "not found".into(),
            detail: format!(
                "no vMCP {vmcp:?} requires OAuth (the metadata exists for protected endpoints only)"
            ),
        });
    };
    if p.resources.is_empty() {
        return no_resource_url();
    }
    let name = state
        .gateway
        .vmcp_entry(&vmcp)
        .map(|e| e.vmcp.name.clone())
        .unwrap_or(vmcp);
    let mut body = serde_json::json!({
        "resource": p.resources[0],
        "authorization_servers": [p.auth.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": format!("vMCP {name}"),
    });
    if !p.auth.scopes.is_empty() {
        body["scopes_supported"] = serde_json::json!(p.auth.scopes);
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .json(body)
}

/// `GET /oauth/client-metadata.json`: who vMCP is as an OAuth client, for authorization
/// servers that take a Client ID Metadata Document URL as the client id (https only).
async fn client_metadata(state: web::Data<AppState>) -> HttpResponse {
    let options = state.gateway.oauth_options();
    let Some(public) = options
        .public_url
        .as_ref()
        .filter(|u| u.scheme() == "https")
    else {
        return HttpResponse::NotFound().json(ErrorBody {
            error: "not found".into(),
            detail: "vMCP serves a client ID metadata document only at an https --public-url"
                .into(),
        });
    };
    let base = public.as_str().trim_end_matches('/');
    HttpResponse::Ok().json(serde_json::json!({
        "client_id": format!("{base}/oauth/client-metadata.json"),
        "client_name": "vMCP",
        "client_uri": base,
        "redirect_uris": [format!("{base}/api/oauth/callback")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "web",
    }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/oauth-protected-resource/vmcp/{vmcp}/mcp",
        web::get().to(resource_metadata),
    )
    .route(
        "/oauth/client-metadata.json",
        web::get().to(client_metadata),
    );
}

/// What the authorization server sends the browser back with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The sign-in this answers (from the authorization URL).
    pub state: Option<String>,
    /// The authorization server's issuer (RFC 9207); checked when present, and required when
    /// the server says it sends it.
    pub iss: Option<String>,
    /// Set instead of `code` when the sign-in was declined or failed.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Complete an upstream sign-in
///
/// Where the browser comes back after a person signed in at an upstream server's
/// authorization server (the `authorization_url` of a server with status `auth_required`).
/// vMCP exchanges the code (PKCE, the `iss` check), keeps the tokens and connects the server.
/// Open without an API token (browsers carry none): the one-time `state` is the credential.
#[utoipa::path(
    tag = "mcp_servers",
    params(CallbackQuery),
    responses(
        (status = 200, description = "Signed in; the server is connecting (HTML for browsers)", body = MessageBody),
        (status = 400, description = "Unknown, replayed or expired state; a declined sign-in; or a failed code exchange (the detail says which step and why)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/oauth/callback")]
pub async fn oauth_callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let name = state
        .gateway
        .oauth_callback(Callback {
            code: q.code,
            state: q.state,
            iss: q.iss,
            error: q.error,
            error_description: q.error_description,
        })
        .await?;
    let message = format!("Signed in to {name}: vMCP is connecting it. You can close this window.");
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let escaped = message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(format!(
                "<!doctype html><meta charset=utf-8><title>vMCP</title><p>{escaped}</p>"
            )));
    }
    Ok(HttpResponse::Ok().json(MessageBody { message }))
}

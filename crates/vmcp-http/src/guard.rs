//! DNS-rebinding and cross-site protection for every route: the `Host` header must name this
//! server (loopback names, or those given with `--allowed-hosts`), and a request that carries an
//! `Origin` must come from this server's own origin or from a configured CORS origin. The one
//! exception is `GET /health` under any Host, for probes that address a replica by its IP: it
//! answers its status code and `{"status"}` alone.
//!
//! Why every route: with no token (the default), a web page on a rebinding domain sends
//! same-origin requests whose `Host` is the attacker's name; refusing unknown hosts is what keeps
//! such a page from `/api` (which can start commands), `/ws` (which shows every call) and the MCP
//! endpoints. The `Origin` check stops a page on another origin (another local port included)
//! from using the MCP endpoints and `/ws`, which browsers do not protect with CORS.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::AppState;
use crate::auth::SecurityOptions;
use crate::error::ErrorBody;

/// The `Host` names accepted when none are configured: loopback only.
pub fn loopback_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// The host name of an authority (`name`, `name:port`, `[v6]`, `[v6]:port`), without the port.
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => authority,
    }
}

/// Whether an authority names a port (`name:port`, `[v6]:port`).
fn has_port(authority: &str) -> bool {
    host_name(authority).len()
        < authority
            .trim_start_matches('[')
            .trim_end_matches(']')
            .len()
}

/// `Host` and `Origin` checks over the security settings.
impl SecurityOptions {
    /// Whether a `Host` header value names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        let name = name.strip_suffix('.').unwrap_or(name);
        self.allowed_hosts.iter().any(|a| {
            if a == "*" {
                true
            } else if has_port(a) {
                a.eq_ignore_ascii_case(host)
            } else {
                host_name(a).eq_ignore_ascii_case(name)
            }
        })
    }

    /// Whether a request with this `Origin` (and `Host`) may proceed: its own origin, or a
    /// configured one.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self
            .cors_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            // `null` (sandboxed frames, files) and other schemes are never this server.
            return false;
        };
        host.is_some_and(|h| h.eq_ignore_ascii_case(authority.trim_end_matches('/')))
    }
}

fn refuse(error: &str, detail: String) -> HttpResponse {
    HttpResponse::Forbidden().json(ErrorBody {
        error: error.into(),
        detail,
    })
}

/// The middleware: refuses requests for another host, and cross-origin browser requests.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(policy) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.security.clone())
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_string());
    let foreign = host.as_deref().is_some_and(|h| !policy.host_allowed(h));
    // Probes address a replica by its IP (the kubelet sends `Host: POD_IP:PORT`, and so do
    // cloud load balancers' target checks): reading the health check under any Host gets its
    // status code and no more, since a DNS-rebinding page could read the rest.
    let probe = foreign && req.method() == Method::GET && req.path() == "/health";
    if foreign && !probe {
        let host = host.as_deref().unwrap_or_default();
        let detail = format!(
            "this server does not answer to the host {host:?} (protection against DNS \
             rebinding); if clients reach it under that name, add it with --allowed-hosts or \
             VMCP_ALLOWED_HOSTS"
        );
        return Ok(req.into_response(refuse("host not allowed", detail)));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        if !policy.origin_allowed(origin, host.as_deref()) {
            let detail = format!(
                "requests from the web origin {origin:?} are not allowed (protection against \
                 cross-site use); to allow a web application there, add its origin with \
                 --cors-origin or VMCP_CORS_ORIGINS"
            );
            return Ok(req.into_response(refuse("origin not allowed", detail)));
        }
    }
    let response = next.call(req).await?;
    if probe {
        let status = response.status();
        let word = if status.is_success() {
            "ok"
        } else {
            "unavailable"
        };
        return Ok(response.into_response(
            HttpResponse::build(status).json(serde_json::json!({ "status": word })),
        ));
    }
    Ok(response.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], origins: &[&str]) -> SecurityOptions {
        let mut p = SecurityOptions::default();
        p.allowed_hosts.extend(hosts.iter().map(|h| h.to_string()));
        p.cors_origins = origins.iter().map(|h| h.to_string()).collect();
        p
    }

    #[test]
    fn hosts() {
        let p = policy(&["vmcp.example.com", "gw.internal:9000"], &[]);
        for ok in [
            "localhost",
            "localhost:8000",
            "LOCALHOST:1",
            "127.0.0.1:8000",
            "[::1]:8000",
            "[::1]",
            "vmcp.example.com",
            "vmcp.example.com:443",
            "vmcp.example.com.",
            "gw.internal:9000",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8000",
            "gw.internal:9001",
            "gw.internal",
            "[::2]:8000",
            "",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        assert!(policy(&["*"], &[]).host_allowed("anything:1"));
    }

    #[test]
    fn origins() {
        let p = policy(&[], &["https://app.example.com"]);
        assert!(p.origin_allowed("http://localhost:8000", Some("localhost:8000")));
        assert!(p.origin_allowed("https://app.example.com", Some("localhost:8000")));
        assert!(!p.origin_allowed("http://localhost:3000", Some("localhost:8000")));
        assert!(!p.origin_allowed("http://evil.example", Some("localhost:8000")));
        assert!(!p.origin_allowed("null", Some("localhost:8000")));
        assert!(!p.origin_allowed("http://localhost:8000", None));
        assert!(policy(&[], &["*"]).origin_allowed("http://evil.example", Some("x")));
    }
}

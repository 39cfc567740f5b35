//! The dashboard at `/ui`: plain static files (`crates/vmcp-http/ui/`, no build step) embedded in
//! the binary, debug builds included, so it works offline, needs no JavaScript toolchain, and
//! what the tests see is what ships.
//!
//! The files are public (they hold no data); everything they show comes from the API, with the
//! same token as any API client. A strict Content-Security-Policy allows only the dashboard's
//! own scripts, styles and connections.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// What the dashboard's pages may load and connect to: their own origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

async fn to_index() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(to_index))
        .route("/ui", web::head().to(to_index))
        .route("/ui/{file:.*}", web::get().to(asset))
        .route("/ui/{file:.*}", web::head().to(asset));
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let path = match file.as_str() {
        "" => "index.html",
        p => p,
    };
    let Some(found) = Assets::get(path) else {
        return HttpResponse::NotFound().json(crate::error::ErrorBody {
            error: "not found".into(),
            detail: format!("the dashboard has no file {path:?}; open /ui/"),
        });
    };
    let etag = format!(
        "\"{}\"",
        found
            .metadata
            .sha256_hash()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"));
    if fresh {
        return response.finish();
    }
    response
        .content_type(content_type(path))
        .body(found.data.into_owned())
}

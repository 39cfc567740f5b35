//! A JSON body extractor whose errors name the offending field (`mcp_servers[0].priority:
//! invalid type: string "a", expected i32`) and use our error body.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted JSON body of the API, unless a route sets its own `JsonLimit`.
pub const DEFAULT_LIMIT: usize = 1024 * 1024;

/// The body size limit for the routes that carry it as app data.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON request body.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body too large",
        format!("the body must be at most {limit} bytes"),
    )
}

/// The deepest nesting of arrays and objects accepted in a JSON body (REST and MCP): the JSON
/// parser's own bound, checked first so that the refusal says so plainly.
pub const MAX_DEPTH: usize = 127;

/// How deeply arrays and objects nest in a JSON text (strings skipped).
pub fn nesting_depth(body: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses `body` as `T`, naming the path of the first offending value in the error.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid request body",
            "the body is empty: send a JSON object",
        ));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid request body",
            "the body must be a JSON object ({...})",
        ));
    }
    let depth = nesting_depth(body);
    if depth > MAX_DEPTH {
        return Err(ApiError::bad_request(
            "invalid request body",
            format!("the body nests arrays and objects {depth} levels deep; at most {MAX_DEPTH}"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                "malformed JSON",
                format!("the body is not valid JSON: {inner}"),
            )
        } else if path == "." {
            ApiError::bad_request("invalid request body", inner.to_string())
        } else {
            ApiError::bad_request("invalid request body", format!("{path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request(
            "malformed JSON",
            format!("the body is not valid JSON: trailing characters after the object ({e})"),
        )
    })?;
    Ok(value)
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<JsonLimit>>()
            .map(|l| l.0)
            .or_else(|| req.app_data::<JsonLimit>().map(|l| l.0))
            .unwrap_or(DEFAULT_LIMIT);
        let json = is_json(req);
        let declared: Option<usize> = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::bad_request(
                    "unsupported content type",
                    "the body must be JSON: send the header Content-Type: application/json",
                )
                .into());
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large(limit).into());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::bad_request("could not read the body", e.to_string()))?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit).into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Json(parse(&body)?))
        })
    }
}

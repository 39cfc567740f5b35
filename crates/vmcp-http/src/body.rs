//! Request bodies are read before any handler runs, within a time limit and a size limit, so that
//! a client that sends its body slowly (or never finishes it) is cut off instead of holding a
//! connection, a descriptor and a worker's attention forever.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use futures_util::StreamExt;

use crate::error::ErrorBody;

/// The whole body of a request must arrive within this time, by default.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest body of an MCP endpoint request.
pub const MCP_BODY_LIMIT: usize = 4 * 1024 * 1024;

fn limit_for(path: &str) -> usize {
    if path.starts_with("/vmcp/") {
        MCP_BODY_LIMIT
    } else {
        crate::json::DEFAULT_LIMIT
    }
}

fn too_large(limit: usize) -> HttpResponse {
    HttpResponse::PayloadTooLarge()
        .force_close()
        .json(ErrorBody {
            error: "request body too large".into(),
            detail: format!("the body must be at most {limit} bytes"),
        })
}

/// The middleware: reads the body (bounded in time and size), then hands it on.
pub async fn read_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let has_body = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let limit = limit_for(req.path());
    let timeout = req
        .app_data::<web::Data<crate::AppState>>()
        .map_or(BODY_READ_TIMEOUT, |s| s.security.body_read_timeout);
    let declared: Option<usize> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(req.into_response(too_large(limit)));
    }
    let mut payload = req.take_payload();
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if body.len() + chunk.len() > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, String>(Some(body.freeze()))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(Some(body))) => {
            let stream: std::pin::Pin<
                Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, PayloadError>>>,
            > = Box::pin(futures_util::stream::once(async move { Ok(body) }));
            req.set_payload(Payload::from(stream));
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Ok(Ok(None)) => Ok(req.into_response(too_large(limit))),
        Ok(Err(e)) => Ok(
            req.into_response(HttpResponse::BadRequest().force_close().json(ErrorBody {
                error: "could not read the body".into(),
                detail: e,
            })),
        ),
        Err(_) => {
            Ok(req.into_response(
                HttpResponse::RequestTimeout()
                    .force_close()
                    .json(ErrorBody {
                        error: "request body too slow".into(),
                        detail: format!(
                            "the whole body must arrive within {} ms",
                            timeout.as_millis()
                        ),
                    }),
            ))
        }
    }
}

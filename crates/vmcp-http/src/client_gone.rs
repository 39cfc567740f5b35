//! Noticing that an HTTP client went away while its request is being served.
//!
//! actix-web keeps running a handler after its client disconnects. For requests that wait on an
//! upstream MCP server, that would leave the upstream request running for nobody. So each
//! connection keeps a duplicate of its socket, and `until_client_gone` races a handler's work
//! against the socket reaching end-of-file: when the client closes first, the work (and with it
//! the upstream request, which rmcp then cancels) is dropped.

use std::any::Any;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;

/// A duplicate of a connection's socket, in the connection's extensions.
#[derive(Clone)]
struct Socket(Arc<OwnedFd>);

/// `HttpServer::on_connect` hook: remember a duplicate of each TCP connection's socket.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Ok(fd) = tcp.as_fd().try_clone_to_owned()
    {
        ext.insert(Socket(Arc::new(fd)));
    }
}

/// Resolves when the client closes its side of the connection; never, if that cannot be known
/// (or if it sends more data, such as a pipelined request).
async fn client_gone(socket: Option<Socket>) {
    let watch = async {
        let socket = socket?;
        let fd = socket.0.try_clone().ok()?;
        let std = std::net::TcpStream::from(fd);
        std.set_nonblocking(true).ok()?;
        let stream = tokio::net::TcpStream::from_std(std).ok()?;
        let mut byte = [0u8; 1];
        match stream.peek(&mut byte).await {
            Ok(0) | Err(_) => Some(()),
            Ok(_) => None,
        }
    };
    if watch.await.is_none() {
        std::future::pending::<()>().await;
    }
}

/// Runs `work` unless the client of `req` goes away first (then `None`, and `work` is dropped).
pub async fn until_client_gone<T>(req: &HttpRequest, work: impl Future<Output = T>) -> Option<T> {
    let socket = req.conn_data::<Socket>().cloned();
    tokio::select! {
        out = work => Some(out),
        _ = client_gone(socket) => None,
    }
}

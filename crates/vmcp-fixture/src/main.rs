//! `vmcp-fixture`: an MCP server for vMCP's tests and benchmarks.
//!
//! `vmcp-fixture stdio` serves on stdin/stdout; `vmcp-fixture http --port 0` serves streamable
//! HTTP at `/mcp` and the legacy HTTP+SSE transport at `/sse` (messages POSTed to `/message`),
//! and prints `listening on http://HOST:PORT` on stdout. Fault knobs: `--crash-after N`,
//! `--garbage` (non-JSON lines on stdout before serving), `--slow-start-ms N`, `--fail-start`;
//! and careless logging: `--echo-env NAME` (prints a variable on stderr), `--echo-stderr` (the
//! `echo` tool writes its text on stderr).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use vmcp_sse_server::SseSessions;

use vmcp_fixture::server::{Fixture, Options, State};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Stdio,
    Http,
}

#[derive(Debug, Parser)]
#[command(name = "vmcp-fixture", about = "A test MCP server")]
struct Args {
    mode: Mode,
    /// HTTP: address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// HTTP: port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Server name reported in serverInfo.
    #[arg(long, default_value = "fixture")]
    name: String,
    /// Extra tools tool_0..tool_{N-1}.
    #[arg(long, default_value_t = 0)]
    tools: usize,
    /// Exit with status 3 when the (N+1)-th tool call arrives.
    #[arg(long)]
    crash_after: Option<u64>,
    /// Write non-JSON lines to stdout before serving (stdio).
    #[arg(long)]
    garbage: bool,
    /// Wait this long before serving.
    #[arg(long, default_value_t = 0)]
    slow_start_ms: u64,
    /// Print an error on stderr and exit with status 2 instead of serving.
    #[arg(long)]
    fail_start: bool,
    /// Print `NAME=value` of this environment variable on stderr at start (repeatable), as a
    /// careless server prints its configuration.
    #[arg(long, value_name = "NAME")]
    echo_env: Vec<String>,
    /// The `echo` tool also writes its text on stderr.
    #[arg(long)]
    echo_stderr: bool,
}

type Body = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("valid response")
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("--fingerprint") {
        println!("{}", vmcp_fixture::FINGERPRINT);
        return;
    }
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(std::env::var("FIXTURE_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    for name in &args.echo_env {
        let value = std::env::var(name).unwrap_or_default();
        eprintln!("fixture {}: {name}={value}", args.name);
    }
    if args.fail_start {
        eprintln!("fixture {}: failing to start, as asked", args.name);
        std::process::exit(2);
    }
    if args.slow_start_ms > 0 {
        tokio::time::sleep(Duration::from_millis(args.slow_start_ms)).await;
    }
    let state = State::new(Options {
        name: args.name.clone(),
        extra_tools: args.tools,
        crash_after: args.crash_after,
        echo_stderr: args.echo_stderr,
    });
    match args.mode {
        Mode::Stdio => {
            if args.garbage {
                println!("this is not JSON-RPC");
                println!("{{\"neither\": \"is this\"}}");
            }
            let service = Fixture::new(state)
                .serve(rmcp::transport::stdio())
                .await
                .expect("stdio handshake");
            let _ = service.waiting().await;
        }
        Mode::Http => serve_http(&args, state).await,
    }
}

async fn serve_http(args: &Args, state: Arc<State>) {
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("local address");
    println!("listening on http://{addr}");
    let http_state = state.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(Fixture::new(http_state.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let sse = SseSessions::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // As production HTTP servers do: an SSE answer is written in several small pieces, and
        // with Nagle's algorithm a piece waits for the peer's delayed ACK (40 ms).
        let _ = stream.set_nodelay(true);
        let mcp = mcp.clone();
        let sse = sse.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mcp = mcp.clone();
                let sse = sse.clone();
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, mcp, sse, state).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(
    req: Request<Incoming>,
    mcp: StreamableHttpService<Fixture, LocalSessionManager>,
    sse: SseSessions,
    state: Arc<State>,
) -> Response<Body> {
    match (req.method().as_str(), req.uri().path()) {
        (_, "/mcp") => mcp.handle(req).await,
        ("GET", "/sse") => {
            let (_, events) = sse.open(Fixture::new(state), "/message");
            let body = StreamBody::new(events.map(|b| Ok::<_, Infallible>(Frame::data(b))));
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(BodyExt::boxed(body))
                .expect("valid response")
        }
        ("POST", "/message") => {
            let session = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("sessionId="))
                .unwrap_or("")
                .to_string();
            let Ok(body) = req.into_body().collect().await else {
                return text(StatusCode::BAD_REQUEST, "unreadable body");
            };
            match sse.post(&session, &body.to_bytes()).await {
                Ok(()) => text(StatusCode::ACCEPTED, "Accepted"),
                Err(vmcp_sse_server::PostError::UnknownSession(_)) => {
                    text(StatusCode::NOT_FOUND, "unknown session")
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

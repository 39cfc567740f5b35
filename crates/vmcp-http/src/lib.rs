//! The HTTP layer of vMCP on actix-web: the REST API of the reference, its OpenAPI document
//! (`/openapi.json`, `/openapi.yaml`) and Swagger UI (`/docs`, served offline).
//!
//! Architecture invariant: handlers are thin. They extract, call the gateway, and map its
//! results and errors; no business rule lives here. The OpenAPI document is generated from the
//! same registration as the server's routes (`register`), so the two cannot drift.

pub mod auth;
mod body;
mod client_gone;
pub mod error;
pub mod guard;
pub mod json;
pub mod mcp;
pub mod oauth;
pub mod routes;
pub mod seal;
pub mod ui;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, UtoipaApp, scope};
use utoipa_swagger_ui::SwaggerUi;
use vmcp_gateway::Gateway;

use crate::error::RouteTable;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub mcp: Arc<mcp::McpEndpoints>,
    pub security: Arc<auth::SecurityOptions>,
}

impl AppState {
    /// The state of a server without authentication or CORS (see `with_security`).
    pub fn new(gateway: Arc<Gateway>, options: mcp::McpOptions) -> Self {
        Self {
            mcp: Arc::new(mcp::McpEndpoints::new(gateway.clone(), options)),
            gateway,
            security: Arc::default(),
        }
    }

    /// Requires one of `security.tokens` (when any) and allows its CORS origins.
    pub fn with_security(mut self, security: auth::SecurityOptions) -> Self {
        self.security = Arc::new(security);
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vMCP",
        description = "Compose many MCP servers into virtual MCP servers (vMCPs): manage servers and \
                       vMCPs, use their tools, resources and prompts, and watch what happens.\n\n\
                       Every error has the body `{\"error\": \"...\", \"detail\": \"...\"}`: 400 bad \
                       input, 404 unknown resource, 405 wrong method, 409 conflict, 413 body too \
                       large, 502 an MCP server failed, 503 database unavailable, 504 an MCP server timed \
                       out, 500 a bug.",
    ),
    servers((url = "http://localhost:8000", description = "A local vMCP")),
    tags(
        (name = "vmcps", description = "Virtual MCP servers (vMCPs): groups of MCP servers with priorities and configuration"),
        (name = "vmcp operations", description = "A vMCP used as one MCP server: its merged tools, resources and prompts"),
        (name = "mcp_servers", description = "Registered MCP servers (stdio, SSE, streamable HTTP)"),
        (name = "stats", description = "The operation log, its statistics, and metrics"),
        (name = "system", description = "Health"),
    )
)]
struct ApiDoc;

/// Registers every documented route on `app`.
fn register<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: actix_web::dev::ServiceFactory<
            ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
{
    use routes::{operations, servers, stats, system, vmcps};
    app.service(
        scope::scope("/api")
            .service(vmcps::list_vmcps)
            .service(vmcps::create_vmcp)
            .service(vmcps::import_vmcp)
            .service(vmcps::get_vmcp)
            .service(vmcps::update_vmcp)
            .service(vmcps::delete_vmcp)
            .service(vmcps::export_vmcp)
            .service(operations::list_tools)
            .service(operations::search_tools)
            .service(operations::call_tool)
            .service(operations::list_resources)
            .service(operations::read_resource)
            .service(operations::list_prompts)
            .service(operations::get_prompt)
            .service(servers::list_servers)
            .service(servers::create_server)
            .service(servers::get_server)
            .service(servers::update_server)
            .service(servers::delete_server)
            .service(servers::connect_server)
            .service(servers::disconnect_server)
            .service(servers::server_logs)
            .service(stats::stats)
            .service(system::replicas)
            .service(crate::oauth::oauth_callback),
    )
    .service(system::health)
    .service(stats::metrics)
}

/// The OpenAPI document of the API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = register(App::new().into_utoipa_app().openapi(ApiDoc::openapi()))
        .split_for_parts()
        .1;
    document_bearer_auth(&mut api);
    api
}

/// Declares the optional bearer token on every operation but `/health`, and its 401 answer.
fn document_bearer_auth(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    api.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            utoipa::openapi::security::SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Required when the server was started with --api-token or \
                         VMCP_API_TOKENS; without, no authentication.",
                    ))
                    .build(),
            ),
        );
    let unauthorized = ResponseBuilder::new()
        .description("No token, or one the server does not accept (when tokens are configured)")
        .header(
            "WWW-Authenticate",
            utoipa::openapi::header::HeaderBuilder::new()
                .description(Some("Bearer realm=\"vmcp\""))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in api.paths.paths.iter_mut() {
        // Open without a token: the health check, and the sign-in callback (a browser comes
        // back to it with a one-time state, no token).
        if path == "/health" || path == "/api/oauth/callback" {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.security = Some(vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::default(),
            ]);
            op.responses
                .responses
                .insert("401".into(), unauthorized.clone().into());
        }
    }
}

/// The OpenAPI document as YAML, as committed in `openapi.yaml`.
pub fn openapi_yaml() -> String {
    openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}

/// The whole application for one worker.
pub fn app(
    state: AppState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = state.security.cors_origins.clone();
    let (app, api) = register(
        App::new()
            .app_data(web::Data::new(state))
            .app_data(error::path_config())
            .app_data(error::query_config())
            .into_utoipa_app()
            .openapi(ApiDoc::openapi()),
    )
    .split_for_parts();
    let mut api = api;
    document_bearer_auth(&mut api);
    let yaml = api.to_yaml().expect("the OpenAPI document serializes");
    let routes = RouteTable::from_openapi(&api);
    app.app_data(web::Data::new(routes))
        .route(
            "/openapi.yaml",
            web::get().to(move || {
                let yaml = yaml.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/yaml")
                        .body(yaml)
                }
            }),
        )
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api))
        .configure(mcp::routes)
        .configure(oauth::routes)
        .configure(ui::routes)
        .route("/ws", web::get().to(routes::stats::ws))
        .default_service(web::to(error::not_routed))
        .wrap(from_fn(body::read_body))
        .wrap(from_fn(auth::authorize))
        .wrap(from_fn(guard::check))
        .wrap(Condition::new(!cors.is_empty(), auth::cors(&cors)))
        .wrap(from_fn(error::json_errors))
        .wrap(from_fn(trace_requests))
}

async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "vmcp::http", %method, %path, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(target: "vmcp::http", %method, %path, status, elapsed_ms, "request");
    }
    Ok(res)
}

/// A bound, not yet running HTTP server and the addresses it listens on. Run it by awaiting (or
/// spawning) `server`; it stops gracefully on SIGINT/SIGTERM or through its handle.
pub struct Bound {
    pub server: actix_web::dev::Server,
    pub addrs: Vec<std::net::SocketAddr>,
}

/// Binds the API to `addr` (`host:port`; port 0 picks a free one).
pub fn bind(state: AppState, addr: &str, workers: Option<usize>) -> std::io::Result<Bound> {
    bind_inner(state, addr, workers, false)
}

/// Binds like `bind`, and stops gracefully on SIGINT/SIGTERM: `/health` turns 503 (a load
/// balancer takes the replica out) and no new connection is taken (they wait in the socket's
/// queue and are reset at exit, which HAProxy retries on another replica), MCP calls in flight
/// get up to 10 s to finish, then the MCP sessions and their event streams end, and the other
/// requests in flight get up to 10 s. Call within an actix system.
pub fn bind_until_signal(state: AppState, addr: &str) -> std::io::Result<Bound> {
    use tokio::signal::unix::{SignalKind, signal};
    // Listened for before the socket is bound: a signal that arrives once the address is taken
    // (and announced) stops gracefully, never by the default action that ends the process at
    // once.
    let listen = |kind| {
        signal(kind).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen for SIGTERM/SIGINT: {e}"))
        })
    };
    let mut term = listen(SignalKind::terminate())?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mcp = state.mcp.clone();
    let bound = bind_inner(state, addr, None, true)?;
    let handle = bound.server.handle();
    actix_web::rt::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received, stopping"),
            _ = term.recv() => tracing::info!("SIGTERM received, stopping"),
        }
        handle.pause().await;
        mcp.drain(std::time::Duration::from_secs(10)).await;
        mcp.shutdown();
        handle.stop(true).await;
    });
    Ok(bound)
}

/// Every accepted connection: answers leave at once (no Nagle delay: a streamed MCP answer is
/// written in pieces, and a client's delayed ACK would hold each for 40 ms), and the socket is
/// remembered to notice a client that goes away.
fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(e) = tcp.set_nodelay(true)
    {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    client_gone::on_connect(conn, ext);
}

fn bind_inner(
    state: AppState,
    addr: &str,
    workers: Option<usize>,
    own_signals: bool,
) -> std::io::Result<Bound> {
    let mut server = HttpServer::new(move || app(state.clone()))
        .on_connect(on_connect)
        .shutdown_timeout(10);
    if own_signals {
        server = server.disable_signals();
    }
    if let Some(n) = workers {
        server = server.workers(n);
    }
    let server = server.bind(addr)?;
    let addrs = server.addrs();
    Ok(Bound {
        server: server.run(),
        addrs,
    })
}

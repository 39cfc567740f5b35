//! The `vmcp` binary: parses flags, opens the database, starts the gateway and the HTTP server,
//! and shuts them down gracefully on SIGINT/SIGTERM.

mod bridge;

#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vmcp_gateway::{Gateway, GatewayOptions};
use vmcp_http::AppState;
use vmcp_store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "vmcp",
    version,
    about = "Compose many MCP servers into virtual MCP servers"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Bridge stdio to a vMCP's MCP endpoint, for clients that only launch local commands:
    /// `vmcp bridge http://127.0.0.1:8000/vmcp/NAME/mcp`.
    Bridge {
        /// The vMCP's streamable HTTP endpoint.
        url: String,
        /// Extra HTTP headers, "Name: value" (repeatable), e.g. an Authorization bearer token.
        #[arg(long = "header")]
        headers: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (host:port). Loopback by default: whoever reaches the API can make
    /// this machine run commands.
    #[arg(long, env = "VMCP_BIND", default_value = "127.0.0.1:8000")]
    bind: String,
    /// Database: sqlite://PATH, sqlite:///absolute/path or postgres://USER@HOST:PORT/DB
    /// [default: sqlite://$HOME/.vmcp/vmcp.db]
    #[arg(long, env = "VMCP_DATABASE_URL")]
    database_url: Option<String>,
    /// Log filter (tracing syntax), e.g. info, debug, vmcp_gateway=debug,info.
    #[arg(long, env = "VMCP_LOG", default_value = "info,rmcp=warn")]
    log: String,
    /// Host names (or host:port) accepted in the Host header of every request, comma
    /// separated, against DNS rebinding. Loopback names are always accepted; add the names
    /// clients use to reach a non-local deployment, or * to accept any (only behind a proxy
    /// that checks Host itself).
    #[arg(long, env = "VMCP_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// An MCP session (streamable HTTP) unused for this long ends; its client's next request
    /// gets 404 and its SDK opens a new session. Seconds, or a number with s, m, h or d.
    #[arg(long, env = "VMCP_SESSION_IDLE_TIMEOUT", default_value = "24h", value_parser = parse_duration)]
    session_idle_timeout: std::time::Duration,
    /// At most this many MCP sessions are open at once; opening one more ends the least
    /// recently used (with a session key it is only forgotten here: its id still resumes it).
    #[arg(long, env = "VMCP_MAX_SESSIONS", default_value_t = 10_000)]
    max_sessions: usize,
    /// An MCP session unused for this long (no request, no open stream) is released from
    /// memory; its next request resumes it from its sealed id, so it costs nothing meanwhile.
    #[arg(long, env = "VMCP_SESSION_HOLD", default_value = "2m", value_parser = parse_duration)]
    session_hold: std::time::Duration,
    /// The secret that seals MCP session ids (at least 32 characters, e.g. from
    /// `openssl rand -base64 32`). Every replica of a deployment gets the same: each then
    /// resumes the others' sessions. Without one, sessions belong to this process alone, and
    /// vMCP refuses to start beside other live replicas on the same database.
    #[arg(long, env = "VMCP_SESSION_KEY", hide_env_values = true)]
    session_key: Option<String>,
    /// This replica's name among the others on the database (default: host name and port).
    #[arg(long, env = "VMCP_REPLICA_ID")]
    replica_id: Option<String>,
    /// Bearer tokens accepted on /api, /ws, /metrics and the MCP endpoints (comma separated in
    /// the variable; the flag repeats). Without one, no authentication, and only loopback
    /// addresses may be bound.
    #[arg(
        long = "api-token",
        env = "VMCP_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_tokens: Vec<String>,
    /// Listen on a non-loopback address without a token: only when something in front of vMCP
    /// (a reverse proxy, a firewall) decides who reaches it.
    #[arg(long, env = "VMCP_ALLOW_UNAUTHENTICATED")]
    allow_unauthenticated: bool,
    /// Web origins allowed to call the API from a browser (CORS), comma separated, or *.
    /// Unset: CORS off, browsers keep their same-origin rule.
    #[arg(long = "cors-origin", env = "VMCP_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Operation logs older than this many days are deleted (0 keeps them forever).
    #[arg(long, env = "VMCP_LOG_RETENTION_DAYS", default_value_t = 30)]
    log_retention_days: u64,
    /// Keep at most this many operation logs, the newest (unset: no row limit).
    #[arg(long, env = "VMCP_LOG_MAX_ROWS")]
    log_max_rows: Option<u64>,
    /// The URL browsers and MCP clients reach vMCP at, e.g. https://vmcp.example.com: names the
    /// OAuth callback of upstream sign-ins and the resource URLs of protected vMCP endpoints
    /// (unset: http://BIND for the callback, and each request's Host for resources).
    #[arg(long, env = "VMCP_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// Require OAuth access tokens from this issuer on every vMCP endpoint that sets no `auth`
    /// of its own (docs/oauth.md).
    #[arg(long, env = "VMCP_OAUTH_ISSUER")]
    oauth_issuer: Option<String>,
    /// Scopes those tokens must carry (comma separated in the variable; the flag repeats).
    #[arg(long = "oauth-scope", env = "VMCP_OAUTH_SCOPES", value_delimiter = ',')]
    oauth_scopes: Vec<String>,
}

/// `90`, `90s`, `15m`, `8h`, `2d`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write 90, 90s, 15m, 8h or 2d"))?;
    let seconds = match unit.trim() {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    if seconds == 0 {
        return Err("the duration must be at least one second".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// `HOST:PORT`: unique among replicas on distinct machines or ports, and the same again when a
/// replica restarts (so its old row is its own); with port 0, `HOST:pid-PID`.
fn default_replica_id(bind: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "vmcp".into());
    match bind.rsplit(':').next().unwrap_or("") {
        "0" | "" => format!("{host}:pid-{}", std::process::id()),
        port => format!("{host}:{port}"),
    }
}

/// The OAuth settings of the flags, checked.
fn oauth_options(args: &ServeArgs) -> anyhow::Result<vmcp_gateway::oauth::OAuthOptions> {
    if let Some(u) = &args.public_url
        && (!matches!(u.scheme(), "http" | "https") || u.host().is_none())
    {
        anyhow::bail!("--public-url / VMCP_PUBLIC_URL must be an http(s) URL, not {u}");
    }
    let host = match args.bind.rsplit_once(':') {
        Some((h, p)) if h == "0.0.0.0" || h == "[::]" => format!("127.0.0.1:{p}"),
        _ => args.bind.clone(),
    };
    let fallback_url = url::Url::parse(&format!("http://{host}"))
        .with_context(|| format!("{} is not an address for a URL", args.bind))?;
    let default_auth = match &args.oauth_issuer {
        Some(issuer) => {
            let auth = vmcp_domain::VmcpAuth {
                kind: vmcp_domain::AuthType::Oauth,
                issuer: issuer.clone(),
                scopes: args
                    .oauth_scopes
                    .iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            };
            auth.validate("--oauth-issuer")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(auth)
        }
        None if !args.oauth_scopes.is_empty() => {
            anyhow::bail!("--oauth-scope needs --oauth-issuer (the issuer of the tokens)")
        }
        None => None,
    };
    Ok(vmcp_gateway::oauth::OAuthOptions {
        public_url: args.public_url.clone(),
        fallback_url,
        default_auth,
    })
}

fn default_database_url() -> String {
    let base = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    format!("sqlite://{}", base.join(".vmcp").join("vmcp.db").display())
}

fn main() -> anyhow::Result<()> {
    // Freed memory goes back to the system in the background (by jemalloc's decay), also when
    // the threads that freed it stay idle: released sessions stop costing memory.
    #[cfg(all(target_os = "linux", not(target_env = "musl")))]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("vmcp: cannot start jemalloc's background thread: {e}");
    }
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::Bridge { url, headers }) => return bridge::run(url, headers),
        None => cli.serve,
    };
    serve(args)
}

/// Refuses a non-loopback address without a token, unless told that this is intended.
fn check_exposure(args: &ServeArgs, tokens: &[String]) -> anyhow::Result<()> {
    use std::net::ToSocketAddrs;
    if !tokens.is_empty() || args.allow_unauthenticated {
        return Ok(());
    }
    let addrs: Vec<std::net::SocketAddr> = match args.bind.to_socket_addrs() {
        Ok(a) => a.collect(),
        // Left to the bind itself to report.
        Err(_) => return Ok(()),
    };
    if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "refusing to listen on {} ({}) without an API token: anyone who can reach it could \
             make this machine run commands. Set a token with --api-token or VMCP_API_TOKENS \
             (clients then send \"Authorization: Bearer <token>\"), or listen on 127.0.0.1, or, \
             if a reverse proxy or firewall in front of vMCP decides who reaches it, pass \
             --allow-unauthenticated (VMCP_ALLOW_UNAUTHENTICATED=true)",
            args.bind,
            open.ip()
        );
    }
    Ok(())
}

/// Raises the open-files limit to what the system allows: every client connection, upstream
/// connection and stdio pipe is a descriptor, and the usual soft limit (1024) is low for a gateway.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let wanted = hard.min(1 << 20);
        if wanted > soft {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, wanted, hard);
        }
    }
}

/// Orphans of upstream processes (a helper whose parent exited) are re-parented to this
/// process, a child subreaper, instead of init: their exits are reaped here, and whatever is
/// left at shutdown is ended, so that nothing an MCP server started outlives vMCP.
fn adopt_orphans() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("cannot become a child subreaper ({e}): orphans of MCP servers go to init");
    }
}

/// Reaps adopted orphans that have exited.
fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    for (pid, zombie) in vmcp_transport::proctree::adopted_orphans() {
        if zombie {
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Ends every adopted orphan still alive, then reaps them.
async fn end_orphans() {
    let live: Vec<i32> = vmcp_transport::proctree::adopted_orphans()
        .into_iter()
        .filter(|(_, zombie)| !zombie)
        .map(|(pid, _)| pid)
        .collect();
    if !live.is_empty() {
        tracing::info!(
            count = live.len(),
            "ending processes that MCP servers left behind"
        );
        vmcp_transport::proctree::end_all(&live, std::time::Duration::from_secs(2)).await;
    }
    reap_orphans();
}

/// The tracing filter for `--log`. rmcp's debug and trace events dump whole messages, arguments
/// after substitution (so secrets) included: only a filter that names rmcp itself gets them.
/// Otherwise rmcp logs at the filter's default level, but never more than info (`--log warn`
/// must not print rmcp's line per notification received).
fn log_filter(log: &str) -> String {
    use tracing_subscriber::filter::LevelFilter;
    if log.contains("rmcp") {
        return log.to_string();
    }
    // The default level is the directive that names no target (the last one wins); none: off.
    let default = log
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('=') && !d.contains('['))
        .filter_map(|d| d.parse::<LevelFilter>().ok())
        .next_back()
        .unwrap_or(LevelFilter::OFF);
    let rmcp = default.min(LevelFilter::INFO);
    format!("{log},rmcp={}", rmcp.to_string().to_lowercase())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
    let tokens: Vec<String> = args
        .api_tokens
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
        anyhow::bail!(
            "an API token must be at least 16 characters (one has {}); generate one with \
             `openssl rand -hex 32`",
            short.len()
        );
    }
    check_exposure(&args, &tokens)?;
    let filter = log_filter(&args.log);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .with_context(|| format!("invalid log filter {:?}", args.log))?,
        )
        .init();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting vMCP");
    adopt_orphans();
    if tokens.is_empty() {
        tracing::info!("no API token: every client that reaches the address is trusted");
    } else {
        tracing::info!(
            tokens = tokens.len(),
            "API tokens required on /api, /ws, /metrics and the MCP endpoints"
        );
    }

    let session_key = match args.session_key.as_deref() {
        Some(secret) => vmcp_http::seal::SessionKey::from_secret(secret)
            .map_err(|e| anyhow::anyhow!("VMCP_SESSION_KEY: {e}"))?,
        None => vmcp_http::seal::SessionKey::random(),
    };
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(default_database_url);
    let store = Store::open(&url).with_context(|| "cannot open the database")?;
    tracing::info!(database = %store.url().display(), "database ready");

    // Upstream connections live on their own multi-thread runtime, independent of the HTTP
    // workers' runtimes, for the whole life of the process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vmcp-gateway")
        .enable_all()
        .build()
        .context("cannot start the gateway runtime")?;
    let gateway = {
        let _guard = runtime.enter();
        let mut options = GatewayOptions::default();
        options.logs.max_age = (args.log_retention_days > 0)
            .then(|| std::time::Duration::from_secs(args.log_retention_days * 24 * 3600));
        options.logs.max_rows = args.log_max_rows;
        options.oauth = oauth_options(&args)?;
        options.replica = vmcp_gateway::cluster::ReplicaOptions {
            id: args
                .replica_id
                .clone()
                .unwrap_or_else(|| default_replica_id(&args.bind)),
            key_fingerprint: session_key.fingerprint().to_string(),
            shared_key: session_key.is_configured(),
        };
        Gateway::start(store, options, runtime.handle().clone())
            .context("cannot start the gateway")?
    };
    runtime.spawn(async {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            every.tick().await;
            reap_orphans();
        }
    });

    let served = actix_web::rt::System::new().block_on(async {
        let mcp = vmcp_http::mcp::McpOptions {
            session_idle_timeout: args.session_idle_timeout,
            max_sessions: args.max_sessions,
            session_hold: args.session_hold,
            session_key: session_key.clone(),
        };
        let mut security = vmcp_http::auth::SecurityOptions {
            tokens: tokens.clone(),
            cors_origins: args
                .cors_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            ..Default::default()
        };
        security.allowed_hosts.extend(
            args.allowed_hosts
                .iter()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
        );
        let state = AppState::new(gateway.clone(), mcp).with_security(security);
        let bound = vmcp_http::bind_until_signal(state, &args.bind).with_context(|| {
            format!(
                "cannot listen on {}: choose another address with --bind or VMCP_BIND",
                args.bind
            )
        })?;
        for addr in &bound.addrs {
            tracing::info!("listening on http://{addr} (API at /api, docs at /docs)");
        }
        bound.server.await.context("HTTP server failed")?;
        anyhow::Ok(())
    });
    tracing::info!("stopping MCP server connections");
    runtime.block_on(gateway.shutdown());
    runtime.block_on(end_orphans());
    drop(gateway);
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    served?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn rmcp_logs_at_the_default_level_never_above_info() {
        assert_eq!(log_filter("warn"), "warn,rmcp=warn");
        assert_eq!(log_filter("error"), "error,rmcp=error");
        assert_eq!(log_filter("info"), "info,rmcp=info");
        assert_eq!(log_filter("debug"), "debug,rmcp=info");
        assert_eq!(log_filter("trace"), "trace,rmcp=info");
        assert_eq!(
            log_filter("vmcp_gateway=debug,warn"),
            "vmcp_gateway=debug,warn,rmcp=warn"
        );
        assert_eq!(
            log_filter("vmcp_gateway=debug"),
            "vmcp_gateway=debug,rmcp=off"
        );
        assert_eq!(log_filter("info,rmcp=trace"), "info,rmcp=trace");
        for log in ["warn", "vmcp_gateway=debug", "info,rmcp=trace"] {
            tracing_subscriber::EnvFilter::try_new(log_filter(log)).expect(log);
        }
    }
}

//! The `vmcp` binary as a user runs it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Running, post_ok, register_vmcp, run_to_exit};

use vmcp_fixture::harness::processes_with;
use vmcp_store::testing::TestDatabase;

fn serves_on(db: &TestDatabase) {
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0"],
        &[("VMCP_DATABASE_URL", db.url())],
    );
    let line = vmcp.wait_for("database ready");
    assert!(line.contains(db.backend().as_str()), "{line}");
    let base = vmcp.base();
    let client = reqwest::blocking::Client::new();
    let health: serde_json::Value = client
        .get(format!("{base}/health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["database"], db.backend().as_str());
    let r = client
        .post(format!("{base}/api/vmcps"))
        .json(&serde_json::json!({"name": "from the binary"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let status = vmcp.terminate();
    assert!(
        status.success(),
        "SIGTERM is a graceful, successful stop: {status}"
    );
    // What it stored is there for the next start.
    assert_eq!(db.open().list_vmcps().unwrap()[0].name, "from the binary");
}

#[test]
fn serves_on_every_backend_and_stops_gracefully() {
    for db in TestDatabase::all() {
        serves_on(&db);
    }
}

#[test]
fn the_default_database_is_created_under_home_and_its_path_printed() {
    let home = tempfile::tempdir().unwrap();
    let mut vmcp = Running::start(
        &["serve", "--bind", "127.0.0.1:0"],
        &[("HOME", home.path().to_str().unwrap())],
    );
    let expected = home.path().join(".vmcp/vmcp.db");
    let line = vmcp.wait_for("database ready");
    assert!(line.contains(&expected.display().to_string()), "{line}");
    let base = vmcp.base();
    let r = reqwest::blocking::get(format!("{base}/health")).unwrap();
    assert_eq!(r.status(), 200);
    assert!(expected.is_file());
    assert!(vmcp.terminate().success());
}

/// An orchestrator may stop a replica the moment it has started (a rollout superseded, a scale
/// down): SIGTERM right after "listening" is a graceful stop, not the signal's default action.
#[test]
fn sigterm_right_after_listening_is_a_graceful_stop() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/v.db", dir.path().display());
        let mut vmcp = Running::start(&["--bind", "127.0.0.1:0"], &[("VMCP_DATABASE_URL", &url)]);
        vmcp.base();
        let status = vmcp.terminate();
        assert!(status.success(), "{status}: {}", vmcp.seen.join("\n"));
    }
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vmcp"))
        .args(["--bind", &addr])
        .env(
            "VMCP_DATABASE_URL",
            format!("sqlite://{}/v.db", dir.path().display()),
        )
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr}: choose another address with --bind or VMCP_BIND"
        )),
        "{stderr}"
    );
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcp"))
        .args(["--database-url", "mysql://nope"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsupported database URL \"mysql://nope\""),
        "{stderr}"
    );
}

#[test]
fn sigterm_ends_every_upstream_process_and_they_reconnect_on_the_next_start() {
    let db = TestDatabase::sqlite();
    let start = || {
        Running::start(
            &["--bind", "127.0.0.1:0"],
            &[("VMCP_DATABASE_URL", db.url())],
        )
    };
    let mut vmcp = start();
    let base = vmcp.base();
    let client = reqwest::blocking::Client::new();
    let mut pgids = Vec::new();
    for name in ["one", "two"] {
        let r: serde_json::Value = client
            .post(format!("{base}/api/mcp-servers"))
            .json(&serde_json::json!({"name": name, "transport_type": "stdio",
                                      "config": vmcp_fixture::harness::stdio_config(name, &[])}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let id = r["server_id"].as_str().unwrap().to_string();
        let r = client
            .post(format!("{base}/api/mcp-servers/{id}/connect"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let vmcp: serde_json::Value = client
            .post(format!("{base}/api/vmcps"))
            .json(&serde_json::json!({"name": format!("v-{name}"), "mcp_servers": [{"server_id": id}]}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let result: serde_json::Value = client
            .post(format!(
                "{base}/api/vmcps/{}/tools/call",
                vmcp["vmcp_id"].as_str().unwrap()
            ))
            .json(&serde_json::json!({"name": format!("{name}.whoami")}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        pgids.push(result["structuredContent"]["pid"].as_u64().unwrap() as u32);
    }
    assert_eq!(
        vmcp_fixture::harness::processes_in_groups(&pgids).len(),
        2,
        "both servers run"
    );
    assert!(vmcp.terminate().success());
    let left = vmcp_fixture::harness::wait_groups_gone(&pgids, Duration::from_secs(5));
    assert!(left.is_empty(), "left behind: {left:?}");

    // They were connected: the next start connects them again.
    let mut vmcp = start();
    let base = vmcp.base();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let servers: serde_json::Value = reqwest::blocking::get(format!("{base}/api/mcp-servers"))
            .unwrap()
            .json()
            .unwrap();
        let statuses: Vec<&str> = servers
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        if statuses == ["connected", "connected"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not reconnected: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(vmcp.terminate().success());
}

#[test]
fn the_bridge_serves_a_vmcp_over_stdio() {
    let db = TestDatabase::sqlite();
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0"],
        &[("VMCP_DATABASE_URL", db.url())],
    );
    let base = vmcp.base();
    let client = reqwest::blocking::Client::new();
    let server: serde_json::Value = client
        .post(format!("{base}/api/mcp-servers"))
        .json(&serde_json::json!({"name": "fx", "transport_type": "stdio",
                                  "config": vmcp_fixture::harness::stdio_config("fx", &[])}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let r = client
        .post(format!("{base}/api/vmcps"))
        .json(&serde_json::json!({"name": "desk", "mcp_servers": [{"server_id": server["server_id"]}]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    // The bridge is an MCP server over stdio, as a desktop client would launch it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config: vmcp_domain::ServerConfig = serde_json::from_value(serde_json::json!({
            "command": env!("CARGO_BIN_EXE_vmcp"),
            "args": ["bridge", format!("{base}/vmcp/desk/mcp")]
        }))
        .unwrap();
        let log = vmcp_transport::LogBuffer::default();
        let upstream = vmcp_transport::connect(
            vmcp_domain::TransportType::Stdio,
            &config,
            None,
            std::sync::Arc::new(NoRequests),
            &log,
        )
        .await
        .expect("the bridge speaks MCP");
        assert_eq!(upstream.info().server_info.as_ref().unwrap().name, "desk");
        let tools = upstream.peer().list_all_tools().await.unwrap();
        assert!(tools.iter().any(|t| t.name == "fx.echo"));
        let mut params = rmcp::model::CallToolRequestParams::new("fx.echo");
        params.arguments = serde_json::json!({"text": "through the bridge"})
            .as_object()
            .cloned();
        let result = upstream.peer().call_tool(params).await.unwrap();
        assert_eq!(
            serde_json::to_value(&result.content).unwrap()[0]["text"],
            "through the bridge"
        );
        upstream.shutdown().await;
    });
    assert!(vmcp.terminate().success());
}

/// Runs `vmcp bridge URL` with `input` on stdin; returns its exit status and stderr, or fails
/// the test if it is still running after 20 s (the bridge used to hang there forever).
fn bridge_with_input(url: &str, input: &[u8]) -> (std::process::ExitStatus, String) {
    use std::io::{Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmcp"))
        .args(["bridge", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the bridge did not exit after its input ended ({input:?})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_bridge_exits_on_end_of_input_and_on_garbage() {
    let db = TestDatabase::sqlite();
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0"],
        &[("VMCP_DATABASE_URL", db.url())],
    );
    let base = vmcp.base();
    let url = format!("{base}/vmcp/nothing/mcp");
    // End of input before any message (`true | vmcp bridge URL`).
    let (status, err) = bridge_with_input(&url, b"");
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("standard input closed"), "{err}");
    // End of input in the middle of the handshake.
    let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, err) = bridge_with_input(&url, &[&init[..], b"\n"].concat());
    assert!(
        err.contains("standard input closed") || !status.success(),
        "{err}"
    );
    // A line that is not JSON-RPC.
    let (status, err) = bridge_with_input(&url, b"hello there\n");
    assert!(!status.success());
    assert!(
        err.contains("line 1 of standard input is not a JSON-RPC message"),
        "{err}"
    );
    assert!(vmcp.terminate().success());
}

struct NoRequests;

impl vmcp_transport::UpstreamObserver for NoRequests {
    fn notification(&self, _: rmcp::model::ServerNotification) {}
    fn request(
        &self,
        _: rmcp::model::ServerRequest,
        _: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> futures::future::BoxFuture<
        'static,
        Result<rmcp::model::ClientResult, rmcp::model::ErrorData>,
    > {
        Box::pin(async {
            Err(rmcp::model::ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                "no",
                None,
            ))
        })
    }
}

/// POSTs `body` as JSON to `base` + `path`; asserts the status and returns the JSON answer.
#[track_caller]
#[test]
fn a_public_address_without_a_token_is_refused_with_what_to_do() {
    let (ok, stderr) = run_to_exit(&["--bind", "0.0.0.0:0"], &[]);
    assert!(!ok);
    for needed in [
        "refusing to listen on 0.0.0.0:0 (0.0.0.0) without an API token",
        "--api-token or VMCP_API_TOKENS",
        "--allow-unauthenticated",
    ] {
        assert!(stderr.contains(needed), "{needed:?} not in {stderr}");
    }
    let (ok, stderr) = run_to_exit(&["--bind", "0.0.0.0:0", "--api-token", "short"], &[]);
    assert!(!ok);
    assert!(stderr.contains("at least 16 characters"), "{stderr}");

    // With a token (flag or variable), or when told explicitly, it serves.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/v.db", dir.path().display());
    for (args, env) in [
        (
            vec!["--bind", "0.0.0.0:0", "--api-token", "0123456789abcdef0123"],
            vec![],
        ),
        (
            vec!["--bind", "0.0.0.0:0"],
            vec![(
                "VMCP_API_TOKENS",
                "0123456789abcdef0123,another-token-of-16",
            )],
        ),
        (
            vec!["--bind", "0.0.0.0:0", "--allow-unauthenticated"],
            vec![],
        ),
        (
            vec!["--bind", "0.0.0.0:0"],
            vec![("VMCP_ALLOW_UNAUTHENTICATED", "true")],
        ),
    ] {
        let mut env = env;
        env.push(("VMCP_DATABASE_URL", db.as_str()));
        let mut vmcp = Running::start(&args, &env);
        let base = vmcp.base().replace("0.0.0.0", "127.0.0.1");
        let r = reqwest::blocking::get(format!("{base}/health")).unwrap();
        assert_eq!(r.status(), 200, "{args:?} {env:?}");
        let r = reqwest::blocking::get(format!("{base}/api/vmcps")).unwrap();
        let expected = if args.contains(&"--allow-unauthenticated")
            || env.iter().any(|(k, _)| *k == "VMCP_ALLOW_UNAUTHENTICATED")
        {
            200
        } else {
            401
        };
        assert_eq!(r.status(), expected, "{args:?} {env:?}");
        assert!(vmcp.terminate().success());
    }
}

#[test]
fn secrets_never_reach_the_server_log_even_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/v.db", dir.path().display());
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0", "--log", "trace"],
        &[("VMCP_DATABASE_URL", db.as_str())],
    );
    let base = vmcp.base();
    let client = reqwest::blocking::Client::new();
    let mut config = vmcp_fixture::harness::stdio_config("keeper", &[]);
    config["env"] = serde_json::json!({"KEEPER_API_KEY": "env-secret-0001"});
    let (_, vmcp_id) = register_vmcp(
        &client,
        &base,
        "keeper",
        config,
        serde_json::json!({"api_key": "config-secret-0002"}),
    );
    let r = client
        .post(format!("{base}/api/vmcps/{vmcp_id}/tools/call"))
        .json(&serde_json::json!({"name": "keeper.echo",
                                  "arguments": {"text": "@config:api_key"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["content"][0]["text"], "config-secret-0002");
    // The operation log shows neither (the caller's argument, the result scrubbed).
    let r = client
        .get(format!("{base}/api/stats"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!r.contains("secret-000"), "{r}");
    assert!(vmcp.terminate().success());
    let seen = vmcp.seen.join("\n");
    assert!(
        seen.contains("TRACE") || seen.contains("DEBUG"),
        "not at debug: {seen}"
    );
    for secret in ["env-secret-0001", "config-secret-0002"] {
        assert!(
            !seen.contains(secret),
            "{secret} in the server log:\n{seen}"
        );
    }
}

/// Raises this test process's open-files limit (a thousand client sockets).
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard > soft {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
}

#[test]
fn sigterm_during_a_thousand_calls_logs_every_completed_call_and_leaves_no_process() {
    const CALLS: usize = 1000;
    raise_open_files_limit();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/v.db", dir.path().display());
    let start = || {
        Running::start(
            &["--bind", "127.0.0.1:0"],
            &[("VMCP_DATABASE_URL", db.as_str())],
        )
    };
    let mut vmcp = start();
    let base = vmcp.base();
    let client = reqwest::blocking::Client::new();
    let mut config = vmcp_fixture::harness::stdio_config("busy", &[]);
    config["max_concurrent_calls"] = serde_json::json!(CALLS);
    config["timeout_seconds"] = serde_json::json!(30);
    let (sid, vid) = register_vmcp(&client, &base, "busy", config, serde_json::json!({}));
    post_ok(
        &client,
        format!("{base}/api/mcp-servers/{sid}/connect"),
        serde_json::json!({}),
        200,
    );
    let call_url = format!("{base}/api/vmcps/{vid}/tools/call");
    let whoami: serde_json::Value = client
        .post(&call_url)
        .json(&serde_json::json!({"name": "busy.whoami"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pgid = whoami["structuredContent"]["pid"].as_u64().unwrap() as u32;

    // A thousand calls that each take 1.5 s upstream; SIGTERM while they are in flight.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pid = vmcp.child.id().to_string();
    let completed = runtime.block_on(async {
        let client = reqwest::Client::new();
        let calls: Vec<_> = (0..CALLS)
            .map(|i| {
                let client = client.clone();
                let url = call_url.clone();
                tokio::spawn(async move {
                    let r = client
                        .post(url)
                        .header("x-client-id", "load")
                        .json(&serde_json::json!({"name": "busy.sleep", "arguments": {"ms": 1500}}))
                        .send()
                        .await
                        .ok()?;
                    let ok = r.status() == 200;
                    let body: serde_json::Value = r.json().await.ok()?;
                    (ok && body["content"][0]["text"].is_string()).then_some(i)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(900)).await;
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut completed = 0;
        for c in calls {
            if c.await.unwrap().is_some() {
                completed += 1;
            }
        }
        completed
    });
    let status = vmcp.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let left = vmcp_fixture::harness::wait_groups_gone(&[pgid], Duration::from_secs(5));
    assert!(left.is_empty(), "left behind: {left:?}");

    // Every call that completed for its client is in the log, after a restart.
    let mut vmcp = start();
    let base = vmcp.base();
    let stats: serde_json::Value = reqwest::blocking::get(format!(
        "{base}/api/stats?client_id=load&method=tools/call&page_size=1"
    ))
    .unwrap()
    .json()
    .unwrap();
    let logged = stats["stats"]["total_logs"].as_u64().unwrap();
    let failed = stats["stats"]["failed"].as_u64().unwrap();
    eprintln!(
        "SIGTERM with {CALLS} calls sent: {completed} completed for their clients, {logged} logged ({failed} failed)"
    );
    assert!(
        completed > CALLS / 2,
        "only {completed} of {CALLS} completed"
    );
    assert_eq!(logged - failed, completed as u64, "{stats}");
    assert!(vmcp.terminate().success());
}

/// A TCP proxy to Postgres that the test can take down (every connection cut, the port closed)
/// and bring back on the same port: the database "stopped" and "restarted" as vMCP sees it.
struct Outage {
    port: u16,
    target: std::net::SocketAddr,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Outage {
    fn new(target: std::net::SocketAddr) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut proxy = Self {
            port,
            target,
            running: Default::default(),
            conns: Default::default(),
            accept: None,
        };
        proxy.up();
        proxy
    }

    fn up(&mut self) {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.running.store(true, Ordering::SeqCst);
        let (running, conns, target) = (self.running.clone(), self.conns.clone(), self.target);
        self.accept = Some(std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = std::net::TcpStream::connect(target) else {
                            continue;
                        };
                        let mut list = conns.lock().unwrap();
                        list.push(client.try_clone().unwrap());
                        list.push(server.try_clone().unwrap());
                        for (mut from, mut to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    fn down(&mut self) {
        self.running
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            t.join().unwrap();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn a_database_outage_under_load_keeps_calls_going_and_heals_by_itself() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let mut url = url::Url::parse(db.url()).unwrap();
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(
        url.host_str().unwrap().to_string(),
        url.port().unwrap_or(5432),
    ))
    .unwrap()
    .next()
    .unwrap();
    let mut outage = Outage::new(target);
    url.set_port(Some(outage.port)).unwrap();
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0"],
        &[("VMCP_DATABASE_URL", url.as_str())],
    );
    let base = vmcp.base();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (_, vid) = register_vmcp(
        &client,
        &base,
        "steady",
        vmcp_fixture::harness::stdio_config("steady", &[]),
        serde_json::json!({}),
    );
    let call = |i: usize| {
        let r = client
            .post(format!("{base}/api/vmcps/{vid}/tools/call"))
            .json(
                &serde_json::json!({"name": "steady.echo", "arguments": {"text": format!("n{i}")}}),
            )
            .send()
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(status, 200, "call {i}: {body}");
        assert_eq!(body["content"][0]["text"], format!("n{i}"));
    };
    for i in 0..20 {
        call(i);
    }

    // The database goes away: calls go on, management answers 503 with the usual body.
    outage.down();
    let mut during = 0;
    for i in 20..220 {
        call(i);
        during += 1;
    }
    for (method, path) in [("GET", "/api/vmcps"), ("POST", "/api/vmcps")] {
        let r = client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .json(&serde_json::json!({"name": "during"}))
            .send()
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(status, 503, "{method} {path}: {body}");
        assert_eq!(body["error"], "database unavailable", "{body}");
    }
    for i in 220..240 {
        call(i);
        during += 1;
    }

    // It comes back: vMCP heals without a restart.
    outage.up();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(format!("{base}/api/vmcps")).send().unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not healed: {}",
            r.status()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = client
        .post(format!("{base}/api/vmcps"))
        .json(&serde_json::json!({"name": "after"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    for i in 240..260 {
        call(i);
    }
    // The log recovers too: the calls after the outage are written; those the writer could not
    // write while the database was away are counted as dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats: serde_json::Value = client
            .get(format!("{base}/api/stats?method=tools/call&page_size=100"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let texts: Vec<String> = stats["logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["arguments"]["text"].as_str().map(String::from))
            .collect();
        let accounted = stats["stats"]["total_logs"].as_u64().unwrap()
            + stats["stats"]["dropped_logs"].as_u64().unwrap();
        if texts.contains(&"n259".to_string()) && accounted >= 260 {
            break stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "calls after the outage not logged: {stats}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let logged = stats["stats"]["total_logs"].as_u64().unwrap();
    let dropped = stats["stats"]["dropped_logs"].as_u64().unwrap();
    // The same figure from the rows themselves (a bound that is not a whole day).
    let rows: serde_json::Value = client
        .get(format!(
            "{base}/api/stats?method=tools/call&page_size=1&start_date=2000-01-01T00:00:01Z"
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        rows["stats"]["total_logs"], logged,
        "rows and daily counts disagree"
    );
    eprintln!(
        "database outage: {during} calls served while it was down; 260 calls in all, {logged} logged, {dropped} dropped"
    );
    assert_eq!(logged + dropped, 260, "{}", stats["stats"]);
    assert!(vmcp.terminate().success());
}

#[test]
fn orphans_of_an_upstream_are_adopted_and_ended_at_shutdown() {
    let db = TestDatabase::sqlite();
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0"],
        &[("VMCP_DATABASE_URL", db.url())],
    );
    let base = vmcp.base();
    let fixture = vmcp_fixture::harness::stdio_config("orph", &[]);
    let marker = format!("301.{}", std::process::id());
    // A double fork: the subshell exits at once, so its helper has no parent left in the
    // server's tree (and a session of its own).
    let script = format!(
        "(setsid sleep {marker} &) ; exec {} stdio --name orph",
        fixture["command"].as_str().unwrap()
    );
    let client = reqwest::blocking::Client::new();
    let server: serde_json::Value = client
        .post(format!("{base}/api/mcp-servers"))
        .json(
            &serde_json::json!({"name": "orph", "transport_type": "stdio",
                                  "config": {"command": "sh", "args": ["-c", script]}}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = server["server_id"].as_str().unwrap();
    let r = client
        .post(format!("{base}/api/mcp-servers/{id}/connect"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let orphan = loop {
        if let Some(&(pid, ppid)) = processes_with(&marker).first()
            && ppid != 1
            && processes_with(&format!("-c (setsid sleep {marker}")).is_empty()
        {
            break (pid, ppid);
        }
        assert!(std::time::Instant::now() < deadline, "no adopted helper");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        orphan.1,
        vmcp.child.id() as i32,
        "the orphan was adopted by vmcp"
    );
    assert!(vmcp.terminate().success());
    assert!(
        processes_with(&marker).is_empty(),
        "an orphan of an upstream outlived vmcp: {:?}",
        processes_with(&marker)
    );
}

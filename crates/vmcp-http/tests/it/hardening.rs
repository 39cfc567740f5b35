//! Attacks on a running server, each as an adversary (or a careless client) would make it:
//! DNS rebinding, cross-site pages, malformed MCP messages, slow bodies, sessions that end with
//! calls in flight, idle and surplus sessions.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vmcp_fixture::harness;
use vmcp_store::testing::TestDatabase;

use crate::mcp::team;
use crate::support::{TestApp, assert_error};

const ACCEPT: &str = "application/json, text/event-stream";

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

/// The JSON-RPC messages in an answer (plain JSON, or the `data:` lines of an SSE stream).
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

/// A streamable HTTP session opened by hand, as the simplest client would.
struct Raw {
    http: reqwest::Client,
    url: String,
    session: String,
}

impl Raw {
    async fn open(url: &str) -> Self {
        let http = reqwest::Client::new();
        let r = http
            .post(url)
            .header("accept", ACCEPT)
            .json(&init_body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let _ = r.text().await;
        let raw = Self {
            http,
            url: url.to_string(),
            session,
        };
        let r = raw
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        raw
    }

    async fn post(&self, body: Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("accept", ACCEPT)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn list_tools(&self) -> StatusCode {
        let r = self
            .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .await;
        let status = r.status();
        let body = r.text().await.unwrap();
        if status == StatusCode::OK {
            assert!(body.contains("alpha.echo"), "{body}");
        } else {
            let m = &messages(&body)[0];
            assert_eq!(m["error"]["code"], -32001, "{body}");
        }
        status
    }
}

#[actix_web::test]
async fn dns_rebinding_reaches_no_route() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let evil = [("host", "evil.example:8000")];
    let command = json!({"name": "pwn", "transport_type": "stdio",
                         "config": {"command": "sh", "args": ["-c", "touch /tmp/pwned"]}});
    let r = app
        .send(
            Method::POST,
            "/api/mcp-servers",
            &evil,
            Some("application/json"),
            Some(serde_json::to_vec(&command).unwrap()),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "--allowed-hosts");
    assert_eq!(r.body["error"], "host not allowed");
    for path in [
        "/api/vmcps",
        "/api/mcp-servers",
        "/ws",
        "/metrics",
        "/docs/",
        "/openapi.json",
        "/vmcp/x/mcp",
        "/vmcp/x/sse",
    ] {
        let r = app.send(Method::GET, path, &evil, None, None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "VMCP_ALLOWED_HOSTS");
    }
    // Nothing was stored.
    assert_eq!(app.get("/api/mcp-servers").await.body, json!([]));
    // Reading the health check is the exception: orchestrators and load balancers probe a
    // replica by its address (the kubelet sends `Host: POD_IP:PORT`), never by a name vMCP knows.
    // Under such a Host it answers its status and nothing a rebinding page could use.
    for host in ["evil.example:8000", "10.244.1.7:8000"] {
        let r = app
            .send(Method::GET, "/health", &[("host", host)], None, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.body);
        assert_eq!(r.body, json!({"status": "ok"}));
        for (method, path) in [
            (Method::POST, "/health"),
            (Method::HEAD, "/health"),
            (Method::GET, "/%68ealth"),
            (Method::GET, "//health"),
            (Method::GET, "/health/"),
            (Method::GET, "/health/../api/vmcps"),
        ] {
            let r = app
                .send(method.clone(), path, &[("host", host)], None, None)
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path} under {host}"
            );
        }
    }
    // Under its own names it says all it has.
    let r = app.get("/health").await;
    assert_eq!(r.body["status"], "ok");
    assert!(r.body["version"].is_string(), "{}", r.body);
    // The names of this server pass, with any port; a configured name too.
    for host in ["localhost:8000", "127.0.0.1", "[::1]:9"] {
        let r = app
            .send(Method::GET, "/api/vmcps", &[("host", host)], None, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.body);
    }
    app.stop().await;

    let app = TestApp::start_with(
        TestDatabase::sqlite(),
        vmcp_http::auth::SecurityOptions {
            allowed_hosts: vec!["vmcp.example.com".into()],
            ..Default::default()
        },
    )
    .await;
    let r = app
        .send(
            Method::GET,
            "/api/vmcps",
            &[("host", "vmcp.example.com:443")],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .send(
            Method::GET,
            "/api/vmcps",
            &[("host", "localhost")],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only the configured names");
    app.stop().await;
}

#[actix_web::test]
async fn pages_of_other_origins_reach_neither_the_websocket_nor_the_mcp_endpoints() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, _vmcp) = team(&app).await;
    let host = app.base.trim_start_matches("http://").to_string();
    let ws = |origin: Option<String>| {
        let mut headers = vec![
            ("connection", "Upgrade".to_string()),
            ("upgrade", "websocket".to_string()),
            ("sec-websocket-version", "13".to_string()),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".to_string()),
        ];
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        headers
    };
    let send_ws = |headers: Vec<(&'static str, String)>| {
        let base = app.base.clone();
        async move {
            let mut req = reqwest::Client::new().get(format!("{base}/ws"));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status()
        }
    };
    for origin in [
        "http://evil.example",
        "http://localhost:3000",
        "null",
        "https://attacker.test:8000",
    ] {
        let status = send_ws(ws(Some(origin.to_string()))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        let r = app
            .send(
                Method::POST,
                "/vmcp/team/mcp",
                &[("origin", origin), ("accept", ACCEPT)],
                Some("application/json"),
                Some(serde_json::to_vec(&init_body()).unwrap()),
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "--cors-origin");
        assert_eq!(r.body["error"], "origin not allowed");
    }
    // No Origin (every non-browser client), or this server's own origin: allowed.
    assert_eq!(send_ws(ws(None)).await, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        send_ws(ws(Some(format!("http://{host}")))).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    app.stop().await;

    // A configured CORS origin is allowed.
    let app = TestApp::start_with(
        TestDatabase::sqlite(),
        vmcp_http::auth::SecurityOptions {
            cors_origins: vec!["https://app.example".into()],
            ..Default::default()
        },
    )
    .await;
    let r = app
        .send(
            Method::GET,
            "/api/vmcps",
            &[("origin", "https://app.example")],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .send(
            Method::GET,
            "/api/vmcps",
            &[("origin", "https://other.example")],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// A raw POST to an MCP endpoint; returns the status and the JSON-RPC error's code.
async fn mcp_post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let mut all = vec![("accept", ACCEPT)];
    all.extend_from_slice(headers);
    let r = app
        .send(
            Method::POST,
            path,
            &all,
            Some(content_type),
            Some(body.to_vec()),
        )
        .await;
    let body = match &r.body {
        Value::String(s) => messages(s).into_iter().next().unwrap_or(Value::Null),
        v => v.clone(),
    };
    (r.status, body)
}

#[actix_web::test]
async fn mcp_endpoints_answer_bad_messages_as_the_specification_says() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, _vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    let raw = Raw::open(&url).await;
    let session = [
        ("mcp-session-id", raw.session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let path = "/vmcp/team/mcp";
    // Malformed JSON: 400 and a parse error.
    let (status, body) = mcp_post(&app, path, &session, "application/json", b"{\"jsonrpc\":").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], -32700, "{body}");
    // Not JSON content: 415, still a JSON-RPC error body.
    let (status, body) = mcp_post(&app, path, &session, "text/plain", b"{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"]["code"], -32600, "{body}");
    // A batch: invalid request.
    let (status, body) = mcp_post(&app, path, &session, "application/json", b"[]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32600, "{body}");
    // Parameters that do not fit a known method: invalid params, with the request's id.
    for bad in [
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "alpha.echo", "arguments": ["not", "an", "object"]}}),
        json!({"jsonrpc": "2.0", "id": 7, "method": "logging/setLevel",
               "params": {"level": "loudest"}}),
    ] {
        let (status, body) = mcp_post(
            &app,
            path,
            &session,
            "application/json",
            &serde_json::to_vec(&bad).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], -32602, "{bad}: {body}");
        assert_eq!(body["id"], 7, "{body}");
    }
    // Nesting past the documented limit: invalid request, saying so.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"alpha.echo","arguments":{{"text":{}1{}}}}}}}"#,
        "[".repeat(vmcp_http::json::MAX_DEPTH),
        "]".repeat(vmcp_http::json::MAX_DEPTH)
    );
    let (status, body) = mcp_post(&app, path, &session, "application/json", deep.as_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("levels deep"),
        "{body}"
    );
    // An unknown method is still method-not-found from the session.
    let (_, body) = mcp_post(
        &app,
        path,
        &session,
        "application/json",
        br#"{"jsonrpc":"2.0","id":8,"method":"tools/dance"}"#,
    )
    .await;
    assert_eq!(body["error"]["code"], -32601, "{body}");
    // The session still works.
    assert_eq!(raw.list_tools().await, StatusCode::OK);

    // Legacy SSE's message endpoint: the same content-type rule.
    let (status, body) = mcp_post(
        &app,
        "/vmcp/team/message?sessionId=nope",
        &[],
        "text/plain",
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = mcp_post(
        &app,
        "/vmcp/team/message?sessionId=nope",
        &[],
        "application/json",
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], -32001, "{body}");

    // DELETE of an unknown session, and of another vMCP's session: 404.
    let other = app
        .add_vmcp(json!({"name": "other", "mcp_servers": []}))
        .await;
    let http = reqwest::Client::new();
    for (vmcp, session) in [("team", "no-such-session"), (other.as_str(), &raw.session)] {
        let r = http
            .delete(format!("{}/vmcp/{vmcp}/mcp", app.base))
            .header("mcp-session-id", session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{vmcp} {session}");
    }
    // The session was not touched by those, and its own DELETE ends it.
    assert_eq!(raw.list_tools().await, StatusCode::OK);
    let r = http
        .delete(&url)
        .header("mcp-session-id", &raw.session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(raw.list_tools().await, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[actix_web::test]
async fn rest_refuses_trailing_garbage() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    for body in [
        &b"{\"name\":\"a\"} xx"[..],
        b"{\"name\":\"a\"}{}",
        b"{\"name\":\"a\"}]",
    ] {
        let r = app
            .raw(
                Method::POST,
                "/api/vmcps",
                Some("application/json"),
                Some(body.to_vec()),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "trailing characters");
    }
    assert_eq!(app.get("/api/vmcps").await.body, json!([]));
    // Whitespace after the object is fine.
    let r = app
        .raw(
            Method::POST,
            "/api/vmcps",
            Some("application/json"),
            Some(b"{\"name\":\"a\"}\n  ".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.stop().await;
}

#[actix_web::test]
async fn a_slow_body_is_cut_off_without_holding_the_server() {
    let app = TestApp::start_with(
        TestDatabase::sqlite(),
        vmcp_http::auth::SecurityOptions {
            body_read_timeout: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let paths = ["/api/vmcps", "/vmcp/x/mcp"];
    let handles: Vec<_> = paths
        .iter()
        .map(|path| {
            let addr = addr.clone();
            let path = path.to_string();
            tokio::task::spawn_blocking(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                write!(
                    s,
                    "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                     Content-Length: 1000\r\n\r\n{{\"name\":"
                )
                .unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let started = Instant::now();
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                (answer, started.elapsed())
            })
        })
        .collect();
    for h in handles {
        let (answer, took) = h.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{answer:?} after {took:?}"
        );
        assert!(answer.contains("request body too slow"), "{answer}");
        // The connection was closed by the server (read_to_string returned), well before the
        // client's own 20 s read timeout.
        assert!(took < Duration::from_secs(15), "{took:?}");
    }
    // The server serves others meanwhile and after.
    assert_eq!(app.get("/api/vmcps").await.status, StatusCode::OK);
    app.stop().await;
}

/// Calls `alpha.whoami` through REST until the fixture reports `cancelled` calls.
async fn wait_cancelled(app: &TestApp, vmcp: &str, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = app
            .post(
                &format!("/api/vmcps/{vmcp}/tools/call"),
                json!({"name": "alpha.whoami"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "the server's slot is held: {}",
            r.body
        );
        if r.body["structuredContent"]["cancelled"].as_u64() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream call was not cancelled when its session ended: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A vMCP over one stdio fixture that takes one call at a time.
async fn single_slot(app: &TestApp) -> String {
    let mut config = harness::stdio_config("alpha", &[]);
    config["max_concurrent_calls"] = json!(1);
    let alpha = app.add_server("alpha", "stdio", config).await;
    app.add_vmcp(json!({"name": "solo", "mcp_servers": [{"server_id": alpha}]}))
        .await
}

#[actix_web::test]
async fn ending_a_session_cancels_its_calls_upstream_at_once() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let vmcp = single_slot(&app).await;

    // Streamable HTTP: DELETE of the session while a call hangs upstream.
    let url = format!("{}/vmcp/solo/mcp", app.base);
    let raw = std::sync::Arc::new(Raw::open(&url).await);
    let caller = raw.clone();
    let hanging = tokio::spawn(async move {
        let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                          "params": {"name": "alpha.hang", "arguments": {}}});
        caller.post(call).await.text().await
    });
    // Time for the call to reach the upstream (generous: CI machines are busy).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r = reqwest::Client::new()
        .delete(&url)
        .header("mcp-session-id", &raw.session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // rmcp alone would wait 5 s before cancelling; the slot must be free well before.
    wait_cancelled(&app, &vmcp, 1, Duration::from_secs(4)).await;
    let _ = hanging.await;

    // Legacy SSE: the client closes its event stream while a call hangs.
    let http = reqwest::Client::new();
    let stream = http
        .get(format!("{}/vmcp/solo/sse", app.base))
        .send()
        .await
        .unwrap();
    let mut events = stream.bytes_stream();
    let mut text = String::new();
    let endpoint = loop {
        let chunk = events.next().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data: /vmcp/")) {
            break format!("{}/vmcp/{line}", app.base);
        }
    };
    let post = |body: Value| http.post(&endpoint).json(&body).send();
    assert_eq!(post(init_body()).await.unwrap().status(), 202);
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                    "params": {"name": "alpha.hang", "arguments": {}}}))
        .await
        .unwrap()
        .status(),
        202
    );
    // Time for the call to reach the upstream (generous: CI machines are busy).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(events);
    wait_cancelled(&app, &vmcp, 2, Duration::from_secs(4)).await;
    app.stop().await;
}

#[actix_web::test]
async fn idle_sessions_expire_to_404_and_the_least_recently_used_go_first() {
    let app = TestApp::start_full(
        TestDatabase::sqlite(),
        Default::default(),
        vmcp_http::mcp::McpOptions {
            session_idle_timeout: Duration::from_millis(1500),
            max_sessions: 2,
            ..Default::default()
        },
    )
    .await;
    let (_beta, _vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);

    // Idle expiry: a session used within the timeout lives on; one left idle past it is 404.
    let kept = Raw::open(&url).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(kept.list_tools().await, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(kept.list_tools().await, StatusCode::NOT_FOUND);

    // The cap: a third session ends the least recently used of the first two.
    let a = Raw::open(&url).await;
    let b = Raw::open(&url).await;
    assert_eq!(a.list_tools().await, StatusCode::OK);
    let c = Raw::open(&url).await;
    assert_eq!(b.list_tools().await, StatusCode::NOT_FOUND);
    assert_eq!(a.list_tools().await, StatusCode::OK);
    assert_eq!(c.list_tools().await, StatusCode::OK);
    app.stop().await;
}

/// Pids of live processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<i32> {
    harness::processes_with(marker)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

#[actix_web::test]
async fn a_helper_started_with_setsid_does_not_outlive_its_server() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let fixture = harness::stdio_config("alpha", &[]);
    let marker = format!("{}.{}", 300, std::process::id());
    // The server starts a helper in a session of its own, out of its process group.
    let script = format!(
        "setsid sleep {marker} & exec {} stdio --name alpha",
        fixture["command"].as_str().unwrap()
    );
    let id = app
        .add_server(
            "alpha",
            "stdio",
            json!({"command": "sh", "args": ["-c", script]}),
        )
        .await;
    let r = app
        .post(&format!("/api/mcp-servers/{id}/connect"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the helper never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = app
        .post(&format!("/api/mcp-servers/{id}/disconnect"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the setsid helper outlived its server: {:?}",
            pids_with(&marker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[actix_web::test]
async fn errors_of_every_layer_have_the_documented_body() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    // A missing file of the API's documentation, and a WebSocket handshake that is not one.
    let r = app.get("/docs/no-such-file.js").await;
    assert_error(&r, StatusCode::NOT_FOUND, "/docs/no-such-file.js");
    let r = app.get("/ws").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_error(&r, StatusCode::BAD_REQUEST, "GET /ws");
    app.stop().await;
}

#[actix_web::test]
async fn a_stateless_2026_request_gets_plain_json_with_result_type_and_is_logged_by_its_client() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, vmcp) = team(&app).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-probe", "version": "9.1"}
    });
    let r = reqwest::Client::new()
        .post(format!("{}/vmcp/team/mcp", app.base))
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "alpha.echo")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "alpha.echo", "arguments": {"text": "hi"}, "_meta": meta}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {body}"
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    // Relayed from a 2025-era upstream, and still marked as 2026-07-28 clients require.
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    // The operation log names the client from the request's _meta.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app
            .get(&format!(
                "/api/stats?vmcp_id={vmcp}&method=tools/call&client_id=stateless-probe/9.1"
            ))
            .await;
        if r.body["stats"]["total_logs"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not logged by its client: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[actix_web::test]
async fn rest_accepts_a_vmcps_name_wherever_it_accepts_its_id() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, vmcp) = team(&app).await;
    let r = app.get("/api/vmcps/team").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["vmcp_id"], vmcp.as_str());
    let r = app.get("/api/vmcps/team/tools").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(
            "/api/vmcps/team/tools/call",
            json!({"name": "alpha.echo", "arguments": {"text": "by name"}}),
        )
        .await;
    assert_eq!(crate::support::text(&r.body), "by name");
    let r = app.get("/api/vmcps/team/export").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A name with a space, as URLs carry it.
    let members: Vec<Value> = app.get("/api/vmcps/team").await.body["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!({"server_id": m["server_id"], "priority": m["priority"]}))
        .collect();
    let r = app
        .put(
            "/api/vmcps/team",
            json!({"name": "my team", "mcp_servers": members}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        app.get("/api/vmcps/my%20team").await.body["vmcp_id"],
        vmcp.as_str()
    );
    let r = app.delete("/api/vmcps/my%20team").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error(
        &app.get(&format!("/api/vmcps/{vmcp}")).await,
        StatusCode::NOT_FOUND,
        "no vMCP with id",
    );
    app.stop().await;
}

#[actix_web::test]
async fn object_fields_refuse_arrays() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    // serde would read an array as a struct's fields in order (`[]`: all defaults).
    for (body, field) in [
        (json!({"name": "a", "naming": []}), "naming"),
        (json!({"name": "a", "naming": [false, "_"]}), "naming"),
        (json!({"name": "a", "tools": {"s.t": []}}), "tools"),
    ] {
        let r = app.post("/api/vmcps", body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "expected an object");
        assert!(
            r.body["detail"].as_str().unwrap().contains(field),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(app.get("/api/vmcps").await.body, json!([]));
    // null and objects are as before.
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "a", "naming": null, "tools": null, "mcp_substitution": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "b", "naming": {"separator": "_"}, "tools": {"s.t": {"hidden": true}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["naming"]["separator"], "_");
    app.stop().await;
}

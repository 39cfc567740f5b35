//! Bearer tokens, CORS, and write-only secrets, through the real server.

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vmcp_fixture::harness::HttpFixture;
use vmcp_http::auth::SecurityOptions;
use vmcp_store::testing::TestDatabase;

use crate::support::{Response, TestApp, assert_error, text};

const TOKEN: &str = "0123456789abcdef-first";
const OTHER: &str = "fedcba9876543210-second";
const MASK: &str = "********";

fn secured() -> SecurityOptions {
    SecurityOptions {
        tokens: vec![TOKEN.into(), OTHER.into()],
        cors_origins: vec![],
        ..Default::default()
    }
}

async fn get_as(app: &TestApp, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    app.send(Method::GET, path, &headers, None, None).await
}

#[actix_web::test]
async fn tokens_guard_everything_but_health_and_the_docs() {
    let app = TestApp::start_with(TestDatabase::sqlite(), secured()).await;

    for open in ["/health", "/openapi.json", "/openapi.yaml", "/docs/"] {
        let r = get_as(&app, open, None).await;
        assert_eq!(r.status, StatusCode::OK, "{open}: {}", r.body);
    }

    for path in [
        "/api/vmcps",
        "/api/mcp-servers",
        "/api/stats",
        "/metrics",
        "/ws",
        "/api/nothing",
    ] {
        let r = get_as(&app, path, None).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "Authorization: Bearer");
        assert_eq!(
            r.headers["www-authenticate"], r#"Bearer realm="vmcp""#,
            "{path}"
        );

        let r = get_as(&app, path, Some("0123456789abcdef-firsT")).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "not one this server accepts");
        assert!(
            r.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#),
            "{path}"
        );
    }
    // Either token works; the scheme's case does not matter.
    assert_eq!(
        get_as(&app, "/api/vmcps", Some(TOKEN)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_as(&app, "/metrics", Some(OTHER)).await.status,
        StatusCode::OK
    );
    let r = app
        .send(
            Method::GET,
            "/api/mcp-servers",
            &[("authorization", &format!("bearer {TOKEN}"))],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Behind a token, an unknown path is still a 404 to whoever holds one.
    assert_eq!(
        get_as(&app, "/api/nothing", Some(TOKEN)).await.status,
        StatusCode::NOT_FOUND
    );

    // The MCP endpoint: an MCP client without a token gets the 401 and its challenge.
    let auth = format!("Bearer {TOKEN}");
    let vmcp = app
        .send(
            Method::POST,
            "/api/vmcps",
            &[("authorization", &auth)],
            Some("application/json"),
            Some(json!({"name": "guarded"}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(vmcp.status, StatusCode::CREATED, "{}", vmcp.body);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}})
    .to_string()
    .into_bytes();
    let accept = ("accept", "application/json, text/event-stream");
    let r = app
        .send(
            Method::POST,
            "/vmcp/guarded/mcp",
            &[accept],
            Some("application/json"),
            Some(initialize.clone()),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "Authorization: Bearer");
    assert!(r.headers.contains_key("www-authenticate"));
    let r = app
        .send(
            Method::POST,
            "/vmcp/guarded/mcp",
            &[accept, ("authorization", &auth)],
            Some("application/json"),
            Some(initialize),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers.contains_key("mcp-session-id"));

    // A real MCP client with the token in its headers lists the vMCP's tools.
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            format!("{}/vmcp/guarded/mcp", app.base),
        )
        .auth_header(TOKEN.to_string()),
    );
    let client = rmcp::ServiceExt::serve((), transport)
        .await
        .expect("MCP client with a token");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.is_empty());
    client.cancel().await.unwrap();

    // The WebSocket: a browser cannot set headers, so the token may come as access_token.
    let ws = app.base.replace("http://", "ws://");
    let refused = awc::Client::new().ws(format!("{ws}/ws")).connect().await;
    assert!(refused.is_err(), "a WebSocket without a token was accepted");
    let (response, mut socket) = awc::Client::new()
        .ws(format!("{ws}/ws?access_token={OTHER}"))
        .connect()
        .await
        .expect("WebSocket with access_token");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS.as_u16());
    let _ = socket.send(awc::ws::Message::Close(None)).await;
    let _ = socket.next().await;
    app.stop().await;
}

#[actix_web::test]
async fn cors_is_off_unless_origins_are_given() {
    let preflight = |app: &TestApp, origin: &'static str| {
        let url = format!("{}/api/vmcps", app.base);
        async move {
            reqwest::Client::new()
                .request(Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let r = preflight(&app, "https://app.example").await;
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = app
        .send(
            Method::GET,
            "/api/vmcps",
            &[("origin", "https://app.example")],
            None,
            None,
        )
        .await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    app.stop().await;

    let app = TestApp::start_with(
        TestDatabase::sqlite(),
        SecurityOptions {
            tokens: vec![TOKEN.into()],
            cors_origins: vec!["https://app.example".into()],
            ..Default::default()
        },
    )
    .await;
    // The preflight carries no token and is answered; the request itself still needs one.
    let r = preflight(&app, "https://app.example").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let r = preflight(&app, "https://evil.example").await;
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = app
        .send(
            Method::GET,
            "/api/vmcps",
            &[
                ("origin", "https://app.example"),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    app.stop().await;
}

#[actix_web::test]
async fn secrets_are_write_only() {
    for app in TestApp::each().await {
        secrets_on(&app).await;
        app.stop().await;
    }
}

async fn secrets_on(app: &TestApp) {
    let fixture = HttpFixture::start("remote", &[]);
    let r = app
        .post(
            "/api/mcp-servers",
            json!({"name": "remote", "transport_type": "streamable_http", "config": {
                "url": fixture.mcp_url(),
                "headers": {"X-Api-Key": "header-s3cret", "X-Region": "eu"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let server = r.body["server_id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["config"]["headers"],
        json!({"X-Api-Key": MASK, "X-Region": "eu"})
    );
    let r = app
        .post(
            "/api/mcp-servers",
            json!({"name": "local", "transport_type": "stdio", "config": {
                "command": "true",
                "env": {"GITHUB_TOKEN": "env-s3cret", "DATABASE_URL": "postgres://me:pw-s3cret@db/x",
                        "LOG_LEVEL": "debug"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let local = r.body["server_id"].as_str().unwrap().to_string();
    let expected_env = json!({"GITHUB_TOKEN": MASK, "DATABASE_URL": MASK, "LOG_LEVEL": "debug"});
    assert_eq!(r.body["config"]["env"], expected_env);
    assert_eq!(
        app.get(&format!("/api/mcp-servers/{local}")).await.body["config"]["env"],
        expected_env
    );
    let list = app.get("/api/mcp-servers").await.body;
    assert!(!list.to_string().contains("s3cret"), "{list}");

    // A PUT that sends the mask back keeps the stored value; the upstream still gets it.
    let r = app
        .put(
            &format!("/api/mcp-servers/{server}"),
            json!({"name": "remote", "description": "edited", "transport_type": "streamable_http",
                   "config": {"url": fixture.mcp_url(),
                              "headers": {"X-Api-Key": MASK, "X-Region": "us"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["config"]["headers"],
        json!({"X-Api-Key": MASK, "X-Region": "us"})
    );
    let vmcp = app
        .add_vmcp(
            json!({"name": "vault", "mcp_servers": [{"server_id": server}, {"server_id": local}],
                         "active_config": {"api_key": "config-s3cret", "region": "eu",
                                           "nested": {"password": "pw2-s3cret"}}}),
        )
        .await;
    let r = app
        .post(&format!("/api/mcp-servers/{server}/connect"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/tools/call"),
            json!({"name": "remote.request_header", "arguments": {"name": "x-api-key"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(text(&r.body), "header-s3cret");

    // A mask where nothing is stored is refused, and nothing changes.
    let r = app
        .put(
            &format!("/api/mcp-servers/{server}"),
            json!({"name": "remote", "transport_type": "streamable_http",
                   "config": {"url": fixture.mcp_url(), "headers": {"Authorization": MASK}}}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "no stored value to keep");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("config.headers.Authorization")
    );
    let r = app
        .post(
            "/api/mcp-servers",
            json!({"name": "fresh", "transport_type": "stdio",
                   "config": {"command": "true", "env": {"API_KEY": MASK}}}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "config.env.API_KEY");

    // vMCP active_config: masked in every answer, kept on a PUT that sends the mask back.
    let shown = app.get(&format!("/api/vmcps/{vmcp}")).await.body;
    assert_eq!(
        shown["active_config"],
        json!({"api_key": MASK, "region": "eu", "nested": {"password": MASK}})
    );
    assert!(
        !app.get("/api/vmcps")
            .await
            .body
            .to_string()
            .contains("s3cret")
    );
    let r = app
        .put(
            &format!("/api/vmcps/{vmcp}"),
            json!({"name": "vault", "mcp_servers": [{"server_id": server}, {"server_id": local}],
                   "active_config": {"api_key": MASK, "region": "us", "nested": {"password": MASK}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/tools/call"),
            json!({"name": "remote.echo", "arguments": {"text": "@config:api_key/@config:nested.password"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(text(&r.body), "config-s3cret/pw2-s3cret");

    // Export: masked unless asked; the log and stats never show them.
    let export = app.get(&format!("/api/vmcps/{vmcp}/export")).await.body;
    assert!(!export.to_string().contains("s3cret"), "{export}");
    assert_eq!(export["active_config"]["api_key"], MASK);
    let full = app
        .get(&format!("/api/vmcps/{vmcp}/export?include_secrets=true"))
        .await
        .body;
    assert_eq!(full["active_config"]["api_key"], "config-s3cret");
    assert_eq!(
        full["mcp_servers"][0]["config"]["headers"]["X-Api-Key"],
        "header-s3cret"
    );
    let stats = app.get("/api/stats").await.body;
    assert!(stats["logs"].as_array().is_some_and(|l| !l.is_empty()));
    assert!(!stats.to_string().contains("s3cret"), "{stats}");

    // A masked export imports where its servers exist (their secrets are taken from them), once
    // the vMCP's own masked values are filled in; as it is, it is refused and nothing is stored.
    let mut again = export.clone();
    again["name"] = json!("vault-copy");
    let r = app.post("/api/vmcps/import", again.clone()).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "active_config.api_key");
    again["active_config"] = json!({"api_key": "copy-s3cret", "region": "eu"});
    let r = app.post("/api/vmcps/import", again).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["active_config"]["api_key"], MASK);
    let copy = r.body["vmcp_id"].as_str().unwrap().to_string();
    let servers = app.get("/api/mcp-servers").await.body;
    assert_eq!(servers.as_array().unwrap().len(), 2, "{servers}");
    let copied = app
        .get(&format!("/api/vmcps/{copy}/export?include_secrets=true"))
        .await
        .body;
    assert_eq!(
        copied["mcp_servers"][0]["config"]["headers"]["X-Api-Key"],
        "header-s3cret"
    );
    assert_eq!(
        copied["mcp_servers"][1]["config"]["env"]["GITHUB_TOKEN"],
        "env-s3cret"
    );

    // Elsewhere (no server of that name), a masked server definition cannot be imported.
    let mut elsewhere = export.clone();
    elsewhere["name"] = json!("vault-elsewhere");
    elsewhere["active_config"] = json!({});
    elsewhere["mcp_servers"][0]["name"] = json!("remote-2");
    let r = app.post("/api/vmcps/import", elsewhere).await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "mcp_servers[0].config.headers.X-Api-Key",
    );
    assert_eq!(
        app.get("/api/vmcps").await.body.as_array().unwrap().len(),
        2
    );
    assert_eq!(
        app.get("/api/mcp-servers")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn a_server_gets_at_most_max_concurrent_calls_and_the_rest_wait_their_turn() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let mut config = vmcp_fixture::harness::stdio_config("narrow", &[]);
    config["timeout_seconds"] = json!(1);
    config["max_concurrent_calls"] = json!(1);
    let server = app.add_server("narrow", "stdio", config).await;
    let r = app.get(&format!("/api/mcp-servers/{server}")).await;
    assert_eq!(r.body["config"]["max_concurrent_calls"], 1);
    let vmcp = app
        .add_vmcp(json!({"name": "narrow", "mcp_servers": [{"server_id": server}]}))
        .await;
    let r = app
        .post(&format!("/api/mcp-servers/{server}/connect"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A holds the only permit until its timeout; B queued first gets it next and holds it
    // until its own timeout; C, queued behind B, never gets a turn within its timeout.
    let call = |name: &'static str| {
        let url = format!("{}/api/vmcps/{vmcp}/tools/call", app.base);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&json!({"name": name, "arguments": {}}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let a = actix_web::rt::spawn(call("narrow.hang"));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let b = actix_web::rt::spawn(call("narrow.hang"));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let c = actix_web::rt::spawn(call("narrow.echo"));
    let (a, b, c) = (a.await.unwrap(), b.await.unwrap(), c.await.unwrap());
    for (status, body) in [&a, &b] {
        assert_eq!(*status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("did not answer"),
            "{body}"
        );
    }
    assert_eq!(c.0, StatusCode::GATEWAY_TIMEOUT, "{}", c.1);
    assert_eq!(c.1["error"], "MCP server saturated");
    assert!(
        c.1["detail"]
            .as_str()
            .unwrap()
            .contains("already has 1 requests in flight (its max_concurrent_calls)"),
        "{}",
        c.1
    );
    // Once the queue drains, calls go through again.
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/tools/call"),
            json!({"name": "narrow.echo", "arguments": {"text": "after"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(text(&r.body), "after");

    let r = app
        .put(
            &format!("/api/mcp-servers/{server}"),
            json!({"name": "narrow", "transport_type": "stdio",
                   "config": {"command": "x", "max_concurrent_calls": 0}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "config.max_concurrent_calls: must be between 1 and 10000",
    );

    // Bodies: nesting deeper than the documented limit and bodies over 1 MiB are refused,
    // clearly; the limit itself is accepted.
    let max = vmcp_http::json::MAX_DEPTH;
    let nested = |levels: usize, name: &str| {
        // The body object and active_config are two levels; arrays make up the rest.
        format!(
            r#"{{"name": "{name}", "active_config": {{"a": {}1{}}}}}"#,
            "[".repeat(levels - 2),
            "]".repeat(levels - 2)
        )
    };
    for (levels, name) in [(max + 1, "deeper"), (200, "deep")] {
        let r = app
            .raw(
                Method::POST,
                "/api/vmcps",
                Some("application/json"),
                Some(nested(levels, name).into_bytes()),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("{levels} levels deep; at most {max}"),
        );
    }
    let r = app
        .raw(
            Method::POST,
            "/api/vmcps",
            Some("application/json"),
            Some(nested(max, "at-the-limit").into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.delete(&format!(
        "/api/vmcps/{}",
        r.body["vmcp_id"].as_str().unwrap()
    ))
    .await;
    let big = json!({"name": "big", "description": "x".repeat(2 * 1024 * 1024)});
    let r = app.post("/api/vmcps", big).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "at most 1048576 bytes");
    assert_eq!(
        app.get("/api/vmcps").await.body.as_array().unwrap().len(),
        1
    );
    app.stop().await;
}

#[actix_web::test]
async fn token_shaped_values_and_listed_keys_are_secret() {
    for app in TestApp::each().await {
        let ghp = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let env = json!({
            "GH": ghp, "PGPASS": "pgpass-s3cret", "GITHUB_PAT": "pat-s3cret", "ACCESS": "acc-s3cret",
            "UPSTREAM": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx", "SESSION_HINT": jwt,
            "AWS": "AKIAIOSFODNN7EXAMPLE", "SERVICE_ID": "svc-s3cret",
            "PATH": "/usr/bin", "PASSTHROUGH": "on"
        });
        let body = json!({"name": "local", "transport_type": "stdio", "config": {
            "command": "true", "env": env, "secret_keys": ["service_id"]}});
        let r = app.post("/api/mcp-servers", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["server_id"].as_str().unwrap().to_string();
        let shown = &r.body["config"]["env"];
        for k in [
            "GH",
            "PGPASS",
            "GITHUB_PAT",
            "ACCESS",
            "UPSTREAM",
            "SESSION_HINT",
            "AWS",
            "SERVICE_ID",
        ] {
            assert_eq!(shown[k], MASK, "{k}: {shown}");
        }
        assert_eq!(shown["PATH"], "/usr/bin");
        assert_eq!(shown["PASSTHROUGH"], "on");
        assert_eq!(r.body["config"]["secret_keys"], json!(["service_id"]));

        // Sending the masks back keeps the values.
        let back = json!({"name": "local", "transport_type": "stdio", "config": r.body["config"]});
        let r = app.put(&format!("/api/mcp-servers/{id}"), back).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);

        let vmcp = app
            .add_vmcp(json!({"name": "v", "mcp_servers": [{"server_id": id}],
                             "active_config": {"tenant": "tenant-s3cret", "plain": "eu",
                                               "deep": {"Tenant": "tenant2-s3cret"}, "t": jwt},
                             "secret_keys": ["tenant"]}))
            .await;
        let got = app.get(&format!("/api/vmcps/{vmcp}")).await.body;
        assert_eq!(
            got["active_config"],
            json!({"tenant": MASK, "plain": "eu", "deep": {"Tenant": MASK}, "t": MASK})
        );
        assert_eq!(got["secret_keys"], json!(["tenant"]));
        let export = app.get(&format!("/api/vmcps/{vmcp}/export")).await.body;
        let text = export.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains(ghp) && !text.contains(jwt),
            "{text}"
        );
        assert_eq!(export["secret_keys"], json!(["tenant"]));
        let full = app
            .get(&format!("/api/vmcps/{vmcp}/export?include_secrets=true"))
            .await
            .body;
        assert_eq!(full["active_config"]["tenant"], "tenant-s3cret");
        assert_eq!(
            full["mcp_servers"][0]["config"]["env"]["SERVICE_ID"],
            "svc-s3cret"
        );
        assert_eq!(full["mcp_servers"][0]["config"]["env"]["GH"], ghp);
        // The export imports elsewhere with its list.
        let mut copy = full.clone();
        copy["name"] = json!("copy");
        let r = app.post("/api/vmcps/import", copy).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["secret_keys"], json!(["tenant"]));
        assert_eq!(r.body["active_config"]["tenant"], MASK);
        // A malformed list is a 400 naming the entry.
        let r = app
            .post(
                "/api/vmcps",
                json!({"name": "w", "secret_keys": ["ok", ""]}),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "secret_keys[1]");
        let r = app
            .post(
                "/api/mcp-servers",
                json!({"name": "x", "transport_type": "stdio",
                       "config": {"command": "true", "secret_keys": ["a\u{0}"]}}),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "config.secret_keys[0]");
        app.stop().await;
    }
}

#[actix_web::test]
async fn an_upstream_that_prints_secrets_on_stderr_is_scrubbed() {
    for app in TestApp::each().await {
        let mut config = vmcp_fixture::harness::stdio_config(
            "loud",
            &[
                "--echo-env",
                "API_TOKEN",
                "--echo-env",
                "SERVICE_ID",
                "--echo-stderr",
            ],
        );
        config["env"] = json!({"API_TOKEN": "server-token-s3cret", "SERVICE_ID": "listed-s3cret"});
        config["secret_keys"] = json!(["SERVICE_ID"]);
        let server = app.add_server("loud", "stdio", config).await;
        let vmcp = app
            .add_vmcp(
                json!({"name": "loud", "mcp_servers": [{"server_id": server}],
                             "active_config": {"api_key": "vmcp-key-s3cret"}}),
            )
            .await;
        let r = app
            .post(&format!("/api/mcp-servers/{server}/connect"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        // The vMCP's secret reaches the server by substitution, and the server prints it.
        let r = app
            .post(
                &format!("/api/vmcps/{vmcp}/tools/call"),
                json!({"name": "loud.echo", "arguments": {"text": "key is @config:api_key"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let logs = loop {
            let r = app.get(&format!("/api/mcp-servers/{server}/logs")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            if r.body.to_string().contains("echo key is") {
                break r.body.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no echo line: {}",
                r.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(!logs.contains("s3cret"), "{logs}");
        assert!(logs.contains(&format!("API_TOKEN={MASK}")), "{logs}");
        assert!(logs.contains(&format!("SERVICE_ID={MASK}")), "{logs}");
        assert!(logs.contains(&format!("echo key is {MASK}")), "{logs}");
        // An upstream error that quotes the secret it was sent.
        let r = app
            .post(
                &format!("/api/vmcps/{vmcp}/tools/call"),
                json!({"name": "loud.invalid_params", "arguments": {"text": "@config:api_key"}}),
            )
            .await;
        assert!(
            r.status.is_client_error() || r.status.is_server_error(),
            "{}",
            r.body
        );
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("on purpose: {MASK}")), "{detail}");
        assert!(!r.body.to_string().contains("s3cret"), "{}", r.body);

        // A server that fails to start after printing its secret: the error says why, without it.
        let mut config = vmcp_fixture::harness::stdio_config(
            "broken",
            &["--echo-env", "API_TOKEN", "--fail-start"],
        );
        config["env"] = json!({"API_TOKEN": "broken-token-s3cret"});
        let broken = app.add_server("broken", "stdio", config).await;
        let r = app
            .post(&format!("/api/mcp-servers/{broken}/connect"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
        assert!(!r.body.to_string().contains("s3cret"), "{}", r.body);
        let shown = app.get(&format!("/api/mcp-servers/{broken}")).await.body;
        assert!(shown["last_error"].is_string(), "{shown}");
        assert!(!shown.to_string().contains("s3cret"), "{shown}");
        let logs = app
            .get(&format!("/api/mcp-servers/{broken}/logs"))
            .await
            .body;
        assert!(!logs.to_string().contains("s3cret"), "{logs}");
        app.stop().await;
    }
}

#[actix_web::test]
async fn the_dashboard_is_served_open_and_strict_while_its_data_needs_the_token() {
    let app = TestApp::start_with(TestDatabase::sqlite(), secured()).await;
    let r = get_as(&app, "/ui/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.body.as_str().unwrap();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/index.html")).unwrap();
    assert_eq!(page, shipped, "the embedded page is not the one in ui/");
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");

    // Every script the page loads is embedded, as JavaScript, and none is inline.
    for src in page.split("src=\"").skip(1) {
        let src = &src[..src.find('"').unwrap()];
        let path = if src.starts_with('/') {
            src.to_string()
        } else {
            format!("/ui/{src}")
        };
        let r = get_as(&app, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    assert!(!page.contains("<script>"), "an inline script");
    let r = get_as(&app, "/ui/app.js", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // The same file again, by its ETag: 304.
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let again = app
        .send(
            Method::GET,
            "/ui/app.js",
            &[("if-none-match", &etag)],
            None,
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let head = app.send(Method::HEAD, "/ui/", &[], None, None).await;
    assert_eq!(head.status, StatusCode::OK);

    // /ui redirects; a file that is not there is the documented JSON error; no path escapes.
    let r = app.raw(Method::GET, "/ui", None, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the redirect to /ui/ was followed"
    );
    for missing in ["/ui/nope.js", "/ui/..%2fCargo.toml", "/ui/..%5cCargo.toml"] {
        let r = get_as(&app, missing, None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "");
    }
    // What the dashboard shows still needs the token.
    let r = get_as(&app, "/api/mcp-servers", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

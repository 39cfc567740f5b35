//! Bad input gets a clear error in the documented format, and nothing stored changes.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vmcp_store::testing::TestDatabase;

use crate::support::{TestApp, assert_error};

#[actix_web::test]
async fn malformed_bodies_are_refused_with_a_reason() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let cases: Vec<(Option<&str>, &[u8], StatusCode, &str)> = vec![
        (
            None,
            br#"{"name":"x"}"#,
            StatusCode::BAD_REQUEST,
            "Content-Type: application/json",
        ),
        (
            Some("text/plain"),
            br#"{"name":"x"}"#,
            StatusCode::BAD_REQUEST,
            "Content-Type: application/json",
        ),
        (
            Some("application/json"),
            b"",
            StatusCode::BAD_REQUEST,
            "the body is empty",
        ),
        (
            Some("application/json"),
            b"{\"name\": ",
            StatusCode::BAD_REQUEST,
            "not valid JSON: EOF while parsing",
        ),
        (
            Some("application/json"),
            b"[1,2]",
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        ),
        (
            Some("application/json"),
            br#"{"description":"x"}"#,
            StatusCode::BAD_REQUEST,
            "missing field `name`",
        ),
        (
            Some("application/json"),
            br#"{"name":"x","mcp_servers":[{"server_id":"server_a","priority":"high"}]}"#,
            StatusCode::BAD_REQUEST,
            "mcp_servers[0].priority: invalid type: string \"high\", expected i32",
        ),
        (
            Some("application/json"),
            br#"{"name":"x","active_config":[1]}"#,
            StatusCode::BAD_REQUEST,
            "active_config: invalid type: sequence, expected a map",
        ),
        (
            Some("application/json; charset=utf-8"),
            br#"{"name":""}"#,
            StatusCode::BAD_REQUEST,
            "name: must not be empty",
        ),
    ];
    for (ct, body, status, detail) in cases {
        let r = app
            .raw(Method::POST, "/api/vmcps", ct, Some(body.to_vec()))
            .await;
        assert_error(&r, status, detail);
    }
    let big = format!(
        r#"{{"name":"x","description":"{}"}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let r = app
        .raw(
            Method::POST,
            "/api/vmcps",
            Some("application/json"),
            Some(big.into_bytes()),
        )
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "at most 1048576 bytes");
    assert_eq!(
        app.get("/api/vmcps").await.body,
        json!([]),
        "nothing was stored"
    );
    app.stop().await;
}

#[actix_web::test]
async fn invalid_servers_are_refused() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let cases = [
        (
            json!({"name": "has.dot", "transport_type": "stdio", "config": {"command": "x"}}),
            "not a valid MCP server name",
        ),
        (
            json!({"name": "a", "transport_type": "carrier-pigeon", "config": {}}),
            "transport_type: unknown variant `carrier-pigeon`",
        ),
        (
            json!({"name": "a", "transport_type": "stdio", "config": {}}),
            "config.command: is required",
        ),
        (
            json!({"name": "a", "transport_type": "stdio", "config": {"comand": "x"}}),
            "config.comand: unknown field `comand`, expected one of `command`",
        ),
        (
            json!({"name": "a", "transport_type": "sse", "config": {"url": "localhost:3001"}}),
            "config.url: must be an http:// or https:// URL",
        ),
        (
            json!({"name": "a", "transport_type": "streamable_http", "config": {"url": "http://h/mcp", "command": "x"}}),
            "config.command: is not used by transport_type \"streamable_http\"",
        ),
        (
            json!({"name": "a", "transport_type": "stdio"}),
            "missing field `config`",
        ),
    ];
    for (body, detail) in cases {
        let r = app.post("/api/mcp-servers", body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, detail);
    }
    app.create_server("taken").await;
    let r = app
        .post(
            "/api/mcp-servers",
            json!({"name": "taken", "transport_type": "stdio", "config": {"command": "y"}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "an MCP server named \"taken\" already exists",
    );
    assert_eq!(
        app.get("/api/mcp-servers")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

#[actix_web::test]
async fn vmcps_must_name_existing_servers_and_unique_names() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let sid = app.create_server("fs").await;
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "v", "mcp_servers": [{"server_id": "server_0000000000000000"}]}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "mcp_servers[0].server_id: no MCP server with id server_0000000000000000 exists",
    );
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "v", "mcp_servers": [{"server_id": sid}, {"server_id": sid}]}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "is listed more than once");
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "v", "mcp_servers": [{"server_id": "fs"}]}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "\"fs\" is not an MCP server id",
    );
    assert_eq!(
        app.post("/api/vmcps", json!({"name": "v"})).await.status,
        StatusCode::CREATED
    );
    let r = app.post("/api/vmcps", json!({"name": "v"})).await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "a vMCP named \"v\" already exists",
    );
    let r = app
        .post(
            "/api/vmcps/import",
            json!({"name": "w", "mcp_servers": [
                {"name": "fs", "transport_type": "stdio", "config": {"command": "something-else"}}
            ]}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "already exists with a different definition",
    );
    let r = app
        .post(
            "/api/vmcps/import",
            json!({"name": "w", "mcp_servers": [{"name": "ghost"}]}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "no MCP server named \"ghost\" exists here",
    );
    assert_eq!(
        app.get("/api/vmcps").await.body.as_array().unwrap().len(),
        1
    );
    app.stop().await;
}

#[actix_web::test]
async fn ids_routes_and_methods() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    // Not an id, and no vMCP has it as its name.
    assert_error(
        &app.get("/api/vmcps/not-an-id").await,
        StatusCode::NOT_FOUND,
        "no vMCP has the id or name \"not-an-id\"",
    );
    assert_error(
        &app.get("/api/mcp-servers/vmcp_1").await,
        StatusCode::BAD_REQUEST,
        "is not a valid MCP server id",
    );
    assert_error(
        &app.get("/api/vmcps/vmcp_0000000000000000").await,
        StatusCode::NOT_FOUND,
        "no vMCP with id vmcp_0000000000000000",
    );
    assert_error(
        &app.delete("/api/mcp-servers/server_0000000000000000").await,
        StatusCode::NOT_FOUND,
        "no MCP server with id",
    );
    assert_error(
        &app.put("/api/vmcps/vmcp_0000000000000000", json!({"name": "x"}))
            .await,
        StatusCode::NOT_FOUND,
        "no vMCP with id",
    );
    assert_error(
        &app.get("/api/nothing-here").await,
        StatusCode::NOT_FOUND,
        "no route for GET /api/nothing-here",
    );
    assert_error(
        &app.get("/").await,
        StatusCode::NOT_FOUND,
        "no route for GET /",
    );
    let r = app
        .call(Method::PATCH, "/api/vmcps/vmcp_0000000000000000", None)
        .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "PATCH is not allowed");
    assert_eq!(r.headers["allow"], "GET, PUT, DELETE");
    let r = app.call(Method::DELETE, "/api/vmcps", None).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "use GET, POST");
    // A literal path wins over a parameter: import is not a vMCP id.
    let r = app.call(Method::OPTIONS, "/api/vmcps/import", None).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "use POST");
    assert_eq!(r.headers["allow"], "POST");
    app.stop().await;
}

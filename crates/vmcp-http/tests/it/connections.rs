//! Connecting MCP servers through the REST API.

use reqwest::StatusCode;
use serde_json::json;
use vmcp_fixture::harness::{self, HttpFixture};
use vmcp_store::testing::TestDatabase;

use crate::support::{TestApp, assert_error};

#[actix_web::test]
async fn connect_answers_with_capabilities_and_status_follows() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let fixture = HttpFixture::start("remote", &[]);
    for (name, transport, config) in [
        ("local", "stdio", harness::stdio_config("local", &[])),
        (
            "remote",
            "streamable_http",
            json!({"url": fixture.mcp_url()}),
        ),
        ("legacy", "sse", json!({"url": fixture.sse_url()})),
    ] {
        let r = app
            .post(
                "/api/mcp-servers",
                json!({"name": name, "transport_type": transport, "config": config}),
            )
            .await;
        let id = r.body["server_id"].as_str().unwrap().to_string();
        assert_eq!(r.body["status"], "disconnected");

        let r = app
            .post(&format!("/api/mcp-servers/{id}/connect"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], "connected");
        let tools = r.body["capabilities"]["tools"].as_array().unwrap();
        assert!(tools.contains(&json!("echo")), "{}", r.body);
        assert!(
            r.body["capabilities"]["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("test://static-text"))
        );
        assert!(
            r.body["capabilities"]["prompts"]
                .as_array()
                .unwrap()
                .contains(&json!("greeting"))
        );
        assert_eq!(r.body["protocol_version"], "2025-11-25");

        let r = app.get(&format!("/api/mcp-servers/{id}")).await;
        assert_eq!(r.body["status"], "connected");
        assert!(r.body["last_connected"].is_string());
        assert_eq!(r.body["server_info"]["version"], env!("CARGO_PKG_VERSION"));

        let r = app
            .post(&format!("/api/mcp-servers/{id}/disconnect"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, json!({"status": "disconnected"}));
        let r = app.get(&format!("/api/mcp-servers/{id}")).await;
        assert_eq!(r.body["status"], "disconnected");
        assert!(
            r.body["last_connected"].is_string(),
            "last_connected is kept"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_failing_server_is_a_502_with_the_reason_and_its_log() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let r = app
        .post(
            "/api/mcp-servers",
            json!({"name": "broken", "transport_type": "stdio",
                   "config": harness::stdio_config("broken", &["--fail-start"])}),
        )
        .await;
    let id = r.body["server_id"].as_str().unwrap().to_string();
    let r = app
        .post(&format!("/api/mcp-servers/{id}/connect"), json!({}))
        .await;
    assert_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "the process exited with status 2",
    );
    assert_eq!(r.body["error"], "cannot connect to the MCP server");
    let r = app.get(&format!("/api/mcp-servers/{id}")).await;
    assert_eq!(r.body["status"], "error");
    assert!(
        r.body["last_error"]
            .as_str()
            .unwrap()
            .contains("failing to start"),
        "{}",
        r.body
    );
    let r = app.get(&format!("/api/mcp-servers/{id}/logs")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["lines"][0]["text"],
        "fixture broken: failing to start, as asked"
    );
    // Disconnecting stops the retries.
    let r = app
        .post(&format!("/api/mcp-servers/{id}/disconnect"), json!({}))
        .await;
    assert_eq!(r.body["status"], "disconnected");
    app.stop().await;
}

#[actix_web::test]
async fn connect_errors_for_unknown_and_malformed_ids() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    assert_error(
        &app.post(
            "/api/mcp-servers/server_0000000000000000/connect",
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "no MCP server with id",
    );
    assert_error(
        &app.post("/api/mcp-servers/nope/disconnect", json!({}))
            .await,
        StatusCode::BAD_REQUEST,
        "is not a valid MCP server id",
    );
    assert_error(
        &app.get("/api/mcp-servers/server_0000000000000000/logs")
            .await,
        StatusCode::NOT_FOUND,
        "no MCP server with id",
    );
    app.stop().await;
}

//! One operation pipeline for both faces: what REST and MCP clients see of the drifts it fixed
//! (every list logged in one shape, a cancelled call logged, a down member's tool a 502 on both
//! faces, completion bounded by the server's limit, errors worded for each face).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rmcp::model::{
    ArgumentInfo, CompleteRequestParams, PaginatedRequestParams, Reference,
    ResourceTemplateReference,
};
use serde_json::{Value, json};
use vmcp_domain::TransportType;
use vmcp_fixture::harness;
use vmcp_store::testing::TestDatabase;

use crate::mcp::{Client, connect};
use crate::support::{TestApp, assert_error};

/// The operation log rows of a vMCP, newest first, once `ready` holds for them.
async fn rows_when(app: &TestApp, vmcp: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(&format!("/api/stats?vmcp_id={vmcp}&page_size=100"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let rows = r.body["logs"].as_array().cloned().unwrap_or_default();
        if ready(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "the log never got there: {}",
            Value::Array(rows)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A vMCP over one stdio fixture that takes one call at a time, with a 1 s timeout.
async fn single_slot(app: &TestApp) -> String {
    let mut config = harness::stdio_config("alpha", &[]);
    config["max_concurrent_calls"] = json!(1);
    config["timeout_seconds"] = json!(1);
    let alpha = app.add_server("alpha", "stdio", config).await;
    app.add_vmcp(json!({"name": "solo", "mcp_servers": [{"server_id": alpha}]}))
        .await
}

#[actix_web::test]
async fn every_list_is_logged_in_one_shape_on_both_faces() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let vmcp = single_slot(&app).await;
    let r = app.get("/api/vmcps/solo/tools").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tools = r.body["tools"].as_array().unwrap().len();
    assert!(tools > 0);

    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/solo/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    let listed = upstream
        .peer()
        .list_tools(Some(PaginatedRequestParams::default()))
        .await
        .unwrap();
    assert_eq!(listed.tools.len(), tools);
    upstream
        .peer()
        .list_resource_templates(Some(PaginatedRequestParams::default()))
        .await
        .unwrap();

    let rows = rows_when(&app, &vmcp, |rows| {
        rows.iter().filter(|r| r["method"] == "tools/list").count() == 2
            && rows
                .iter()
                .any(|r| r["method"] == "resources/templates/list")
    })
    .await;
    for row in rows.iter().filter(|r| r["method"] == "tools/list") {
        assert_eq!(row["result"], json!({"items": tools}), "{row}");
        assert_eq!(row["success"], true, "{row}");
    }
    let sources: Vec<&str> = rows
        .iter()
        .filter(|r| r["method"] == "tools/list")
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&"rest") && sources.contains(&"mcp"),
        "{sources:?}"
    );
    upstream.shutdown().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_cancelled_call_leaves_a_row_on_both_faces() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let vmcp = single_slot(&app).await;

    // REST: the HTTP client gives up while the tool hangs upstream.
    let gave_up = reqwest::Client::new()
        .post(format!("{}/api/vmcps/solo/tools/call", app.base))
        .timeout(Duration::from_millis(300))
        .json(&json!({"name": "alpha.hang", "arguments": {}}))
        .send()
        .await;
    assert!(gave_up.is_err(), "the call did not hang: {gave_up:?}");
    let rows = rows_when(&app, &vmcp, |rows| {
        rows.iter().any(|r| r["target"] == "alpha.hang")
    })
    .await;
    let row = rows.iter().find(|r| r["target"] == "alpha.hang").unwrap();
    assert_eq!(row["success"], false, "{row}");
    assert_eq!(row["source"], "rest", "{row}");
    assert!(
        row["error"].as_str().unwrap().starts_with("cancelled: "),
        "{row}"
    );
    assert!(row["mcp_server_id"].is_string(), "{row}");

    // MCP: the client cancels its request.
    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/solo/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    let request: rmcp::model::ClientRequest = serde_json::from_value(
        json!({"method": "tools/call", "params": {"name": "alpha.hang", "arguments": {"n": 2}}}),
    )
    .unwrap();
    let handle = upstream
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    let rows = rows_when(&app, &vmcp, |rows| {
        rows.iter()
            .filter(|r| r["target"] == "alpha.hang" && r["source"] == "mcp")
            .count()
            == 1
    })
    .await;
    let row = rows
        .iter()
        .find(|r| r["target"] == "alpha.hang" && r["source"] == "mcp")
        .unwrap();
    assert_eq!(row["success"], false, "{row}");
    assert!(
        row["error"].as_str().unwrap().starts_with("cancelled: "),
        "{row}"
    );
    // The metrics count them as cancelled, not as errors of the gateway or the server.
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vmcp_operations_total{")
                && l.contains("method=\"tools/call\"")
                && l.contains("status=\"cancelled\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("method=\"tools/call\"") && l.contains("status=\"error\"")),
        "{metrics}"
    );
    upstream.shutdown().await;
    app.stop().await;
}

#[actix_web::test]
async fn completion_waits_for_the_servers_limit_like_any_call() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let vmcp = single_slot(&app).await;
    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/solo/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    let templates = upstream
        .peer()
        .list_resource_templates(Some(PaginatedRequestParams::default()))
        .await
        .unwrap();
    let template = templates.resource_templates[0].uri_template.clone();
    let complete = || {
        CompleteRequestParams::new(
            Reference::Resource(ResourceTemplateReference::new(template.clone())),
            ArgumentInfo::new("name", "a"),
        )
    };
    // Free: completion works through the pipeline.
    let done = upstream.peer().complete(complete()).await.unwrap();
    assert_eq!(done.completion.values, ["alice"]);

    // The server's one slot is taken by a hanging call (for its 1 s timeout), and a second one
    // waits for it: completion queues behind both, and gives up after the server's timeout
    // with the saturation error, instead of overtaking them.
    let hang = |base: String| async move {
        reqwest::Client::new()
            .post(format!("{base}/api/vmcps/solo/tools/call"))
            .timeout(Duration::from_secs(5))
            .json(&json!({"name": "alpha.hang", "arguments": {}}))
            .send()
            .await
    };
    let first = tokio::spawn(hang(app.base.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = tokio::spawn(hang(app.base.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = upstream
        .peer()
        .complete(complete())
        .await
        .expect_err("completion overtook the server's limit");
    assert!(err.to_string().contains("MCP server saturated"), "{err}");
    let _ = (first.await, second.await);

    let rows = rows_when(&app, &vmcp, |rows| {
        rows.iter()
            .filter(|r| r["method"] == "completion/complete")
            .count()
            == 2
    })
    .await;
    assert!(
        rows.iter()
            .any(|r| r["method"] == "completion/complete" && r["success"] == false)
    );
    upstream.shutdown().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_down_members_tool_is_a_502_on_both_faces_with_hints_in_each_faces_words() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let broken = app
        .add_server(
            "broken",
            "stdio",
            harness::stdio_config("broken", &["--fail-start"]),
        )
        .await;
    app.add_vmcp(
        json!({"name": "mixed", "mcp_servers": [{"server_id": alpha}, {"server_id": broken}]}),
    )
    .await;

    let r = app
        .post(
            "/api/vmcps/mixed/tools/call",
            json!({"name": "broken.echo", "arguments": {}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "list them with GET /api/vmcps/mixed/tools",
    );

    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/mixed/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    let mut params = rmcp::model::CallToolRequestParams::new("broken.echo");
    params.arguments = Some(serde_json::Map::new());
    let err = upstream.peer().call_tool(params).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tool unavailable"), "{text}");
    assert!(text.contains("broken"), "{text}");
    assert!(text.contains("list them with tools/list"), "{text}");
    assert!(
        !text.contains("/api/"),
        "an MCP error names a REST route: {text}"
    );

    // A name that can only be a member's that is up is a 404 (invalid params for MCP).
    let r = app
        .post(
            "/api/vmcps/mixed/tools/call",
            json!({"name": "alpha.nope", "arguments": {}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        "has no tool named \"alpha.nope\"",
    );
    let mut params = rmcp::model::CallToolRequestParams::new("alpha.nope");
    params.arguments = Some(serde_json::Map::new());
    let err = upstream.peer().call_tool(params).await.unwrap_err();
    assert!(err.to_string().contains("-32602"), "{err}");
    upstream.shutdown().await;
    app.stop().await;
}

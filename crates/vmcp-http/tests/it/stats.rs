//! The operation log seen through the API: `/api/stats`, the live `/ws`, `/metrics`, and a
//! shutdown that loses no completed call.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vmcp_fixture::harness;
use vmcp_store::testing::TestDatabase;

use crate::support::{TestApp, assert_error};

async fn setup(app: &TestApp) -> (String, String) {
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let vmcp = app
        .add_vmcp(json!({"name": "logged", "mcp_servers": [{"server_id": alpha}],
                         "active_config": {"api_key": "sk-123", "region": "eu", "github": {"token": "t"}}}))
        .await;
    (alpha, vmcp)
}

/// Waits until the stats (with `query`) count `n` logs.
async fn stats_when(app: &TestApp, query: &str, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get(&format!("/api/stats{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["stats"]["total_logs"] == n {
            return r.body;
        }
        assert!(Instant::now() < deadline, "never {n} logs: {}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call_as(app: &TestApp, client: &str, vmcp: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/api/vmcps/{vmcp}/tools/call", app.base))
        .header("x-client-id", client)
        .json(&body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

#[actix_web::test]
async fn every_operation_is_logged_with_its_fields_redacted_and_capped() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (alpha, vmcp) = setup(&app).await;
    app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    call_as(
        &app,
        "ann",
        &vmcp,
        json!({"name": "alpha.echo", "arguments": {"text": "hi"}}),
    )
    .await;
    call_as(&app, "bob", &vmcp, json!({"name": "alpha.fail"})).await;
    call_as(&app, "bob", &vmcp, json!({"name": "alpha.nope"})).await;
    // A nested call made by substitution is its own operation, linked to its parent.
    call_as(
        &app,
        "ann",
        &vmcp,
        json!({"name": "alpha.echo",
        "arguments": {"text": r#"@tool(alpha.echo, {"text": "inner"})"#}}),
    )
    .await;
    // A big result is capped.
    let big = "x".repeat(70 * 1024);
    call_as(
        &app,
        "ann",
        &vmcp,
        json!({"name": "alpha.echo", "arguments": {"text": big}}),
    )
    .await;

    let body = stats_when(&app, "", 7).await;
    let stats = &body["stats"];
    assert_eq!(stats["active_clients"], 3, "rest-api, ann, bob: {stats}");
    assert_eq!(stats["total_vmcps"], 1);
    assert_eq!(stats["total_tool_calls"], 6);
    assert_eq!(stats["avg_tools_per_call"], 2.0);
    assert_eq!(
        stats["failed"], 1,
        "the unknown tool; alpha.fail answered isError"
    );
    assert_eq!(
        body["pagination"],
        json!({"page": 1, "page_size": 50, "total_pages": 1, "total_items": 7})
    );
    let logs = body["logs"].as_array().unwrap();
    let first = logs.last().unwrap();
    assert_eq!(first["method"], "tools/list");
    assert_eq!(first["client_id"], "rest-api");
    assert_eq!(
        first["active_config_snapshot"],
        json!({"api_key": "********", "region": "eu", "github": {"token": "********"}})
    );
    let echo = logs
        .iter()
        .find(|l| l["client_id"] == "ann" && l["arguments"]["text"] == "hi")
        .unwrap();
    assert_eq!(echo["mcp_server_id"], alpha);
    assert_eq!(echo["target"], "alpha.echo");
    assert_eq!(echo["result"]["content"][0]["text"], "hi");
    assert_eq!(echo["success"], true);
    assert!(echo["duration_ms"].as_f64().unwrap() > 0.0);
    let nope = logs.iter().find(|l| l["target"] == "alpha.nope").unwrap();
    assert_eq!(nope["success"], false);
    assert!(
        nope["error"]
            .as_str()
            .unwrap()
            .contains("has no tool named")
    );
    // The log keeps the arguments as sent, before substitution.
    let parent = logs
        .iter()
        .find(|l| l["arguments"]["text"] == r#"@tool(alpha.echo, {"text": "inner"})"#)
        .unwrap();
    assert!(parent["parent_log_id"].is_null());
    assert_eq!(parent["result"]["content"][0]["text"], "inner");
    let child = logs
        .iter()
        .find(|l| l["parent_log_id"] == parent["log_id"])
        .unwrap();
    assert_eq!(child["arguments"], json!({"text": "inner"}));
    let capped = logs.iter().find(|l| l["result_truncated"] == true).unwrap();
    assert_eq!(capped["result"].as_str().unwrap().len(), 64 * 1024);

    // Filters and pages through the API.
    let r = stats_when(&app, "?client_id=bob", 2).await;
    assert_eq!(r["stats"]["active_clients"], 1);
    let r = stats_when(&app, "?method=tools/list", 1).await;
    assert_eq!(r["logs"][0]["method"], "tools/list");
    let r = app.get("/api/stats?page=3&page_size=3").await;
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["pagination"]["total_pages"], 3);
    let r = app
        .get(&format!("/api/stats?vmcp_id={vmcp}&start_date=2999-01-01"))
        .await;
    assert_eq!(r.body["stats"]["total_logs"], 0);
    assert_error(
        &app.get("/api/stats?start_date=soon").await,
        StatusCode::BAD_REQUEST,
        "start_date",
    );
    assert_error(
        &app.get("/api/stats?page_size=101").await,
        StatusCode::BAD_REQUEST,
        "page_size",
    );
    assert_error(
        &app.get("/api/stats?page=0").await,
        StatusCode::BAD_REQUEST,
        "page",
    );
    assert_error(
        &app.get("/api/stats?page=x").await,
        StatusCode::BAD_REQUEST,
        "page",
    );
    assert_error(
        &app.get("/api/stats?page=2147483648").await,
        StatusCode::BAD_REQUEST,
        "page: must be at most 2147483647",
    );

    // Metrics: echo, fail (an isError result is still an answer), the outer and the nested
    // echo, the big echo.
    let text = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(&format!(
        "vmcp_operations_total{{vmcp=\"{vmcp}\",server=\"{alpha}\",method=\"tools/call\",status=\"ok\"}} 5"
    )), "{text}");
    assert!(text.contains(&format!(
        "vmcp_upstream_up{{server=\"alpha\",server_id=\"{alpha}\",status=\"connected\"}} 1"
    )));
    assert!(text.contains("vmcp_log_dropped_total 0"));
    // Prometheus asks for OpenMetrics, and is told it gets it; anyone else gets text/plain.
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", app.base))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text().await.unwrap().trim_end().ends_with("# EOF"));
    let r = reqwest::get(format!("{}/metrics", app.base)).await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_websocket_streams_status_changes_and_log_entries() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (alpha, vmcp) = setup(&app).await;
    let ws_url = format!(
        "{}/ws?client_id=carol",
        app.base.replace("http://", "ws://")
    );
    let (_response, mut ws) = awc::Client::new().ws(ws_url).connect().await.unwrap();
    let mut next = async || -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a message within 10 s")
                .expect("the socket is open")
                .unwrap();
            if let awc::ws::Frame::Text(bytes) = frame {
                return serde_json::from_slice(&bytes).unwrap();
            }
        }
    };
    assert_eq!(next().await["type"], "hello");
    app.post(&format!("/api/mcp-servers/{alpha}/connect"), json!({}))
        .await;
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("connected") {
        let m = next().await;
        if m["type"] == "server_status" {
            assert_eq!(m["server_id"], alpha);
            statuses.push(m["status"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, ["connecting", "connected"]);
    // Only carol's operations come through (the filter).
    call_as(
        &app,
        "dave",
        &vmcp,
        json!({"name": "alpha.echo", "arguments": {"text": "d"}}),
    )
    .await;
    call_as(
        &app,
        "carol",
        &vmcp,
        json!({"name": "alpha.echo", "arguments": {"text": "c"}}),
    )
    .await;
    let log = loop {
        let m = next().await;
        if m["type"] == "log" {
            break m;
        }
    };
    assert_eq!(log["entry"]["client_id"], "carol");
    assert_eq!(log["entry"]["arguments"], json!({"text": "c"}));
    let _ = ws.send(awc::ws::Message::Close(None)).await;
    app.stop().await;
}

#[actix_web::test]
async fn a_graceful_stop_writes_every_completed_call() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(db).await;
    let (_alpha, vmcp) = setup(&app).await;
    let mut done = 0;
    for i in 0..300 {
        let r = call_as(
            &app,
            "load",
            &vmcp,
            json!({"name": "alpha.echo", "arguments": {"text": format!("{i}")}}),
        )
        .await;
        assert_eq!(r["content"][0]["text"], format!("{i}"));
        done += 1;
    }
    let store = app.db.open();
    app.stop().await;
    let filter = serde_json::from_value::<vmcp_domain::StatsQuery>(json!({"client_id": "load"}))
        .unwrap()
        .validate()
        .unwrap();
    let (figures, _) = store.log_stats(&filter).unwrap();
    assert_eq!(figures.total, done);
}

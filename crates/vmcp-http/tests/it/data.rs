//! Attacks through the data: text that a database cannot store or that deceives a reader, and
//! writes that race each other. Each runs on SQLite and on Postgres.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error};

/// Asserts a 400 whose detail names `field`.
#[track_caller]
fn refused(r: &crate::support::Response, field: &str) {
    assert_error(r, StatusCode::BAD_REQUEST, field);
}

#[actix_web::test]
async fn management_text_that_cannot_be_stored_or_deceives_is_refused() {
    for app in TestApp::each().await {
        let server = json!({"name": "fs", "transport_type": "stdio", "config": {"command": "npx"}});
        let mut bad = server.clone();
        bad["description"] = json!("evil\u{0}description");
        refused(
            &app.post("/api/mcp-servers", bad.clone()).await,
            "description",
        );
        let id = app
            .add_server("fs", "stdio", json!({"command": "npx"}))
            .await;
        refused(
            &app.put(&format!("/api/mcp-servers/{id}"), bad).await,
            "description",
        );

        let good = json!({"name": "team", "description": "line one\nline two\twith a tab"});
        let vmcp = app.add_vmcp(good.clone()).await;
        for (body, field) in [
            (
                json!({"name": "team", "description": "a\u{0}b"}),
                "description",
            ),
            (
                json!({"name": "team", "description": "\u{1b}[2J"}),
                "description",
            ),
            // Looks like "team" reversed, or like "team" itself in a list.
            (json!({"name": "\u{202E}maet"}), "name"),
            (json!({"name": "te\u{200B}am"}), "name"),
            (json!({"name": "team\u{2066}"}), "name"),
            (json!({"name": "\u{FEFF}team"}), "name"),
            (json!({"name": "te\u{00AD}am"}), "name"),
            (json!({"name": "te\u{0}am"}), "name"),
            (
                json!({"name": "team", "tools": {"fs.read": {"description": "x\u{0}"}}}),
                "tools.fs.read.description",
            ),
            (
                json!({"name": "team", "tools": {"fs.read": {"name": "re\u{200B}ad"}}}),
                "tools.fs.read.name",
            ),
        ] {
            refused(&app.post("/api/vmcps", body.clone()).await, field);
            refused(
                &app.put(&format!("/api/vmcps/{vmcp}"), body.clone()).await,
                field,
            );
            refused(&app.post("/api/vmcps/import", body).await, field);
        }
        let mut doc = app.get(&format!("/api/vmcps/{vmcp}/export")).await.body;
        doc["name"] = json!("imported");
        doc["description"] = json!("nul\u{0}");
        refused(&app.post("/api/vmcps/import", doc).await, "description");
        // Nothing of it was stored: the vMCP is as created, and it is the only one.
        let all = app.get("/api/vmcps").await.body;
        assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
        assert_eq!(all[0]["description"], good["description"]);
        app.stop().await;
    }
}

/// Waits until `/api/stats` lists at least `n` operations, and returns them.
async fn logs(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/api/stats?page_size=100").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let logs = r.body["logs"].as_array().unwrap().clone();
        if logs.len() >= n {
            return logs;
        }
        assert!(Instant::now() < deadline, "never {n} logs: {}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_client_named_with_a_nul_costs_nobody_their_log_rows() {
    for app in TestApp::each().await {
        let vmcp = app.add_vmcp(json!({"name": "team"})).await;
        let url = format!("{}/vmcp/{vmcp}/mcp", app.base);
        let http = reqwest::Client::new();
        let accept = "application/json, text/event-stream";
        let r = http
            .post(&url)
            .header("accept", accept)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "evil\u{0}client", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let _ = r.text().await;
        for body in [
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "no\u{0}such", "arguments": {}}}),
        ] {
            let r = http
                .post(&url)
                .header("accept", accept)
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-06-18")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            let _ = r.text().await;
        }
        // Someone else, at the same time.
        for _ in 0..3 {
            let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
        // MCP: tools/list and tools/call; REST: three lists.
        let logs = logs(&app, 5).await;
        let clients: Vec<&str> = logs
            .iter()
            .map(|l| l["client_id"].as_str().unwrap())
            .collect();
        assert!(
            clients.iter().any(|c| c.starts_with("evil\u{FFFD}client")),
            "{clients:?}"
        );
        assert_eq!(clients.iter().filter(|c| **c == "rest-api").count(), 3);
        assert_eq!(app.gateway.oplog.dropped(), 0);
        app.stop().await;
    }
}

/// Asserts that a racing write ended as one may: done, refused, not found or a conflict, with the
/// error body.
#[track_caller]
fn settled(r: &crate::support::Response, allowed: &[u16]) {
    assert!(
        allowed.contains(&r.status.as_u16()),
        "{}: {}",
        r.status,
        r.body
    );
    if !r.status.is_success() {
        let obj = r.body.as_object().unwrap();
        assert!(
            obj.contains_key("error") && obj.contains_key("detail"),
            "{}",
            r.body
        );
    }
}

#[actix_web::test]
async fn racing_writes_answer_404_or_409_and_one_delete_wins() {
    for app in TestApp::each().await {
        let server = app.create_server("fs").await;
        for i in 0..25 {
            // A PUT and two DELETEs of one vMCP.
            let vmcp = app.add_vmcp(json!({"name": format!("v{i}")})).await;
            let path = format!("/api/vmcps/{vmcp}");
            let body = json!({"name": format!("v{i}"), "mcp_servers": [{"server_id": server}]});
            let (put, d1, d2) =
                tokio::join!(app.put(&path, body), app.delete(&path), app.delete(&path));
            settled(&put, &[200, 404]);
            settled(&d1, &[200, 404]);
            settled(&d2, &[200, 404]);
            assert_eq!(
                [&d1, &d2]
                    .iter()
                    .filter(|r| r.status == StatusCode::OK)
                    .count(),
                1,
                "{} {}",
                d1.body,
                d2.body
            );
            assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
            // The runtime forgot it too: its MCP endpoint is gone.
            assert!(app.gateway.vmcp_entry(&vmcp).is_none());

            // Two DELETEs of a server, and a PUT that makes a vMCP take it.
            let s = app.create_server(&format!("s{i}")).await;
            let spath = format!("/api/mcp-servers/{s}");
            let vmcp = app.add_vmcp(json!({"name": format!("w{i}")})).await;
            let body = json!({"name": format!("w{i}"), "mcp_servers": [{"server_id": s}]});
            let vpath = format!("/api/vmcps/{vmcp}");
            let (put, d1, d2) = tokio::join!(
                app.put(&vpath, body),
                app.delete(&spath),
                app.delete(&spath)
            );
            settled(&put, &[200, 400, 409]);
            settled(&d1, &[200, 404, 409]);
            settled(&d2, &[200, 404, 409]);
            let deleted = [&d1, &d2]
                .iter()
                .filter(|r| r.status == StatusCode::OK)
                .count();
            assert!(deleted <= 1);
            let members = app.get(&format!("/api/vmcps/{vmcp}")).await.body["mcp_servers"]
                .as_array()
                .unwrap()
                .len();
            let exists = app.get(&spath).await.status == StatusCode::OK;
            assert_eq!(exists, deleted == 0);
            assert_eq!(members, usize::from(exists && put.status == StatusCode::OK));
            app.delete(&format!("/api/vmcps/{vmcp}")).await;
        }
        app.stop().await;
    }
}

#[actix_web::test]
async fn other_methods_on_the_import_path_are_405() {
    let app = TestApp::start(vmcp_store::testing::TestDatabase::sqlite()).await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = app
            .raw(
                method.clone(),
                "/api/vmcps/import",
                Some("application/json"),
                Some(br#"{"name": "x", "mcp_servers": [{"name": "fs"}]}"#.to_vec()),
            )
            .await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "use POST");
        assert_eq!(r.headers["allow"], "POST", "{method}");
    }
    // A value that is neither a vMCP's id nor its name is a 404 naming it.
    let r = app.get("/api/vmcps/not-an-id").await;
    assert_error(&r, StatusCode::NOT_FOUND, "no vMCP has the id or name");
    app.stop().await;
}

//! The reference's management examples, as a user would run them, on every backend.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error};

fn is_timestamp(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono_like(s))
}

fn chrono_like(s: &str) -> bool {
    // 2024-01-15T10:30:00.000Z
    s.len() == 24 && &s[4..5] == "-" && &s[10..11] == "T" && &s[19..20] == "."
}

#[actix_web::test]
async fn the_reference_walkthrough_works_on_every_backend() {
    for app in TestApp::each().await {
        walkthrough(&app).await;
        app.stop().await;
    }
}

async fn walkthrough(app: &TestApp) {
    // Create an MCP server (the reference's body).
    let r = app
        .post(
            "/api/mcp-servers",
            json!({
                "name": "github-mcp",
                "description": "GitHub integration",
                "transport_type": "stdio",
                "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let server = r.body.clone();
    let sid = server["server_id"].as_str().unwrap().to_string();
    assert!(sid.starts_with("server_"));
    assert_eq!(server["name"], "github-mcp");
    assert_eq!(server["transport_type"], "stdio");
    assert_eq!(
        server["config"],
        json!({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]})
    );
    assert_eq!(server["status"], "disconnected");
    assert_eq!(server["last_connected"], Value::Null);
    assert!(
        is_timestamp(&server["created_at"]),
        "{}",
        server["created_at"]
    );

    let r = app.get("/api/mcp-servers").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!([server]));
    let r = app.get(&format!("/api/mcp-servers/{sid}")).await;
    assert_eq!(r.body, server);

    // Create a vMCP using it.
    let r = app
        .post(
            "/api/vmcps",
            json!({
                "name": "My vMCP",
                "description": "Description of the vMCP",
                "mcp_servers": [{"server_id": sid, "priority": 1}],
                "active_config": {"api_key": "value"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let vmcp = r.body.clone();
    let vid = vmcp["vmcp_id"].as_str().unwrap().to_string();
    assert!(vid.starts_with("vmcp_"));
    assert_eq!(
        vmcp["mcp_servers"],
        json!([{"server_id": sid, "name": "github-mcp", "priority": 1}])
    );
    // A secret-looking key is write-only: answers mask it.
    assert_eq!(vmcp["active_config"], json!({"api_key": "********"}));
    assert!(is_timestamp(&vmcp["updated_at"]));
    let keys: Vec<&String> = vmcp.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "vmcp_id",
            "name",
            "description",
            "mcp_servers",
            "active_config",
            "naming",
            "tools",
            "mcp_substitution",
            "tool_search",
            "secret_keys",
            "warnings",
            "created_at",
            "updated_at"
        ]
    );

    // List and get.
    assert_eq!(app.get("/api/vmcps").await.body, json!([vmcp]));
    assert_eq!(app.get(&format!("/api/vmcps/{vid}")).await.body, vmcp);

    // Update: a full replace; omitted fields reset.
    let r = app
        .put(
            &format!("/api/vmcps/{vid}"),
            json!({"name": "Development vMCP", "mcp_servers": [{"server_id": sid}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Development vMCP");
    assert_eq!(r.body["description"], "");
    assert_eq!(r.body["active_config"], json!({}));
    assert_eq!(r.body["mcp_servers"][0]["priority"], 1);
    assert_eq!(r.body["created_at"], vmcp["created_at"]);

    // Putting back what GET returned is accepted (read-only fields are ignored). The update
    // above dropped the secret, so the mask has nothing to keep: it is sent again.
    let mut back = vmcp.clone();
    back["active_config"] = json!({"api_key": "value"});
    let r = app.put(&format!("/api/vmcps/{vid}"), back).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "My vMCP");
    assert_eq!(r.body["active_config"], json!({"api_key": "********"}));

    // Export: self-contained, the servers by definition (secrets as stored, since asked).
    let r = app
        .get(&format!("/api/vmcps/{vid}/export?include_secrets=true"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let export = r.body.clone();
    assert_eq!(
        export,
        json!({
            "vmcp_export_version": 1,
            "name": "My vMCP",
            "description": "Description of the vMCP",
            "mcp_servers": [{
                "name": "github-mcp",
                "description": "GitHub integration",
                "transport_type": "stdio",
                "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]},
                "priority": 1
            }],
            "active_config": {"api_key": "value"},
            "naming": {"prefix": true, "separator": "."},
            "tools": {},
            "mcp_substitution": false
        })
    );

    // Delete the vMCP, then import the export back: the identical server is reused.
    let r = app.delete(&format!("/api/vmcps/{vid}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"message": "vMCP deleted successfully"}));
    assert_error(
        &app.get(&format!("/api/vmcps/{vid}")).await,
        StatusCode::NOT_FOUND,
        &vid,
    );
    let r = app.post("/api/vmcps/import", export.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let imported = r.body.clone();
    assert_ne!(imported["vmcp_id"], vmcp["vmcp_id"]);
    assert_eq!(imported["mcp_servers"][0]["server_id"], sid.as_str());
    assert_eq!(
        app.get("/api/mcp-servers")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let again = app
        .get(&format!(
            "/api/vmcps/{}/export?include_secrets=true",
            imported["vmcp_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(again.body, export, "export, import, export round-trips");

    // The plain create shape is accepted by import too.
    let r = app
        .post(
            "/api/vmcps/import",
            json!({"name": "Imported vMCP", "description": "Imported configuration",
                   "mcp_servers": [{"server_id": sid, "priority": 3}], "active_config": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["mcp_servers"][0]["priority"], 3);

    // A server in use cannot be deleted; once unused it can.
    let r = app.delete(&format!("/api/mcp-servers/{sid}")).await;
    assert_error(&r, StatusCode::CONFLICT, "\"Imported vMCP\", \"My vMCP\"");
    for v in app.get("/api/vmcps").await.body.as_array().unwrap() {
        let id = v["vmcp_id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/api/vmcps/{id}")).await.status,
            StatusCode::OK
        );
    }
    let r = app.delete(&format!("/api/mcp-servers/{sid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"message": "MCP server deleted successfully"})
    );
    assert_eq!(app.get("/api/mcp-servers").await.body, json!([]));
}

#[actix_web::test]
async fn updating_a_server_replaces_its_definition() {
    let app = TestApp::start(vmcp_store::testing::TestDatabase::sqlite()).await;
    let sid = app.create_server("fs").await;
    let r = app
        .put(
            &format!("/api/mcp-servers/{sid}"),
            json!({"name": "web", "transport_type": "http",
                   "config": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer t"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["transport_type"], "streamable_http",
        "the alias is stored by its name"
    );
    assert_eq!(r.body["description"], "");
    assert_eq!(
        r.body["config"],
        json!({"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "********"}})
    );
    app.stop().await;
}

#[actix_web::test]
async fn health_reports_the_database() {
    for app in TestApp::each().await {
        let r = app.get("/health").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["status"], "ok");
        assert_eq!(r.body["database"], app.db.backend().as_str());
        app.stop().await;
    }
}

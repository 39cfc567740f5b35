//! Variable substitution and tool customization, end to end: through REST and through a vMCP's
//! MCP endpoint, against the fixture (its `args` tool answers with the arguments it received).

use std::sync::Arc;

use reqwest::StatusCode;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use vmcp_domain::TransportType;
use vmcp_fixture::harness;
use vmcp_store::testing::TestDatabase;
use vmcp_transport::LogBuffer;

use crate::support::{TestApp, assert_error};

async fn setup(extra: Value) -> (TestApp, String, String) {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let mut body = json!({"name": "subst", "mcp_servers": [{"server_id": alpha}],
                          "active_config": {"default_repo": "octo/hello", "issue_title": "from config",
                                            "nested": {"team": "core"}}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let vmcp = app.add_vmcp(body).await;
    (app, alpha, vmcp)
}

async fn call(app: &TestApp, vmcp: &str, body: Value) -> crate::support::Response {
    app.post(&format!("/api/vmcps/{vmcp}/tools/call"), body)
        .await
}

async fn calls_made(app: &TestApp, vmcp: &str) -> u64 {
    let r = call(app, vmcp, json!({"name": "alpha.whoami"})).await;
    r.body["structuredContent"]["calls"].as_u64().unwrap()
}

#[actix_web::test]
async fn the_reference_example_and_nested_calls_through_rest() {
    let (app, _alpha, vmcp) = setup(json!({})).await;
    // The reference's example, with @param from the call's params over active_config.
    let r = call(
        &app,
        &vmcp,
        json!({"name": "alpha.args", "params": {"issue_title": "Crash on start"}, "arguments": {
            "repo": "@config:default_repo",
            "title": "@param:issue_title",
            "limit": "@config:nested",
            "body": r#"@prompt(alpha.greeting, {"who": "@config:nested.team"})"#}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["structuredContent"],
        json!({"repo": "octo/hello", "title": "Crash on start", "limit": {"team": "core"},
               "body": "Hello, core!"})
    );
    // Without params, @param falls back to active_config.
    let r = call(
        &app,
        &vmcp,
        json!({"name": "alpha.args", "arguments": {"title": "@param:issue_title"}}),
    )
    .await;
    assert_eq!(r.body["structuredContent"]["title"], "from config");

    // @tool and @resource (by server.uri and by bare URI, parentheses kept), interpolated.
    let r = call(
        &app,
        &vmcp,
        json!({"name": "alpha.args", "arguments": {
            "a": r#"said: @tool(alpha.echo, {"text": "hi (there), you"})"#,
            "b": "@resource(alpha.test://static-text)",
            "c": "@resource(fixture://alpha/items/(5))",
            "mail": "ops@example.com", "at": "@@config:x"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["structuredContent"],
        json!({"a": "said: hi (there), you",
               "b": "This is the content of the static text resource.",
               "c": "item (5) of alpha", "mail": "ops@example.com", "at": "@config:x"})
    );

    // A missing variable or a failed nested call is a 400, and nothing is called upstream.
    let before = calls_made(&app, &vmcp).await;
    let r = call(
        &app,
        &vmcp,
        json!({"name": "alpha.args", "arguments": {"repo": "x @config:missing"}}),
    )
    .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "arguments.repo: @config:missing (at character 2): no key \"missing\" in the vMCP's active_config",
    );
    assert_eq!(r.body["error"], "substitution failed");
    let r = call(
        &app,
        &vmcp,
        json!({"name": "alpha.args", "arguments": {"b": "@tool(alpha.fail)"}}),
    )
    .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "the tool reported an error: this tool always fails",
    );
    let r = call(
        &app,
        &vmcp,
        json!({"name": "alpha.args", "arguments": {"b": "@tool(alpha.echo"}}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "missing ')'");
    // Only the nested alpha.fail reached the server.
    assert_eq!(calls_made(&app, &vmcp).await, before + 2);

    // Prompt arguments are substituted too.
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/prompts/get"),
            json!({"name": "alpha.greeting", "arguments": {"who": "@param:who"}, "params": {"who": "Ann"}}),
        )
        .await;
    assert_eq!(
        r.body["messages"][0]["content"]["text"], "Hello, Ann!",
        "{}",
        r.body
    );
    app.stop().await;
}

#[actix_web::test]
async fn tool_customization_hides_renames_fixes_and_defaults() {
    let (app, _alpha, vmcp) = setup(json!({"tools": {
        "alpha.args": {"name": "make_issue", "description": "Open an issue in our repository",
                       "fixed": {"repo": "@config:default_repo"}, "defaults": {"limit": 5}},
        "alpha.crash": {"hidden": true},
        "alpha.nope": {"hidden": true},
        "ghost.tool": {"description": "x"}
    }}))
    .await;
    let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    let tools = r.body["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"make_issue") && !names.contains(&"alpha.args"),
        "{names:?}"
    );
    assert!(!names.contains(&"alpha.crash"));
    let make = tools.iter().find(|t| t["name"] == "make_issue").unwrap();
    assert_eq!(make["description"], "Open an issue in our repository");
    assert!(
        make["inputSchema"]["properties"].get("repo").is_none(),
        "{make}"
    );
    assert_eq!(make["inputSchema"]["required"], json!(["title"]));

    // The fixed argument always reaches the server; the default fills what is absent.
    let r = call(
        &app,
        &vmcp,
        json!({"name": "make_issue", "arguments": {"title": "t", "repo": "evil/repo"}}),
    )
    .await;
    assert_eq!(
        r.body["structuredContent"],
        json!({"repo": "octo/hello", "title": "t", "limit": 5})
    );
    let r = call(
        &app,
        &vmcp,
        json!({"name": "make_issue", "arguments": {"title": "t", "limit": 9}}),
    )
    .await;
    assert_eq!(r.body["structuredContent"]["limit"], 9);
    let r = call(&app, &vmcp, json!({"name": "alpha.crash"})).await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        "has no tool named \"alpha.crash\"",
    );

    // Unknown tools are kept and reported.
    let r = app.get(&format!("/api/vmcps/{vmcp}")).await;
    let warnings = r.body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{}", r.body);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("tools.alpha.nope: alpha has no tool named \"nope\"")
    );
    assert!(
        warnings[1]
            .as_str()
            .unwrap()
            .starts_with("tools.ghost.tool: no server of this vMCP is named \"ghost\"")
    );

    // Export and import keep the customizations.
    let doc = app.get(&format!("/api/vmcps/{vmcp}/export")).await.body;
    assert_eq!(
        doc["tools"]["alpha.args"]["fixed"],
        json!({"repo": "@config:default_repo"})
    );
    app.delete(&format!("/api/vmcps/{vmcp}")).await;
    let r = app.post("/api/vmcps/import", doc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tools"]["alpha.args"]["name"], "make_issue");

    // Invalid customizations are refused.
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "bad", "tools": {"noserver": {}}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "tools.noserver: keys are server.tool",
    );
    let r = app
        .post(
            "/api/vmcps",
            json!({"name": "bad", "tools": {"a.b": {"fixed": {"x": 1}, "defaults": {"x": 2}}}}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "either fixed or defaulted");
    app.stop().await;
}

struct Quiet;

impl vmcp_transport::UpstreamObserver for Quiet {
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

async fn mcp_args(app: &TestApp, name: &str, arguments: Value, meta: Option<Value>) -> Value {
    let config =
        serde_json::from_value(json!({"url": format!("{}/vmcp/subst/mcp", app.base)})).unwrap();
    let upstream = vmcp_transport::connect(
        TransportType::StreamableHttp,
        &config,
        None,
        Arc::new(Quiet),
        &LogBuffer::default(),
    )
    .await
    .unwrap();
    let mut params = CallToolRequestParams::new(name.to_string());
    params.arguments = arguments.as_object().cloned();
    if let Some(meta) = meta {
        params.meta = Some(serde_json::from_value(meta).unwrap());
    }
    let result = upstream.peer().call_tool(params).await.unwrap();
    upstream.shutdown().await;
    serde_json::to_value(result).unwrap()["structuredContent"].clone()
}

#[actix_web::test]
async fn mcp_clients_get_substitution_only_when_the_vmcp_enables_it() {
    let (app, alpha, vmcp) =
        setup(json!({"tools": {"alpha.args": {"fixed": {"repo": "@config:default_repo"}}}})).await;
    // Off by default: the client's patterns pass through as text; the vMCP's fixed ones apply.
    let got = mcp_args(
        &app,
        "alpha.args",
        json!({"title": "@config:default_repo"}),
        None,
    )
    .await;
    assert_eq!(
        got,
        json!({"repo": "octo/hello", "title": "@config:default_repo"})
    );

    // Enabled: the client's arguments are substituted, and `_meta["vmcp/params"]` gives params.
    let r = app
        .put(
            &format!("/api/vmcps/{vmcp}"),
            json!({"name": "subst", "mcp_servers": [{"server_id": alpha}], "mcp_substitution": true,
                   "active_config": {"default_repo": "octo/hello"},
                   "tools": {"alpha.args": {"fixed": {"repo": "@config:default_repo"}}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = mcp_args(
        &app,
        "alpha.args",
        json!({"title": "@param:t", "limit": "@config:default_repo"}),
        Some(json!({"vmcp/params": {"t": "from meta"}})),
    )
    .await;
    assert_eq!(
        got,
        json!({"repo": "octo/hello", "title": "from meta", "limit": "octo/hello"})
    );
    app.stop().await;
}

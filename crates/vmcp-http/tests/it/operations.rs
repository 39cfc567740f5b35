//! A vMCP used as one MCP server through REST: two fixture servers (stdio and streamable HTTP)
//! merged, routed, passed through faithfully, with errors mapped and down servers reported.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use vmcp_fixture::harness::{self, HttpFixture};
use vmcp_store::testing::TestDatabase;

use crate::support::{TestApp, assert_error, text};

/// `alpha` (stdio, priority 1) and `beta` (streamable HTTP, priority 2), neither connected.
struct Pair {
    app: TestApp,
    _beta: HttpFixture,
    alpha: String,
    beta: String,
}

async fn pair(alpha_extra: &[&str]) -> Pair {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let beta_fixture = HttpFixture::start("beta", &[]);
    let mut config = harness::stdio_config("alpha", alpha_extra);
    config["timeout_seconds"] = json!(2);
    let alpha = app.add_server("alpha", "stdio", config).await;
    let beta = app
        .add_server(
            "beta",
            "streamable_http",
            json!({"url": beta_fixture.mcp_url()}),
        )
        .await;
    Pair {
        app,
        _beta: beta_fixture,
        alpha,
        beta,
    }
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn call(app: &TestApp, vmcp: &str, name: &str, arguments: Value) -> crate::support::Response {
    app.post(
        &format!("/api/vmcps/{vmcp}/tools/call"),
        json!({"name": name, "arguments": arguments}),
    )
    .await
}

#[actix_web::test]
async fn merged_lists_route_calls_and_pass_results_through() {
    let Pair {
        app,
        alpha,
        beta,
        _beta: _keep,
    } = pair(&[]).await;
    let vmcp = app
        .add_vmcp(json!({"name": "work", "mcp_servers": [
            {"server_id": beta, "priority": 2}, {"server_id": alpha, "priority": 1}
        ]}))
        .await;

    // Listing connects the servers on demand; alpha (priority 1) comes first.
    let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tools = names(&r.body, "tools");
    let first_beta = tools.iter().position(|n| n.starts_with("beta.")).unwrap();
    assert!(tools[..first_beta].iter().all(|n| n.starts_with("alpha.")));
    assert!(tools[first_beta..].iter().all(|n| n.starts_with("beta.")));
    assert!(tools.contains(&"alpha.echo".to_string()) && tools.contains(&"beta.echo".to_string()));
    assert_eq!(r.body["unavailable"], json!([]));
    assert_eq!(r.body["hidden"], json!([]));
    let add = r.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alpha.add")
        .unwrap();
    assert_eq!(add["title"], "Add two numbers");
    assert_eq!(add["outputSchema"]["required"], json!(["sum"]));
    assert_eq!(add["annotations"]["readOnlyHint"], true);
    assert_eq!(add["icons"][0]["mimeType"], "image/png");
    assert_eq!(add["inputSchema"]["required"], json!(["a", "b"]));
    let status = app.get(&format!("/api/mcp-servers/{alpha}")).await;
    assert_eq!(status.body["status"], "connected");

    // Calls go to the right server under the tool's own name.
    let r = call(&app, &vmcp, "beta.whoami", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["structuredContent"]["name"], "beta");
    let r = call(&app, &vmcp, "alpha.whoami", json!({})).await;
    assert_eq!(r.body["structuredContent"]["name"], "alpha");
    let r = call(&app, &vmcp, "alpha.echo", json!({"text": "hi there"})).await;
    assert_eq!(
        r.body,
        json!({"content": [{"type": "text", "text": "hi there"}]})
    );

    // Every content type, structuredContent, annotations and _meta pass through unchanged.
    let r = call(&app, &vmcp, "beta.content", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let types: Vec<&str> = r.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "text",
            "image",
            "audio",
            "resource_link",
            "resource",
            "resource"
        ]
    );
    assert_eq!(
        r.body["content"][0]["annotations"]["audience"],
        json!(["user"])
    );
    assert_eq!(r.body["content"][1]["data"], vmcp_fixture::server::TINY_PNG);
    assert_eq!(r.body["content"][2]["mimeType"], "audio/wav");
    assert_eq!(r.body["content"][3]["uri"], "test://static-text");
    assert_eq!(r.body["content"][4]["resource"]["text"], "embedded text");
    assert_eq!(r.body["content"][5]["resource"]["blob"], "AAEC");
    assert_eq!(r.body["_meta"], json!({"fixture/trace": "abc123"}));
    let r = call(&app, &vmcp, "alpha.add", json!({"a": 2, "b": 3.5})).await;
    assert_eq!(r.body["structuredContent"], json!({"sum": 5.5}));

    // A tool error is a result; a JSON-RPC error is mapped.
    let r = call(&app, &vmcp, "alpha.fail", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["isError"], true);
    assert_eq!(text(&r.body), "this tool always fails");
    let r = call(&app, &vmcp, "beta.invalid_params", json!({})).await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "the arguments are wrong on purpose",
    );
    let r = call(&app, &vmcp, "gamma.echo", json!({})).await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        "has no tool named \"gamma.echo\"",
    );
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/tools/call"),
            json!({"arguments": {}}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "name");

    // Resources keep their URIs; a URI both servers list goes to alpha; templates route.
    let r = app.get(&format!("/api/vmcps/{vmcp}/resources")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let uris: Vec<&str> = r.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "fixture://alpha/info",
            "test://static-text",
            "test://static-binary",
            "test://watched-resource",
            "fixture://beta/info"
        ]
    );
    assert_eq!(
        r.body["hidden"][0],
        json!({"name": "test://static-text", "server": "beta", "shadowed_by": "alpha"})
    );
    // A template that both servers offer is listed once, as a resource is, and reported hidden.
    let templates: Vec<&str> = r.body["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert_eq!(
        templates,
        [
            "fixture://alpha/items/{id}",
            "test://template/{id}/data",
            "fixture://beta/items/{id}"
        ]
    );
    assert!(
        r.body["hidden"].as_array().unwrap().contains(
            &json!({"name": "test://template/{id}/data", "server": "beta", "shadowed_by": "alpha"})
        ),
        "{}",
        r.body["hidden"]
    );
    assert_eq!(r.body["hidden"].as_array().unwrap().len(), 4);
    for (uri, expected) in [
        ("fixture://beta/items/7", "item 7 of beta"),
        ("fixture://alpha/items/x", "item x of alpha"),
        ("fixture://beta/info", "{\"name\":\"beta\"}"),
    ] {
        let r = app
            .post(
                &format!("/api/vmcps/{vmcp}/resources/read"),
                json!({"uri": uri}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        assert_eq!(r.body["contents"][0]["text"], expected);
        assert_eq!(r.body["contents"][0]["uri"], uri);
    }
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/resources/read"),
            json!({"uri": "nothing://here"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "lists \"nothing://here\"");

    // Prompts are named like tools and rendered by their server.
    let r = app.get(&format!("/api/vmcps/{vmcp}/prompts")).await;
    let prompts = names(&r.body, "prompts");
    assert_eq!(prompts.len(), 10);
    assert_eq!(
        (prompts[0].as_str(), prompts[5].as_str()),
        ("alpha.greeting", "beta.greeting")
    );
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/prompts/get"),
            json!({"name": "beta.greeting", "arguments": {"who": "Ann"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["messages"][0]["content"]["text"], "Hello, Ann!");
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/prompts/get"),
            json!({"name": "alpha.greeting", "arguments": {"who": 42}}),
        )
        .await;
    assert_eq!(r.body["messages"][0]["content"]["text"], "Hello, 42!");
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/prompts/get"),
            json!({"name": "alpha.greeting"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "argument `who` is required");
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/prompts/get"),
            json!({"name": "alpha.greeting", "arguments": {"who": ["x"]}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "arguments.who: prompt arguments are strings",
    );

    // Unknown and malformed vMCP ids.
    assert_error(
        &app.get("/api/vmcps/vmcp_0000000000000000/tools").await,
        StatusCode::NOT_FOUND,
        "no vMCP with id",
    );
    assert_error(
        &app.get("/api/vmcps/nope/prompts").await,
        StatusCode::NOT_FOUND,
        "no vMCP has the id or name \"nope\"",
    );
    app.stop().await;
}

#[actix_web::test]
async fn without_prefix_collisions_go_to_the_better_priority_and_are_reported() {
    let Pair {
        app,
        alpha,
        beta,
        _beta: _keep,
    } = pair(&[]).await;
    let body = |alpha_priority: i32, beta_priority: i32| {
        json!({"name": "flat", "naming": {"prefix": false}, "mcp_servers": [
            {"server_id": alpha, "priority": alpha_priority},
            {"server_id": beta, "priority": beta_priority}
        ]})
    };
    let vmcp = app.add_vmcp(body(2, 1)).await;
    let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    let tools = names(&r.body, "tools");
    assert_eq!(tools.iter().filter(|n| *n == "echo").count(), 1);
    assert!(!tools.iter().any(|n| n.contains('.')), "{tools:?}");
    let hidden = r.body["hidden"].as_array().unwrap();
    assert!(
        hidden.contains(&json!({"name": "echo", "server": "alpha", "shadowed_by": "beta"})),
        "{}",
        r.body
    );
    assert_eq!(hidden.len(), tools.len(), "every alpha tool is shadowed");
    let r = call(&app, &vmcp, "whoami", json!({})).await;
    assert_eq!(r.body["structuredContent"]["name"], "beta");

    // Swapping priorities swaps the winner at once (the vMCP update drops the cached aggregate).
    let r = app.put(&format!("/api/vmcps/{vmcp}"), body(1, 2)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["naming"], json!({"prefix": false, "separator": "."}));
    let r = call(&app, &vmcp, "whoami", json!({})).await;
    assert_eq!(r.body["structuredContent"]["name"], "alpha");

    // Another separator.
    let r = app
        .put(
            &format!("/api/vmcps/{vmcp}"),
            json!({"name": "flat", "naming": {"separator": "__"}, "mcp_servers": [{"server_id": alpha}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    assert!(names(&r.body, "tools").contains(&"alpha__echo".to_string()));
    let r = call(&app, &vmcp, "alpha__echo", json!({"text": "x"})).await;
    assert_eq!(text(&r.body), "x");
    let r = app
        .put(
            &format!("/api/vmcps/{vmcp}"),
            json!({"name": "flat", "naming": {"separator": "/"}}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "naming.separator");
    app.stop().await;
}

#[actix_web::test]
async fn a_down_server_leaves_the_rest_usable_and_says_why() {
    let Pair {
        app,
        alpha,
        beta,
        mut _beta,
    } = pair(&[]).await;
    let broken = app
        .add_server(
            "broken",
            "stdio",
            harness::stdio_config("broken", &["--fail-start"]),
        )
        .await;
    let vmcp = app
        .add_vmcp(json!({"name": "mixed", "mcp_servers": [
            {"server_id": alpha}, {"server_id": broken}, {"server_id": beta}
        ]}))
        .await;
    let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tools = names(&r.body, "tools");
    assert!(tools.contains(&"alpha.echo".to_string()) && tools.contains(&"beta.echo".to_string()));
    let down = r.body["unavailable"].as_array().unwrap();
    assert_eq!(down.len(), 1, "{}", r.body);
    assert_eq!(down[0]["name"], "broken");
    assert_eq!(down[0]["status"], "error");
    assert!(
        down[0]["error"]
            .as_str()
            .unwrap()
            .contains("failing to start"),
        "{}",
        r.body
    );
    // A tool of the member that is down is a 502 that names the member and why, not a 404.
    let r = call(&app, &vmcp, "broken.echo", json!({})).await;
    assert_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "this member cannot be asked: broken (",
    );
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("list them with GET /api/vmcps/mixed/tools"),
        "{}",
        r.body
    );

    // The HTTP server goes away: its calls are 502, alpha's go on.
    _beta.kill();
    let r = call(&app, &vmcp, "beta.echo", json!({"text": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    let r = call(&app, &vmcp, "alpha.echo", json!({"text": "still here"})).await;
    assert_eq!(text(&r.body), "still here");
    app.stop().await;
}

#[actix_web::test]
async fn timeouts_are_504_and_cancel_upstream_as_do_clients_that_leave() {
    let Pair {
        app,
        alpha,
        _beta: _keep,
        ..
    } = pair(&[]).await;
    let vmcp = app
        .add_vmcp(json!({"name": "slow", "mcp_servers": [{"server_id": alpha}]}))
        .await;
    // alpha's timeout_seconds is 2.
    let r = call(&app, &vmcp, "alpha.hang", json!({})).await;
    assert_error(
        &r,
        StatusCode::GATEWAY_TIMEOUT,
        "did not answer tools/call (hang) within 2 s",
    );
    let cancelled =
        |r: &crate::support::Response| r.body["structuredContent"]["cancelled"].as_u64();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(&app, &vmcp, "alpha.whoami", json!({})).await;
        if cancelled(&r) == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out call was not cancelled: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A client that gives up: the upstream request is cancelled too.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gone = client
        .post(format!("{}/api/vmcps/{vmcp}/tools/call", app.base))
        .json(&json!({"name": "alpha.sleep", "arguments": {"ms": 1500}}))
        .send()
        .await;
    assert!(gone.is_err(), "the client timed out");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(&app, &vmcp, "alpha.whoami", json!({})).await;
        if cancelled(&r) == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream call was not cancelled: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[actix_web::test]
async fn lists_follow_list_changed_and_server_status() {
    let Pair {
        app,
        alpha,
        _beta: _keep,
        ..
    } = pair(&[]).await;
    let vmcp = app
        .add_vmcp(json!({"name": "live", "mcp_servers": [{"server_id": alpha}]}))
        .await;
    let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
    assert!(!names(&r.body, "tools").contains(&"alpha.extra".to_string()));
    let r = call(&app, &vmcp, "alpha.toggle_tool", json!({})).await;
    assert_eq!(text(&r.body), "extra added");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.get(&format!("/api/vmcps/{vmcp}/tools")).await;
        if names(&r.body, "tools").contains(&"alpha.extra".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tools/list_changed was not followed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = call(&app, &vmcp, "alpha.extra", json!({})).await;
    assert_eq!(text(&r.body), "extra");

    // Disconnected by hand: the next operation connects it again (on demand).
    app.post(&format!("/api/mcp-servers/{alpha}/disconnect"), json!({}))
        .await;
    let r = call(&app, &vmcp, "alpha.echo", json!({"text": "back"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(text(&r.body), "back");
    app.stop().await;
}

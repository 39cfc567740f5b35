//! Tool search: a vMCP with `tool_search` lists the meta-tools `search_tools` and `call_tool`
//! to MCP clients, finds its tools as they are customized, calls them exactly as a direct call
//! would, follows list changes, and refuses bad input clearly on both faces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, PaginatedRequestParams};
use serde_json::{Value, json};
use vmcp_domain::TransportType;
use vmcp_fixture::harness;
use vmcp_store::testing::TestDatabase;
use vmcp_transport::Upstream;

use crate::mcp::{Client, call, connect};
use crate::support::{TestApp, assert_error};

async fn names(upstream: &Upstream) -> Vec<String> {
    upstream
        .peer()
        .list_tools(Some(PaginatedRequestParams::default()))
        .await
        .unwrap()
        .tools
        .iter()
        .map(|t| t.name.to_string())
        .collect()
}

async fn search(upstream: &Upstream, query: &str) -> Vec<String> {
    let r = call(
        upstream,
        "search_tools",
        json!({"query": query, "limit": 3}),
    )
    .await;
    assert_ne!(r["isError"], true, "{r}");
    let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        text, r["structuredContent"],
        "the text and the structure differ"
    );
    r["structuredContent"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["inputSchema"].is_object(), "{t}");
            t["name"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn tool_error(upstream: &Upstream, name: &str, args: Value) -> String {
    let mut params = CallToolRequestParams::new(name.to_string());
    params.arguments = args.as_object().cloned();
    upstream
        .peer()
        .call_tool(params)
        .await
        .expect_err("an error")
        .to_string()
}

#[actix_web::test]
async fn search_mode_lists_the_meta_tools_finds_and_calls_tools_as_customized() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let vmcp = app
        .add_vmcp(json!({
            "name": "searched",
            "tool_search": "search",
            "mcp_servers": [{"server_id": alpha}],
            "tools": {
                "alpha.add": {"name": "sum_numbers", "description": "Adds two numbers a and b"},
                "alpha.echo": {"hidden": true}
            }
        }))
        .await;
    let r = app.get(&format!("/api/vmcps/{vmcp}")).await;
    assert_eq!(r.body["tool_search"], "search", "{}", r.body);

    for transport in [TransportType::StreamableHttp, TransportType::Sse] {
        let path = match transport {
            TransportType::Sse => "sse",
            _ => "mcp",
        };
        let upstream = connect(
            transport,
            format!("{}/vmcp/searched/{path}", app.base),
            Arc::new(Client::default()),
        )
        .await;
        assert_eq!(names(&upstream).await, ["search_tools", "call_tool"]);

        // Found as renamed and described; the hidden tool is not found.
        let found = search(&upstream, "add two numbers together").await;
        assert_eq!(
            found.first().map(String::as_str),
            Some("sum_numbers"),
            "{found:?}"
        );
        let found = search(&upstream, "echo my text back").await;
        assert!(!found.iter().any(|n| n.contains("echo")), "{found:?}");

        // call_tool answers what a direct call answers.
        let via = call(
            &upstream,
            "call_tool",
            json!({"name": "sum_numbers", "arguments": {"a": 2, "b": 3.5}}),
        )
        .await;
        let direct = call(&upstream, "sum_numbers", json!({"a": 2, "b": 3.5})).await;
        assert_eq!(via, direct);
        assert_eq!(via["structuredContent"], json!({"sum": 5.5}), "{via}");
        let via = call(&upstream, "call_tool", json!({"name": "alpha.fail"})).await;
        assert_eq!(via["isError"], true, "{via}");

        // Bad input, in MCP's words.
        let e = tool_error(&upstream, "search_tools", json!({})).await;
        assert!(
            e.contains("-32602") && e.contains("query is required"),
            "{e}"
        );
        let e = tool_error(&upstream, "search_tools", json!({"query": "  "})).await;
        assert!(e.contains("-32602") && e.contains("empty"), "{e}");
        for limit in [json!(0), json!(10_000), json!(-1), json!("five")] {
            let e = tool_error(
                &upstream,
                "search_tools",
                json!({"query": "add", "limit": limit}),
            )
            .await;
            assert!(e.contains("-32602") && e.contains("limit"), "{limit}: {e}");
        }
        let e = tool_error(&upstream, "call_tool", json!({"name": "alpha.nope"})).await;
        let direct = tool_error(&upstream, "alpha.nope", json!({})).await;
        assert_eq!(e, direct);
        assert!(e.contains("has no tool named"), "{e}");
        // tools/list shows only the meta-tools here: the hint says where tools are found.
        assert!(e.contains("find them with search_tools"), "{e}");
        let e = tool_error(&upstream, "call_tool", json!({"arguments": {}})).await;
        assert!(e.contains("call_tool: name"), "{e}");
        upstream.shutdown().await;
    }

    // The log names the real tool, and searches are operations of their own.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(&format!("/api/stats?vmcp_id={vmcp}&page_size=100"))
            .await;
        let rows = r.body["logs"].as_array().cloned().unwrap_or_default();
        let called = rows
            .iter()
            .filter(|r| r["method"] == "tools/call" && r["target"] == "sum_numbers")
            .count();
        let searched = rows
            .iter()
            .filter(|r| r["method"] == "tools/search")
            .count();
        if called >= 4 && searched >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[actix_web::test]
async fn rest_search_both_mode_and_list_changes() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let vmcp = app
        .add_vmcp(json!({"name": "both", "tool_search": "both",
                         "active_config": {"api_key": "sk-search-s3cret"},
                         "mcp_servers": [{"server_id": alpha}]}))
        .await;

    // A secret typed into a query is searched, and never logged.
    let r = app
        .get("/api/vmcps/both/tools/search?q=echo%20sk-search-s3cret")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(&format!("/api/stats?vmcp_id={vmcp}&method=tools/search"))
            .await;
        if let Some(row) = r.body["logs"].as_array().and_then(|l| l.first()) {
            assert!(
                row["target"].as_str().unwrap().starts_with("echo "),
                "{row}"
            );
            assert!(!row.to_string().contains("sk-search-s3cret"), "{row}");
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let r = app
        .get("/api/vmcps/both/tools/search?q=wait%20a%20few%20milliseconds&limit=2")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tools"][0]["name"], "alpha.sleep", "{}", r.body);
    let r = app
        .get("/api/vmcps/both/tools/search?q=return%20the%20text%20or%20the%20arguments&limit=2")
        .await;
    assert_eq!(r.body["tools"].as_array().unwrap().len(), 2, "{}", r.body);
    let all = app.get("/api/vmcps/both/tools").await;
    assert_eq!(r.body["of"], all.body["tools"].as_array().unwrap().len());

    for bad in [
        "q=add&limit=0",
        "q=add&limit=10000",
        "q=%20&limit=3",
        "limit=3",
        "q=add&limit=many",
    ] {
        let r = app
            .get(&format!("/api/vmcps/both/tools/search?{bad}"))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "");
    }
    let r = app.get("/api/vmcps/nothing/tools/search?q=add").await;
    assert_error(&r, StatusCode::NOT_FOUND, "nothing");

    // `both`: every tool and the meta-tools.
    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/both/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    let listed = names(&upstream).await;
    assert_eq!(listed[..2], ["search_tools", "call_tool"]);
    assert!(listed.contains(&"alpha.add".to_string()));
    assert_eq!(
        listed.len(),
        2 + all.body["tools"].as_array().unwrap().len()
    );

    // A tool that appears upstream is found by the next search.
    let query = "/api/vmcps/both/tools/search?q=a%20tool%20that%20comes%20and%20goes&limit=1";
    let r = app.get(query).await;
    assert_ne!(r.body["tools"][0]["name"], "alpha.extra", "{}", r.body);
    call(&upstream, "alpha.toggle_tool", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get(query).await;
        if r.body["tools"][0]["name"] == "alpha.extra" {
            break;
        }
        assert!(Instant::now() < deadline, "never found: {}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    upstream.shutdown().await;
    app.stop().await;
}

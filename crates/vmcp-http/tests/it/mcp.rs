//! Every vMCP is an MCP server: an MCP client (rmcp, through vMCP's own client transports)
//! connects to `/vmcp/{vmcp}/mcp` (streamable HTTP) and `/vmcp/{vmcp}/sse` (legacy SSE).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, ClientResult, ErrorCode, ErrorData, ReadResourceRequestParams,
    ServerNotification, ServerRequest,
};
use rmcp::service::RequestContext;
use serde_json::{Value, json};
use vmcp_domain::TransportType;
use vmcp_fixture::harness::{self, HttpFixture};
use vmcp_store::testing::TestDatabase;
use vmcp_transport::{LogBuffer, Upstream, UpstreamObserver};

use crate::support::TestApp;

/// Records what the vMCP sends its client, and answers sampling requests.
#[derive(Default)]
pub struct Client {
    notifications: Mutex<Vec<Value>>,
    requests: Mutex<Vec<Value>>,
}

impl UpstreamObserver for Client {
    fn notification(&self, notification: ServerNotification) {
        self.notifications
            .lock()
            .unwrap()
            .push(serde_json::to_value(&notification).unwrap());
    }

    fn request(
        &self,
        request: ServerRequest,
        _context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let value = serde_json::to_value(&request).unwrap();
        self.requests.lock().unwrap().push(value.clone());
        async move {
            if value["method"] == "sampling/createMessage" {
                Ok(serde_json::from_value(json!({
                    "role": "assistant", "model": "test-model",
                    "content": {"type": "text", "text": "sampled answer"}
                }))
                .unwrap())
            } else {
                Err(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "no", None))
            }
        }
        .boxed()
    }
}

impl Client {
    fn methods(&self) -> Vec<String> {
        self.notifications
            .lock()
            .unwrap()
            .iter()
            .map(|n| n["method"].as_str().unwrap_or("").to_string())
            .collect()
    }

    async fn wait_for(&self, method: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.methods().iter().any(|m| m == method) {
            assert!(
                Instant::now() < deadline,
                "no {method}; got {:?}",
                self.methods()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub async fn connect(transport: TransportType, url: String, client: Arc<Client>) -> Upstream {
    let config = serde_json::from_value(json!({"url": url})).unwrap();
    vmcp_transport::connect(transport, &config, None, client, &LogBuffer::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

pub async fn call(upstream: &Upstream, name: &str, args: Value) -> Value {
    let mut params = CallToolRequestParams::new(name.to_string());
    params.arguments = args.as_object().cloned();
    let result = upstream
        .peer()
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::to_value(result).unwrap()
}

pub async fn setup() -> (TestApp, HttpFixture, String) {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (beta, vmcp) = team(&app).await;
    (app, beta, vmcp)
}

/// The vMCP "team" of a stdio fixture "alpha" and a streamable HTTP fixture "beta".
pub async fn team(app: &TestApp) -> (HttpFixture, String) {
    let beta = HttpFixture::start("beta", &[]);
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let beta_id = app
        .add_server("beta", "streamable_http", json!({"url": beta.mcp_url()}))
        .await;
    let vmcp = app
        .add_vmcp(
            json!({"name": "team", "mcp_servers": [{"server_id": alpha}, {"server_id": beta_id}]}),
        )
        .await;
    (beta, vmcp)
}

async fn exercise(upstream: &Upstream, client: &Client) {
    let info = upstream.info();
    assert_eq!(info.server_info.as_ref().unwrap().name, "team");
    assert!(info.capabilities.tools.is_some() && info.capabilities.prompts.is_some());

    let tools = upstream.peer().list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(
        names.contains(&"alpha.echo") && names.contains(&"beta.echo"),
        "{names:?}"
    );
    let add = tools.iter().find(|t| t.name == "beta.add").unwrap();
    assert!(add.output_schema.is_some() && add.annotations.is_some());

    let r = call(upstream, "beta.echo", json!({"text": "over MCP"})).await;
    assert_eq!(r["content"][0]["text"], "over MCP");
    let r = call(upstream, "alpha.fail", json!({})).await;
    assert_eq!(r["isError"], true);

    // Progress: the client's token (rmcp gives each request one) comes back on the upstream's
    // notifications. (rmcp handles and sends notifications on separate tasks, so their order is
    // not guaranteed end to end; `progress` says where each belongs.)
    let mut params = CallToolRequestParams::new("alpha.progress");
    params.arguments = json!({"steps": 3}).as_object().cloned();
    let r = upstream.peer().call_tool(params).await.unwrap();
    assert_eq!(
        serde_json::to_value(&r.content).unwrap()[0]["text"],
        "done in 3 steps"
    );
    let progress_of = |client: &Client| -> Vec<Value> {
        client
            .notifications
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["method"] == "notifications/progress")
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while progress_of(client).len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let progress = progress_of(client);
    assert_eq!(progress.len(), 3, "{progress:?}");
    let token = &progress[0]["params"]["progressToken"];
    assert!(
        progress
            .iter()
            .all(|p| &p["params"]["progressToken"] == token)
    );
    let mut steps: Vec<(u64, String)> = progress
        .iter()
        .map(|p| {
            (
                p["params"]["progress"].as_f64().unwrap() as u64,
                p["params"]["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        [
            (1, "step 1 of 3".to_string()),
            (2, "step 2 of 3".to_string()),
            (3, "step 3 of 3".to_string())
        ]
    );

    // An upstream's list_changed reaches this session.
    call(upstream, "alpha.toggle_tool", json!({})).await;
    client.wait_for("notifications/tools/list_changed").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tools = upstream.peer().list_all_tools().await.unwrap();
        if tools.iter().any(|t| t.name == "alpha.extra") {
            break;
        }
        assert!(Instant::now() < deadline, "alpha.extra never listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Sampling asked by an upstream during a call goes to this client.
    let r = call(upstream, "alpha.test_sampling", json!({"prompt": "2+2?"})).await;
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("sampled answer"),
        "{r}"
    );

    // Resources and prompts.
    let resources = upstream.peer().list_all_resources().await.unwrap();
    assert!(resources.iter().any(|r| r.uri == "fixture://beta/info"));
    let read = upstream
        .peer()
        .read_resource(ReadResourceRequestParams::new("fixture://alpha/items/9"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&read.contents).unwrap()[0]["text"],
        "item 9 of alpha"
    );
    let prompts = upstream.peer().list_all_prompts().await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "beta.greeting"));

    // An unknown tool is a JSON-RPC error.
    let mut params = CallToolRequestParams::new("nope.tool");
    params.arguments = Some(Default::default());
    let e = upstream.peer().call_tool(params).await.unwrap_err();
    assert!(e.to_string().contains("has no tool named"), "{e}");
}

#[actix_web::test]
async fn streamable_http_endpoint_by_name_and_by_id() {
    let (app, _beta, vmcp) = setup().await;
    let client = Arc::new(Client::default());
    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/team/mcp", app.base),
        client.clone(),
    )
    .await;
    exercise(&upstream, &client).await;
    assert_eq!(app.gateway.sessions.count(), 1);
    assert_eq!(app.get("/health").await.body["mcp_sessions"], 1);
    let session = &app.gateway.sessions.list()[0];
    assert!(
        session.client_id.starts_with("vmcp/"),
        "{}",
        session.client_id
    );

    // By id too.
    let other = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/{vmcp}/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    assert!(!other.peer().list_all_tools().await.unwrap().is_empty());
    other.shutdown().await;
    upstream.shutdown().await;
    app.stop().await;
}

#[actix_web::test]
async fn legacy_sse_endpoint() {
    let (app, _beta, _vmcp) = setup().await;
    let client = Arc::new(Client::default());
    let upstream = connect(
        TransportType::Sse,
        format!("{}/vmcp/team/sse", app.base),
        client.clone(),
    )
    .await;
    exercise(&upstream, &client).await;
    upstream.shutdown().await;
    app.stop().await;
}

#[actix_web::test]
async fn dns_rebinding_and_unknown_vmcps_are_refused() {
    let (app, _beta, _vmcp) = setup().await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = http
        .post(format!("{}/vmcp/team/mcp", app.base))
        .header("host", "evil.example.com")
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .get(format!("{}/vmcp/team/sse", app.base))
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(format!("{}/vmcp/nobody/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("vMCP not found"),
        "{body}"
    );
    app.stop().await;
}

fn progress_count(client: &Client) -> usize {
    client
        .notifications
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .count()
}

#[actix_web::test]
async fn two_clients_share_one_upstream_without_mixing_anything() {
    let (app, _beta, _vmcp) = setup().await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    let (a_client, b_client) = (Arc::new(Client::default()), Arc::new(Client::default()));
    let a = connect(TransportType::StreamableHttp, url.clone(), a_client.clone()).await;
    let b = connect(TransportType::StreamableHttp, url, b_client.clone()).await;
    for round in 0..5 {
        let (ra, rb, ea, eb) = tokio::join!(
            call(&a, "alpha.progress", json!({"steps": 3})),
            call(&b, "alpha.progress", json!({"steps": 5})),
            call(&a, "alpha.echo", json!({"text": format!("a{round}")})),
            call(&b, "alpha.echo", json!({"text": format!("b{round}")})),
        );
        assert_eq!(ra["content"][0]["text"], "done in 3 steps");
        assert_eq!(rb["content"][0]["text"], "done in 5 steps");
        assert_eq!(ea["content"][0]["text"], format!("a{round}"));
        assert_eq!(eb["content"][0]["text"], format!("b{round}"));
    }
    // Each client gets exactly its own progress notifications: 5 x 3 and 5 x 5.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (progress_count(&a_client) < 15 || progress_count(&b_client) < 25)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(progress_count(&a_client), 15);
    assert_eq!(progress_count(&b_client), 25);
    for (client, total) in [(&a_client, 3.0), (&b_client, 5.0)] {
        let notes = client.notifications.lock().unwrap();
        assert!(
            notes
                .iter()
                .filter(|n| n["method"] == "notifications/progress")
                .all(|n| n["params"]["total"] == total),
            "a client received another client's progress"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_client_cancellation_cancels_the_upstream_request() {
    let (app, _beta, _vmcp) = setup().await;
    let upstream = connect(
        TransportType::StreamableHttp,
        format!("{}/vmcp/team/mcp", app.base),
        Arc::new(Client::default()),
    )
    .await;
    let request: rmcp::model::ClientRequest = serde_json::from_value(
        json!({"method": "tools/call", "params": {"name": "alpha.hang", "arguments": {}}}),
    )
    .unwrap();
    let handle = upstream
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(&upstream, "alpha.whoami", json!({})).await;
        if r["structuredContent"]["cancelled"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "upstream not cancelled: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    upstream.shutdown().await;
    app.stop().await;
}

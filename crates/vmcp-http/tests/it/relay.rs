//! Requests that upstreams send their client mid-call (sampling, elicitation, roots), through a
//! vMCP to real rmcp clients of both eras: 2025-era sessions are asked directly; 2026-07-28
//! stateless clients get `input_required` (MRTR) and retry. Roots reach the shared upstream as
//! those of the client whose call is in flight.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::*;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};
use vmcp_store::testing::TestDatabase;

use crate::mcp::team;
use crate::support::TestApp;

/// A client with roots that answers sampling and elicitation with its own name.
#[derive(Clone)]
struct TestClient {
    name: String,
    roots: Arc<Mutex<Vec<String>>>,
}

impl TestClient {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            roots: Arc::new(Mutex::new(vec![format!("file:///roots/{name}")])),
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientInfo {
        from_json(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"sampling": {}, "elicitation": {"form": {}}, "roots": {"listChanged": true}},
            "clientInfo": {"name": self.name, "version": "1.0"}
        }))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        Ok(from_json(json!({
            "role": "assistant", "model": "test-model",
            "content": {"type": "text", "text": format!("sampled-by-{}", self.name)}
        })))
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        Ok(from_json(json!({
            "action": "accept",
            "content": {"username": format!("elicited-by-{}", self.name), "email": "a@b.c"}
        })))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let roots: Vec<Value> = self
            .roots
            .lock()
            .unwrap()
            .iter()
            .map(|uri| json!({"uri": uri, "name": self.name}))
            .collect();
        Ok(from_json(json!({ "roots": roots })))
    }
}

type Running = RunningService<RoleClient, TestClient>;

/// `stateless`: a 2026-07-28 client (server/discover, per-request `_meta`); otherwise a
/// 2025-era session (initialize).
async fn client<H: ClientHandler>(
    url: &str,
    handler: H,
    stateless: bool,
) -> RunningService<RoleClient, H> {
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    let mode = if stateless {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        }
    } else {
        ClientLifecycleMode::Initialize
    };
    handler
        .serve_with_lifecycle(transport, mode)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

fn params(name: &str, args: Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(name.to_string());
    p.arguments = args.as_object().cloned();
    p
}

/// A call with the MRTR rounds driven by rmcp's client (a no-op for 2025 sessions).
async fn call(c: &Running, name: &str, args: Value) -> Value {
    let result = c
        .call_tool(params(name, args))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::to_value(result).unwrap()
}

fn text(v: &Value) -> String {
    v["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The roots that `server` last cached, as its `roots` tool says.
async fn roots_seen(c: &Running, server: &str) -> Value {
    call(c, &format!("{server}.roots"), json!({})).await["structuredContent"]["roots"].clone()
}

/// Connects the members and waits for their first roots/list (asked right after they connect,
/// with no call in flight: answered with an empty list, not an error).
async fn warm_up(c: &Running) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for server in ["alpha", "beta"] {
        loop {
            let r = call(c, &format!("{server}.roots"), json!({})).await;
            if r["structuredContent"]["asked"].as_u64() >= Some(1)
                && r["structuredContent"]["roots"].is_array()
            {
                break;
            }
            assert!(Instant::now() < deadline, "{server} never got roots: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn uris(roots: &Value) -> Vec<String> {
    roots
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["uri"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn each_client_of_a_shared_upstream_sees_its_own_roots() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    let (ha, hb, hc) = (
        TestClient::new("a"),
        TestClient::new("b"),
        TestClient::new("c"),
    );
    let a = client(&url, ha.clone(), false).await;
    let b = client(&url, hb.clone(), false).await;
    let c = client(&url, hc.clone(), true).await;
    warm_up(&a).await;
    for round in 0..2 {
        for (who, name) in [(&a, "a"), (&b, "b"), (&c, "c"), (&a, "a")] {
            for server in ["alpha", "beta"] {
                let seen = uris(&roots_seen(who, server).await);
                assert_eq!(
                    seen,
                    vec![format!("file:///roots/{name}")],
                    "round {round}: client {name} on {server}"
                );
            }
        }
    }
    // A session's notifications/roots/list_changed reaches the upstreams that hold its roots,
    // which ask again (no call in flight: the session is asked directly).
    *ha.roots.lock().unwrap() = vec!["file:///roots/a2".into()];
    a.peer().notify_roots_list_changed().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // b's calls would move the roots: look through the REST API, which has no roots.
        let r = app
            .post(
                &format!("/api/vmcps/{vmcp}/tools/call"),
                json!({"name": "alpha.roots", "arguments": {}}),
            )
            .await
            .body;
        if uris(&r["structuredContent"]["roots"]) == vec!["file:///roots/a2".to_string()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alpha did not get a's new roots: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        uris(&roots_seen(&a, "alpha").await),
        vec!["file:///roots/a2"]
    );
    for running in [a, b, c] {
        running.cancel().await.unwrap();
    }
    app.stop().await;
}

/// How many times `server` asked its client for roots, as its `roots` tool says.
async fn roots_asked(c: &RunningService<RoleClient, ()>, server: &str) -> u64 {
    let r = c
        .call_tool(params(&format!("{server}.roots"), json!({})))
        .await
        .unwrap_or_else(|e| panic!("{server}.roots: {e}"));
    serde_json::to_value(r).unwrap()["structuredContent"]["asked"]
        .as_u64()
        .unwrap_or_else(|| panic!("{server}.roots has no count"))
}

#[actix_web::test]
async fn clients_without_roots_taking_turns_do_not_make_the_upstream_ask_again() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, _vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    // What most SDK clients are by default: no roots declared. Sessions and stateless alike.
    let mut rootless = Vec::new();
    for stateless in [false, false, false, true] {
        rootless.push(client(&url, (), stateless).await);
    }
    // The members ask for roots once after connecting (answered with an empty list); a first
    // call may still find them told (that ask can cross the call), so the count is taken once
    // two calls agree.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = Vec::new();
    for server in ["alpha", "beta"] {
        let mut last = 0;
        loop {
            let asked = roots_asked(&rootless[0], server).await;
            if asked >= 1 && asked == last {
                before.push(asked);
                break;
            }
            last = asked;
            assert!(Instant::now() < deadline, "{server} never asked for roots");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Their roots are all the same (none): turns between them are not roots changes.
    for _ in 0..3 {
        for c in &rootless {
            for (server, asked) in ["alpha", "beta"].iter().zip(&before) {
                assert_eq!(
                    roots_asked(c, server).await,
                    *asked,
                    "{server} was told the roots changed between clients that have none"
                );
            }
        }
    }
    // A client with roots among them: each call still reaches the server with its caller's.
    let with_roots = client(&url, TestClient::new("r"), false).await;
    for round in 0..2 {
        for server in ["alpha", "beta"] {
            let seen = uris(&roots_seen(&with_roots, server).await);
            assert_eq!(seen, vec!["file:///roots/r"], "round {round}: {server}");
            for c in [&rootless[1], &rootless[3]] {
                let r = c
                    .call_tool(params(&format!("{server}.roots"), json!({})))
                    .await
                    .unwrap();
                let seen = serde_json::to_value(r).unwrap()["structuredContent"]["roots"].clone();
                assert_eq!(
                    seen,
                    json!([]),
                    "round {round}: {server} for a rootless client"
                );
            }
        }
    }
    with_roots.cancel().await.unwrap();
    for c in rootless {
        c.cancel().await.unwrap();
    }
    app.stop().await;
}

#[actix_web::test]
async fn sampling_and_elicitation_reach_clients_of_both_eras() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, _vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    let session = client(&url, TestClient::new("old"), false).await;
    let stateless = client(&url, TestClient::new("new"), true).await;
    for (c, name) in [(&session, "old"), (&stateless, "new")] {
        for server in ["alpha", "beta"] {
            let r = call(
                c,
                &format!("{server}.test_sampling"),
                json!({"prompt": "2+2?"}),
            )
            .await;
            assert_eq!(text(&r), format!("LLM response: sampled-by-{name}"), "{r}");
            let r = call(
                c,
                &format!("{server}.test_elicitation"),
                json!({"message": "who?"}),
            )
            .await;
            assert!(
                text(&r).contains(&format!("elicited-by-{name}")),
                "{server} for {name}: {r}"
            );
        }
    }
    assert_eq!(app.gateway.mrtr.parked(), 0);
    session.cancel().await.unwrap();
    stateless.cancel().await.unwrap();
    app.stop().await;
}

/// The first `input_required` of a call that is not for roots (those are answered).
async fn first_input(c: &Running, mut p: CallToolRequestParams) -> InputRequiredResult {
    loop {
        let CallToolResponse::InputRequired(input) = c.call_tool_once(p.clone()).await.unwrap()
        else {
            panic!("no input_required");
        };
        let requests = input.input_requests.clone().unwrap_or_default();
        let Some((key, InputRequest::ListRoots(_))) = requests.into_iter().next() else {
            return input;
        };
        let roots = json!({"roots": [{"uri": "file:///roots/new"}]});
        p.request_state = input.request_state;
        p.input_responses = Some([(key, roots)].into_iter().collect());
    }
}

fn error_of(e: rmcp::ServiceError) -> ErrorData {
    match e {
        rmcp::ServiceError::McpError(data) => data,
        other => panic!("not a JSON-RPC error: {other}"),
    }
}

#[actix_web::test]
async fn request_state_is_bound_to_its_request_and_expires() {
    let app = TestApp::start_with_gateway(
        TestDatabase::sqlite(),
        vmcp_gateway::GatewayOptions {
            mrtr_ttl: Some(Duration::from_millis(500)),
            ..Default::default()
        },
    )
    .await;
    let (_beta, _vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    let c = client(&url, TestClient::new("new"), true).await;
    let sampling = || params("alpha.test_sampling", json!({"prompt": "2+2?"}));

    // Unknown or forged.
    let mut forged = sampling();
    forged.request_state = Some("forged".into());
    let e = error_of(c.call_tool_once(forged).await.unwrap_err());
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(
        e.message.contains("requestState is unknown or expired"),
        "{e:?}"
    );

    // The first round asks for sampling (after the roots that alpha caches).
    let input = first_input(&c, sampling()).await;
    let requests = input.input_requests.clone().unwrap();
    assert_eq!(requests.len(), 1);
    let (key, request) = requests.into_iter().next().unwrap();
    assert!(matches!(request, InputRequest::CreateMessage(_)));
    let state = input.request_state.clone().unwrap();
    assert!(state.len() >= 64);
    let answer = json!({"role": "assistant", "model": "m", "content": {"type": "text", "text": "forty-two"}});
    let responses: InputResponses = [(key.clone(), answer.clone())].into_iter().collect();

    // Another request cannot use it; nor can an answer without the key; the call still waits.
    let mut foreign = params("alpha.test_elicitation", json!({"message": "x"}));
    foreign.request_state = Some(state.clone());
    foreign.input_responses = Some(responses.clone());
    let e = error_of(c.call_tool_once(foreign).await.unwrap_err());
    assert!(e.message.contains("belongs to another request"), "{e:?}");
    let mut unanswered = sampling();
    unanswered.request_state = Some(state.clone());
    let e = error_of(c.call_tool_once(unanswered).await.unwrap_err());
    assert!(e.message.contains("inputResponses has no"), "{e:?}");

    // The right retry completes the call.
    let mut retry = sampling();
    retry.request_state = Some(state.clone());
    retry.input_responses = Some(responses.clone());
    let CallToolResponse::Complete(done) = c.call_tool_once(retry.clone()).await.unwrap() else {
        panic!("not complete");
    };
    assert_eq!(
        serde_json::to_value(&done).unwrap()["content"][0]["text"],
        "LLM response: forty-two"
    );
    // A request state is used once.
    let e = error_of(c.call_tool_once(retry).await.unwrap_err());
    assert!(e.message.contains("unknown or expired"), "{e:?}");

    // Past its expiry, the parked call is cancelled and its state refused.
    let input = first_input(&c, sampling()).await;
    assert_eq!(app.gateway.mrtr.parked(), 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(app.gateway.mrtr.parked(), 0);
    let key = input.input_requests.unwrap().into_keys().next().unwrap();
    let mut late = sampling();
    late.request_state = input.request_state;
    late.input_responses = Some([(key, answer)].into_iter().collect());
    let e = error_of(c.call_tool_once(late).await.unwrap_err());
    assert!(e.message.contains("unknown or expired"), "{e:?}");
    c.cancel().await.unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn a_2026_upstreams_input_required_reaches_clients_of_both_eras() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let upstream = vmcp_fixture::harness::HttpFixture::start("up", &[]);
    let id = app
        .add_server(
            "up",
            "streamable_http",
            json!({"url": upstream.mcp_url(), "protocol": "discover"}),
        )
        .await;
    app.add_vmcp(json!({"name": "new", "mcp_servers": [{"server_id": id}]}))
        .await;
    let url = format!("{}/vmcp/new/mcp", app.base);
    for (name, stateless) in [("old", false), ("new", true)] {
        let c = client(&url, TestClient::new(name), stateless).await;
        for (kind, expected) in [
            ("sampling", format!("sampled-by-{name}")),
            ("elicitation", format!("elicited-by-{name}")),
            ("roots", format!("file:///roots/{name}")),
        ] {
            let r = call(&c, "up.mrtr", json!({ "kind": kind })).await;
            assert!(
                text(&r).starts_with("input: ") && text(&r).contains(&expected),
                "{kind} for {name}: {r}"
            );
            // resources/read: rmcp's client drives the rounds for 2026-07-28.
            let uri = format!("fixture://up/items/mrtr-{kind}");
            let r = c
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await
                .unwrap_or_else(|e| panic!("{uri}: {e}"));
            let r = serde_json::to_value(r).unwrap();
            let t = r["contents"][0]["text"].as_str().unwrap_or_default();
            assert!(
                t.starts_with("input: ") && t.contains(&expected),
                "{uri} for {name}: {r}"
            );
        }
        if !stateless {
            // What cannot be served says what and why, and what to do.
            let e = c
                .peer()
                .subscribe(SubscribeRequestParams::new("fixture://up/info"))
                .await
                .expect_err("subscribe to a 2026-07-28 upstream");
            let e = error_of(e);
            assert!(
                e.message.contains("speaks protocol 2026-07-28")
                    && e.message.contains("\"protocol\": \"initialize\""),
                "{e:?}"
            );
        }
        c.cancel().await.unwrap();
    }
    let r = app.get(&format!("/api/mcp-servers/{id}")).await.body;
    assert_eq!(r["protocol_version"], "2026-07-28", "{r}");
    app.stop().await;
}

#[actix_web::test]
async fn a_2026_client_listens_for_list_changes_and_resource_updates() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let (_beta, _vmcp) = team(&app).await;
    let url = format!("{}/vmcp/team/mcp", app.base);
    let c = client(&url, TestClient::new("new"), true).await;
    let uri = "fixture://alpha/info".to_string();
    let filter = SubscriptionFilter::builder()
        .tools_list_changed()
        .resource_subscriptions([uri.clone()])
        .build();
    let mut subscription = c.peer().listen(filter).await.expect("listen");
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec![uri.clone()])
    );
    let mut wanted = vec![
        "notifications/tools/list_changed".to_string(),
        format!("notifications/resources/updated {uri}"),
    ];
    call(&c, "alpha.toggle_tool", json!({})).await;
    call(&c, "alpha.touch_resource", json!({ "uri": uri })).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wanted.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("still waiting for {wanted:?}"))
            .expect("subscription")
            .expect("open");
        let v = serde_json::to_value(&next).unwrap();
        let seen = match v["params"]["uri"].as_str() {
            Some(u) => format!("{} {u}", v["method"].as_str().unwrap()),
            None => v["method"].as_str().unwrap().to_string(),
        };
        assert!(
            !seen.starts_with("notifications/prompts"),
            "not asked for: {seen}"
        );
        wanted.retain(|w| *w != seen);
    }
    subscription.cancel().await.unwrap();
    c.cancel().await.unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn a_2026_upstreams_input_required_is_asked_of_the_client_of_that_call_only() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let upstream = vmcp_fixture::harness::HttpFixture::start("up", &[]);
    let id = app
        .add_server(
            "up",
            "streamable_http",
            json!({"url": upstream.mcp_url(), "protocol": "discover"}),
        )
        .await;
    let vmcp = app
        .add_vmcp(json!({"name": "new", "mcp_servers": [{"server_id": id}]}))
        .await;
    let url = format!("{}/vmcp/new/mcp", app.base);
    let first = client(&url, TestClient::new("first"), false).await;
    let second = client(&url, TestClient::new("second"), false).await;
    // The second client's call is the most recent one in flight on the server...
    let peer = second.peer().clone();
    let hanging = tokio::spawn(async move { peer.call_tool(params("up.hang", json!({}))).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...but what the first client's call asks for is asked of the first client.
    for (kind, expected) in [
        ("elicitation", "elicited-by-first"),
        ("sampling", "sampled-by-first"),
    ] {
        let r = call(&first, "up.mrtr", json!({ "kind": kind })).await;
        assert!(
            text(&r).contains(expected) && !text(&r).contains("second"),
            "{kind}: {r}"
        );
    }
    // A REST caller can answer nothing, and is not answered for by an MCP client.
    let r = app
        .post(
            &format!("/api/vmcps/{vmcp}/tools/call"),
            json!({"name": "up.mrtr", "arguments": {"kind": "sampling"}}),
        )
        .await;
    let shown = r.body.to_string();
    assert!(!shown.contains("sampled-by"), "{shown}");
    assert!(shown.contains("not available to REST callers"), "{shown}");
    hanging.abort();
    first.cancel().await.unwrap();
    second.cancel().await.unwrap();
    app.stop().await;
}

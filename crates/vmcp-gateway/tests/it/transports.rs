//! One set of assertions, run over every transport.

use serde_json::json;
use vmcp_domain::ServerStatus;
use vmcp_fixture::harness::{self, HttpFixture};

use crate::support::{Env, text_of};

/// What every transport must do: connect, report what the server offers and what it is, carry
/// calls both ways, follow list changes, and disconnect.
async fn check_transport(env: &Env, name: &str, transport: &str, config: serde_json::Value) {
    let server = env.register(name, transport, config).await;
    let id = server.server_id.clone();
    assert_eq!(env.state(&id).status, ServerStatus::Disconnected);

    let connected = env
        .gateway
        .connect_server(&crate::sid(&id))
        .await
        .expect("connect");
    assert_eq!(connected.status, ServerStatus::Connected);
    let info = connected.server_info.expect("server info");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(connected.protocol_version.as_deref(), Some("2025-11-25"));
    let caps = connected.capabilities;
    for tool in ["echo", "add", "sleep", "whoami", "toggle_tool"] {
        assert!(
            caps.tools.contains(&tool.to_string()),
            "{transport}: {tool} missing in {:?}",
            caps.tools
        );
    }
    assert!(caps.resources.contains(&"test://static-text".to_string()));
    assert_eq!(
        caps.prompts,
        [
            "greeting",
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image"
        ]
    );
    assert_eq!(caps.resource_templates.len(), 2);
    assert!(caps.resource_templates[0].starts_with("fixture://"));
    assert_eq!(caps.resource_templates[1], "test://template/{id}/data");

    // The API view of the server shows the live state.
    let api = env.gateway.get_server(&crate::sid(&id)).await.unwrap();
    assert_eq!(api.status, ServerStatus::Connected);
    assert!(api.last_connected.is_some());
    assert_eq!(api.protocol_version.as_deref(), Some("2025-11-25"));

    // Calls go through and come back.
    assert_eq!(
        text_of(&env.call(&id, "echo", json!({"text": "héllo ✓"})).await),
        "héllo ✓"
    );
    let sum = env.call(&id, "add", json!({"a": 2, "b": 3.5})).await;
    assert_eq!(
        serde_json::to_value(&sum).unwrap()["structuredContent"],
        json!({"sum": 5.5})
    );
    // Concurrent calls on the one shared connection keep their answers apart.
    let calls = (0..20).map(|i| {
        let env = &env;
        let id = id.clone();
        async move {
            text_of(
                &env.call(&id, "echo", json!({"text": format!("n{i}")}))
                    .await,
            )
        }
    });
    let answers = futures::future::join_all(calls).await;
    assert_eq!(
        answers,
        (0..20).map(|i| format!("n{i}")).collect::<Vec<_>>()
    );

    // tools/list_changed from the server refreshes the cached catalog.
    let mut events = env.gateway.subscribe();
    assert_eq!(
        text_of(&env.call(&id, "toggle_tool", json!({})).await),
        "extra added"
    );
    let slot = env.gateway.supervisor().slot(&id).unwrap();
    loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("a catalog event")
            .unwrap();
        if matches!(&event, vmcp_gateway::GatewayEvent::CatalogChanged { server_id } if *server_id == id)
            && slot.catalog().tools.iter().any(|t| t.name == "extra")
        {
            break;
        }
    }

    let down = env
        .gateway
        .disconnect_server(&crate::sid(&id))
        .await
        .unwrap();
    assert_eq!(down.status, ServerStatus::Disconnected);
    assert_eq!(env.state(&id).status, ServerStatus::Disconnected);
    assert!(
        slot.catalog().tools.is_empty(),
        "a disconnected server offers nothing"
    );
    assert!(slot.live().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio() {
    let env = Env::new();
    check_transport(
        &env,
        "over-stdio",
        "stdio",
        harness::stdio_config("alpha", &[]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streamable_http() {
    let env = Env::new();
    let fixture = HttpFixture::start("beta", &[]);
    check_transport(
        &env,
        "over-http",
        "streamable_http",
        json!({"url": fixture.mcp_url()}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_sse() {
    let env = Env::new();
    let fixture = HttpFixture::start("gamma", &[]);
    check_transport(&env, "over-sse", "sse", json!({"url": fixture.sse_url()})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_headers_reach_http_servers() {
    let env = Env::new();
    let fixture = HttpFixture::start("delta", &[]);
    let server = env
        .register(
            "with-headers",
            "http",
            json!({"url": fixture.mcp_url(), "headers": {"Authorization": "Bearer abc", "X-Team": "blue"}}),
        )
        .await;
    let id = server.server_id;
    env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
    let auth = env
        .call(&id, "request_header", json!({"name": "authorization"}))
        .await;
    assert_eq!(text_of(&auth), "Bearer abc");
    let team = env
        .call(&id, "request_header", json!({"name": "x-team"}))
        .await;
    assert_eq!(text_of(&team), "blue");
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_that_were_connected_reconnect_after_a_restart() {
    let env = Env::new();
    let server = env
        .register("sticky", "stdio", harness::stdio_config("sticky", &[]))
        .await;
    let other = env
        .register("idle", "stdio", harness::stdio_config("idle", &[]))
        .await;
    env.gateway
        .connect_server(&crate::sid(&server.server_id))
        .await
        .unwrap();
    let first_pid = env.state(&server.server_id).live.unwrap().pid;
    env.gateway.shutdown().await;

    // A new gateway over the same database: what was connected connects by itself.
    let again = Env::on(env.db);
    let state = again.wait_connected(&server.server_id).await;
    assert_ne!(state.live.unwrap().pid, first_pid, "a new process");
    assert_eq!(
        again.state(&other.server_id).status,
        ServerStatus::Disconnected
    );
    again.gateway.shutdown().await;
}

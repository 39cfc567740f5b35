use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use vmcp_gateway::{Gateway, GatewayOptions};
use vmcp_http::AppState;
use vmcp_store::testing::TestDatabase;

/// A running API server over its own database.
pub struct TestApp {
    pub base: String,
    client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    pub gateway: std::sync::Arc<Gateway>,
    pub db: TestDatabase,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn start(db: TestDatabase) -> Self {
        Self::start_with(db, vmcp_http::auth::SecurityOptions::default()).await
    }

    /// An app that requires tokens and allows CORS origins as `security` says.
    pub async fn start_with(db: TestDatabase, security: vmcp_http::auth::SecurityOptions) -> Self {
        Self::start_full(db, security, vmcp_http::mcp::McpOptions::default()).await
    }

    /// An app with the given security and MCP endpoint settings.
    pub async fn start_full(
        db: TestDatabase,
        security: vmcp_http::auth::SecurityOptions,
        mcp: vmcp_http::mcp::McpOptions,
    ) -> Self {
        Self::start_all(db, security, mcp, GatewayOptions::default()).await
    }

    /// An app with the given gateway settings.
    pub async fn start_with_gateway(db: TestDatabase, options: GatewayOptions) -> Self {
        Self::start_all(
            db,
            vmcp_http::auth::SecurityOptions::default(),
            vmcp_http::mcp::McpOptions::default(),
            options,
        )
        .await
    }

    async fn start_all(
        db: TestDatabase,
        security: vmcp_http::auth::SecurityOptions,
        mcp: vmcp_http::mcp::McpOptions,
        options: GatewayOptions,
    ) -> Self {
        let store = db.open();
        let gateway =
            Gateway::start(store, options, tokio::runtime::Handle::current()).expect("gateway");
        let state = AppState::new(gateway.clone(), mcp).with_security(security);
        let bound = vmcp_http::bind(state, "127.0.0.1:0", Some(1)).expect("bind");
        let base = format!("http://{}", bound.addrs[0]);
        let handle = bound.server.handle();
        actix_web::rt::spawn(bound.server);
        Self {
            base,
            client: reqwest::Client::new(),
            handle,
            gateway,
            db,
        }
    }

    /// One app per configured backend: SQLite, then Postgres when configured.
    pub async fn each() -> Vec<TestApp> {
        let mut apps = Vec::new();
        for db in TestDatabase::all() {
            apps.push(Self::start(db).await);
        }
        apps
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Response {
        self.send(method, path, &[], content_type, body).await
    }

    /// A request with extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        match body {
            Some(b) => {
                self.raw(
                    method,
                    path,
                    Some("application/json"),
                    Some(serde_json::to_vec(&b).unwrap()),
                )
                .await
            }
            None => self.raw(method, path, None, None).await,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.call(Method::DELETE, path, None).await
    }

    /// Registers a stdio server and returns its id.
    pub async fn create_server(&self, name: &str) -> String {
        let r = self
            .post(
                "/api/mcp-servers",
                serde_json::json!({
                    "name": name, "transport_type": "stdio",
                    "config": {"command": "npx", "args": ["-y", format!("@example/{name}")]}
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["server_id"].as_str().unwrap().to_string()
    }

    /// Registers a server with any transport and config, and returns its id.
    pub async fn add_server(&self, name: &str, transport: &str, config: Value) -> String {
        let r = self
            .post(
                "/api/mcp-servers",
                serde_json::json!({"name": name, "transport_type": transport, "config": config}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["server_id"].as_str().unwrap().to_string()
    }

    /// Creates a vMCP from a body and returns its id.
    pub async fn add_vmcp(&self, body: Value) -> String {
        let r = self.post("/api/vmcps", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["vmcp_id"].as_str().unwrap().to_string()
    }

    /// Stops the HTTP server, then the gateway's connections (and their processes).
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.gateway.shutdown().await;
    }
}

/// Asserts an error response: status, the `{error, detail}` shape, and a fragment of the detail.
#[track_caller]
pub fn assert_error(r: &Response, status: StatusCode, detail_contains: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let obj = r
        .body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {}", r.body));
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    assert_eq!(keys, ["detail", "error"], "{}", r.body);
    let detail = obj["detail"].as_str().unwrap();
    assert!(
        detail.contains(detail_contains),
        "detail {detail:?} does not contain {detail_contains:?}"
    );
}

/// The text of a tool result's first content item.
#[track_caller]
pub fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result}"))
        .to_string()
}

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};
use vmcp_domain::{McpServer, McpServerInput, ServerStatus};
use vmcp_gateway::supervisor::ConnState;
use vmcp_gateway::{Gateway, GatewayOptions, SupervisorOptions};
use vmcp_store::testing::TestDatabase;

/// Quick pings and short backoffs, so that faults are noticed and repaired in test time.
pub fn options() -> GatewayOptions {
    GatewayOptions {
        supervisor: SupervisorOptions {
            ping_interval: Duration::from_millis(300),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
        },
        ..GatewayOptions::default()
    }
}

pub struct Env {
    pub gateway: Arc<Gateway>,
    pub db: TestDatabase,
}

impl Env {
    pub fn new() -> Self {
        let db = TestDatabase::sqlite();
        Self::on(db)
    }

    pub fn on(db: TestDatabase) -> Self {
        let gateway = Gateway::start(db.open(), options(), tokio::runtime::Handle::current())
            .expect("gateway");
        Self { gateway, db }
    }

    pub async fn register(&self, name: &str, transport: &str, config: Value) -> McpServer {
        let input: McpServerInput = serde_json::from_value(json!({
            "name": name, "transport_type": transport, "config": config
        }))
        .unwrap();
        self.gateway
            .create_server(input)
            .await
            .expect("create server")
    }

    pub fn state(&self, id: &str) -> ConnState {
        self.gateway.supervisor().slot(id).expect("slot").state()
    }

    /// Waits (bounded) until the server's state satisfies `pred`.
    pub async fn wait_for(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&ConnState) -> bool,
    ) -> ConnState {
        let slot = self.gateway.supervisor().slot(id).expect("slot");
        for _ in 0..400 {
            let s = slot.state();
            if pred(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = slot.state();
        panic!(
            "server {id} never became {what}: status {:?}, last_error {:?}",
            s.status, s.last_error
        );
    }

    pub async fn wait_connected(&self, id: &str) -> ConnState {
        self.wait_for(id, "connected", |s| s.status == ServerStatus::Connected)
            .await
    }

    /// Calls a tool through the server's live connection.
    pub async fn call(&self, id: &str, tool: &str, args: Value) -> CallToolResult {
        let live = self
            .gateway
            .supervisor()
            .slot(id)
            .unwrap()
            .live()
            .expect("connected");
        let params: CallToolRequestParams =
            serde_json::from_value(json!({"name": tool, "arguments": args})).unwrap();
        live.peer.call_tool(params).await.expect("tool call")
    }
}

impl Env {
    /// Calls a tool of a vMCP by its exposed name, as REST does (timeouts, routing, errors).
    pub async fn call_vmcp(
        &self,
        vmcp_id: &str,
        tool: &str,
        args: Value,
    ) -> vmcp_gateway::Result<CallToolResult> {
        self.gateway
            .call_tool(
                vmcp_id,
                tool,
                args.as_object().cloned(),
                None,
                vmcp_gateway::Caller::default(),
            )
            .await
    }
}

pub fn text_of(result: &CallToolResult) -> String {
    let v = serde_json::to_value(result).unwrap();
    v["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

//! The fixture binary speaks MCP over stdio and streamable HTTP. (This test also makes `cargo
//! test --workspace` build the binary before any test runs: other crates' tests start it.)

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, ClientResult, ErrorCode, ErrorData, ServerNotification, ServerRequest,
};
use rmcp::service::RequestContext;
use vmcp_transport::{LogBuffer, UpstreamObserver};

struct Quiet;

impl UpstreamObserver for Quiet {
    fn notification(&self, _: ServerNotification) {}
    fn request(
        &self,
        _: ServerRequest,
        _: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        async { Err(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "no", None)) }.boxed()
    }
}

async fn check(transport: vmcp_domain::TransportType, config: serde_json::Value) {
    let config: vmcp_domain::ServerConfig = serde_json::from_value(config).unwrap();
    let log = LogBuffer::default();
    let upstream = vmcp_transport::connect(transport, &config, None, Arc::new(Quiet), &log)
        .await
        .expect("connect");
    assert_eq!(upstream.info().server_info.as_ref().unwrap().name, "fx");
    let tools = upstream.peer().list_all_tools().await.unwrap();
    assert!(
        tools.iter().any(|t| t.name == "tool_2"),
        "--tools 3 adds tool_0..tool_2"
    );
    let mut params = CallToolRequestParams::new("echo");
    params.arguments = serde_json::json!({"text": "ping"}).as_object().cloned();
    let result = upstream.peer().call_tool(params).await.unwrap();
    assert_eq!(
        serde_json::to_value(&result.content).unwrap(),
        serde_json::json!([{"type": "text", "text": "ping"}])
    );
    upstream.shutdown().await;
}

#[tokio::test]
async fn serves_stdio() {
    let bin = env!("CARGO_BIN_EXE_vmcp-fixture");
    check(
        vmcp_domain::TransportType::Stdio,
        serde_json::json!({"command": bin, "args": ["stdio", "--name", "fx", "--tools", "3"]}),
    )
    .await;
}

#[tokio::test]
async fn serves_streamable_http() {
    let fixture = vmcp_fixture::harness::HttpFixture::start_with(
        env!("CARGO_BIN_EXE_vmcp-fixture").as_ref(),
        0,
        "fx",
        &["--tools", "3"],
    );
    check(
        vmcp_domain::TransportType::StreamableHttp,
        serde_json::json!({"url": fixture.mcp_url()}),
    )
    .await;
}

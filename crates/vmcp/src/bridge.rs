//! `vmcp bridge URL`: an MCP server on stdin/stdout that forwards every message, unchanged, to a
//! vMCP's streamable HTTP endpoint and back. For MCP clients that only launch local commands
//! (for example a Claude Desktop config entry). Both halves are rmcp transports; the bridge only
//! moves JSON-RPC messages between them.

use anyhow::Context;
use rmcp::RoleServer;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, Transport};

pub fn run(url: String, headers: Vec<String>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the bridge runtime")?;
    runtime.block_on(pump(url, headers))
}

async fn pump(url: String, headers: Vec<String>) -> anyhow::Result<()> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
    let mut custom = std::collections::HashMap::new();
    for h in &headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected \"Name: value\""))?;
        custom.insert(
            http::HeaderName::try_from(name.trim()).context("bad header name")?,
            http::HeaderValue::try_from(value.trim()).context("bad header value")?,
        );
    }
    config.custom_headers = custom;
    let mut remote = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    let mut local = IntoTransport::<RoleServer, _, _>::into_transport((
        tokio::io::stdin(),
        tokio::io::stdout(),
    ));
    loop {
        tokio::select! {
            message = local.receive() => match message {
                Some(m) => remote
                    .send(m)
                    .await
                    .with_context(|| format!("cannot reach {url}"))?,
                None => break,
            },
            message = remote.receive() => match message {
                Some(m) => local.send(m).await.context("stdout closed")?,
                None => anyhow::bail!("{url} closed the session"),
            },
        }
    }
    let _ = remote.close().await;
    Ok(())
}

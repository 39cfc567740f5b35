//! `vmcp bridge URL`: an MCP server on stdin/stdout that forwards every message, unchanged, to a
//! vMCP's streamable HTTP endpoint and back. For MCP clients that only launch local commands
//! (for example a Claude Desktop config entry). The remote half is rmcp's streamable HTTP client
//! transport; the local half reads stdin line by line itself, so that the end of input and a
//! line that is not JSON-RPC end the bridge with a message on stderr instead of a silent hang.

use std::time::Duration;

use anyhow::Context;
use rmcp::RoleClient;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How long the bridge waits for the remote session to close once its input has ended.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The longest line accepted on stdin (as for stdio upstreams).
const MAX_LINE: usize = 16 * 1024 * 1024;

pub fn run(url: String, headers: Vec<String>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the bridge runtime")?;
    let outcome = runtime.block_on(pump(url, headers));
    // Background tasks of the HTTP client must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome
}

/// One line of input, parsed.
enum Input {
    Message(Box<ClientJsonRpcMessage>),
    Blank,
    End,
}

async fn read_message(
    lines: &mut BufReader<tokio::io::Stdin>,
    buf: &mut String,
    line_no: &mut usize,
) -> anyhow::Result<Input> {
    buf.clear();
    let n = lines
        .read_line(buf)
        .await
        .context("cannot read standard input")?;
    if n == 0 {
        return Ok(Input::End);
    }
    *line_no += 1;
    if buf.len() > MAX_LINE {
        anyhow::bail!(
            "line {line_no} of standard input is {} bytes, over the {MAX_LINE}-byte limit",
            buf.len()
        );
    }
    let text = buf.trim();
    if text.is_empty() {
        return Ok(Input::Blank);
    }
    match serde_json::from_str::<ClientJsonRpcMessage>(text) {
        Ok(m) => Ok(Input::Message(Box::new(m))),
        Err(e) => {
            let shown: String = text.chars().take(80).collect();
            anyhow::bail!(
                "line {line_no} of standard input is not a JSON-RPC message from an MCP client \
                 ({e}): {shown:?}; the bridge expects one JSON-RPC message per line"
            )
        }
    }
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
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;
    let mut remote: StreamableHttpClientTransport<reqwest::Client> =
        StreamableHttpClientTransport::with_client(client, config);
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut stdout = tokio::io::stdout();
    let mut buf = String::new();
    let mut line_no = 0usize;
    let result = loop {
        tokio::select! {
            input = read_message(&mut stdin, &mut buf, &mut line_no) => match input {
                Ok(Input::Message(m)) => {
                    if let Err(e) = Transport::<RoleClient>::send(&mut remote, *m).await {
                        break Err(anyhow::anyhow!("cannot reach {url}: {e}"));
                    }
                }
                Ok(Input::Blank) => {}
                Ok(Input::End) => {
                    eprintln!("vmcp bridge: standard input closed, exiting");
                    break Ok(());
                }
                Err(e) => break Err(e),
            },
            message = Transport::<RoleClient>::receive(&mut remote) => match message {
                Some(m) => {
                    let mut line = serde_json::to_vec(&m).context("cannot encode a message")?;
                    line.push(b'\n');
                    if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                        break Err(anyhow::anyhow!("standard output closed"));
                    }
                }
                None => break Err(anyhow::anyhow!("{url} closed the session")),
            },
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, Transport::<RoleClient>::close(&mut remote)).await;
    result
}

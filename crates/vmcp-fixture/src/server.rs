// Logging (setLevel, notifications/message) is deprecated by SEP-2577 but still what most
// clients speak; the fixture serves it on purpose.
#![allow(deprecated)]

//! The fixture's MCP server: a fixed catalog of tools, resources and prompts (the conformance
//! suite's fixture names and our own test tools), plus fault knobs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::*;
use rmcp::service::{NotificationContext, Peer, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Options of one fixture process.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Server name in `serverInfo` (and in `whoami`).
    pub name: String,
    /// Extra tools `tool_0` .. `tool_{n-1}` (echo-like), for aggregation benchmarks.
    pub extra_tools: usize,
    /// Exit with status 3 when the (n+1)-th tool call arrives.
    pub crash_after: Option<u64>,
    /// The `echo` tool also writes its text to stderr (as a careless server logs its input).
    pub echo_stderr: bool,
}

/// State shared by every session of the process.
pub struct State {
    pub options: Options,
    calls: AtomicU64,
    cancelled: AtomicU64,
    dynamic_tool: AtomicBool,
    subscriptions: Mutex<BTreeSet<String>>,
    peers: Mutex<Vec<Peer<RoleServer>>>,
    log_level: Mutex<String>,
    /// The roots the client last gave (asked after `initialized` and on roots/list_changed,
    /// and cached, as servers such as server-everything do).
    roots: Mutex<Option<Value>>,
    roots_asked: AtomicU64,
}

impl State {
    pub fn new(options: Options) -> Arc<Self> {
        Arc::new(Self {
            options,
            calls: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            dynamic_tool: AtomicBool::new(false),
            subscriptions: Mutex::new(BTreeSet::new()),
            peers: Mutex::new(Vec::new()),
            log_level: Mutex::new("debug".into()),
            roots: Mutex::new(None),
            roots_asked: AtomicU64::new(0),
        })
    }

    fn live_peers(&self) -> Vec<Peer<RoleServer>> {
        let mut peers = self.peers.lock().unwrap();
        peers.retain(|p| !p.is_transport_closed());
        peers.clone()
    }
}

#[derive(Clone)]
pub struct Fixture {
    state: Arc<State>,
}

impl Fixture {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

fn from_json<T: DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v.clone()) {
        Ok(t) => t,
        Err(e) => panic!("fixture JSON does not match the MCP schema ({e}): {v}"),
    }
}

async fn notify(peer: &Peer<RoleServer>, method: &str, params: Value) {
    let mut n = json!({"method": method});
    if !params.is_null() {
        n["params"] = params;
    }
    let notification: ServerNotification = from_json(n);
    let _ = peer.send_notification(notification).await;
}

async fn ask(peer: &Peer<RoleServer>, method: &str, params: Value) -> Result<Value, String> {
    let request: ServerRequest = from_json(json!({"method": method, "params": params}));
    match peer.send_request(request).await {
        Ok(result) => Ok(serde_json::to_value(result).unwrap_or(Value::Null)),
        Err(e) => Err(e.to_string()),
    }
}

/// The `mrtr` tool and `fixture://{name}/items/mrtr-{kind}`: the first round asks for `kind`
/// (sampling, elicitation or roots) with input_required, the retry returns the answer.
fn mrtr_input(
    kind: &str,
    responses: Option<&InputResponses>,
) -> Result<String, Box<InputRequiredResult>> {
    if let Some(answer) = responses.and_then(|r| r.get("input")) {
        return Ok(format!("input: {answer}"));
    }
    let request = match kind {
        "sampling" => InputRequest::CreateMessage(from_json(json!({
            "method": "sampling/createMessage",
            "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "2+2?"}}], "maxTokens": 10}
        }))),
        "elicitation" => InputRequest::Elicitation(from_json(json!({
            "method": "elicitation/create",
            "params": {"message": "who?", "requestedSchema": {"type": "object", "properties": {
                "username": {"type": "string"}, "email": {"type": "string"}}}}
        }))),
        _ => InputRequest::ListRoots(from_json(json!({"method": "roots/list"}))),
    };
    let requests: InputRequests = [("input".to_string(), request)].into_iter().collect();
    Err(Box::new(InputRequiredResult::new(
        Some(requests),
        Some("fixture".into()),
    )))
}

fn mrtr(
    args: &serde_json::Map<String, Value>,
    responses: Option<&InputResponses>,
) -> CallToolResponse {
    let kind = args.get("kind").and_then(Value::as_str).unwrap_or("roots");
    match mrtr_input(kind, responses) {
        Ok(text) => text_result(text).into(),
        Err(input) => (*input).into(),
    }
}

/// Asks the client for its roots and caches them.
async fn fetch_roots(state: Arc<State>, peer: Peer<RoleServer>) {
    state.roots_asked.fetch_add(1, Ordering::SeqCst);
    match ask(&peer, "roots/list", json!({})).await {
        Ok(v) => *state.roots.lock().unwrap() = Some(v["roots"].clone()),
        Err(e) => eprintln!("fixture {}: roots/list failed: {e}", state.options.name),
    }
}

fn text_result(text: impl Into<String>) -> CallToolResult {
    from_json(json!({"content": [{"type": "text", "text": text.into()}]}))
}

fn error_result(text: impl Into<String>) -> CallToolResult {
    from_json(json!({"content": [{"type": "text", "text": text.into()}], "isError": true}))
}

/// A 1x1 red PNG.
pub const TINY_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A tiny WAV file.
pub const TINY_WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required}
    })
}

impl Fixture {
    fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            tool(
                "echo",
                "Returns its text argument",
                json!({"text": {"type": "string"}}),
                &["text"],
            ),
            json!({
                "name": "add", "title": "Add two numbers", "description": "Adds a and b",
                "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
                "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]},
                "annotations": {"readOnlyHint": true, "idempotentHint": true},
                "icons": [{"src": format!("data:image/png;base64,{TINY_PNG}"), "mimeType": "image/png"}]
            }),
            tool(
                "sleep",
                "Waits ms milliseconds, then answers",
                json!({"ms": {"type": "integer"}}),
                &["ms"],
            ),
            tool("hang", "Never answers (until cancelled)", json!({}), &[]),
            tool("fail", "Returns a tool error (isError)", json!({}), &[]),
            tool(
                "invalid_params",
                "Answers with a JSON-RPC invalid-params error",
                json!({}),
                &[],
            ),
            tool("crash", "Exits the server process at once", json!({}), &[]),
            tool(
                "flood",
                "Sends count log notifications and count/10 tools/list_changed, as fast as it can, then answers",
                json!({"count": {"type": "integer"}}),
                &["count"],
            ),
            tool(
                "huge",
                "Answers with a text of the given number of bytes",
                json!({"bytes": {"type": "integer"}}),
                &["bytes"],
            ),
            tool(
                "request_header",
                "Returns the value of an HTTP request header (streamable HTTP)",
                json!({"name": {"type": "string"}}),
                &["name"],
            ),
            tool(
                "freeze",
                "Stops the server process (SIGSTOP): nothing answers any more",
                json!({}),
                &[],
            ),
            tool(
                "whoami",
                "Says which server this is, and its call and cancellation counts",
                json!({}),
                &[],
            ),
            tool(
                "progress",
                "Sends `steps` progress notifications, then answers",
                json!({"steps": {"type": "integer"}}),
                &[],
            ),
            tool(
                "toggle_tool",
                "Adds or removes the tool `extra`, and says so with tools/list_changed",
                json!({}),
                &[],
            ),
            tool(
                "args",
                "Returns the arguments it received (as JSON text and structuredContent)",
                json!({"repo": {"type": "string"}, "title": {"type": "string"}, "limit": {"type": "integer"}}),
                &["repo", "title", "limit"],
            ),
            tool(
                "test_sampling",
                "Asks the client to sample an LLM (sampling/createMessage) and returns its answer",
                json!({"prompt": {"type": "string", "description": "The prompt to send"}}),
                &["prompt"],
            ),
            tool(
                "mrtr",
                "2026-07-28 clients: asks for `kind` (sampling, elicitation or roots) with input_required, and returns the answer",
                json!({"kind": {"type": "string", "enum": ["sampling", "elicitation", "roots"]}}),
                &["kind"],
            ),
            tool(
                "roots",
                "Returns the roots it cached from its client's roots/list (asked after initialization and on roots/list_changed)",
                json!({}),
                &[],
            ),
            tool(
                "content",
                "Answers with one content block of every type, and _meta",
                json!({}),
                &[],
            ),
            tool(
                "touch_resource",
                "Sends resources/updated for a subscribed URI",
                json!({"uri": {"type": "string"}}),
                &["uri"],
            ),
        ];
        tools.extend(conformance_tools());
        if self.state.dynamic_tool.load(Ordering::SeqCst) {
            tools.push(tool("extra", "A tool that comes and goes", json!({}), &[]));
        }
        for i in 0..self.state.options.extra_tools {
            tools.push(tool(
                &format!("tool_{i}"),
                &format!("Extra tool number {i}: returns its text argument"),
                json!({"text": {"type": "string"}}),
                &[],
            ));
        }
        tools.into_iter().map(from_json).collect()
    }

    async fn call(
        &self,
        name: &str,
        args: &serde_json::Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = &self.state;
        let n = state.calls.fetch_add(1, Ordering::SeqCst);
        if state.options.crash_after.is_some_and(|limit| n >= limit) {
            eprintln!(
                "fixture {}: crashing after {n} calls, as asked",
                state.options.name
            );
            std::process::exit(3);
        }
        let arg_str = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let arg_u64 = |k: &str| args.get(k).and_then(Value::as_u64).unwrap_or(0);
        Ok(match name {
            "echo" => {
                if state.options.echo_stderr {
                    eprintln!("fixture {}: echo {}", state.options.name, arg_str("text"));
                }
                text_result(arg_str("text"))
            }
            n if n.starts_with("tool_") => text_result(format!("{n}: {}", arg_str("text"))),
            "add" => {
                let a = args.get("a").and_then(Value::as_f64).unwrap_or(0.0);
                let b = args.get("b").and_then(Value::as_f64).unwrap_or(0.0);
                let sum = a + b;
                from_json(json!({
                    "content": [{"type": "text", "text": format!("{sum}")}],
                    "structuredContent": {"sum": sum}
                }))
            }
            "sleep" => {
                let ms = arg_u64("ms");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => text_result(format!("slept {ms} ms")),
                    _ = context.ct.cancelled() => {
                        state.cancelled.fetch_add(1, Ordering::SeqCst);
                        error_result("cancelled")
                    }
                }
            }
            "hang" => {
                context.ct.cancelled().await;
                state.cancelled.fetch_add(1, Ordering::SeqCst);
                error_result("cancelled")
            }
            "fail" => error_result("this tool always fails"),
            "args" => from_json(json!({
                "content": [{"type": "text", "text": Value::Object(args.clone()).to_string()}],
                "structuredContent": args
            })),
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => from_json(json!({
                "content": [{"type": "image", "data": TINY_PNG, "mimeType": "image/png"}]
            })),
            "test_audio_content" => from_json(json!({
                "content": [{"type": "audio", "data": TINY_WAV, "mimeType": "audio/wav"}]
            })),
            "test_embedded_resource" => from_json(json!({
                "content": [{"type": "resource", "resource": {
                    "uri": "test://embedded-resource", "mimeType": "text/plain",
                    "text": "This is an embedded resource content."}}]
            })),
            "test_multiple_content_types" => from_json(json!({
                "content": [
                    {"type": "text", "text": "Multiple content types test:"},
                    {"type": "image", "data": TINY_PNG, "mimeType": "image/png"},
                    {"type": "resource", "resource": {
                        "uri": "test://mixed-content-resource", "mimeType": "application/json",
                        "text": "{\"test\":\"data\",\"value\":123}"}}
                ]
            })),
            "test_tool_with_logging" => {
                for (i, message) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .iter()
                .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    notify(
                        &context.peer,
                        "notifications/message",
                        json!({"level": "info", "logger": "fixture", "data": message}),
                    )
                    .await;
                }
                text_result("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                let token = context.meta.get_progress_token();
                for (i, progress) in [0, 50, 100].iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(token) = &token {
                        notify(
                            &context.peer,
                            "notifications/progress",
                            json!({"progressToken": token, "progress": progress, "total": 100}),
                        )
                        .await;
                    }
                }
                text_result("Tool with progress executed successfully")
            }
            "test_error_handling" => {
                error_result("This tool intentionally returns an error for testing")
            }
            "test_elicitation" => {
                let answer = ask(
                    &context.peer,
                    "elicitation/create",
                    json!({
                        "message": arg_str("message"),
                        "requestedSchema": {"type": "object", "properties": {
                            "username": {"type": "string", "description": "User's response"},
                            "email": {"type": "string", "description": "User's email address"}
                        }, "required": ["username", "email"]}
                    }),
                )
                .await;
                match answer {
                    Ok(v) => text_result(format!(
                        "User response: action={}, content={}",
                        v["action"].as_str().unwrap_or(""),
                        v["content"]
                    )),
                    Err(e) => error_result(format!("elicitation failed: {e}")),
                }
            }
            "test_elicitation_sep1034_defaults" | "test_elicitation_sep1330_enums" => {
                let schema = if name == "test_elicitation_sep1034_defaults" {
                    json!({"type": "object", "properties": {
                        "name": {"type": "string", "default": "John Doe"},
                        "age": {"type": "integer", "default": 30},
                        "score": {"type": "number", "default": 95.5},
                        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                        "verified": {"type": "boolean", "default": true}
                    }})
                } else {
                    json!({"type": "object", "properties": {
                        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                        "titledSingle": {"type": "string", "oneOf": [
                            {"const": "value1", "title": "First Option"},
                            {"const": "value2", "title": "Second Option"},
                            {"const": "value3", "title": "Third Option"}]},
                        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                                       "enumNames": ["Option One", "Option Two", "Option Three"]},
                        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                        "titledMulti": {"type": "array", "items": {"anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}]}}
                    }})
                };
                let answer = ask(
                    &context.peer,
                    "elicitation/create",
                    json!({"message": "Please review and update the form fields", "requestedSchema": schema}),
                )
                .await;
                match answer {
                    Ok(v) => text_result(format!(
                        "Elicitation completed: action={}, content={}",
                        v["action"].as_str().unwrap_or(""),
                        v["content"]
                    )),
                    Err(e) => error_result(format!("elicitation failed: {e}")),
                }
            }
            "json_schema_2020_12_tool" => text_result("ok"),
            "test_sampling" => {
                let prompt = arg_str("prompt");
                let answer = ask(
                    &context.peer,
                    "sampling/createMessage",
                    json!({
                        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                        "maxTokens": 100
                    }),
                )
                .await;
                match answer {
                    Ok(v) => {
                        let text = v["content"]["text"].as_str().unwrap_or("").to_string();
                        text_result(format!("LLM response: {text}"))
                    }
                    Err(e) => error_result(format!("sampling failed: {e}")),
                }
            }
            "content" => from_json(json!({
                "content": [
                    {"type": "text", "text": "plain text", "annotations": {"audience": ["user"], "priority": 0.5}},
                    {"type": "image", "data": TINY_PNG, "mimeType": "image/png"},
                    {"type": "audio", "data": TINY_WAV, "mimeType": "audio/wav"},
                    {"type": "resource_link", "uri": "test://static-text", "name": "static-text", "mimeType": "text/plain"},
                    {"type": "resource", "resource": {"uri": "test://embedded", "mimeType": "text/plain", "text": "embedded text"}},
                    {"type": "resource", "resource": {"uri": "test://embedded-blob", "mimeType": "application/octet-stream", "blob": "AAEC"}}
                ],
                "_meta": {"fixture/trace": "abc123"}
            })),
            "invalid_params" => {
                // With `text`: quoted in the message, as servers quote what they refuse.
                let text = arg_str("text");
                let message = if text.is_empty() {
                    "the arguments are wrong on purpose".to_string()
                } else {
                    format!("the arguments are wrong on purpose: {text}")
                };
                return Err(ErrorData::invalid_params(message, None));
            }
            "request_header" => {
                let name = arg_str("name");
                let value = context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|p| p.headers.get(name.as_str()))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("<none>")
                    .to_string();
                text_result(value)
            }
            "freeze" => {
                eprintln!("fixture {}: freezing, as asked", state.options.name);
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
                text_result("thawed")
            }
            "flood" => {
                let count = arg_u64("count");
                for i in 0..count {
                    notify(
                        &context.peer,
                        "notifications/message",
                        json!({"level": "info", "logger": "flood", "data": format!("message {i}")}),
                    )
                    .await;
                    if i % 10 == 0 {
                        notify(
                            &context.peer,
                            "notifications/tools/list_changed",
                            Value::Null,
                        )
                        .await;
                    }
                }
                text_result(format!("flooded {count}"))
            }
            "huge" => text_result("x".repeat(arg_u64("bytes") as usize)),
            "crash" => {
                eprintln!("fixture {}: crashing, as asked", state.options.name);
                std::process::exit(3);
            }
            "roots" => {
                let info = json!({
                    "roots": state.roots.lock().unwrap().clone().unwrap_or(Value::Null),
                    "asked": state.roots_asked.load(Ordering::SeqCst),
                });
                from_json(json!({
                    "content": [{"type": "text", "text": info.to_string()}],
                    "structuredContent": info
                }))
            }
            "whoami" => {
                let info = json!({
                    "name": state.options.name,
                    "calls": state.calls.load(Ordering::SeqCst),
                    "cancelled": state.cancelled.load(Ordering::SeqCst),
                    "pid": std::process::id(),
                });
                from_json(json!({
                    "content": [{"type": "text", "text": info.to_string()}],
                    "structuredContent": info
                }))
            }
            "progress" => {
                let steps = arg_u64("steps").max(1);
                if let Some(token) = context.meta.get_progress_token() {
                    for i in 1..=steps {
                        notify(
                            &context.peer,
                            "notifications/progress",
                            json!({
                                "progressToken": token, "progress": i, "total": steps,
                                "message": format!("step {i} of {steps}")
                            }),
                        )
                        .await;
                    }
                }
                text_result(format!("done in {steps} steps"))
            }
            "toggle_tool" => {
                let now = !state.dynamic_tool.fetch_xor(true, Ordering::SeqCst);
                for peer in state.live_peers() {
                    notify(&peer, "notifications/tools/list_changed", Value::Null).await;
                }
                text_result(if now { "extra added" } else { "extra removed" })
            }
            "touch_resource" => {
                let uri = arg_str("uri");
                let subscribed = state.subscriptions.lock().unwrap().contains(&uri);
                if subscribed {
                    for peer in state.live_peers() {
                        notify(
                            &peer,
                            "notifications/resources/updated",
                            json!({"uri": uri}),
                        )
                        .await;
                    }
                }
                text_result(if subscribed {
                    "updated"
                } else {
                    "not subscribed"
                })
            }
            "extra" if state.dynamic_tool.load(Ordering::SeqCst) => text_result("extra"),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {other}"),
                    None,
                ));
            }
        })
    }

    fn resources(&self) -> Vec<Resource> {
        let name = &self.state.options.name;
        [
            json!({"uri": format!("fixture://{name}/info"), "name": "info", "mimeType": "application/json",
                   "description": "Which fixture this is"}),
            json!({"uri": "test://static-text", "name": "static-text", "mimeType": "text/plain",
                   "description": "A static text resource"}),
            json!({"uri": "test://static-binary", "name": "static-binary", "mimeType": "image/png",
                   "description": "A static binary resource (a PNG image)"}),
            json!({"uri": "test://watched-resource", "name": "watched-resource", "mimeType": "text/plain",
                   "description": "A resource to subscribe to"}),
        ]
        .into_iter()
        .map(from_json)
        .collect()
    }

    fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let name = &self.state.options.name;
        let contents = if uri == format!("fixture://{name}/info") {
            json!([{"uri": uri, "mimeType": "application/json", "text": json!({"name": name}).to_string()}])
        } else if uri == "test://static-text" {
            json!([{"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."}])
        } else if uri == "test://static-binary" {
            json!([{"uri": uri, "mimeType": "image/png", "blob": TINY_PNG}])
        } else if uri == "test://watched-resource" {
            json!([{"uri": uri, "mimeType": "text/plain", "text": "Watched resource content."}])
        } else if let Some(id) = uri
            .strip_prefix("test://template/")
            .and_then(|r| r.strip_suffix("/data"))
        {
            let text =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            json!([{"uri": uri, "mimeType": "application/json", "text": text.to_string()}])
        } else if let Some(id) = uri.strip_prefix(&format!("fixture://{name}/items/")) {
            json!([{"uri": uri, "mimeType": "text/plain", "text": format!("item {id} of {name}")}])
        } else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri}"),
                Some(json!({"uri": uri})),
            ));
        };
        Ok(from_json(json!({"contents": contents})))
    }

    fn prompts(&self) -> Vec<Prompt> {
        [
            json!({"name": "greeting", "description": "Greets someone",
                   "arguments": [{"name": "who", "description": "Whom to greet", "required": true}]}),
            json!({"name": "test_simple_prompt", "description": "A simple prompt"}),
            json!({"name": "test_prompt_with_arguments", "description": "A prompt with arguments",
                   "arguments": [
                       {"name": "arg1", "description": "First test argument", "required": true},
                       {"name": "arg2", "description": "Second test argument", "required": true}]}),
            json!({"name": "test_prompt_with_embedded_resource", "description": "A prompt with an embedded resource",
                   "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]}),
            json!({"name": "test_prompt_with_image", "description": "A prompt with an image"}),
        ]
        .into_iter()
        .map(from_json)
        .collect()
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        from_json(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {"listChanged": true},
                "logging": {},
                "completions": {}
            },
            "serverInfo": {"name": self.state.options.name, "version": env!("CARGO_PKG_VERSION")},
            "instructions": "A test fixture of vMCP."
        }))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let asks_roots = context
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.roots.is_some());
        self.state.peers.lock().unwrap().push(context.peer.clone());
        if asks_roots {
            tokio::spawn(fetch_roots(self.state.clone(), context.peer));
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        fetch_roots(self.state.clone(), context.peer).await;
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(from_json(json!({"tools": self.tools()})))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        if request.name == "mrtr" {
            return Ok(mrtr(&args, request.input_responses.as_ref()));
        }
        self.call(&request.name, &args, &context)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(from_json(json!({"resources": self.resources()})))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let name = &self.state.options.name;
        Ok(from_json(json!({"resourceTemplates": [
            {"uriTemplate": format!("fixture://{name}/items/{{id}}"), "name": "item", "mimeType": "text/plain",
             "description": "An item by id"},
            {"uriTemplate": "test://template/{id}/data", "name": "template-data", "mimeType": "application/json",
             "description": "Data by id"}
        ]})))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let prefix = format!("fixture://{}/items/mrtr-", self.state.options.name);
        if let Some(kind) = request.uri.strip_prefix(&prefix) {
            return Ok(match mrtr_input(kind, request.input_responses.as_ref()) {
                Ok(text) => {
                    ReadResourceResult::new(vec![ResourceContents::text(text, request.uri.clone())])
                        .into()
                }
                Err(input) => (*input).into(),
            });
        }
        self.read(&request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.state.subscriptions.lock().unwrap().insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.state
            .subscriptions
            .lock()
            .unwrap()
            .remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(from_json(json!({"prompts": self.prompts()})))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let result: GetPromptResult = match request.name.as_str() {
            "greeting" => {
                let who = args
                    .get("who")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ErrorData::invalid_params("argument `who` is required", None))?;
                from_json(json!({"description": "A greeting", "messages": [
                    {"role": "user", "content": {"type": "text", "text": format!("Hello, {who}!")}}
                ]}))
            }
            "test_simple_prompt" => from_json(json!({"messages": [
                {"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}
            ]})),
            "test_prompt_with_arguments" => {
                let arg = |k: &str| {
                    args.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                from_json(
                    json!({"messages": [{"role": "user", "content": {"type": "text",
                    "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"))}}]}),
                )
            }
            "test_prompt_with_embedded_resource" => {
                let uri = args
                    .get("resourceUri")
                    .and_then(Value::as_str)
                    .unwrap_or("test://example-resource");
                from_json(json!({"messages": [
                    {"role": "user", "content": {"type": "resource", "resource": {
                        "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                    {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}}
                ]}))
            }
            "test_prompt_with_image" => from_json(json!({"messages": [
                {"role": "user", "content": {"type": "image", "data": TINY_PNG, "mimeType": "image/png"}},
                {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}
            ]})),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown prompt {other}"),
                    None,
                ));
            }
        };
        Ok(result.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let value = request.argument.value.clone();
        let values: Vec<String> = ["alice", "bob", "carol"]
            .iter()
            .filter(|v| v.starts_with(&value))
            .map(|v| v.to_string())
            .collect();
        Ok(from_json(
            json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}),
        ))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.state.log_level.lock().unwrap() = serde_json::to_value(request.level)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        Ok(())
    }
}

/// The tools the MCP conformance suite calls by name.
fn conformance_tools() -> Vec<Value> {
    let none = json!({});
    vec![
        tool("test_simple_text", "Returns simple text", none.clone(), &[]),
        tool("test_image_content", "Returns an image", none.clone(), &[]),
        tool("test_audio_content", "Returns audio", none.clone(), &[]),
        tool(
            "test_embedded_resource",
            "Returns an embedded resource",
            none.clone(),
            &[],
        ),
        tool(
            "test_multiple_content_types",
            "Returns text, an image and a resource",
            none.clone(),
            &[],
        ),
        tool(
            "test_tool_with_logging",
            "Logs three messages while it runs",
            none.clone(),
            &[],
        ),
        tool(
            "test_tool_with_progress",
            "Reports progress 0, 50, 100 of 100",
            none.clone(),
            &[],
        ),
        tool(
            "test_error_handling",
            "Always fails (isError)",
            none.clone(),
            &[],
        ),
        tool(
            "test_elicitation",
            "Asks the user for a username and an email (elicitation/create)",
            json!({"message": {"type": "string", "description": "The message to show the user"}}),
            &["message"],
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Elicitation with defaults for every primitive type",
            none.clone(),
            &[],
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Elicitation with the five enum variants",
            none,
            &[],
        ),
        json!({
            "name": "json_schema_2020_12_tool",
            "description": "Tool with JSON Schema 2020-12 features",
            "inputSchema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"type": "object", "properties": {
                    "street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                "additionalProperties": false
            }
        }),
    ]
}

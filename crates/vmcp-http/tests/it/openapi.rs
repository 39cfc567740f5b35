//! The OpenAPI document: served, complete, and the committed `openapi.yaml` is fresh.

use reqwest::StatusCode;
use serde_json::Value;
use vmcp_store::testing::TestDatabase;

use crate::support::TestApp;

#[test]
fn the_committed_openapi_yaml_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = vmcp_http::openapi_yaml();
    assert!(
        committed == current,
        "openapi.yaml is stale: run `cargo xtask openapi` and commit the result"
    );
}

#[test]
fn every_operation_documents_its_responses() {
    let api = serde_json::to_value(vmcp_http::openapi()).unwrap();
    let paths = api["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/vmcps/{vmcp_id}/export"));
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no response"
            );
            for (status, r) in responses {
                let d = r["description"].as_str().unwrap_or("");
                assert!(!d.is_empty(), "{method} {path} {status} has no description");
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status} must use the error body"
                    );
                }
            }
        }
    }
    assert!(operations >= 13, "{operations}");
    assert_eq!(api["info"]["license"]["name"], "MIT");
}

#[actix_web::test]
async fn the_document_and_swagger_ui_are_served() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, serde_json::to_value(vmcp_http::openapi()).unwrap());
    let r = app.get("/openapi.yaml").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_str().unwrap(), vmcp_http::openapi_yaml());
    let r = app.get("/docs/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.as_str().unwrap().contains("swagger-ui"),
        "the UI page is served"
    );
    let r = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the UI's script is served locally, not from a CDN"
    );
    app.stop().await;
}

/// Where `value` breaks `schema` (OpenAPI 3.1: JSON Schema), strictly: a property that the
/// schema's `properties` do not declare is a drift too, unless `additionalProperties` allows it.
fn violations(value: &Value, schema: &Value, api: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let target = api
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{at}: unresolvable {r}"));
        return violations(value, target, api, at, out);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            violations(value, s, api, at, out);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            let fits = any.iter().any(|s| {
                let mut v = Vec::new();
                violations(value, s, api, at, &mut v);
                v.is_empty()
            });
            if !fits {
                out.push(format!("{at}: fits none of {key}: {value}"));
            }
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !ok {
            out.push(format!("{at}: is {actual}, the schema says {types:?}"));
            return;
        }
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Value::Object(map) = value {
        if let Some(required) = schema["required"].as_array() {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    out.push(format!("{at}: lacks the required {r}"));
                }
            }
        }
        let props = schema["properties"].as_object();
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => violations(v, s, api, &format!("{at}.{k}"), out),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => out.push(format!("{at}: {k} is not allowed")),
                    Value::Object(_) => violations(
                        v,
                        &schema["additionalProperties"],
                        api,
                        &format!("{at}.{k}"),
                        out,
                    ),
                    Value::Null if props.is_some() => {
                        out.push(format!("{at}: {k} is not in the schema (drift)"))
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            violations(item, s, api, &format!("{at}[{i}]"), out);
        }
    }
}

/// What the handlers really answer fits what the document says they answer: every success body
/// of the routes a client uses most, against a real vMCP over the fixture (every content type,
/// structured content, a tool error, a template read, a prompt).
#[actix_web::test]
async fn what_the_handlers_answer_is_what_the_document_says() {
    use reqwest::Method;
    use serde_json::json;
    use vmcp_fixture::harness;

    let api = serde_json::to_value(vmcp_http::openapi()).unwrap();
    // The check itself catches drift: a field the schema does not have, a wrong type.
    let tool_result = json!({"$ref": "#/components/schemas/ToolResult"});
    let mut caught = Vec::new();
    violations(
        &json!({"content": [], "resultType": "complete"}),
        &tool_result,
        &api,
        "drift",
        &mut caught,
    );
    violations(
        &json!({"content": "text"}),
        &tool_result,
        &api,
        "type",
        &mut caught,
    );
    assert_eq!(caught.len(), 2, "{caught:?}");
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let alpha = app
        .add_server("alpha", "stdio", harness::stdio_config("alpha", &[]))
        .await;
    let vmcp = app
        .add_vmcp(json!({"name": "doc", "tool_search": "both",
                         "mcp_servers": [{"server_id": alpha}]}))
        .await;
    let first_resource =
        app.get(&format!("/api/vmcps/{vmcp}/resources")).await.body["resources"][0]["uri"].clone();
    let first_prompt =
        app.get(&format!("/api/vmcps/{vmcp}/prompts")).await.body["prompts"][0]["name"].clone();
    let calls: Vec<(Method, String, &str, Option<Value>)> = vec![
        (Method::GET, "/api/vmcps".into(), "/api/vmcps", None),
        (
            Method::GET,
            format!("/api/vmcps/{vmcp}"),
            "/api/vmcps/{vmcp_id}",
            None,
        ),
        (
            Method::GET,
            format!("/api/vmcps/{vmcp}/export"),
            "/api/vmcps/{vmcp_id}/export",
            None,
        ),
        (
            Method::GET,
            "/api/mcp-servers".into(),
            "/api/mcp-servers",
            None,
        ),
        (
            Method::GET,
            format!("/api/mcp-servers/{alpha}"),
            "/api/mcp-servers/{server_id}",
            None,
        ),
        (
            Method::POST,
            format!("/api/mcp-servers/{alpha}/connect"),
            "/api/mcp-servers/{server_id}/connect",
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/api/mcp-servers/{alpha}/logs"),
            "/api/mcp-servers/{server_id}/logs",
            None,
        ),
        (
            Method::GET,
            format!("/api/vmcps/{vmcp}/tools"),
            "/api/vmcps/{vmcp_id}/tools",
            None,
        ),
        (
            Method::GET,
            format!("/api/vmcps/{vmcp}/tools/search?q=add%20numbers"),
            "/api/vmcps/{vmcp_id}/tools/search",
            None,
        ),
        (
            Method::GET,
            format!("/api/vmcps/{vmcp}/resources"),
            "/api/vmcps/{vmcp_id}/resources",
            None,
        ),
        (
            Method::GET,
            format!("/api/vmcps/{vmcp}/prompts"),
            "/api/vmcps/{vmcp_id}/prompts",
            None,
        ),
        (
            Method::POST,
            format!("/api/vmcps/{vmcp}/resources/read"),
            "/api/vmcps/{vmcp_id}/resources/read",
            Some(json!({"uri": first_resource})),
        ),
        (
            Method::POST,
            format!("/api/vmcps/{vmcp}/resources/read"),
            "/api/vmcps/{vmcp_id}/resources/read",
            Some(json!({"uri": "fixture://alpha/items/7"})),
        ),
        (
            Method::POST,
            format!("/api/vmcps/{vmcp}/prompts/get"),
            "/api/vmcps/{vmcp_id}/prompts/get",
            Some(json!({"name": first_prompt, "arguments": {"who": "Ada"}})),
        ),
        (Method::GET, "/api/stats".into(), "/api/stats", None),
        (Method::GET, "/health".into(), "/health", None),
        (Method::GET, "/api/replicas".into(), "/api/replicas", None),
    ]
    .into_iter()
    .chain(
        [
            json!({"name": "alpha.echo", "arguments": {"text": "hi"}}),
            json!({"name": "alpha.add", "arguments": {"a": 1, "b": 2}}),
            json!({"name": "alpha.fail", "arguments": {}}),
            json!({"name": "alpha.content", "arguments": {}}),
        ]
        .into_iter()
        .map(|b| {
            (
                Method::POST,
                format!("/api/vmcps/{vmcp}/tools/call"),
                "/api/vmcps/{vmcp_id}/tools/call",
                Some(b),
            )
        }),
    )
    .collect();
    let mut broken = Vec::new();
    for (method, path, template, body) in calls {
        let r = app.call(method.clone(), &path, body.clone()).await;
        // Every call must succeed: a body that is not checked proves nothing.
        assert!(r.status.is_success(), "{method} {path}: {}", r.body);
        let op = &api["paths"][template][method.as_str().to_lowercase()];
        let schema = &op["responses"][r.status.as_str()]["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {}: no schema",
            r.status
        );
        violations(
            &r.body,
            schema,
            &api,
            &format!("{method} {path}"),
            &mut broken,
        );
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    app.stop().await;
}

//! Snapshot tests of the grammar and the semantics: each test renders its cases into text and
//! compares it with `tests/snapshots/<test>.txt` (`UPDATE_SNAPSHOTS=1 cargo test -p
//! vmcp-substitution` rewrites them; review the diff).

use std::fmt::Write as _;
use std::sync::Mutex;

use futures::future::BoxFuture;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vmcp_substitution::{Limits, Resolver, Segment, parse, substitute};

/// A snapshot being written by one test.
struct Snapshot {
    name: &'static str,
    text: String,
}

impl Snapshot {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            text: String::new(),
        }
    }

    fn case(&mut self, input: &str, output: String) {
        let _ = writeln!(self.text, "> {input}\n{output}\n");
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(format!("{}.txt", self.name));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &self.text).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != self.text {
            panic!(
                "snapshot {} differs (UPDATE_SNAPSHOTS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{}",
                path.display(),
                self.text
            );
        }
    }
}

fn show_parse(input: &str) -> String {
    match parse(input) {
        Ok(segments) => segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => format!("text {t:?}"),
                Segment::Pattern(p) => {
                    format!("{:?} at {} from {:?}", p.kind, p.position, p.source)
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("error at {}: {} ({:?})", e.position, e.reason, e.pattern),
    }
}

/// A vMCP in miniature: config, params, and nested calls that record what they were asked.
struct Fake {
    config: Value,
    params: Value,
    calls: Mutex<Vec<String>>,
}

fn lookup(root: &Value, path: &str) -> Option<Value> {
    path.split('.').try_fold(root, |v, k| v.get(k)).cloned()
}

impl Resolver for Fake {
    fn param(&self, path: &str) -> Option<Value> {
        lookup(&self.params, path).or_else(|| lookup(&self.config, path))
    }
    fn config(&self, path: &str) -> Option<Value> {
        lookup(&self.config, path)
    }
    fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("tool {name} {}", Value::Object(args.clone())));
        let name = name.to_string();
        Box::pin(async move {
            match name.as_str() {
                "gh.fail" => Err("the tool failed: boom".to_string()),
                "gh.loop" => Err("unreachable".to_string()),
                "gh.pattern" => Ok("@config:secret".to_string()),
                "gh.big" => Ok("x".repeat(2000)),
                _ => Ok(format!("<{name} {}>", Value::Object(args))),
            }
        })
    }
    fn read_resource(&self, target: &str) -> BoxFuture<'_, Result<String, String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("resource {target}"));
        let target = target.to_string();
        Box::pin(async move { Ok(format!("<contents of {target}>")) })
    }
    fn get_prompt(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("prompt {name} {}", Value::Object(args.clone())));
        let name = name.to_string();
        Box::pin(async move { Ok(format!("<prompt {name}>")) })
    }
}

fn fake() -> Fake {
    Fake {
        config: json!({"default_repo": "octo/hello", "limit": 20, "flag": true, "nested": {"key": "deep"},
                       "secret": "s3cr3t", "issue_title": "from config", "list": [1, 2]}),
        params: json!({"issue_title": "Crash on start"}),
        calls: Mutex::new(Vec::new()),
    }
}

fn run_with(args: Value, resolver: &Fake, limits: Limits) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = rt.block_on(substitute(&args, "arguments", resolver, limits));
    let calls = resolver.calls.lock().unwrap().join("\n  ");
    let calls = if calls.is_empty() {
        String::new()
    } else {
        format!("\ncalls:\n  {calls}")
    };
    match result {
        Ok(v) => format!("{}{calls}", serde_json::to_string_pretty(&v).unwrap()),
        Err(e) => format!("error: {e}{calls}"),
    }
}

fn run(args: Value) -> String {
    run_with(args, &fake(), Limits::default())
}

fn parse_cases(name: &'static str, inputs: &[&str]) {
    let mut snap = Snapshot::new(name);
    for input in inputs {
        snap.case(input, show_parse(input));
    }
}

fn run_cases(name: &'static str, cases: &[Value]) {
    let mut snap = Snapshot::new(name);
    for args in cases {
        snap.case(&args.to_string(), run(args.clone()));
    }
}

#[test]
fn grammar() {
    parse_cases(
        "grammar",
        &[
            "plain text",
            "@param:issue_title",
            "Hello @param:name.",
            "@config:github.token and more",
            "mail a@b.com or @home, 50@ and @@config:x",
            "@tool(github.list_issues)",
            r#"@tool(github.search, {"q": "is:open (bug)", "n": 5})"#,
            "@prompt(github.issue_template)",
            r#"@prompt(github.review , {"lang": "rust"} )"#,
            "@resource(files.file:///a/(b),c.txt) after",
            "@resource(https://x.io/a?b=(1,2))",
            "é@param:ü_x",
        ],
    );
}

#[test]
fn syntax_errors() {
    parse_cases(
        "syntax_errors",
        &[
            "@param:",
            "x @config: y",
            "@tool(github.list",
            "@tool()",
            r#"@tool(a.b, {"x": )"#,
            r#"@tool(a.b, [1, 2])"#,
            r#"@prompt(a.b, {"x": 1} trailing)"#,
            "@resource(a.b",
            "@resource()",
        ],
    );
}

#[test]
fn semantics() {
    run_cases(
        "semantics",
        &[
            // Whole-string patterns keep their JSON type.
            json!({"repo": "@config:default_repo", "limit": "@config:limit", "flag": "@config:flag",
                   "nested": "@config:nested", "list": "@config:list"}),
            // Embedded patterns interpolate as text; structures are walked; keys are not substituted.
            json!({"title": "[@config:default_repo] @param:issue_title (limit @config:limit, @config:nested)",
                   "items": ["@config:flag", {"deep": "@config:nested.key"}], "n": 3, "keep": null,
                   "@config:limit": "keys are never substituted", "email": "ops@example.com", "at": "@@param:x"}),
            // Params override config; config is config only.
            json!({"title": "@param:issue_title", "c": "@config:issue_title"}),
            // The reference's example.
            json!({"repo": "@config:default_repo", "title": "@param:issue_title",
                   "body": "@prompt(github.issue_template)"}),
            // Nested calls, with arguments that hold patterns, and URIs with parentheses.
            json!({"a": "@tool(gh.list)", "b": r#"see @tool(gh.search, {"q": "@config:default_repo", "n": 2})"#,
                   "c": "@resource(files.file:///tmp/x(1).txt)", "d": r#"@prompt(gh.review, {"lang": "rust"})"#}),
            // Results are never scanned for patterns.
            json!({"x": "@tool(gh.pattern)"}),
        ],
    );
}

#[test]
fn errors() {
    run_cases(
        "errors",
        &[
            json!({"repo": "@config:missing"}),
            json!({"list": ["ok", "x @param:nope"]}),
            json!({"a": {"b": "@tool(gh.fail)"}}),
            json!({"a": "@tool(gh.list"}),
            json!({"a": r#"@tool(gh.x, {"q": "@config:missing"})"#}),
            // A nested call whose arguments call the same tool again: a cycle.
            json!({"x": r#"@tool(gh.loop, {"again": "@tool(gh.loop)"})"#}),
        ],
    );
}

#[test]
fn bounds() {
    let mut snap = Snapshot::new("bounds");
    let cases = [
        (
            json!(["@tool(gh.a)", "@tool(gh.b)", "@tool(gh.c)"]),
            Limits {
                max_depth: 4,
                max_calls: 2,
                max_output: 1 << 20,
            },
        ),
        (
            json!({"big": "@tool(gh.big)"}),
            Limits {
                max_depth: 4,
                max_calls: 32,
                max_output: 1000,
            },
        ),
        (
            json!({"big": "@config:secret @config:secret"}),
            Limits {
                max_depth: 4,
                max_calls: 32,
                max_output: 10,
            },
        ),
        (
            json!({"x": r#"@tool(gh.a, {"y": "@tool(gh.b)"})"#}),
            Limits {
                max_depth: 1,
                max_calls: 32,
                max_output: 1 << 20,
            },
        ),
    ];
    for (args, limits) in cases {
        snap.case(
            &format!("{args} with {limits:?}"),
            run_with(args, &fake(), limits),
        );
    }
}

proptest! {
    /// Text without `@` comes back unchanged, whatever it holds.
    #[test]
    fn text_without_at_round_trips(s in "[^@]{0,200}") {
        let segments = parse(&s).unwrap();
        let joined: String = segments.iter().map(|seg| match seg {
            Segment::Text(t) => t.clone(),
            Segment::Pattern(_) => panic!("a pattern in {s:?}"),
        }).collect();
        prop_assert_eq!(&joined, &s);
        let out = run_with(json!({"v": s.clone()}), &fake(), Limits::default());
        prop_assert_eq!(out, serde_json::to_string_pretty(&json!({"v": s})).unwrap());
    }

    /// Parsing never panics, whatever the input.
    #[test]
    fn parsing_any_text_does_not_panic(s in ".{0,200}") {
        let _ = parse(&s);
    }
}

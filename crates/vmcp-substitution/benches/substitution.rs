//! Parsing and substituting typical tool arguments.
//!
//! Run with `cargo bench -p vmcp-substitution`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use vmcp_substitution::{Limits, Resolver, parse, substitute};

struct Config(Value);

fn lookup(root: &Value, path: &str) -> Option<Value> {
    path.split('.').try_fold(root, |v, k| v.get(k)).cloned()
}

impl Resolver for Config {
    fn param(&self, path: &str) -> Option<Value> {
        lookup(&self.0, path)
    }
    fn config(&self, path: &str) -> Option<Value> {
        lookup(&self.0, path)
    }
    fn call_tool(
        &self,
        name: &str,
        _: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>> {
        let text = format!("result of {name}");
        Box::pin(async move { Ok(text) })
    }
    fn read_resource(&self, target: &str) -> BoxFuture<'_, Result<String, String>> {
        let text = format!("contents of {target}");
        Box::pin(async move { Ok(text) })
    }
    fn get_prompt(
        &self,
        name: &str,
        _: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>> {
        let text = format!("prompt {name}");
        Box::pin(async move { Ok(text) })
    }
}

fn bench(c: &mut Criterion) {
    let resolver = Config(
        json!({"default_repo": "octo/hello", "issue_title": "Crash on start",
                                 "github": {"token": "t0k3n"}}),
    );
    let plain = json!({"path": "/tmp/notes.txt", "recursive": true, "limit": 20,
                       "message": "no patterns here, only text and an email a@b.com"});
    let typical = json!({
        "repo": "@config:default_repo",
        "title": "@param:issue_title",
        "body": "Reported for @config:default_repo: @param:issue_title (see @resource(docs.file:///README.md))",
        "labels": ["bug", "@param:issue_title"],
        "auth": {"token": "@config:github.token"}
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("substitution");
    group.bench_function("parse_typical_string", |b| {
        b.iter(|| parse(black_box("Reported for @config:default_repo: @param:issue_title (see @resource(docs.file:///README.md))")).unwrap())
    });
    group.bench_function("arguments_without_patterns", |b| {
        b.iter(|| {
            rt.block_on(substitute(
                black_box(&plain),
                "arguments",
                &resolver,
                Limits::default(),
            ))
            .unwrap()
        })
    });
    group.bench_function("typical_arguments", |b| {
        b.iter(|| {
            rt.block_on(substitute(
                black_box(&typical),
                "arguments",
                &resolver,
                Limits::default(),
            ))
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

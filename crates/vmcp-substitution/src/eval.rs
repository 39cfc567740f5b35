//! Evaluating parsed strings over JSON values.

use std::fmt;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::parse::{Kind, Pattern, Segment, parse};

/// Where values come from. Nested calls go through the same vMCP as the call being filled.
pub trait Resolver: Send + Sync {
    /// A runtime parameter (`@param:`): the call's `params`, else `active_config`. `path` is a
    /// dot path.
    fn param(&self, path: &str) -> Option<Value>;
    /// A configuration value (`@config:`), from `active_config` only. `path` is a dot path.
    fn config(&self, path: &str) -> Option<Value>;
    /// Calls a tool; the text of its result.
    fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>>;
    /// Reads a resource (`server.uri` or a bare URI); the text of its contents.
    fn read_resource(&self, target: &str) -> BoxFuture<'_, Result<String, String>>;
    /// Renders a prompt; the text of its messages.
    fn get_prompt(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>>;
}

/// Bounds of one substitution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How deep nested calls may go (a nested call's arguments may hold patterns).
    pub max_depth: usize,
    /// How many nested calls one substitution may make in all.
    pub max_calls: usize,
    /// The largest substituted string, in bytes.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 4,
            max_calls: 32,
            max_output: 1024 * 1024,
        }
    }
}

/// What went wrong, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstitutionError {
    /// The argument's path, e.g. `arguments.repo` or `arguments.items[2]`.
    pub path: String,
    /// The pattern's source text (or the start of it).
    pub pattern: String,
    /// Char offset of the pattern in the string.
    pub position: usize,
    pub reason: String,
}

impl fmt::Display for SubstitutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (at character {}): {}",
            self.path, self.pattern, self.position, self.reason
        )
    }
}

impl std::error::Error for SubstitutionError {}

struct State {
    calls: usize,
    /// The nested calls being evaluated, outermost first (for cycle detection).
    stack: Vec<String>,
}

/// Substitutes every string in `value`. `path` names the value in errors (e.g. `arguments`).
pub async fn substitute(
    value: &Value,
    path: &str,
    resolver: &dyn Resolver,
    limits: Limits,
) -> Result<Value, SubstitutionError> {
    let mut state = State {
        calls: 0,
        stack: Vec::new(),
    };
    walk(value, path.to_string(), resolver, limits, &mut state).await
}

/// Substitutes the values of an argument object.
pub async fn substitute_map(
    map: &Map<String, Value>,
    path: &str,
    resolver: &dyn Resolver,
    limits: Limits,
) -> Result<Map<String, Value>, SubstitutionError> {
    match substitute(&Value::Object(map.clone()), path, resolver, limits).await? {
        Value::Object(m) => Ok(m),
        _ => unreachable!("an object substitutes to an object"),
    }
}

fn walk<'a>(
    value: &'a Value,
    path: String,
    resolver: &'a dyn Resolver,
    limits: Limits,
    state: &'a mut State,
) -> BoxFuture<'a, Result<Value, SubstitutionError>> {
    Box::pin(async move {
        match value {
            Value::String(s) if s.contains('@') => string(s, &path, resolver, limits, state).await,
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(walk(item, format!("{path}[{i}]"), resolver, limits, state).await?);
                }
                Ok(Value::Array(out))
            }
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (k, v) in map {
                    let child = walk(v, format!("{path}.{k}"), resolver, limits, state).await?;
                    out.insert(k.clone(), child);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    })
}

async fn string(
    s: &str,
    path: &str,
    resolver: &dyn Resolver,
    limits: Limits,
    state: &mut State,
) -> Result<Value, SubstitutionError> {
    let segments = parse(s).map_err(|e| SubstitutionError {
        path: path.to_string(),
        pattern: e.pattern,
        position: e.position,
        reason: e.reason,
    })?;
    if let [Segment::Pattern(p)] = segments.as_slice() {
        return value_of(p, path, resolver, limits, state).await;
    }
    let mut out = String::with_capacity(s.len());
    for segment in &segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Pattern(p) => match value_of(p, path, resolver, limits, state).await? {
                Value::String(v) => out.push_str(&v),
                other => out.push_str(&other.to_string()),
            },
        }
        if out.len() > limits.max_output {
            return Err(SubstitutionError {
                path: path.to_string(),
                pattern: s.chars().take(60).collect(),
                position: 0,
                reason: format!("the result is larger than {} bytes", limits.max_output),
            });
        }
    }
    Ok(Value::String(out))
}

async fn value_of(
    p: &Pattern,
    path: &str,
    resolver: &dyn Resolver,
    limits: Limits,
    state: &mut State,
) -> Result<Value, SubstitutionError> {
    let fail = |reason: String| SubstitutionError {
        path: path.to_string(),
        pattern: p.source.clone(),
        position: p.position,
        reason,
    };
    match &p.kind {
        Kind::Param(name) => resolver.param(name).ok_or_else(|| {
            fail(format!(
                "no parameter {name:?}: pass it in the call's params, or set it in the vMCP's active_config"
            ))
        }),
        Kind::Config(key) => resolver
            .config(key)
            .ok_or_else(|| fail(format!("no key {key:?} in the vMCP's active_config"))),
        Kind::Tool { .. } | Kind::Resource(_) | Kind::Prompt { .. } => {
            let id = match &p.kind {
                Kind::Tool { name, .. } => format!("tool {name}"),
                Kind::Prompt { name, .. } => format!("prompt {name}"),
                Kind::Resource(target) => format!("resource {target}"),
                _ => unreachable!(),
            };
            if state.stack.contains(&id) {
                let mut chain = state.stack.clone();
                chain.push(id);
                return Err(fail(format!("a cycle: {}", chain.join(" -> "))));
            }
            if state.stack.len() >= limits.max_depth {
                return Err(fail(format!(
                    "nested calls go deeper than {} levels",
                    limits.max_depth
                )));
            }
            if state.calls >= limits.max_calls {
                return Err(fail(format!(
                    "more than {} nested calls in one substitution",
                    limits.max_calls
                )));
            }
            state.calls += 1;
            state.stack.push(id);
            let result = match &p.kind {
                Kind::Tool { name, args } => {
                    let args = nested_args(args, path, resolver, limits, state).await?;
                    resolver.call_tool(name, args).await
                }
                Kind::Prompt { name, args } => {
                    let args = nested_args(args, path, resolver, limits, state).await?;
                    resolver.get_prompt(name, args).await
                }
                Kind::Resource(target) => resolver.read_resource(target).await,
                _ => unreachable!(),
            };
            state.stack.pop();
            let text = result.map_err(fail)?;
            if text.len() > limits.max_output {
                return Err(fail(format!(
                    "the result is larger than {} bytes",
                    limits.max_output
                )));
            }
            Ok(Value::String(text))
        }
    }
}

/// The JSON arguments of a nested call may hold patterns too (one level deeper).
async fn nested_args(
    args: &Map<String, Value>,
    path: &str,
    resolver: &dyn Resolver,
    limits: Limits,
    state: &mut State,
) -> Result<Map<String, Value>, SubstitutionError> {
    match walk(
        &Value::Object(args.clone()),
        format!("{path}(nested)"),
        resolver,
        limits,
        state,
    )
    .await?
    {
        Value::Object(m) => Ok(m),
        _ => unreachable!("an object substitutes to an object"),
    }
}

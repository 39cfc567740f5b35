//! Variable substitution over a vMCP: the `Resolver` that `vmcp-substitution` asks for values,
//! and the filling of a call's arguments (the caller's, then the vMCP's defaults and fixed
//! arguments).

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use vmcp_substitution::{Limits, Resolver, SubstitutionError, substitute, substitute_map};

use crate::aggregate::{Route, VmcpEntry};
use crate::{ErrorKind, Gateway, GatewayError, Operation, Output, Result};

/// Who makes a call, for the operation log.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// Which face the operation came through.
    pub source: Source,
    /// The operation this one was made for (nested substitution calls).
    pub parent_log_id: Option<String>,
}

/// The face an operation came through, as the operation log names it (`rest`, `mcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Rest,
    Mcp,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rest => "rest",
            Source::Mcp => "mcp",
        }
    }
}

impl Caller {
    pub fn rest(client_id: Option<String>) -> Self {
        Self {
            client_id: client_id.unwrap_or_else(|| "rest-api".to_string()),
            source: Source::Rest,
            parent_log_id: None,
        }
    }
}

impl Default for Caller {
    fn default() -> Self {
        Self::rest(None)
    }
}

/// How a call's arguments are filled, and who makes it.
#[derive(Debug, Clone, Default)]
pub struct Fill {
    pub caller: Caller,
    /// Substitute the caller's own arguments: always for REST (a trusted caller), for MCP
    /// clients only when the vMCP enables it.
    pub caller_args: bool,
    /// `@param:` values for this call, over the vMCP's `active_config`.
    pub params: Option<Map<String, Value>>,
    /// How deep in nested calls this call is (0: a call from a client).
    pub depth: usize,
}

impl Fill {
    /// The fill of this call's own arguments: nested calls it makes are linked to `log_id`.
    pub fn for_nested_of(&self, log_id: &str) -> Fill {
        let mut f = self.clone();
        f.caller.parent_log_id = Some(log_id.to_string());
        f
    }

    /// For an operation without arguments to fill (lists, reads).
    pub fn of(caller: Caller) -> Self {
        Self {
            caller,
            caller_args: false,
            params: None,
            depth: 0,
        }
    }

    /// For REST callers.
    pub fn rest(params: Option<Map<String, Value>>, caller: Caller) -> Self {
        Self {
            caller,
            caller_args: true,
            params,
            depth: 0,
        }
    }
}

fn lookup(root: &Map<String, Value>, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let first = root.get(parts.next()?)?;
    parts.try_fold(first, |v, k| v.get(k)).cloned()
}

struct VmcpResolver<'a> {
    gateway: &'a Gateway,
    entry: &'a VmcpEntry,
    fill: &'a Fill,
}

fn nested(fill: &Fill) -> Fill {
    Fill {
        caller: fill.caller.clone(),
        caller_args: false,
        params: fill.params.clone(),
        depth: fill.depth + 1,
    }
}

fn text_of_content(content: &[Value]) -> String {
    content
        .iter()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Resolver for VmcpResolver<'_> {
    fn param(&self, path: &str) -> Option<Value> {
        self.fill
            .params
            .as_ref()
            .and_then(|p| lookup(p, path))
            .or_else(|| lookup(&self.entry.vmcp.active_config, path))
    }

    fn config(&self, path: &str) -> Option<Value> {
        lookup(&self.entry.vmcp.active_config, path)
    }

    fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>> {
        let name = name.to_string();
        Box::pin(async move {
            let op = Operation::CallTool {
                name,
                arguments: Some(args),
            };
            let result = self
                .gateway
                .operate_in(self.entry, op, nested(self.fill), None)
                .await
                .and_then(Output::into_tool)
                .map_err(|e| format!("{}: {}", e.error, e.detail))?;
            let value = serde_json::to_value(&result).unwrap_or_default();
            let text = text_of_content(value["content"].as_array().map_or(&[], |v| v));
            if result.is_error == Some(true) {
                Err(format!("the tool reported an error: {text}"))
            } else {
                Ok(text)
            }
        })
    }

    fn read_resource(&self, target: &str) -> BoxFuture<'_, Result<String, String>> {
        let target = target.to_string();
        Box::pin(async move {
            if self.fill.depth + 1 > Limits::default().max_depth {
                return Err("nested calls go too deep".into());
            }
            // `server.uri` names the server; a bare URI is routed like any read.
            let aggregate = self.gateway.prepared_aggregate(self.entry).await;
            let uri = match target.split_once('.') {
                Some((server, uri))
                    if aggregate.resource_owner(&target).is_none()
                        && aggregate.server_id_of(server).is_some() =>
                {
                    uri.to_string()
                }
                _ => target.clone(),
            };
            let op = Operation::ReadResource { uri: uri.clone() };
            let result = self
                .gateway
                .operate_in(self.entry, op, Fill::of(self.fill.caller.clone()), None)
                .await
                .and_then(Output::into_resource)
                .map_err(|e| format!("{}: {}", e.error, e.detail))?;
            let value = serde_json::to_value(&result).unwrap_or_default();
            let contents = value["contents"].as_array().cloned().unwrap_or_default();
            if contents.iter().any(|c| c.get("text").is_none()) {
                return Err(format!(
                    "{uri} is binary: only text resources can be substituted"
                ));
            }
            Ok(text_of_content(&contents))
        })
    }

    fn get_prompt(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> BoxFuture<'_, Result<String, String>> {
        let name = name.to_string();
        Box::pin(async move {
            let op = Operation::GetPrompt {
                name,
                arguments: Some(args),
            };
            let result = self
                .gateway
                .operate_in(self.entry, op, nested(self.fill), None)
                .await
                .and_then(Output::into_prompt)
                .map_err(|e| format!("{}: {}", e.error, e.detail))?;
            let value = serde_json::to_value(&result).unwrap_or_default();
            let messages = value["messages"].as_array().cloned().unwrap_or_default();
            let contents: Vec<Value> = messages.iter().map(|m| m["content"].clone()).collect();
            Ok(text_of_content(&contents))
        })
    }
}

fn failed(e: SubstitutionError) -> GatewayError {
    GatewayError::new(ErrorKind::BadRequest, "substitution failed", e.to_string())
}

impl Gateway {
    /// The arguments of a call, filled: the caller's (substituted when `fill` says so), then the
    /// vMCP's defaults where absent, then its fixed arguments (both always substituted: they come
    /// from the vMCP's owner).
    pub(crate) async fn fill_arguments(
        &self,
        entry: &VmcpEntry,
        route: Option<&Route>,
        arguments: Option<Map<String, Value>>,
        fill: &Fill,
    ) -> Result<Map<String, Value>> {
        let limits = Limits::default();
        if fill.depth > limits.max_depth {
            return Err(GatewayError::new(
                ErrorKind::BadRequest,
                "substitution failed",
                format!("nested calls go deeper than {} levels", limits.max_depth),
            ));
        }
        let resolver = VmcpResolver {
            gateway: self,
            entry,
            fill,
        };
        let mut args = arguments.unwrap_or_default();
        if fill.caller_args && args.values().any(may_hold_patterns) {
            args = substitute_map(&args, "arguments", &resolver, limits)
                .await
                .map_err(failed)?;
        }
        if let Some(custom) = route.and_then(|r| r.custom.as_ref()) {
            for (k, v) in &custom.defaults {
                if !args.contains_key(k) {
                    let v = substitute(v, &format!("defaults.{k}"), &resolver, limits)
                        .await
                        .map_err(failed)?;
                    args.insert(k.clone(), v);
                }
            }
            for (k, v) in &custom.fixed {
                let v = substitute(v, &format!("fixed.{k}"), &resolver, limits)
                    .await
                    .map_err(failed)?;
                args.insert(k.clone(), v);
            }
        }
        Ok(args)
    }
}

fn may_hold_patterns(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('@'),
        Value::Array(items) => items.iter().any(may_hold_patterns),
        Value::Object(map) => map.values().any(may_hold_patterns),
        _ => false,
    }
}

//! The operation log and `/api/stats`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::{ValidationError, time::Timestamp};

/// The largest stored result, in bytes of JSON; larger results are cut (and marked).
pub const MAX_LOGGED_RESULT: usize = 64 * 1024;
/// Largest `page` of `/api/stats` (the largest int32, as documented).
pub const MAX_PAGE: u32 = i32::MAX as u32;

/// Largest `page_size` of `/api/stats`.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One operation on a vMCP, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "log_id": "log_0123456789abcdef", "client_id": "rest-api", "vmcp_id": "vmcp_0b1c2d3e4f5a6b7c",
    "method": "tools/call", "mcp_server_id": "server_3f2a9c0d1e4b5a6f", "target": "filesystem.read_file",
    "arguments": {"path": "/file.txt"}, "result": {"content": [{"type": "text", "text": "..."}]},
    "result_truncated": false, "active_config_snapshot": {"api_key": "********"},
    "timestamp": "2024-01-15T10:30:00.000Z", "duration_ms": 12.5, "success": true, "error": null,
    "parent_log_id": null, "source": "rest"
}))]
pub struct LogEntry {
    pub log_id: String,
    /// Who called: an MCP session (`name/version#session`), or a REST caller (`X-Client-Id`,
    /// else `rest-api`).
    pub client_id: String,
    pub vmcp_id: Option<String>,
    /// `tools/list`, `tools/call`, `resources/list`, `resources/read`, `prompts/list`,
    /// `prompts/get`, ...
    pub method: String,
    /// The server that served it (calls, reads, gets).
    pub mcp_server_id: Option<String>,
    /// The tool or prompt name, or the resource URI.
    pub target: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Value>,
    /// The result, cut to 64 KiB of JSON (then a string, and `result_truncated` is true).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub result_truncated: bool,
    /// The vMCP's `active_config` at the time, with secret-looking keys masked.
    #[schema(value_type = Option<Object>)]
    pub active_config_snapshot: Option<Value>,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    pub duration_ms: f64,
    pub success: bool,
    pub error: Option<String>,
    /// For calls made by variable substitution: the call they were made for.
    pub parent_log_id: Option<String>,
    /// `rest` or `mcp`.
    pub source: String,
}

/// Query of `GET /api/stats`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Only operations at or after this time (ISO 8601: `2024-01-15`, `2024-01-15T10:30:00Z`).
    pub start_date: Option<String>,
    /// Only operations before this time (a date alone means the end of that day).
    pub end_date: Option<String>,
    pub vmcp_id: Option<String>,
    pub client_id: Option<String>,
    /// e.g. `tools/call`.
    pub method: Option<String>,
    /// 1-based page (default 1). Kept as text on the wire so that a bad value gets an error
    /// that names the parameter.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 2147483647)]
    #[serde(default, deserialize_with = "text_or_number")]
    pub page: Option<String>,
    /// Logs per page (default 50, at most 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "text_or_number")]
    pub page_size: Option<String>,
}

/// A query value given as text (a query string) or as a JSON number.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// A validated stats query.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsFilter {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub vmcp_id: Option<String>,
    pub client_id: Option<String>,
    pub method: Option<String>,
    pub page: u32,
    pub page_size: u32,
}

fn parse_time(field: &str, s: &str, end_of_day: bool) -> Result<Timestamp, ValidationError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(t.and_utc());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            d.succ_opt().unwrap_or(d).and_hms_opt(0, 0, 0)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        return Ok(t.expect("midnight exists").and_utc());
    }
    Err(ValidationError::new(
        field,
        format!("{s:?} is not an ISO 8601 date or time (e.g. 2024-01-15 or 2024-01-15T10:30:00Z)"),
    ))
}

impl StatsQuery {
    pub fn validate(&self) -> Result<StatsFilter, ValidationError> {
        let number = |field: &str, value: &Option<String>, default: u32| match value {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| ValidationError::new(field, format!("{v:?} is not a whole number"))),
        };
        let page = number("page", &self.page, 1)?;
        if page == 0 {
            return Err(ValidationError::new("page", "pages start at 1"));
        }
        if page > MAX_PAGE {
            return Err(ValidationError::new(
                "page",
                format!("must be at most {MAX_PAGE}"),
            ));
        }
        let page_size = number("page_size", &self.page_size, 50)?;
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err(ValidationError::new(
                "page_size",
                format!("must be from 1 to {MAX_PAGE_SIZE}"),
            ));
        }
        let start = self
            .start_date
            .as_deref()
            .map(|s| parse_time("start_date", s, false))
            .transpose()?;
        let end = self
            .end_date
            .as_deref()
            .map(|s| parse_time("end_date", s, true))
            .transpose()?;
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(ValidationError::new("end_date", "is before start_date"));
        }
        Ok(StatsFilter {
            start,
            end,
            // Stored as the log writer stores them (see `text::storable`), so that they match.
            vmcp_id: self.vmcp_id.clone().map(crate::text::into_storable),
            client_id: self.client_id.clone().map(crate::text::into_storable),
            method: self.method.clone().map(crate::text::into_storable),
            page,
            page_size,
        })
    }
}

/// Figures over the filtered operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    /// Operations that match the filters.
    pub total_logs: u64,
    /// Distinct `client_id`s among them.
    pub active_clients: u64,
    /// Distinct vMCPs among them.
    pub total_vmcps: u64,
    /// Of them, `tools/call` operations (nested calls made by substitution included).
    pub total_tool_calls: u64,
    /// `total_tool_calls / active_clients`: tool calls per client (0 without clients).
    pub avg_tools_per_call: f64,
    /// Of them, operations that failed.
    pub failed: u64,
    /// Mean duration of the operations, in milliseconds.
    pub avg_duration_ms: f64,
    /// Log rows dropped since start because the writer could not keep up (not in the figures).
    pub dropped_logs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub total_pages: u64,
    pub total_items: u64,
}

/// `GET /api/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    pub stats: Stats,
    /// Newest first.
    pub logs: Vec<LogEntry>,
    pub pagination: Pagination,
}

/// A copy of a configuration with its secrets masked (see `crate::secrets`), at any depth.
pub fn redact(config: &Map<String, Value>, secret_keys: &[String]) -> Value {
    Value::Object(crate::secrets::mask_config(config, secret_keys))
}

/// A result for the log from one serialization: every secret of `secrets` masked, then as it
/// is, or cut to `MAX_LOGGED_RESULT` bytes of JSON text (then a string, and `true`).
pub fn logged_result<S: AsRef<str>>(result: Value, secrets: &[S]) -> (Value, bool) {
    let text = result.to_string();
    let (result, text) = match crate::secrets::scrub(&text, secrets) {
        Some(clean) => (crate::secrets::reparse_scrubbed(&clean), clean),
        None => (result, text),
    };
    if text.len() <= MAX_LOGGED_RESULT {
        return (result, false);
    }
    let mut end = MAX_LOGGED_RESULT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (Value::String(text[..end].to_string()), true)
}

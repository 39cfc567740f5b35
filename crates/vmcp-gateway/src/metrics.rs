//! Prometheus-style metrics: operations by vMCP, server, method and outcome, with latency
//! histograms; upstream status; the operation log's queue; open MCP sessions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use vmcp_domain::ServerStatus;

use crate::Gateway;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters of finished operations.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, String, bool), Series>>,
}

impl Metrics {
    pub fn observe(&self, vmcp: &str, server: &str, method: &str, success: bool, seconds: f64) {
        let mut series = self.series.lock().expect("metrics lock");
        let s = series
            .entry((
                vmcp.to_string(),
                server.to_string(),
                method.to_string(),
                success,
            ))
            .or_default();
        s.count += 1;
        s.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i] += 1;
            }
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Gateway {
    /// The metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP vmcp_operations_total Operations on vMCPs, by vMCP, server, method and outcome.\n");
        out.push_str("# TYPE vmcp_operations_total counter\n");
        let series = self.metrics.series.lock().expect("metrics lock");
        for ((vmcp, server, method, success), s) in series.iter() {
            let status = if *success { "ok" } else { "error" };
            let _ = writeln!(
                out,
                "vmcp_operations_total{{vmcp=\"{}\",server=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                label(vmcp),
                label(server),
                label(method),
                s.count
            );
        }
        out.push_str("# HELP vmcp_operation_duration_seconds Latency of operations on vMCPs.\n");
        out.push_str("# TYPE vmcp_operation_duration_seconds histogram\n");
        for ((vmcp, server, method, success), s) in series.iter() {
            let status = if *success { "ok" } else { "error" };
            let labels = format!(
                "vmcp=\"{}\",server=\"{}\",method=\"{}\",status=\"{status}\"",
                label(vmcp),
                label(server),
                label(method)
            );
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "vmcp_operation_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "vmcp_operation_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "vmcp_operation_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "vmcp_operation_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(series);
        out.push_str(
            "# HELP vmcp_upstream_up Whether an MCP server is connected (1) or not (0).\n",
        );
        out.push_str("# TYPE vmcp_upstream_up gauge\n");
        let mut slots = self.supervisor.slots();
        slots.sort_by_key(|s| s.name());
        for slot in slots {
            let state = slot.state();
            let _ = writeln!(
                out,
                "vmcp_upstream_up{{server=\"{}\",server_id=\"{}\",status=\"{}\"}} {}",
                label(&slot.name()),
                slot.id,
                match state.status {
                    ServerStatus::Connected => "connected",
                    ServerStatus::Connecting => "connecting",
                    ServerStatus::Disconnected => "disconnected",
                    ServerStatus::Error => "error",
                },
                u8::from(state.status == ServerStatus::Connected)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vmcp_log_queue_depth Operation log rows waiting to be written.\n# TYPE vmcp_log_queue_depth gauge\nvmcp_log_queue_depth {}",
            self.oplog.depth()
        );
        let _ = writeln!(
            out,
            "# HELP vmcp_log_dropped_total Operation log rows dropped because the writer could not keep up.\n# TYPE vmcp_log_dropped_total counter\nvmcp_log_dropped_total {}",
            self.oplog.dropped()
        );
        let _ = writeln!(
            out,
            "# HELP vmcp_log_written_total Operation log rows written.\n# TYPE vmcp_log_written_total counter\nvmcp_log_written_total {}",
            self.oplog.written()
        );
        let _ = writeln!(
            out,
            "# HELP vmcp_mcp_sessions Open MCP client sessions.\n# TYPE vmcp_mcp_sessions gauge\nvmcp_mcp_sessions {}",
            self.sessions.count()
        );
        out
    }

    /// `GET /api/stats`: figures over the filtered operation log and one page of it.
    pub async fn stats(
        &self,
        query: vmcp_domain::StatsQuery,
    ) -> crate::Result<vmcp_domain::StatsResponse> {
        let filter = query.validate()?;
        let f = filter.clone();
        let (figures, logs) = self.db(move |s| s.log_stats(&f)).await?;
        let total_pages = figures.total.div_ceil(u64::from(filter.page_size));
        Ok(vmcp_domain::StatsResponse {
            stats: vmcp_domain::Stats {
                total_logs: figures.total,
                active_clients: figures.clients,
                total_vmcps: figures.vmcps,
                total_tool_calls: figures.tool_calls,
                avg_tools_per_call: if figures.clients == 0 {
                    0.0
                } else {
                    figures.tool_calls as f64 / figures.clients as f64
                },
                failed: figures.failed,
                avg_duration_ms: figures.avg_duration_ms,
                dropped_logs: self.oplog.dropped(),
            },
            logs,
            pagination: vmcp_domain::Pagination {
                page: filter.page,
                page_size: filter.page_size,
                total_pages,
                total_items: figures.total,
            },
        })
    }
}

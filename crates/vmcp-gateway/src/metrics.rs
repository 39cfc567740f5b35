//! Metrics in the Prometheus / OpenMetrics text format, by the official `prometheus-client`
//! crate: operations by vMCP, server, method and outcome, with latency histograms (recorded on
//! the call's path: a read lock and atomic adds); upstream status, the operation log's queue and
//! open MCP sessions (read at scrape time).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use vmcp_domain::ServerStatus;

use crate::Gateway;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The content type of `metrics_text`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    vmcp: String,
    server: String,
    method: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    server: String,
    server_id: String,
    status: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Counters of finished operations.
pub struct Metrics {
    operations: Family<OperationLabels, Counter>,
    durations: Family<OperationLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            operations: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// How an operation ended, as the `status` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    /// The caller went away first: neither the gateway's nor the server's failure.
    Cancelled,
}

impl Metrics {
    pub fn observe(
        &self,
        vmcp: &str,
        server: &str,
        method: &'static str,
        outcome: Outcome,
        seconds: f64,
    ) {
        let labels = OperationLabels {
            vmcp: vmcp.to_string(),
            server: server.to_string(),
            method,
            status: match outcome {
                Outcome::Ok => "ok",
                Outcome::Error => "error",
                Outcome::Cancelled => "cancelled",
            },
        };
        self.operations.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

impl Gateway {
    /// The metrics in the OpenMetrics text format (which Prometheus reads; see `CONTENT_TYPE`).
    pub fn metrics_text(&self) -> String {
        let mut registry = Registry::default();
        registry.register(
            "vmcp_operations",
            "Operations on vMCPs, by vMCP, server, method and outcome",
            self.metrics.operations.clone(),
        );
        registry.register_with_unit(
            "vmcp_operation_duration",
            "Latency of operations on vMCPs",
            Unit::Seconds,
            self.metrics.durations.clone(),
        );
        let upstreams = Family::<UpstreamLabels, Gauge>::default();
        for slot in self.supervisor.slots() {
            let status = slot.state().status;
            upstreams
                .get_or_create(&UpstreamLabels {
                    server: slot.name(),
                    server_id: slot.id.clone(),
                    status: match status {
                        ServerStatus::Connected => "connected",
                        ServerStatus::Connecting => "connecting",
                        ServerStatus::Disconnected => "disconnected",
                        ServerStatus::Error => "error",
                        ServerStatus::AuthRequired => "auth_required",
                    },
                })
                .set(i64::from(status == ServerStatus::Connected));
        }
        registry.register(
            "vmcp_upstream_up",
            "Whether an MCP server is connected (1) or not (0)",
            upstreams,
        );
        registry.register(
            "vmcp_log_queue_depth",
            "Operation log rows waiting to be written",
            gauge(i64::try_from(self.oplog.depth()).unwrap_or(i64::MAX)),
        );
        registry.register(
            "vmcp_log_dropped",
            "Operation log rows dropped because the writer could not keep up",
            counter(self.oplog.dropped()),
        );
        registry.register(
            "vmcp_log_written",
            "Operation log rows written",
            counter(self.oplog.written()),
        );
        registry.register(
            "vmcp_mcp_sessions",
            "MCP client sessions held in memory (an unused one is released, and resumed from its id)",
            gauge(i64::try_from(self.sessions.count()).unwrap_or(i64::MAX)),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
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

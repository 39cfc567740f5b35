//! The operation log: batched inserts, the figures and pages of `/api/stats`, retention.
//!
//! Every figure is computed in SQL over the filtered rows (counts, distinct counts, an average),
//! never by loading rows; a page is one indexed, ordered query (newest first).

use chrono::NaiveDateTime;
use diesel::dsl::{count, count_star};
use diesel::prelude::*;
use serde_json::Value;
use vmcp_domain::{LogEntry, StatsFilter};

use crate::schema::operation_logs as ol;
use crate::{DbConnection, Result, Store, StoreError};

/// A row to write.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ol)]
pub struct NewLog {
    pub id: String,
    pub timestamp: NaiveDateTime,
    pub client_id: String,
    pub vmcp_id: Option<String>,
    pub method: String,
    pub mcp_server_id: Option<String>,
    pub target: Option<String>,
    pub arguments: Option<String>,
    pub result: Option<String>,
    pub result_truncated: bool,
    pub active_config_snapshot: Option<String>,
    pub duration_ms: f64,
    pub success: bool,
    pub error: Option<String>,
    pub parent_log_id: Option<String>,
    pub source: String,
}

impl NewLog {
    pub fn from_entry(e: &LogEntry) -> Self {
        let text = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        Self {
            id: e.log_id.clone(),
            timestamp: e.timestamp.naive_utc(),
            client_id: e.client_id.clone(),
            vmcp_id: e.vmcp_id.clone(),
            method: e.method.clone(),
            mcp_server_id: e.mcp_server_id.clone(),
            target: e.target.clone(),
            arguments: text(&e.arguments),
            result: text(&e.result),
            result_truncated: e.result_truncated,
            active_config_snapshot: text(&e.active_config_snapshot),
            duration_ms: e.duration_ms,
            success: e.success,
            error: e.error.clone(),
            parent_log_id: e.parent_log_id.clone(),
            source: e.source.clone(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ol)]
struct LogRow {
    id: String,
    timestamp: NaiveDateTime,
    client_id: String,
    vmcp_id: Option<String>,
    method: String,
    mcp_server_id: Option<String>,
    target: Option<String>,
    arguments: Option<String>,
    result: Option<String>,
    result_truncated: bool,
    active_config_snapshot: Option<String>,
    duration_ms: f64,
    success: bool,
    error: Option<String>,
    parent_log_id: Option<String>,
    source: String,
}

impl LogRow {
    fn into_entry(self) -> LogEntry {
        let json =
            |s: Option<String>| s.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)));
        LogEntry {
            log_id: self.id,
            client_id: self.client_id,
            vmcp_id: self.vmcp_id,
            method: self.method,
            mcp_server_id: self.mcp_server_id,
            target: self.target,
            arguments: json(self.arguments),
            result: json(self.result),
            result_truncated: self.result_truncated,
            active_config_snapshot: json(self.active_config_snapshot),
            timestamp: self.timestamp.and_utc(),
            duration_ms: self.duration_ms,
            success: self.success,
            error: self.error,
            parent_log_id: self.parent_log_id,
            source: self.source,
        }
    }
}

/// Figures over the filtered rows.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFigures {
    pub total: u64,
    pub clients: u64,
    pub vmcps: u64,
    pub tool_calls: u64,
    pub failed: u64,
    pub avg_duration_ms: f64,
}

type Boxed<'a> = ol::BoxedQuery<'a, <DbConnection as diesel::Connection>::Backend>;

fn filtered(f: &StatsFilter) -> Boxed<'static> {
    let mut q = ol::table.into_boxed();
    if let Some(s) = f.start {
        q = q.filter(ol::timestamp.ge(s.naive_utc()));
    }
    if let Some(e) = f.end {
        q = q.filter(ol::timestamp.lt(e.naive_utc()));
    }
    if let Some(v) = &f.vmcp_id {
        q = q.filter(ol::vmcp_id.eq(v.clone()));
    }
    if let Some(c) = &f.client_id {
        q = q.filter(ol::client_id.eq(c.clone()));
    }
    if let Some(m) = &f.method {
        q = q.filter(ol::method.eq(m.clone()));
    }
    q
}

fn n(v: i64) -> u64 {
    v.max(0) as u64
}

impl Store {
    /// Writes a batch of rows in one transaction.
    pub fn insert_logs(&self, rows: &[NewLog]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        self.write(|conn| {
            // One statement per row (the multi-backend connection has no batch insert), all in
            // one transaction.
            let mut written = 0;
            for row in rows {
                written += diesel::insert_into(ol::table).values(row).execute(conn)?;
            }
            Ok(written)
        })
    }

    /// The figures and one page (newest first) of the operations that match `f`.
    pub fn log_stats(&self, f: &StatsFilter) -> Result<(LogFigures, Vec<LogEntry>)> {
        let mut conn = self.conn()?;
        let conn = &mut *conn;
        let total: i64 = filtered(f).select(count_star()).first(conn)?;
        let clients: i64 = filtered(f)
            .select(count(ol::client_id).aggregate_distinct())
            .first(conn)?;
        let vmcps: i64 = filtered(f)
            .select(count(ol::vmcp_id).aggregate_distinct())
            .first(conn)?;
        let tool_calls: i64 = filtered(f)
            .filter(ol::method.eq("tools/call"))
            .select(count_star())
            .first(conn)?;
        let failed: i64 = filtered(f)
            .filter(ol::success.eq(false))
            .select(count_star())
            .first(conn)?;
        let avg: Option<f64> = filtered(f)
            .select(diesel::dsl::avg(ol::duration_ms))
            .first(conn)?;
        let offset = i64::from(f.page - 1) * i64::from(f.page_size);
        let rows: Vec<LogRow> = filtered(f)
            .order((ol::timestamp.desc(), ol::id.desc()))
            .limit(i64::from(f.page_size))
            .offset(offset)
            .select(LogRow::as_select())
            .load(conn)?;
        Ok((
            LogFigures {
                total: n(total),
                clients: n(clients),
                vmcps: n(vmcps),
                tool_calls: n(tool_calls),
                failed: n(failed),
                avg_duration_ms: avg.unwrap_or(0.0),
            },
            rows.into_iter().map(LogRow::into_entry).collect(),
        ))
    }

    /// Deletes rows older than `before`, and beyond the newest `keep` rows. Returns how many.
    pub fn prune_logs(&self, before: Option<NaiveDateTime>, keep: Option<u64>) -> Result<usize> {
        self.write(|conn| {
            let mut deleted = 0;
            if let Some(before) = before {
                deleted +=
                    diesel::delete(ol::table.filter(ol::timestamp.lt(before))).execute(conn)?;
            }
            if let Some(keep) = keep {
                let cutoff: Option<(NaiveDateTime, String)> = ol::table
                    .order((ol::timestamp.desc(), ol::id.desc()))
                    .select((ol::timestamp, ol::id))
                    .offset(
                        i64::try_from(keep)
                            .map_err(|_| StoreError::Config("keep is too large".into()))?,
                    )
                    .first(conn)
                    .optional()?;
                if let Some((t, id)) = cutoff {
                    deleted += diesel::delete(
                        ol::table.filter(
                            ol::timestamp
                                .lt(t)
                                .or(ol::timestamp.eq(t).and(ol::id.le(id))),
                        ),
                    )
                    .execute(conn)?;
                }
            }
            Ok(deleted)
        })
    }
}

//! The operation log: batched inserts, the figures and pages of `/api/stats`, retention.
//!
//! Every figure is computed in SQL over the filtered rows (counts, distinct counts, an average),
//! never by loading rows; a page is one indexed, ordered query (newest first).

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::{count, count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamp};
use serde_json::Value;
use vmcp_domain::text::storable;
use vmcp_domain::{LogEntry, StatsFilter};

use crate::schema::operation_log_days as od;
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
    /// The row of an entry. Text that a database cannot store (NUL, which Postgres refuses) is
    /// replaced as `vmcp_domain::text::storable` says, on both backends; JSON columns need no
    /// care (serde_json writes a NUL as the escape `\u0000`).
    pub fn from_entry(e: &LogEntry) -> Self {
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        let text = |s: &str| storable(s).into_owned();
        let opt = |s: &Option<String>| s.as_deref().map(text);
        Self {
            id: text(&e.log_id),
            timestamp: e.timestamp.naive_utc(),
            client_id: text(&e.client_id),
            vmcp_id: opt(&e.vmcp_id),
            method: text(&e.method),
            mcp_server_id: opt(&e.mcp_server_id),
            target: opt(&e.target),
            arguments: json(&e.arguments),
            result: json(&e.result),
            result_truncated: e.result_truncated,
            active_config_snapshot: json(&e.active_config_snapshot),
            duration_ms: e.duration_ms,
            success: e.success,
            error: opt(&e.error),
            parent_log_id: opt(&e.parent_log_id),
            source: text(&e.source),
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
        let origin = self.origin().to_string();
        self.write(|conn| {
            let mut written = 0;
            match conn {
                // Postgres: multi-row statements (a round trip per row would cap the writer at a
                // few thousand rows a second). 16 columns x 1000 rows stays under the 65535
                // bind parameters of one statement.
                DbConnection::Postgresql(pg) => {
                    for chunk in rows.chunks(1000) {
                        written += diesel::insert_into(ol::table).values(chunk).execute(pg)?;
                    }
                }
                // SQLite: one prepared statement per row, in the same transaction (cheap, with no
                // round trips).
                DbConnection::Sqlite(_) => {
                    for row in rows {
                        written += diesel::insert_into(ol::table).values(row).execute(conn)?;
                    }
                }
            }
            add_day_counts(conn, rows)?;
            if let DbConnection::Postgresql(pg) = conn {
                // Delivered when the rows are committed: other replicas' live feeds read them.
                crate::cluster::announce_logs(pg, &origin, rows.iter().map(|r| r.id.as_str()))?;
            }
            Ok(written)
        })
    }

    /// The figures and one page (newest first) of the operations that match `f`.
    pub fn log_stats(&self, f: &StatsFilter) -> Result<(LogFigures, Vec<LogEntry>)> {
        use diesel::Connection;
        let mut conn = self.conn()?;
        // The figures and the page from one snapshot: a batch the writer commits in between
        // must not show in the page and be missing from the totals.
        let ((total, clients, vmcps, tool_calls, failed, avg), rows) =
            (*conn).transaction(|conn| {
                if let DbConnection::Postgresql(pg) = conn {
                    diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .execute(pg)?;
                }
                let figures = if day_aligned(f) {
                    figures_from_days(conn, f)?
                } else {
                    figures_from_rows(conn, f)?
                };
                let offset = i64::from(f.page - 1) * i64::from(f.page_size);
                let rows: Vec<LogRow> = filtered(f)
                    .order((ol::timestamp.desc(), ol::id.desc()))
                    .limit(i64::from(f.page_size))
                    .offset(offset)
                    .select(LogRow::as_select())
                    .load(conn)?;
                Ok::<_, StoreError>((figures, rows))
            })?;
        Ok((
            LogFigures {
                total: n(total),
                clients: n(clients),
                vmcps: n(vmcps),
                tool_calls: n(tool_calls),
                failed: n(failed),
                avg_duration_ms: avg,
            },
            rows.into_iter().map(LogRow::into_entry).collect(),
        ))
    }

    /// Deletes rows older than `before`, and beyond the newest `keep` rows. Returns how many.
    /// Replicas on one Postgres database take turns (an advisory lock): one prunes, the
    /// others skip the round.
    pub fn prune_logs(&self, before: Option<NaiveDateTime>, keep: Option<u64>) -> Result<usize> {
        Ok(self
            .once(crate::cluster::PRUNE_JOB, |conn| prune(conn, before, keep))?
            .unwrap_or(0))
    }
}

fn prune(
    conn: &mut DbConnection,
    before: Option<NaiveDateTime>,
    keep: Option<u64>,
) -> Result<usize> {
    {
        {
            let mut deleted = 0;
            // The last day whose counts the deletions may have changed.
            let mut last_day = None;
            if let Some(before) = before {
                deleted +=
                    diesel::delete(ol::table.filter(ol::timestamp.lt(before))).execute(conn)?;
                last_day = Some(before.date());
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
                    last_day = last_day.max(Some(t.date()));
                }
            }
            if deleted > 0
                && let Some(day) = last_day
            {
                recount_days_until(conn, day)?;
            }
            Ok(deleted)
        }
    }
}

type Figures = (i64, i64, i64, i64, i64, f64);

/// Every figure in one pass over the filtered rows.
fn figures_from_rows(conn: &mut DbConnection, f: &StatsFilter) -> Result<Figures> {
    let (total, clients, vmcps, tool_calls, failed, avg): (i64, i64, i64, i64, i64, Option<f64>) =
        filtered(f)
            .select((
                count_star(),
                count(ol::client_id).aggregate_distinct(),
                count(ol::vmcp_id).aggregate_distinct(),
                sql::<BigInt>("COUNT(CASE WHEN method = 'tools/call' THEN 1 END)"),
                sql::<BigInt>("COUNT(CASE WHEN success THEN NULL ELSE 1 END)"),
                diesel::dsl::avg(ol::duration_ms),
            ))
            .first(conn)?;
    Ok((
        total,
        clients,
        vmcps,
        tool_calls,
        failed,
        avg.unwrap_or(0.0),
    ))
}

/// Whether the query's time bounds fall on UTC midnights (or are absent): then the daily counts
/// answer it exactly.
fn day_aligned(f: &StatsFilter) -> bool {
    [f.start, f.end]
        .iter()
        .flatten()
        .all(|t| t.naive_utc().time() == chrono::NaiveTime::MIN)
}

fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The figures from the daily counts: a few rows a day instead of every operation.
fn figures_from_days(conn: &mut DbConnection, f: &StatsFilter) -> Result<Figures> {
    let mut q = od::table.into_boxed();
    if let Some(s) = f.start {
        q = q.filter(od::day.ge(day_text(s.date_naive())));
    }
    if let Some(e) = f.end {
        q = q.filter(od::day.lt(day_text(e.date_naive())));
    }
    if let Some(v) = &f.vmcp_id {
        q = q.filter(od::vmcp_id.eq(v.clone()));
    }
    if let Some(c) = &f.client_id {
        q = q.filter(od::client_id.eq(c.clone()));
    }
    if let Some(m) = &f.method {
        q = q.filter(od::method.eq(m.clone()));
    }
    let (total, clients, vmcps, tool_calls, failed, duration): (
        Option<i64>,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<f64>,
    ) = q
        .select((
            sql::<Nullable<BigInt>>("CAST(SUM(calls) AS BIGINT)"),
            count(od::client_id).aggregate_distinct(),
            sql::<BigInt>("COUNT(DISTINCT NULLIF(vmcp_id, ''))"),
            sql::<Nullable<BigInt>>(
                "CAST(SUM(CASE WHEN method = 'tools/call' THEN calls ELSE 0 END) AS BIGINT)",
            ),
            sql::<Nullable<BigInt>>("CAST(SUM(failed) AS BIGINT)"),
            sql::<Nullable<Double>>("SUM(duration_ms)"),
        ))
        .first(conn)?;
    let total = total.unwrap_or(0);
    let avg = if total > 0 {
        duration.unwrap_or(0.0) / total as f64
    } else {
        0.0
    };
    Ok((
        total,
        clients,
        vmcps,
        tool_calls.unwrap_or(0),
        failed.unwrap_or(0),
        avg,
    ))
}

/// Adds a batch of rows to the daily counts (in the batch's transaction).
fn add_day_counts(conn: &mut DbConnection, rows: &[NewLog]) -> Result<()> {
    // (day, vMCP, client, method) -> (calls, failed, total duration)
    type Key<'a> = (String, &'a str, &'a str, &'a str);
    let mut days: BTreeMap<Key, (i64, i64, f64)> = BTreeMap::new();
    for r in rows {
        let key = (
            day_text(r.timestamp.date()),
            r.vmcp_id.as_deref().unwrap_or(""),
            r.client_id.as_str(),
            r.method.as_str(),
        );
        let e = days.entry(key).or_default();
        e.0 += 1;
        e.1 += i64::from(!r.success);
        e.2 += r.duration_ms;
    }
    const UPSERT: &str = "ON CONFLICT (day, vmcp_id, client_id, method) DO UPDATE SET \
        calls = operation_log_days.calls + excluded.calls, \
        failed = operation_log_days.failed + excluded.failed, \
        duration_ms = operation_log_days.duration_ms + excluded.duration_ms";
    let insert = match conn {
        DbConnection::Postgresql(_) => format!(
            "INSERT INTO operation_log_days (day, vmcp_id, client_id, method, calls, failed, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) {UPSERT}"
        ),
        DbConnection::Sqlite(_) => format!(
            "INSERT INTO operation_log_days (day, vmcp_id, client_id, method, calls, failed, duration_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?) {UPSERT}"
        ),
    };
    for ((day, vmcp, client, method), (calls, failed, duration)) in days {
        diesel::sql_query(&insert)
            .bind::<Text, _>(day)
            .bind::<Text, _>(vmcp)
            .bind::<Text, _>(client)
            .bind::<Text, _>(method)
            .bind::<BigInt, _>(calls)
            .bind::<BigInt, _>(failed)
            .bind::<Double, _>(duration)
            .execute(conn)?;
    }
    Ok(())
}

/// Recomputes the daily counts of every day up to `last` from the rows (after a prune).
fn recount_days_until(conn: &mut DbConnection, last: NaiveDate) -> Result<()> {
    let day = day_text(last);
    let next = last
        .succ_opt()
        .unwrap_or(last)
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists");
    diesel::delete(od::table.filter(od::day.le(day))).execute(conn)?;
    let day_of = match conn {
        DbConnection::Postgresql(_) => "to_char(timestamp, 'YYYY-MM-DD')",
        DbConnection::Sqlite(_) => "substr(timestamp, 1, 10)",
    };
    let placeholder = match conn {
        DbConnection::Postgresql(_) => "$1",
        DbConnection::Sqlite(_) => "?",
    };
    diesel::sql_query(format!(
        "INSERT INTO operation_log_days (day, vmcp_id, client_id, method, calls, failed, duration_ms) \
         SELECT {day_of}, COALESCE(vmcp_id, ''), client_id, method, COUNT(*), \
                SUM(CASE WHEN success THEN 0 ELSE 1 END), SUM(duration_ms) \
         FROM operation_logs WHERE timestamp < {placeholder} GROUP BY 1, 2, 3, 4"
    ))
    .bind::<Timestamp, _>(next)
    .execute(conn)?;
    Ok(())
}

impl Store {
    /// The rows of these ids (another replica's just written, for the live feed), oldest first.
    pub fn logs_by_ids(&self, ids: &[String]) -> Result<Vec<LogEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let rows: Vec<LogRow> = ol::table
            .filter(ol::id.eq_any(ids))
            .order((ol::timestamp.asc(), ol::id.asc()))
            .select(LogRow::as_select())
            .load(&mut *conn)?;
        Ok(rows.into_iter().map(LogRow::into_entry).collect())
    }
}

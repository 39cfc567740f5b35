//! The operation log at scale: `/api/stats` over a million rows, and the writer's sustained rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use vmcp_domain::LogEntry;
use vmcp_gateway::oplog::{LogOptions, OpLog};
use vmcp_store::Store;

use crate::load::{self, Target};
use crate::procs::{Bins, Server};

/// A scratch database: a SQLite file, or a Postgres database dropped afterwards.
pub struct Scratch {
    pub url: String,
    pub label: &'static str,
    sqlite_path: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Scratch {
    pub fn sqlite() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("vmcp.db");
        Ok(Self {
            url: format!("sqlite://{}", path.display()),
            label: "SQLite",
            sqlite_path: Some(path),
            _dir: Some(dir),
            pg: None,
        })
    }

    pub fn postgres(admin_url: &str) -> Result<Self> {
        let name = format!(
            "vmcp_bench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut admin = PgConnection::establish(admin_url)
            .with_context(|| format!("cannot connect to {admin_url}"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            url: url.to_string(),
            label: "Postgres",
            sqlite_path: None,
            _dir: None,
            pg: Some((admin_url.to_string(), name)),
        })
    }

    fn execute(&self, sql: &str) -> Result<()> {
        match &self.sqlite_path {
            Some(p) => SqliteConnection::establish(&p.display().to_string())?.batch_execute(sql)?,
            None => PgConnection::establish(&self.url)?.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Fills the log with `rows` synthetic operations over the last 29 days (inside the default
    /// retention): 20 vMCPs, 50 clients, 70% tool calls, 1% failures; and their daily counts,
    /// as the log writer keeps them.
    pub fn fill(&self, rows: usize) -> Result<()> {
        Store::open(&self.url)?; // migrates
        let base = (chrono::Utc::now() - chrono::Duration::days(29)).format("%Y-%m-%d %H:%M:%S");
        let last = rows.saturating_sub(1);
        let step = (29 * 24 * 3600) as f64 / rows.max(1) as f64;
        let columns = "id, timestamp, client_id, vmcp_id, method, mcp_server_id, target, arguments, \
             result, result_truncated, active_config_snapshot, duration_ms, success, error, \
             parent_log_id, source";
        let sql = if self.sqlite_path.is_some() {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
                 INSERT INTO operation_logs ({columns})
                 SELECT printf('log_%016x', i),
                   strftime('%Y-%m-%d %H:%M:%f', '{base}', '+' || CAST(i * {step} AS INTEGER) || ' seconds'),
                   'client_' || (i % 50), printf('vmcp_%016x', i % 20),
                   CASE i % 10 WHEN 0 THEN 'tools/list' WHEN 1 THEN 'resources/read' WHEN 2 THEN 'prompts/get' ELSE 'tools/call' END,
                   printf('server_%016x', i % 40), 'files.read_file', '{{\"path\":\"/tmp/a.txt\"}}',
                   '{{\"content\":[{{\"type\":\"text\",\"text\":\"hello\"}}]}}', 0, '{{\"api_key\":\"***\"}}',
                   (i % 100) / 10.0, i % 97 <> 0, CASE WHEN i % 97 = 0 THEN 'upstream failed' END,
                   NULL, 'mcp'
                 FROM n;
                 INSERT INTO operation_log_days
                 SELECT substr(timestamp, 1, 10), COALESCE(vmcp_id, ''), client_id, method, COUNT(*),
                        SUM(CASE WHEN success THEN 0 ELSE 1 END), SUM(duration_ms)
                 FROM operation_logs GROUP BY 1, 2, 3, 4;
                 ANALYZE;"
            )
        } else {
            format!(
                "INSERT INTO operation_logs ({columns})
                 SELECT 'log_' || lpad(to_hex(i), 16, '0'),
                   timestamp '{base}' + make_interval(secs => floor(i * {step})),
                   'client_' || (i % 50), 'vmcp_' || lpad(to_hex(i % 20), 16, '0'),
                   CASE i % 10 WHEN 0 THEN 'tools/list' WHEN 1 THEN 'resources/read' WHEN 2 THEN 'prompts/get' ELSE 'tools/call' END,
                   'server_' || lpad(to_hex(i % 40), 16, '0'), 'files.read_file', '{{\"path\":\"/tmp/a.txt\"}}',
                   '{{\"content\":[{{\"type\":\"text\",\"text\":\"hello\"}}]}}', FALSE, '{{\"api_key\":\"***\"}}',
                   (i % 100) / 10.0, i % 97 <> 0, CASE WHEN i % 97 = 0 THEN 'upstream failed' END,
                   NULL, 'mcp'
                 FROM generate_series(0, {last}) AS i;
                 INSERT INTO operation_log_days
                 SELECT to_char(timestamp, 'YYYY-MM-DD'), COALESCE(vmcp_id, ''), client_id, method,
                        COUNT(*), SUM(CASE WHEN success THEN 0 ELSE 1 END), SUM(duration_ms)
                 FROM operation_logs GROUP BY 1, 2, 3, 4;
                 ANALYZE;"
            )
        };
        if std::env::var_os("VMCP_BENCH_SHOW_SQL").is_some() {
            eprintln!("{sql}");
        }
        self.execute(&sql)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(mut c) = PgConnection::establish(admin)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The `/api/stats` queries measured, with a label.
pub const QUERIES: &[&str] = &[
    "no filter",
    "vmcp_id",
    "client_id + method",
    "one day",
    "6 hours (rows)",
    "page 1000",
];

fn query(label: &str) -> String {
    match label {
        "vmcp_id" => "?vmcp_id=vmcp_0000000000000003".into(),
        "client_id + method" => "?client_id=client_7&method=tools/call".into(),
        "one day" => {
            let day = (chrono::Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%d");
            format!("?start_date={day}&end_date={day}")
        }
        "6 hours (rows)" => {
            // Not on day boundaries: answered from the rows themselves, not the daily counts.
            let day = (chrono::Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%d");
            format!("?start_date={day}T06:00:00Z&end_date={day}T12:00:00Z")
        }
        "page 1000" => "?page=1000".into(),
        _ => String::new(),
    }
}

/// Latency of each query (p50, p99 in ms) over `rows` rows.
pub async fn stats_latency(
    bins: &Bins,
    db: &Scratch,
    rows: usize,
    rounds: usize,
) -> Result<Vec<(f64, f64)>> {
    let server = Server::start(bins, &db.url).await?;
    let mut out = Vec::new();
    for label in QUERIES {
        let query = query(label);
        // The answer is what it should be, before it is timed.
        let body = server
            .api(reqwest::Method::GET, &format!("/api/stats{query}"), None)
            .await?;
        let total = body["stats"]["total_logs"].as_u64().unwrap_or(0);
        let page = body["logs"].as_array().map(Vec::len).unwrap_or(0);
        anyhow::ensure!(
            page == 50,
            "{label}: a page of {page} rows: {}",
            body["pagination"]
        );
        anyhow::ensure!(
            !query.is_empty() || total == rows as u64,
            "{label}: {total} rows instead of {rows}"
        );
        let target = Arc::new(Target::RestGet {
            http: server.http.clone(),
            url: format!("{}/api/stats{query}", server.base),
        });
        let s = load::run(target, 1, rounds, 2).await?;
        out.push((s.p50_ms(), s.p99_ms()));
    }
    server.stop().await?;
    Ok(out)
}

fn entry(i: usize) -> LogEntry {
    LogEntry {
        log_id: format!("log_{i:016x}"),
        client_id: format!("client_{}", i % 50),
        vmcp_id: Some(format!("vmcp_{:016x}", i % 20)),
        method: "tools/call".into(),
        mcp_server_id: Some(format!("server_{:016x}", i % 40)),
        target: Some("files.read_file".into()),
        arguments: Some(serde_json::json!({"path": "/tmp/a.txt"})),
        result: Some(serde_json::json!({"content": [{"type": "text", "text": "hello"}]})),
        result_truncated: false,
        active_config_snapshot: Some(serde_json::json!({"api_key": "***"})),
        timestamp: vmcp_domain::time::now(),
        duration_ms: 1.5,
        success: true,
        error: None,
        parent_log_id: None,
        source: "mcp".into(),
    }
}

/// Rows per second the log writer sustains when fed as fast as its queue takes them.
pub fn writer_rate(db: &Scratch, rows: usize) -> Result<f64> {
    let store = Store::open(&db.url)?;
    let (events, _) = tokio::sync::broadcast::channel(16);
    let options = LogOptions {
        max_age: None,
        max_rows: None,
        ..LogOptions::default()
    };
    let high_water = options.queue - options.batch;
    let log = OpLog::start(store, events, options);
    let started = Instant::now();
    for i in 0..rows {
        while log.depth() >= high_water {
            std::thread::sleep(Duration::from_micros(200));
        }
        log.record(entry(i));
    }
    while (log.written() as usize) < rows && started.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(log.dropped() == 0, "{} rows dropped", log.dropped());
    anyhow::ensure!(
        log.written() as usize == rows,
        "only {} rows written",
        log.written()
    );
    log.flush_and_stop(Duration::from_secs(10));
    Ok(rows as f64 / elapsed.as_secs_f64())
}

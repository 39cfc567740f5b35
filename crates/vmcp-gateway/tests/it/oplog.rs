//! The operation log writer on every backend: rows a database cannot store as given, and rows it
//! refuses, cost nobody else their rows.

use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;
use vmcp_domain::{LogEntry, StatsQuery};
use vmcp_gateway::oplog::{LogOptions, OpLog};
use vmcp_store::testing::TestDatabase;
use vmcp_store::{NewLog, Store};

fn entry(i: usize, client: &str) -> LogEntry {
    LogEntry {
        log_id: format!("log_{i:016x}"),
        client_id: client.to_string(),
        vmcp_id: Some("vmcp_0123456789abcdef".into()),
        method: "tools/call".into(),
        mcp_server_id: Some("server_0123456789abcdef".into()),
        target: Some("fs.read".into()),
        arguments: Some(json!({"path": "a\u{0}b"})),
        result: None,
        result_truncated: false,
        active_config_snapshot: None,
        timestamp: chrono::Utc::now(),
        duration_ms: 1.0,
        success: true,
        error: None,
        parent_log_id: None,
        source: "mcp".into(),
    }
}

/// Every queued row, through a writer that batches them all together.
fn write_all(store: &Store, entries: Vec<LogEntry>) -> OpLog {
    let (events, _) = broadcast::channel(16);
    let oplog = OpLog::start(
        store.clone(),
        events,
        LogOptions {
            queue: 1000,
            batch: 500,
            max_age: None,
            max_rows: None,
        },
    );
    for e in entries {
        oplog.record(e);
    }
    oplog.flush_and_stop(Duration::from_secs(30));
    oplog
}

fn rows(store: &Store, filter: serde_json::Value) -> Vec<LogEntry> {
    let f = serde_json::from_value::<StatsQuery>(filter)
        .unwrap()
        .validate()
        .unwrap();
    store.log_stats(&f).unwrap().1
}

#[test]
fn a_nul_in_logged_text_costs_no_row() {
    for db in TestDatabase::all() {
        let store = db.open();
        let mut entries: Vec<LogEntry> = (0..20).map(|i| entry(i, "good-client")).collect();
        let mut evil = entry(20, "evil\u{0}client");
        evil.target = Some("tool\u{0}name".into());
        evil.method = "tools/call\u{0}".into();
        evil.error = Some("upstream said \u{0}".into());
        evil.success = false;
        entries.insert(10, evil);
        let oplog = write_all(&store, entries);
        assert_eq!(oplog.dropped(), 0, "{:?}", db.backend());
        assert_eq!(oplog.written(), 21, "{:?}", db.backend());
        let all = rows(&store, json!({"page_size": "100"}));
        assert_eq!(all.len(), 21, "{:?}", db.backend());
        let evil = all
            .iter()
            .find(|e| e.log_id == format!("log_{:016x}", 20))
            .unwrap();
        assert_eq!(evil.client_id, "evil\u{FFFD}client");
        assert_eq!(evil.target.as_deref(), Some("tool\u{FFFD}name"));
        assert_eq!(evil.error.as_deref(), Some("upstream said \u{FFFD}"));
        // JSON keeps the NUL itself (escaped in the stored text).
        assert_eq!(evil.arguments, Some(json!({"path": "a\u{0}b"})));
        // A filter names the client as it was sent.
        let found = rows(&store, json!({"client_id": "evil\u{0}client"}));
        assert_eq!(found.len(), 1, "{:?}", db.backend());
    }
}

#[test]
fn a_refused_row_is_isolated_and_the_others_are_written() {
    for db in TestDatabase::all() {
        let store = db.open();
        let mut entries: Vec<LogEntry> = (0..50).map(|i| entry(i, "someone")).collect();
        // A row neither database stores: a time before Postgres's first timestamp, a duration
        // that SQLite stores as NULL (in a NOT NULL column).
        entries[17].timestamp = chrono::DateTime::from_naive_utc_and_offset(
            chrono::NaiveDate::from_ymd_opt(-10_000, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            chrono::Utc,
        );
        entries[17].duration_ms = f64::NAN;
        let oplog = write_all(&store, entries);
        assert_eq!(oplog.dropped(), 1, "{:?}", db.backend());
        assert_eq!(oplog.written(), 49, "{:?}", db.backend());
        let all = rows(&store, json!({"page_size": "100"}));
        assert_eq!(all.len(), 49, "{:?}", db.backend());
        assert!(!all.iter().any(|e| e.log_id == format!("log_{:016x}", 17)));
        // The daily counts agree with the rows (no half-written batch).
        assert_eq!(figures(&store).total, 49, "{:?}", db.backend());
    }
}

#[test]
fn a_row_already_stored_counts_as_written() {
    for db in TestDatabase::all() {
        let store = db.open();
        // As if an attempt whose answer was lost had written this row.
        store
            .insert_logs(&[NewLog::from_entry(&entry(7, "someone"))])
            .unwrap();
        let entries: Vec<LogEntry> = (0..50).map(|i| entry(i, "someone")).collect();
        let oplog = write_all(&store, entries);
        assert_eq!(oplog.dropped(), 0, "{:?}", db.backend());
        assert_eq!(oplog.written(), 50, "{:?}", db.backend());
        assert_eq!(rows(&store, json!({"page_size": "100"})).len(), 50);
        assert_eq!(figures(&store).total, 50, "{:?}", db.backend());
    }
}

fn figures(store: &Store) -> vmcp_store::LogFigures {
    let all = serde_json::from_value::<StatsQuery>(json!({}))
        .unwrap()
        .validate()
        .unwrap();
    store.log_stats(&all).unwrap().0
}

//! The operation log on every backend: filters and their combinations, pages, figures against
//! hand-computed values, retention.

use chrono::{TimeZone, Utc};
use serde_json::json;
use vmcp_domain::{LogEntry, StatsQuery};
use vmcp_store::NewLog;

use crate::each_db;

/// 30 rows: minute i of 2024-01-15 10:00, clients c0..c2 (i % 3), vMCPs v0/v1 (i % 2), methods
/// cycling tools/call, tools/list, resources/read (i % 3 again shifted), every 7th failed.
fn rows() -> Vec<LogEntry> {
    (0..30)
        .map(|i: u32| {
            let method = ["tools/call", "tools/list", "resources/read"][((i / 3) % 3) as usize];
            LogEntry {
                log_id: format!("log_{i:016x}"),
                client_id: format!("c{}", i % 3),
                vmcp_id: Some(format!("v{}", i % 2)),
                method: method.to_string(),
                mcp_server_id: Some("server_1".into()),
                target: Some("t".into()),
                arguments: Some(json!({"i": i})),
                result: Some(json!({"ok": i})),
                result_truncated: false,
                active_config_snapshot: Some(json!({"api_key": "***"})),
                timestamp: Utc.with_ymd_and_hms(2024, 1, 15, 10, i, 0).unwrap(),
                duration_ms: f64::from(i),
                success: !i.is_multiple_of(7),
                error: i.is_multiple_of(7).then(|| "boom".to_string()),
                parent_log_id: None,
                source: "rest".into(),
            }
        })
        .collect()
}

fn q(v: serde_json::Value) -> vmcp_domain::StatsFilter {
    serde_json::from_value::<StatsQuery>(v)
        .unwrap()
        .validate()
        .unwrap()
}

/// Which logs a filter must keep.
type Matcher = Box<dyn Fn(&LogEntry) -> bool>;

#[test]
fn filters_pages_and_figures() {
    each_db(|store, _| {
        let all = rows();
        let written = store
            .insert_logs(&all.iter().map(NewLog::from_entry).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(written, 30);
        // Hand-computed figures for a filter, by brute force over the same rows.
        let expect = |pred: &dyn Fn(&LogEntry) -> bool| {
            let m: Vec<&LogEntry> = all.iter().filter(|e| pred(e)).collect();
            let clients: std::collections::BTreeSet<_> = m.iter().map(|e| &e.client_id).collect();
            let vmcps: std::collections::BTreeSet<_> = m.iter().map(|e| &e.vmcp_id).collect();
            (
                m.len() as u64,
                clients.len() as u64,
                vmcps.len() as u64,
                m.iter().filter(|e| e.method == "tools/call").count() as u64,
                m.iter().filter(|e| !e.success).count() as u64,
            )
        };
        let cases: Vec<(serde_json::Value, Matcher)> = vec![
            (json!({}), Box::new(|_| true)),
            (
                json!({"vmcp_id": "v1"}),
                Box::new(|e| e.vmcp_id.as_deref() == Some("v1")),
            ),
            (
                json!({"client_id": "c2"}),
                Box::new(|e| e.client_id == "c2"),
            ),
            (
                json!({"method": "tools/call"}),
                Box::new(|e| e.method == "tools/call"),
            ),
            (
                json!({"start_date": "2024-01-15T10:10:00Z", "end_date": "2024-01-15T10:20:00Z"}),
                Box::new(|e| {
                    e.timestamp.timestamp() % 3600 >= 600 && e.timestamp.timestamp() % 3600 < 1200
                }),
            ),
            (
                json!({"vmcp_id": "v0", "client_id": "c1", "method": "tools/call"}),
                Box::new(|e| {
                    e.vmcp_id.as_deref() == Some("v0")
                        && e.client_id == "c1"
                        && e.method == "tools/call"
                }),
            ),
            (json!({"end_date": "2024-01-14"}), Box::new(|_| false)),
            (
                json!({"start_date": "2024-01-15", "end_date": "2024-01-15"}),
                Box::new(|_| true),
            ),
        ];
        for (query, pred) in &cases {
            let (fig, page) = store.log_stats(&q(query.clone())).unwrap();
            let (total, clients, vmcps, calls, failed) = expect(pred.as_ref());
            assert_eq!(
                (
                    fig.total,
                    fig.clients,
                    fig.vmcps,
                    fig.tool_calls,
                    fig.failed
                ),
                (total, clients, vmcps, calls, failed),
                "{query}"
            );
            assert_eq!(page.len() as u64, total.min(50), "{query}");
            // Newest first.
            assert!(
                page.windows(2).all(|w| w[0].timestamp >= w[1].timestamp),
                "{query}"
            );
        }
        // Average duration over everything: (0 + ... + 29) / 30.
        let (fig, _) = store.log_stats(&q(json!({}))).unwrap();
        assert!((fig.avg_duration_ms - 14.5).abs() < 1e-9);

        // Pages: 30 rows by 7: 7, 7, 7, 7, 2, then nothing; no row twice, none missing.
        let mut seen = Vec::new();
        for page in 1..=6 {
            let (_, rows) = store
                .log_stats(&q(json!({"page": page, "page_size": 7})))
                .unwrap();
            assert_eq!(rows.len(), [7, 7, 7, 7, 2, 0][page - 1]);
            seen.extend(rows.into_iter().map(|r| r.log_id));
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 30);
        assert_eq!(seen[0], "log_000000000000001d", "the newest first");

        // The row comes back as written.
        let (_, rows) = store
            .log_stats(&q(json!({"client_id": "c0", "page_size": 1})))
            .unwrap();
        assert_eq!(rows[0], all[27]);

        // Retention: rows before 10:20, then all but the newest 5.
        let before = Utc
            .with_ymd_and_hms(2024, 1, 15, 10, 20, 0)
            .unwrap()
            .naive_utc();
        assert_eq!(store.prune_logs(Some(before), None).unwrap(), 20);
        assert_eq!(store.prune_logs(None, Some(5)).unwrap(), 5);
        let (fig, rows) = store.log_stats(&q(json!({}))).unwrap();
        assert_eq!(fig.total, 5);
        assert_eq!(rows[4].log_id, "log_0000000000000019");
    });
}

#[test]
fn bad_queries_are_refused_with_the_field_named() {
    for (query, field) in [
        (json!({"start_date": "yesterday"}), "start_date"),
        (json!({"end_date": "2024-13-01"}), "end_date"),
        (json!({"page": 0}), "page"),
        (json!({"page_size": 101}), "page_size"),
        (json!({"page_size": 0}), "page_size"),
        (
            json!({"start_date": "2024-02-01", "end_date": "2024-01-01"}),
            "end_date",
        ),
    ] {
        let e = serde_json::from_value::<StatsQuery>(query.clone())
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().starts_with(field), "{query}: {e}");
    }
}

/// Day-aligned queries are answered from the daily counts, others from the rows: both must give
/// the same figures, across batches, days and prunes.
#[test]
fn daily_counts_agree_with_the_rows() {
    each_db(|store, _| {
        // 60 rows over three days (hours 1..20 of each), written in three batches.
        let all: Vec<LogEntry> = (0..60u32)
            .map(|i| {
                let mut e = rows()[(i % 30) as usize].clone();
                e.log_id = format!("log_{i:016x}");
                e.timestamp = Utc
                    .with_ymd_and_hms(2024, 1, 14 + i / 20, 1 + i % 20, 0, 0)
                    .unwrap();
                e.vmcp_id = (i % 5 != 0).then(|| format!("v{}", i % 2));
                e
            })
            .collect();
        for chunk in all.chunks(25) {
            store
                .insert_logs(&chunk.iter().map(NewLog::from_entry).collect::<Vec<_>>())
                .unwrap();
        }
        let same = |aligned: serde_json::Value, shifted: serde_json::Value| {
            let (a, _) = store.log_stats(&q(aligned.clone())).unwrap();
            let (b, _) = store.log_stats(&q(shifted)).unwrap();
            assert_eq!(a, b, "{aligned}");
            a
        };
        for extra in [
            json!({}),
            json!({"vmcp_id": "v1"}),
            json!({"client_id": "c2", "method": "tools/call"}),
        ] {
            let with = |mut v: serde_json::Value, s: &str, e: &str| {
                v["start_date"] = json!(s);
                v["end_date"] = json!(e);
                v
            };
            let fig = same(
                with(extra.clone(), "2024-01-15", "2024-01-16"),
                with(
                    extra.clone(),
                    "2024-01-15T00:00:01Z",
                    "2024-01-16T23:59:59Z",
                ),
            );
            assert!(fig.total > 0, "{extra}");
            same(
                with(extra.clone(), "2024-01-01", "2024-02-01"),
                with(
                    extra.clone(),
                    "2024-01-01T00:00:01Z",
                    "2024-02-01T23:59:59Z",
                ),
            );
        }
        let (fig, _) = store.log_stats(&q(json!({}))).unwrap();
        assert_eq!(fig.total, 60);
        assert_eq!(fig.vmcps, 2, "operations outside a vMCP are not a vMCP");
        // A prune in the middle of a day recounts that day.
        let before = Utc
            .with_ymd_and_hms(2024, 1, 15, 10, 30, 0)
            .unwrap()
            .naive_utc();
        assert_eq!(store.prune_logs(Some(before), None).unwrap(), 30);
        let fig = same(
            json!({"start_date": "2024-01-15"}),
            json!({"start_date": "2024-01-15T00:00:01Z"}),
        );
        assert_eq!(fig.total, 30);
        assert_eq!(store.prune_logs(None, Some(12)).unwrap(), 18);
        let (fig, _) = store.log_stats(&q(json!({}))).unwrap();
        assert_eq!(fig.total, 12);
    });
}

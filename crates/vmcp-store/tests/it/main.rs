//! The persistence suite: every test body runs on SQLite, and on Postgres when
//! `VMCP_TEST_DATABASE_URL` is set.

mod cluster;
mod logs;
mod oauth;
mod races;

use serde_json::json;
use vmcp_domain::{McpServerInput, VmcpImport, VmcpInput};
use vmcp_store::testing::TestDatabase;
use vmcp_store::{Store, StoreError};

fn each_db(test: impl Fn(&Store, &TestDatabase)) {
    for db in TestDatabase::all() {
        let store = db.open();
        test(&store, &db);
    }
}

fn server_input(name: &str) -> McpServerInput {
    serde_json::from_value(json!({
        "name": name, "description": format!("{name} server"), "transport_type": "stdio",
        "config": {"command": "npx", "args": ["-y", format!("@example/{name}")], "env": {"A": "1"}}
    }))
    .unwrap()
}

fn vmcp_input(v: serde_json::Value) -> VmcpInput {
    serde_json::from_value(v).unwrap()
}

fn create_vmcp(store: &Store, v: serde_json::Value) -> Result<vmcp_domain::Vmcp, StoreError> {
    let input = vmcp_input(v);
    let members = input.validate().unwrap();
    store.create_vmcp(&input, &members)
}

#[test]
fn both_migration_folders_hold_the_same_versions() {
    let (sqlite, postgres) = vmcp_store::migration_versions();
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
    // And on disk: the same folder names, each with up.sql and down.sql.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let list = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        for m in &v {
            for f in ["up.sql", "down.sql"] {
                assert!(
                    root.join(d).join(m).join(f).is_file(),
                    "{d}/{m}/{f} missing"
                );
            }
        }
        v
    };
    assert_eq!(list("sqlite"), list("postgres"));
}

#[test]
fn servers_round_trip() {
    each_db(|store, _| {
        let created = store.create_server(&server_input("filesystem")).unwrap();
        assert!(created.server_id.starts_with("server_"));
        assert_eq!(created.name, "filesystem");
        assert_eq!(created.description, "filesystem server");
        assert_eq!(created.config.args, vec!["-y", "@example/filesystem"]);
        assert_eq!(created.created_at, created.updated_at);

        let got = store.get_server(&created.server_id).unwrap();
        assert_eq!(
            got, created,
            "timestamps and config survive the database unchanged"
        );
        assert_eq!(
            store.get_server_by_name("filesystem").unwrap().unwrap(),
            created
        );
        store.create_server(&server_input("github")).unwrap();
        let names: Vec<String> = store
            .list_servers()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["filesystem", "github"]);

        let mut changed = server_input("fs");
        changed.description = None;
        let updated = store.update_server(&created.server_id, &changed).unwrap();
        assert_eq!(updated.name, "fs");
        assert_eq!(updated.description, "", "an omitted description is reset");
        assert_eq!(updated.created_at, created.created_at);
        assert!(updated.updated_at >= created.updated_at);
    });
}

#[test]
fn server_names_are_unique() {
    each_db(|store, _| {
        let a = store.create_server(&server_input("a")).unwrap();
        store.create_server(&server_input("b")).unwrap();
        let err = store.create_server(&server_input("a")).unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("\"a\" already exists")),
            "{err}"
        );
        let err = store
            .update_server(&a.server_id, &server_input("b"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert_eq!(
            store.get_server(&a.server_id).unwrap().name,
            "a",
            "unchanged"
        );
        assert_eq!(store.list_servers().unwrap().len(), 2);
    });
}

#[test]
fn unknown_ids_are_not_found() {
    each_db(|store, _| {
        for err in [
            store.get_server("server_nope").unwrap_err(),
            store
                .update_server("server_nope", &server_input("x"))
                .unwrap_err(),
            store.delete_server("server_nope").unwrap_err(),
            store.get_vmcp("vmcp_nope").unwrap_err(),
            store.delete_vmcp("vmcp_nope").unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        }
    });
}

#[test]
fn vmcps_keep_members_in_priority_order() {
    each_db(|store, _| {
        let a = store.create_server(&server_input("a")).unwrap();
        let b = store.create_server(&server_input("b")).unwrap();
        let c = store.create_server(&server_input("c")).unwrap();
        let v = create_vmcp(
            store,
            json!({
                "name": "Development vMCP", "description": "dev",
                "mcp_servers": [
                    {"server_id": a.server_id, "priority": 5},
                    {"server_id": b.server_id, "priority": 1},
                    {"server_id": c.server_id, "priority": 5}
                ],
                "active_config": {"api_key": "k", "nested": {"x": [1, 2]}}
            }),
        )
        .unwrap();
        let order: Vec<(&str, i32)> = v
            .mcp_servers
            .iter()
            .map(|m| (m.name.as_str(), m.priority))
            .collect();
        assert_eq!(
            order,
            [("b", 1), ("a", 5), ("c", 5)],
            "ties keep list order"
        );
        assert_eq!(v.active_config["nested"], json!({"x": [1, 2]}));
        assert_eq!(store.get_vmcp(&v.vmcp_id).unwrap(), v);
        assert_eq!(store.list_vmcps().unwrap(), vec![v.clone()]);
        assert_eq!(
            store.find_vmcp_id_by_name("Development vMCP").unwrap(),
            Some(v.vmcp_id.clone())
        );

        // PUT replaces everything; omitted fields reset.
        let input =
            vmcp_input(json!({"name": "renamed", "mcp_servers": [{"server_id": c.server_id}]}));
        let members = input.validate().unwrap();
        let u = store.update_vmcp(&v.vmcp_id, &input, &members).unwrap();
        assert_eq!(u.name, "renamed");
        assert_eq!(u.description, "");
        assert_eq!(u.active_config, serde_json::Map::new());
        assert_eq!(u.mcp_servers.len(), 1);
        assert_eq!(u.mcp_servers[0].priority, 1);
        assert_eq!(u.created_at, v.created_at);
    });
}

#[test]
fn vmcp_with_unknown_server_is_refused_and_nothing_is_written() {
    each_db(|store, _| {
        let a = store.create_server(&server_input("a")).unwrap();
        let err = create_vmcp(
            store,
            json!({"name": "v", "mcp_servers": [{"server_id": a.server_id}, {"server_id": "server_missing"}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mcp_servers[1].server_id: no MCP server with id server_missing exists (see GET /api/mcp-servers)"
        );
        assert!(store.list_vmcps().unwrap().is_empty());

        let v = create_vmcp(
            store,
            json!({"name": "v", "mcp_servers": [{"server_id": a.server_id}]}),
        )
        .unwrap();
        let input =
            vmcp_input(json!({"name": "v2", "mcp_servers": [{"server_id": "server_missing"}]}));
        let members = input.validate().unwrap();
        assert!(matches!(
            store.update_vmcp(&v.vmcp_id, &input, &members).unwrap_err(),
            StoreError::Invalid(_)
        ));
        assert_eq!(
            store.get_vmcp(&v.vmcp_id).unwrap(),
            v,
            "update left nothing half-written"
        );
        assert!(matches!(
            create_vmcp(store, json!({"name": "v"})).unwrap_err(),
            StoreError::Conflict(_)
        ));
    });
}

#[test]
fn a_server_in_use_cannot_be_deleted() {
    each_db(|store, _| {
        let a = store.create_server(&server_input("a")).unwrap();
        let v1 = create_vmcp(
            store,
            json!({"name": "one", "mcp_servers": [{"server_id": a.server_id}]}),
        )
        .unwrap();
        create_vmcp(
            store,
            json!({"name": "two", "mcp_servers": [{"server_id": a.server_id}]}),
        )
        .unwrap();
        let err = store.delete_server(&a.server_id).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MCP server a is used by vMCPs \"one\", \"two\": remove it from them first"
        );
        assert_eq!(store.get_vmcp(&v1.vmcp_id).unwrap(), v1);
        assert!(store.get_server(&a.server_id).is_ok());

        let all = store.list_vmcps().unwrap();
        for v in all {
            store.delete_vmcp(&v.vmcp_id).unwrap();
        }
        store.delete_server(&a.server_id).unwrap();
        assert!(store.list_servers().unwrap().is_empty());
    });
}

#[test]
fn import_reuses_creates_and_conflicts_atomically() {
    each_db(|store, _| {
        let existing = store.create_server(&server_input("fs")).unwrap();
        let doc: VmcpImport = serde_json::from_value(json!({
            "vmcp_export_version": 1,
            "name": "imported",
            "active_config": {"k": "v"},
            "mcp_servers": [
                {"name": "fs", "description": "fs server", "transport_type": "stdio", "priority": 2,
                 "config": {"command": "npx", "args": ["-y", "@example/fs"], "env": {"A": "1"}}},
                {"name": "web", "transport_type": "streamable_http", "priority": 1,
                 "config": {"url": "http://127.0.0.1:9/mcp"}}
            ]
        }))
        .unwrap();
        let plan = doc.validate().unwrap();
        let v = store.import_vmcp(&doc, &plan).unwrap();
        assert_eq!(v.mcp_servers[0].name, "web");
        assert_eq!(
            v.mcp_servers[1].server_id, existing.server_id,
            "identical definition reused"
        );
        assert_eq!(store.list_servers().unwrap().len(), 2);

        // A clash on a later entry rolls back the servers created by earlier ones.
        let doc: VmcpImport = serde_json::from_value(json!({
            "name": "second",
            "mcp_servers": [
                {"name": "new-one", "transport_type": "stdio", "config": {"command": "x"}},
                {"name": "fs", "transport_type": "stdio", "config": {"command": "other"}}
            ]
        }))
        .unwrap();
        let plan = doc.validate().unwrap();
        let err = store.import_vmcp(&doc, &plan).unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("different definition")),
            "{err}"
        );
        assert!(store.get_server_by_name("new-one").unwrap().is_none());
        assert_eq!(store.list_vmcps().unwrap().len(), 1);

        // Two entries that resolve to the same server.
        let doc: VmcpImport = serde_json::from_value(json!({
            "name": "third",
            "mcp_servers": [{"server_id": existing.server_id}, {"name": "fs"}]
        }))
        .unwrap();
        let plan = doc.validate().unwrap();
        assert!(matches!(
            store.import_vmcp(&doc, &plan).unwrap_err(),
            StoreError::Invalid(_)
        ));
    });
}

#[test]
fn data_survives_reopening_and_migrations_are_idempotent() {
    each_db(|store, db| {
        let s = store.create_server(&server_input("keep")).unwrap();
        let again = Store::open(db.url()).unwrap();
        assert_eq!(again.get_server(&s.server_id).unwrap(), s);
        again.ping().unwrap();
        assert_eq!(again.backend(), db.backend());
    });
}

#[test]
fn a_refused_postgres_connection_says_so() {
    let err = Store::open("postgres://postgres@127.0.0.1:1/test")
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot connect to postgres://postgres@127.0.0.1:1/test"),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[test]
fn a_sqlite_file_is_created_with_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/vmcp.db");
    let store = Store::open(&format!("sqlite://{}", path.display())).unwrap();
    assert!(path.is_file());
    assert!(store.list_servers().unwrap().is_empty());
}

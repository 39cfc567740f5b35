//! What replicas share through the database.

use std::time::Duration;

use vmcp_store::Store;
use vmcp_store::cluster::{CONFIG_CHANNEL, LOGS_CHANNEL, PRUNE_JOB};
use vmcp_store::testing::TestDatabase;

use crate::server_input;

#[test]
fn a_job_runs_on_one_replica_at_a_time() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let (a, b) = (db.open(), db.open());
    let (holding, held) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        a.once(PRUNE_JOB, |_| {
            holding.send(()).unwrap();
            released.recv().unwrap();
            Ok(1)
        })
        .unwrap()
    });
    held.recv().unwrap();
    // While A runs it, B skips the round (and prune_logs, which takes the same lock, too).
    assert_eq!(b.once(PRUNE_JOB, |_| Ok(2)).unwrap(), None);
    assert_eq!(b.prune_logs(None, Some(0)).unwrap(), 0);
    release.send(()).unwrap();
    assert_eq!(first.join().unwrap(), Some(1));
    // Then B's turn comes.
    assert_eq!(b.once(PRUNE_JOB, |_| Ok(2)).unwrap(), Some(2));
}

#[test]
fn every_change_of_a_server_or_vmcp_is_announced_with_a_revision() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let store: Store = db.open();
    let mut listener = store.listen().unwrap().expect("a listener on Postgres");
    let server = store.create_server(&server_input("fs")).unwrap();
    // Connection bookkeeping is not a change.
    store
        .record_connection(&server.server_id, Some(vmcp_domain::time::now()), None)
        .unwrap();
    store
        .record_connection(&server.server_id, None, Some("refused"))
        .unwrap();
    store.set_auto_connect(&server.server_id, true).unwrap();
    store.delete_server(&server.server_id).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let notes = listener.poll().unwrap();
    let changes: Vec<serde_json::Value> = notes
        .iter()
        .filter(|n| n.channel == CONFIG_CHANNEL)
        .map(|n| serde_json::from_str(&n.payload).unwrap())
        .collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    let revisions: Vec<i64> = changes
        .iter()
        .map(|c| c["revision"].as_i64().unwrap())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert!(
        changes
            .iter()
            .all(|c| c["kind"] == "server" && c["id"] == server.server_id.as_str())
    );
    assert_eq!(store.config_revision().unwrap(), *revisions.last().unwrap());
    assert!(notes.iter().all(|n| n.channel != LOGS_CHANNEL));
}

#[test]
fn sqlite_has_no_listener_and_no_revisions() {
    let db = TestDatabase::sqlite();
    let store = db.open();
    assert!(store.listen().unwrap().is_none());
    assert_eq!(store.config_revision().unwrap(), 0);
    let _lock = store.lock_single_node().unwrap().expect("a lock on SQLite");
    let other = db.open();
    let e = other.lock_single_node().unwrap_err().to_string();
    assert!(e.contains("SQLite is single-node"), "{e}");
}

//! Writes that race each other, as two vMCP processes sharing one database make them: every
//! outcome is a success, not found or a conflict (never a database error), and exactly one of
//! two deletes succeeds.

use std::sync::Barrier;

use serde_json::json;
use vmcp_domain::VmcpInput;
use vmcp_store::StoreError;

use crate::{create_vmcp, each_db, server_input, vmcp_input};

/// Whether a racing write ended as one may end: done, not found, or a conflict.
fn acceptable<T>(r: &Result<T, StoreError>) -> bool {
    matches!(
        r,
        Ok(_)
            | Err(StoreError::NotFound { .. } | StoreError::Conflict(_) | StoreError::InUse { .. })
            | Err(StoreError::Invalid(_))
    )
}

fn describe<T>(r: &Result<T, StoreError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn update_and_two_deletes_of_one_vmcp() {
    each_db(|store, db| {
        let server = store.create_server(&server_input("fs")).unwrap();
        for i in 0..40 {
            let vmcp = create_vmcp(store, json!({"name": format!("v{i}")})).unwrap();
            let input: VmcpInput = vmcp_input(json!({
                "name": format!("v{i}"), "description": "changed",
                "mcp_servers": [{"server_id": server.server_id}]
            }));
            let members = input.validate().unwrap();
            let barrier = Barrier::new(3);
            let (update, d1, d2) = std::thread::scope(|s| {
                let update = s.spawn(|| {
                    barrier.wait();
                    store.update_vmcp(&vmcp.vmcp_id, &input, &members)
                });
                let d1 = s.spawn(|| {
                    barrier.wait();
                    store.delete_vmcp(&vmcp.vmcp_id)
                });
                let d2 = s.spawn(|| {
                    barrier.wait();
                    store.delete_vmcp(&vmcp.vmcp_id)
                });
                (
                    update.join().unwrap(),
                    d1.join().unwrap(),
                    d2.join().unwrap(),
                )
            });
            let backend = db.backend();
            for r in [describe(&update), describe(&d1), describe(&d2)] {
                assert!(!r.contains("Database"), "{backend:?} iteration {i}: {r}");
            }
            assert!(acceptable(&update), "{backend:?}: {}", describe(&update));
            assert_eq!(
                usize::from(d1.is_ok()) + usize::from(d2.is_ok()),
                1,
                "{backend:?} iteration {i}: {} / {}",
                describe(&d1),
                describe(&d2)
            );
            assert!(matches!(
                store.get_vmcp(&vmcp.vmcp_id),
                Err(StoreError::NotFound { .. })
            ));
        }
        // No member row outlived its vMCP: the server can go.
        store.delete_server(&server.server_id).unwrap();
    });
}

#[test]
fn deleting_a_server_while_a_vmcp_takes_it() {
    each_db(|store, db| {
        for i in 0..40 {
            let server = store
                .create_server(&server_input(&format!("s{i}")))
                .unwrap();
            let vmcp = create_vmcp(store, json!({"name": format!("v{i}")})).unwrap();
            let input: VmcpInput = vmcp_input(json!({
                "name": format!("v{i}"), "mcp_servers": [{"server_id": server.server_id}]
            }));
            let members = input.validate().unwrap();
            let barrier = Barrier::new(3);
            let (update, d1, d2) = std::thread::scope(|s| {
                let update = s.spawn(|| {
                    barrier.wait();
                    store.update_vmcp(&vmcp.vmcp_id, &input, &members)
                });
                let d1 = s.spawn(|| {
                    barrier.wait();
                    store.delete_server(&server.server_id)
                });
                let d2 = s.spawn(|| {
                    barrier.wait();
                    store.delete_server(&server.server_id)
                });
                (
                    update.join().unwrap(),
                    d1.join().unwrap(),
                    d2.join().unwrap(),
                )
            });
            let backend = db.backend();
            for r in [describe(&update), describe(&d1), describe(&d2)] {
                assert!(!r.contains("Database"), "{backend:?} iteration {i}: {r}");
            }
            assert!(acceptable(&update) && acceptable(&d1) && acceptable(&d2));
            assert!(
                usize::from(d1.is_ok()) + usize::from(d2.is_ok()) <= 1,
                "{backend:?} iteration {i}: both deletes succeeded"
            );
            // Consistent: the server is gone and no vMCP lists it, or it is still there as the
            // vMCP's member.
            let stored = store.get_vmcp(&vmcp.vmcp_id).unwrap();
            match store.get_server(&server.server_id) {
                Ok(_) => assert!(d1.is_err() && d2.is_err()),
                Err(StoreError::NotFound { .. }) => {
                    assert!(stored.mcp_servers.is_empty(), "{backend:?}: {stored:?}");
                    assert!(
                        update.is_err(),
                        "{backend:?}: the update took a deleted server"
                    );
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    });
}

//! What the OAuth client of upstream servers keeps: grants written column by column, refused
//! credentials cleared only if unchanged, a refresh lease that one holder at a time takes, and
//! sign-ins consumed once. On SQLite and Postgres.

use vmcp_store::oauth::GrantUpdate;

use crate::{each_db, server_input};

fn update(client: Option<&str>, credentials: Option<Option<&str>>) -> GrantUpdate {
    GrantUpdate {
        client: client.map(|c| Some(c.to_string())),
        credentials: credentials.map(|c| c.map(String::from)),
        ..Default::default()
    }
}

#[test]
fn a_grant_write_changes_only_its_columns() {
    each_db(|store, _| {
        let id = store.create_server(&server_input("up")).unwrap().server_id;
        store
            .update_oauth_grant(&id, update(Some("c1"), None))
            .unwrap();
        store
            .update_oauth_grant(&id, update(None, Some(Some("t1"))))
            .unwrap();
        let g = store.oauth_grant(&id).unwrap().unwrap();
        assert_eq!(g.client.as_deref(), Some("c1"), "the client write was lost");
        assert_eq!(g.credentials.as_deref(), Some("t1"));
        // Clearing is explicit.
        store
            .update_oauth_grant(&id, update(None, Some(None)))
            .unwrap();
        let g = store.oauth_grant(&id).unwrap().unwrap();
        assert_eq!((g.client.as_deref(), g.credentials), (Some("c1"), None));
        // A deleted server keeps nothing.
        store.delete_server(&id).unwrap();
        store
            .update_oauth_grant(&id, update(Some("c2"), None))
            .unwrap();
        assert_eq!(store.oauth_grant(&id).unwrap(), None);
    });
}

#[test]
fn refused_credentials_are_cleared_only_if_unchanged() {
    each_db(|store, _| {
        let id = store.create_server(&server_input("up")).unwrap().server_id;
        store
            .update_oauth_grant(&id, update(None, Some(Some("new"))))
            .unwrap();
        // Another replica refreshed (or signed in) since "old" was refused: "new" stays.
        assert!(!store.clear_refused_credentials(&id, "old").unwrap());
        assert_eq!(
            store
                .oauth_grant(&id)
                .unwrap()
                .unwrap()
                .credentials
                .as_deref(),
            Some("new")
        );
        assert!(store.clear_refused_credentials(&id, "new").unwrap());
        assert_eq!(store.oauth_grant(&id).unwrap().unwrap().credentials, None);
    });
}

#[test]
fn one_refresh_at_a_time_holds_the_lease() {
    use vmcp_store::oauth::Lease;
    each_db(|store, db| {
        let other = db.open();
        let id = store.create_server(&server_input("up")).unwrap().server_id;
        let soon = vmcp_domain::time::now().naive_utc() + chrono::Duration::seconds(75);
        assert_eq!(store.take_refresh_lease(&id, soon).unwrap(), Lease::NoGrant);
        store
            .update_oauth_grant(&id, update(None, Some(Some("t"))))
            .unwrap();
        assert_eq!(store.take_refresh_lease(&id, soon).unwrap(), Lease::Taken);
        assert_eq!(
            other.take_refresh_lease(&id, soon).unwrap(),
            Lease::Busy,
            "two replicas refreshing at once spend one refresh token twice"
        );
        store.release_refresh_lease(&id, soon).unwrap();
        // A holder that died: its lease expires, and a late release of it frees nothing.
        let past = vmcp_domain::time::now().naive_utc() - chrono::Duration::seconds(1);
        assert_eq!(other.take_refresh_lease(&id, past).unwrap(), Lease::Taken);
        let later = soon + chrono::Duration::seconds(1);
        assert_eq!(store.take_refresh_lease(&id, later).unwrap(), Lease::Taken);
        other.release_refresh_lease(&id, past).unwrap();
        assert_eq!(other.take_refresh_lease(&id, soon).unwrap(), Lease::Busy);
    });
}

#[test]
fn credentials_are_set_with_their_client_and_never_create_a_grant() {
    each_db(|store, _| {
        let id = store.create_server(&server_input("up")).unwrap().server_id;
        assert!(
            !store
                .set_credentials(&id, None, Some("t"), Some("c"))
                .unwrap()
        );
        assert_eq!(store.oauth_grant(&id).unwrap(), None);
        store
            .update_oauth_grant(&id, update(Some("c0"), None))
            .unwrap();
        assert!(
            store
                .set_credentials(&id, None, Some("t1"), Some("c1"))
                .unwrap()
        );
        let g = store.oauth_grant(&id).unwrap().unwrap();
        assert_eq!(
            (g.client.as_deref(), g.credentials.as_deref()),
            (Some("c1"), Some("t1"))
        );
        // A refresh that started from other credentials does not overwrite a new sign-in.
        assert!(
            !store
                .set_credentials(&id, Some(Some("t0")), Some("t2"), None)
                .unwrap()
        );
        assert!(
            store
                .set_credentials(&id, Some(Some("t1")), Some("t2"), None)
                .unwrap()
        );
        let g = store.oauth_grant(&id).unwrap().unwrap();
        assert_eq!(
            (g.client.as_deref(), g.credentials.as_deref()),
            (Some("c1"), Some("t2"))
        );
    });
}

#[test]
fn a_sign_in_is_consumed_once_and_keeps_its_client() {
    each_db(|store, _| {
        let id = store.create_server(&server_input("up")).unwrap().server_id;
        store
            .save_oauth_state("s1", &id, "{}", Some("{\"client_id\":\"a\"}"))
            .unwrap();
        let pending = store.oauth_state("s1").unwrap().unwrap();
        assert_eq!(pending.server_id, id);
        assert_eq!(pending.client.as_deref(), Some("{\"client_id\":\"a\"}"));
        assert!(store.take_oauth_state("s1").unwrap());
        assert!(
            !store.take_oauth_state("s1").unwrap(),
            "a replay consumed it again"
        );
        assert_eq!(store.oauth_state("s1").unwrap(), None);
    });
}

//! What the replicas of one deployment share through the database: the replica table (who is
//! running, with which session key, seeing which server states), notifications on Postgres
//! (`LISTEN`/`NOTIFY`: configuration changes announced by triggers, and the replicas' own
//! messages), and advisory locks for the jobs that must run once.
//!
//! SQLite is single-node: a lock file next to the database keeps a second process away.

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Connection, PgConnection};

use crate::conn::DbConnection;
use crate::schema::{ended_sessions, replicas};
use crate::{DatabaseUrl, Result, Store, StoreError};

/// Announces each change of a server or vMCP (payload: `{"kind", "id", "revision"}`), from the
/// database's triggers.
pub const CONFIG_CHANNEL: &str = "vmcp_config";
/// The replicas' own messages (payload: JSON, with the sending replica's id).
pub const CLUSTER_CHANNEL: &str = "vmcp_cluster";
/// The largest payload Postgres takes in one notification is 8000 bytes.
pub const MAX_PAYLOAD: usize = 7900;

/// The advisory lock of the operation log's retention.
pub const PRUNE_JOB: i64 = 0x766d_6370_0001;

/// Log rows written (payload: `{"from": replica, "logs": [ids]}`), announced in the
/// transaction that writes them.
pub const LOGS_CHANNEL: &str = "vmcp_logs";

/// Announces written log rows on `LOGS_CHANNEL`, as few notifications as fit.
pub(crate) fn announce_logs<'a>(
    conn: &mut PgConnection,
    from: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let mut batch: Vec<&str> = Vec::new();
    let mut size = 0;
    let send = |conn: &mut PgConnection, batch: &[&str]| -> Result<()> {
        let payload = serde_json::json!({ "from": from, "logs": batch }).to_string();
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(LOGS_CHANNEL)
            .bind::<Text, _>(payload)
            .execute(conn)?;
        Ok(())
    };
    for id in ids {
        if size + id.len() + 3 > MAX_PAYLOAD - 64 - from.len() && !batch.is_empty() {
            send(conn, &batch)?;
            batch.clear();
            size = 0;
        }
        size += id.len() + 3;
        batch.push(id);
    }
    if !batch.is_empty() {
        send(conn, &batch)?;
    }
    Ok(())
}

/// A replica's row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = replicas)]
pub struct ReplicaRow {
    pub id: String,
    pub started_at: NaiveDateTime,
    pub seen_at: NaiveDateTime,
    pub key_fingerprint: String,
    pub shared_key: bool,
    /// JSON: server id -> {"status", "last_error"} as this replica sees it.
    pub servers: String,
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

/// A connection that listens on the cluster's channels (Postgres only).
pub struct Listener {
    conn: PgConnection,
}

impl Listener {
    /// The notifications received since the last call (never waits). An error means the
    /// connection is lost: notifications may have been missed.
    pub fn poll(&mut self) -> Result<Vec<Notification>> {
        let mut out = Vec::new();
        for n in self.conn.notifications_iter() {
            let n = n.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            out.push(Notification {
                channel: n.channel,
                payload: n.payload,
            });
        }
        Ok(out)
    }

    /// Asks the server something, to notice a connection that died quietly.
    pub fn check(&mut self) -> Result<()> {
        self.conn
            .batch_execute("SELECT 1")
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

/// Held while this process is the only one on a SQLite database.
#[derive(Debug)]
pub struct SingleNodeLock {
    _file: std::fs::File,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

#[derive(QueryableByName)]
struct Revision {
    #[diesel(sql_type = BigInt)]
    revision: i64,
}

impl Store {
    /// A new connection listening on `CONFIG_CHANNEL` and `CLUSTER_CHANNEL`; `None` on SQLite.
    pub fn listen(&self) -> Result<Option<Listener>> {
        let DatabaseUrl::Postgres(url) = self.url() else {
            return Ok(None);
        };
        let mut conn = PgConnection::establish(url)
            .map_err(|e| StoreError::Unavailable(format!("cannot listen: {e}")))?;
        conn.batch_execute(&format!(
            "LISTEN {CONFIG_CHANNEL}; LISTEN {CLUSTER_CHANNEL}; LISTEN {LOGS_CHANNEL};"
        ))
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Some(Listener { conn }))
    }

    /// Sends `payload` (at most `MAX_PAYLOAD` bytes) to every replica's listener, this one's
    /// included. Nothing on SQLite.
    pub fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if !matches!(self.url(), DatabaseUrl::Postgres(_)) {
            return Ok(());
        }
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(channel)
            .bind::<Text, _>(payload)
            .execute(&mut *conn)?;
        Ok(())
    }

    /// The latest configuration revision announced (0 before any change, and on SQLite).
    pub fn config_revision(&self) -> Result<i64> {
        if !matches!(self.url(), DatabaseUrl::Postgres(_)) {
            return Ok(0);
        }
        let mut conn = self.conn()?;
        let r: Revision = diesel::sql_query(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS revision FROM config_revision",
        )
        .get_result(&mut *conn)?;
        Ok(r.revision)
    }

    /// Keeps every other process off a SQLite database (released when the process ends, also
    /// by a crash). `None` on Postgres, where replicas are welcome.
    pub fn lock_single_node(&self) -> Result<Option<SingleNodeLock>> {
        let DatabaseUrl::Sqlite(path) = self.url() else {
            return Ok(None);
        };
        let lock_path = path.with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", lock_path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SingleNodeLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Config(format!(
                "another vMCP process uses the SQLite database {} (it holds {}): SQLite is \
                 single-node; run one process on it, or run replicas on Postgres",
                path.display(),
                lock_path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Config(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            ))),
        }
    }

    /// Writes this replica's row (first or again).
    pub fn upsert_replica(&self, row: &ReplicaRow) -> Result<()> {
        self.write(|conn| {
            diesel::delete(replicas::table.filter(replicas::id.eq(&row.id))).execute(conn)?;
            diesel::insert_into(replicas::table)
                .values(row)
                .execute(conn)?;
            Ok(())
        })
    }

    /// Refreshes this replica's row: still alive, with its view of the servers.
    pub fn replica_seen(&self, id: &str, servers: &str) -> Result<()> {
        // Through `write`, like every write: on SQLite, a writer beside the serialized ones
        // makes their transactions fail with "database is locked".
        self.write(|conn| {
            diesel::update(replicas::table.filter(replicas::id.eq(id)))
                .set((
                    replicas::seen_at.eq(vmcp_domain::time::now().naive_utc()),
                    replicas::servers.eq(servers),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    pub fn remove_replica(&self, id: &str) -> Result<()> {
        self.write(|conn| {
            diesel::delete(replicas::table.filter(replicas::id.eq(id))).execute(conn)?;
            Ok(())
        })
    }

    /// The replicas seen since `since`, oldest first.
    pub fn replicas_since(&self, since: NaiveDateTime) -> Result<Vec<ReplicaRow>> {
        let mut conn = self.conn()?;
        Ok(replicas::table
            .filter(replicas::seen_at.ge(since))
            .order((replicas::started_at.asc(), replicas::id.asc()))
            .select(ReplicaRow::as_select())
            .load(&mut *conn)?)
    }

    /// Records that the session `transport_id` ended at its client's request: refused by every
    /// replica until `until` (when its id would be refused for its age anyway).
    pub fn end_session(&self, transport_id: &str, until: NaiveDateTime) -> Result<()> {
        self.write(|conn| {
            diesel::delete(
                ended_sessions::table.filter(ended_sessions::transport_id.eq(transport_id)),
            )
            .execute(conn)?;
            diesel::insert_into(ended_sessions::table)
                .values((
                    ended_sessions::transport_id.eq(transport_id),
                    ended_sessions::until.eq(until),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// The sessions ended and not yet expired, with when each may be forgotten; expired ones
    /// are deleted.
    pub fn ended_sessions(&self, now: NaiveDateTime) -> Result<Vec<(String, NaiveDateTime)>> {
        self.write(|conn| {
            diesel::delete(ended_sessions::table.filter(ended_sessions::until.lt(now)))
                .execute(conn)?;
            Ok(ended_sessions::table
                .select((ended_sessions::transport_id, ended_sessions::until))
                .load(conn)?)
        })
    }

    /// Runs `f` in a transaction if no other replica runs a job of `key` (a transaction-scoped
    /// advisory lock on Postgres; on SQLite there is no other replica). `None` when skipped.
    pub fn once<T>(
        &self,
        key: i64,
        f: impl FnOnce(&mut DbConnection) -> Result<T>,
    ) -> Result<Option<T>> {
        self.write(|conn| {
            if let DbConnection::Postgresql(pg) = conn {
                let got: Locked =
                    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                        .bind::<BigInt, _>(key)
                        .get_result(pg)?;
                if !got.locked {
                    return Ok(None);
                }
            }
            f(conn).map(Some)
        })
    }
}

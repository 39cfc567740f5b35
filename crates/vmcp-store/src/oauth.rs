//! OAuth grants to upstream servers and sign-ins under way (see migrations `*_oauth`). The
//! values are JSON documents owned by the gateway; this module only keeps them, with the
//! guarantees the gateway relies on: a sign-in's state is consumed once; a write changes only
//! the columns it names (concurrent writers of other columns lose nothing); credentials are
//! cleared only if they are still the ones found refused; refreshes of one grant are serial
//! across replicas (a lease).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{mcp_servers, oauth_grants, oauth_states};
use crate::{Result, Store, is_unique_violation};

/// How long a sign-in may take between its authorization URL and its callback.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

/// What is kept for one server.
#[derive(Debug, Clone, Default, PartialEq, Queryable, Selectable)]
#[diesel(table_name = oauth_grants)]
pub struct OAuthGrant {
    pub server_id: String,
    /// The client vMCP is at the authorization server (JSON).
    pub client: Option<String>,
    /// The authorization server's metadata (JSON).
    pub metadata: Option<String>,
    /// The tokens (JSON).
    pub credentials: Option<String>,
    pub refreshing_until: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

/// Which columns a write changes (`None`: keep; `Some(None)`: clear).
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = oauth_grants)]
pub struct GrantUpdate {
    pub client: Option<Option<String>>,
    pub metadata: Option<Option<String>>,
    pub credentials: Option<Option<String>>,
}

/// What taking a refresh lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Taken,
    /// Another holder's lease runs.
    Busy,
    /// Nothing is kept for the server (deleted, signed out).
    NoGrant,
}

/// A sign-in under way.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSignIn {
    pub server_id: String,
    /// rmcp's state (PKCE verifier, expected issuer), JSON.
    pub state: String,
    /// The client the sign-in was started with (JSON), if recorded.
    pub client: Option<String>,
}

impl Store {
    pub fn oauth_grant(&self, server_id: &str) -> Result<Option<OAuthGrant>> {
        let mut conn = self.conn()?;
        Ok(oauth_grants::table
            .find(server_id)
            .select(OAuthGrant::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Changes the columns `update` names, creating the row if needed. A server deleted
    /// meanwhile is not an error: there is nothing to keep for it.
    pub fn update_oauth_grant(&self, server_id: &str, update: GrantUpdate) -> Result<()> {
        let now = vmcp_domain::time::now().naive_utc();
        for _ in 0..3 {
            let outcome = self.write(|conn| {
                let updated = diesel::update(oauth_grants::table.find(server_id))
                    .set((&update, oauth_grants::updated_at.eq(now)))
                    .execute(conn)?;
                if updated == 1 {
                    return Ok(true);
                }
                let exists: i64 = mcp_servers::table
                    .filter(mcp_servers::id.eq(server_id))
                    .count()
                    .get_result(conn)?;
                if exists == 0 {
                    return Ok(true);
                }
                let flat = |v: &Option<Option<String>>| v.clone().flatten();
                diesel::insert_into(oauth_grants::table)
                    .values((
                        oauth_grants::server_id.eq(server_id),
                        oauth_grants::client.eq(flat(&update.client)),
                        oauth_grants::metadata.eq(flat(&update.metadata)),
                        oauth_grants::credentials.eq(flat(&update.credentials)),
                        oauth_grants::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(true)
            });
            match outcome {
                Ok(_) => return Ok(()),
                // Another writer created the row first: update it now.
                Err(crate::StoreError::Database(e)) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Clears the credentials if they are still `refused` (not replaced meanwhile, by a sign-in
    /// or a refresh on another replica). Says whether it cleared them.
    pub fn clear_refused_credentials(&self, server_id: &str, refused: &str) -> Result<bool> {
        self.write(|conn| {
            Ok(diesel::update(
                oauth_grants::table
                    .find(server_id)
                    .filter(oauth_grants::credentials.eq(refused)),
            )
            .set(oauth_grants::credentials.eq(None::<String>))
            .execute(conn)?
                == 1)
        })
    }

    /// Takes the refresh lease of a grant until `until`, unless another holder's lease runs.
    pub fn take_refresh_lease(&self, server_id: &str, until: NaiveDateTime) -> Result<Lease> {
        let now = vmcp_domain::time::now().naive_utc();
        self.write(|conn| {
            let taken = diesel::update(
                oauth_grants::table.find(server_id).filter(
                    oauth_grants::refreshing_until
                        .is_null()
                        .or(oauth_grants::refreshing_until.lt(now)),
                ),
            )
            .set(oauth_grants::refreshing_until.eq(Some(until)))
            .execute(conn)?;
            if taken == 1 {
                return Ok(Lease::Taken);
            }
            let exists: i64 = oauth_grants::table
                .filter(oauth_grants::server_id.eq(server_id))
                .count()
                .get_result(conn)?;
            Ok(if exists == 0 {
                Lease::NoGrant
            } else {
                Lease::Busy
            })
        })
    }

    /// Releases the lease taken until `until` (a lease that expired and was taken by another
    /// holder stays theirs).
    pub fn release_refresh_lease(&self, server_id: &str, until: NaiveDateTime) -> Result<()> {
        self.write(|conn| {
            diesel::update(
                oauth_grants::table
                    .find(server_id)
                    .filter(oauth_grants::refreshing_until.eq(until)),
            )
            .set(oauth_grants::refreshing_until.eq(None::<NaiveDateTime>))
            .execute(conn)?;
            Ok(())
        })
    }

    /// Sets the credentials (and, with them, the client they belong to) of an existing grant,
    /// if its credentials are still `expected` (when given). Never creates a grant: a server
    /// deleted or signed out meanwhile keeps nothing. Says whether it wrote.
    pub fn set_credentials(
        &self,
        server_id: &str,
        expected: Option<Option<&str>>,
        credentials: Option<&str>,
        client: Option<&str>,
    ) -> Result<bool> {
        let now = vmcp_domain::time::now().naive_utc();
        self.write(|conn| {
            let current: Option<Option<String>> = oauth_grants::table
                .find(server_id)
                .select(oauth_grants::credentials)
                .first(conn)
                .optional()?;
            let Some(current) = current else {
                return Ok(false);
            };
            if let Some(expected) = expected
                && current.as_deref() != expected
            {
                return Ok(false);
            }
            let update = GrantUpdate {
                credentials: Some(credentials.map(String::from)),
                client: client.map(|c| Some(c.to_string())),
                ..Default::default()
            };
            diesel::update(oauth_grants::table.find(server_id))
                .set((&update, oauth_grants::updated_at.eq(now)))
                .execute(conn)?;
            Ok(true)
        })
    }

    /// Forgets everything kept for a server (its tokens, its client, its sign-ins).
    pub fn clear_oauth(&self, server_id: &str) -> Result<()> {
        self.write(|conn| {
            diesel::delete(oauth_grants::table.find(server_id)).execute(conn)?;
            diesel::delete(oauth_states::table.filter(oauth_states::server_id.eq(server_id)))
                .execute(conn)?;
            Ok(())
        })
    }

    /// Keeps a sign-in under way (with the client it was started with); also drops the
    /// expired ones.
    pub fn save_oauth_state(
        &self,
        csrf: &str,
        server_id: &str,
        state: &str,
        client: Option<&str>,
    ) -> Result<()> {
        let now = vmcp_domain::time::now().naive_utc();
        self.write(|conn| {
            diesel::delete(
                oauth_states::table.filter(oauth_states::created_at.lt(now - STATE_LIFETIME)),
            )
            .execute(conn)?;
            diesel::insert_into(oauth_states::table)
                .values((
                    oauth_states::csrf.eq(csrf),
                    oauth_states::server_id.eq(server_id),
                    oauth_states::state.eq(state),
                    oauth_states::client.eq(client),
                    oauth_states::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// A sign-in under way, unless unknown, used or expired.
    pub fn oauth_state(&self, csrf: &str) -> Result<Option<PendingSignIn>> {
        let mut conn = self.conn()?;
        let since = vmcp_domain::time::now().naive_utc() - STATE_LIFETIME;
        Ok(oauth_states::table
            .find(csrf)
            .filter(oauth_states::created_at.ge(since))
            .select((
                oauth_states::server_id,
                oauth_states::state,
                oauth_states::client,
            ))
            .first::<(String, String, Option<String>)>(&mut *conn)
            .optional()?
            .map(|(server_id, state, client)| PendingSignIn {
                server_id,
                state,
                client,
            }))
    }

    /// Consumes a sign-in: `true` for the one caller that removed it, `false` when it was gone
    /// already (a replayed callback).
    pub fn take_oauth_state(&self, csrf: &str) -> Result<bool> {
        self.write(|conn| Ok(diesel::delete(oauth_states::table.find(csrf)).execute(conn)? == 1))
    }
}

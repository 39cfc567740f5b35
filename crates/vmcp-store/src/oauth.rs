//! OAuth grants to upstream servers and sign-ins under way (see migrations `*_oauth`). The
//! values are JSON documents owned by the gateway; this module only keeps them.

use diesel::prelude::*;

use crate::schema::{oauth_grants, oauth_states};
use crate::{Result, Store};

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
    /// Where a person signs in, while a sign-in is pending.
    pub authorization_url: Option<String>,
    pub updated_at: chrono::NaiveDateTime,
}

/// Which columns a write changes (`None`: keep; `Some(None)`: clear).
#[derive(Debug, Default)]
pub struct GrantUpdate {
    pub client: Option<Option<String>>,
    pub metadata: Option<Option<String>>,
    pub credentials: Option<Option<String>>,
    pub authorization_url: Option<Option<String>>,
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
        self.write(|conn| {
            let current: Option<OAuthGrant> = oauth_grants::table
                .find(server_id)
                .select(OAuthGrant::as_select())
                .first(conn)
                .optional()?;
            let mut row = current.unwrap_or_else(|| OAuthGrant {
                server_id: server_id.to_string(),
                ..Default::default()
            });
            if let Some(v) = update.client {
                row.client = v;
            }
            if let Some(v) = update.metadata {
                row.metadata = v;
            }
            if let Some(v) = update.credentials {
                row.credentials = v;
            }
            if let Some(v) = update.authorization_url {
                row.authorization_url = v;
            }
            let exists: i64 = crate::schema::mcp_servers::table
                .filter(crate::schema::mcp_servers::id.eq(server_id))
                .count()
                .get_result(conn)?;
            diesel::delete(oauth_grants::table.find(server_id)).execute(conn)?;
            if exists == 0 {
                return Ok(());
            }
            diesel::insert_into(oauth_grants::table)
                .values((
                    oauth_grants::server_id.eq(server_id),
                    oauth_grants::client.eq(&row.client),
                    oauth_grants::metadata.eq(&row.metadata),
                    oauth_grants::credentials.eq(&row.credentials),
                    oauth_grants::authorization_url.eq(&row.authorization_url),
                    oauth_grants::updated_at.eq(vmcp_domain::time::now().naive_utc()),
                ))
                .execute(conn)?;
            Ok(())
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

    /// Keeps a sign-in under way; also drops the expired ones.
    pub fn save_oauth_state(&self, csrf: &str, server_id: &str, state: &str) -> Result<()> {
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
                    oauth_states::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// A sign-in under way and its server, unless unknown, used or expired.
    pub fn oauth_state(&self, csrf: &str) -> Result<Option<(String, String)>> {
        let mut conn = self.conn()?;
        let since = vmcp_domain::time::now().naive_utc() - STATE_LIFETIME;
        Ok(oauth_states::table
            .find(csrf)
            .filter(oauth_states::created_at.ge(since))
            .select((oauth_states::server_id, oauth_states::state))
            .first(&mut *conn)
            .optional()?)
    }

    /// Consumes a sign-in: `true` for the one caller that removed it, `false` when it was gone
    /// already (a replayed callback).
    pub fn take_oauth_state(&self, csrf: &str) -> Result<bool> {
        self.write(|conn| Ok(diesel::delete(oauth_states::table.find(csrf)).execute(conn)? == 1))
    }
}

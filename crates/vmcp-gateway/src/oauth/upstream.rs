//! vMCP as the OAuth client of upstream servers (`config.auth`), on rmcp's implementation of
//! the MCP authorization specification (discovery by RFC 9728 and RFC 8414, client ID metadata
//! documents, dynamic registration by RFC 7591, PKCE, resource indicators by RFC 8707, the
//! RFC 9207 `iss` check, refresh). What is ours: where things are kept (the database, so that
//! any replica completes any sign-in and tokens survive restarts), revocation on delete
//! (RFC 7009), and the sign-in's life as a server status.
//!
//! Invariants: a sign-in's `state` is consumed by exactly one callback (a replay finds it
//! gone); tokens never leave the gateway (no API returns them); the access token is read from
//! memory on each upstream request (the database is read when a connection starts and when a
//! refresh begins, so a replica picks up what another refreshed).

use std::sync::Arc;

use async_trait::async_trait;
use rmcp::transport::auth::{
    AuthError, AuthorizationManager, AuthorizationMetadata, AuthorizationRequest,
    AuthorizationSession, ClientCredentialsConfig, CredentialRefreshGuard, CredentialStore,
    OAuthClientConfig, StateStore, StoredAuthorizationState, StoredCredentials,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use vmcp_domain::{OAuthGrant, UpstreamAuth};
use vmcp_store::Store;
use vmcp_store::oauth::GrantUpdate;
use vmcp_transport::OAuthLink;

/// The client vMCP is at one server's authorization server, as kept in `oauth_grants.client`
/// (the latest registration, reused by later sign-ins) and with each sign-in in
/// `oauth_states.client` (the one its callback must use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClientRecord {
    client_id: String,
    /// A secret the authorization server issued at dynamic registration (write-only, like
    /// the tokens; a configured secret stays in the server's config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    redirect_uri: String,
    /// The 401 challenge that started the sign-in: discovery starts from it again.
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
}

impl ClientRecord {
    fn parse(text: Option<&str>) -> Option<Self> {
        serde_json::from_str(text?).ok()
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a client record serializes")
    }
}

/// What connecting a server with `config.auth` needs to know of vMCP.
#[derive(Clone)]
pub struct OAuthClient {
    store: Store,
    /// Where browsers come back (`{public}/api/oauth/callback`).
    pub redirect_uri: String,
    /// A Client ID Metadata Document URL (only over https: the specification requires it).
    pub client_metadata_url: Option<String>,
    http: reqwest::Client,
}

/// An error of one step of OAuth, worded for the server's `last_error`.
#[derive(Debug, Clone)]
pub struct OAuthFailure(pub String);

impl std::fmt::Display for OAuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn failed(step: &str, e: impl std::fmt::Display) -> OAuthFailure {
    OAuthFailure(format!("OAuth {step} failed: {e}"))
}

/// A connection's OAuth link (its token manager, and for client credentials the grant's
/// settings) and the credentials it started with (to tell, when the server refuses them,
/// whether they were replaced meanwhile).
pub struct Connecting {
    pub link: Option<OAuthLink>,
    pub credentials: Option<String>,
}

/// What follows a refusal of the server.
pub enum Refusal {
    /// Other credentials than the refused ones are kept now: connect again with them.
    Retry,
    /// A person must sign in.
    SignIn(SignInStarted),
}

/// A sign-in started after a refusal.
pub struct SignInStarted {
    /// Where a person signs in.
    pub authorization_url: String,
    /// The credentials kept when it started (refused ones are cleared): the sign-in is done
    /// when they change.
    pub credentials: Option<String>,
}

/// The scopes a `WWW-Authenticate` challenge names (`scope="a b"`).
fn challenge_scopes(challenge: &str) -> Vec<String> {
    let Some(i) = challenge.find("scope=") else {
        return Vec::new();
    };
    let rest = &challenge[i + "scope=".len()..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or(""),
        None => rest.split([',', ' ']).next().unwrap_or(""),
    };
    value.split_whitespace().map(String::from).collect()
}

impl OAuthClient {
    pub fn new(store: Store, public_url: &url::Url) -> Self {
        let base = public_url.as_str().trim_end_matches('/');
        Self {
            store,
            redirect_uri: format!("{base}/api/oauth/callback"),
            client_metadata_url: (public_url.scheme() == "https")
                .then(|| format!("{base}/oauth/client-metadata.json")),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client builds"),
        }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> vmcp_store::Result<T> + Send + 'static,
    ) -> Result<T, OAuthFailure> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| OAuthFailure(format!("internal error: {e}")))?
            .map_err(|e| OAuthFailure(format!("the database failed: {e}")))
    }

    async fn grant(
        &self,
        server_id: &str,
    ) -> Result<Option<vmcp_store::oauth::OAuthGrant>, OAuthFailure> {
        let id = server_id.to_string();
        self.db(move |s| s.oauth_grant(&id)).await
    }

    async fn manager(
        &self,
        server_id: &str,
        url: &str,
        states: DbStates,
        client: Option<String>,
    ) -> Result<AuthorizationManager, OAuthFailure> {
        // Authorization servers at private addresses are allowed (a gateway runs inside
        // networks: `sso.corp` at 10.0.0.9); link-local and other reserved addresses (cloud
        // metadata services) stay refused, and loopback only for a loopback server.
        let mut manager = AuthorizationManager::new_allowing_private_addresses(url)
            .await
            .map_err(|e| failed("set-up", e))?;
        manager.set_credential_store(DbCredentials::new(self.store.clone(), server_id, client));
        manager.set_state_store(states);
        Ok(manager)
    }

    fn states(&self, server_id: &str) -> DbStates {
        DbStates {
            store: self.store.clone(),
            server_id: server_id.to_string(),
            client: Arc::default(),
        }
    }

    /// Discovery, from the challenge of a 401 when there is one; checks that the
    /// authorization server is the one vMCP signed in with, if it did.
    async fn discover(
        &self,
        manager: &mut AuthorizationManager,
        challenge: Option<&str>,
        expected_issuer: Option<&str>,
    ) -> Result<AuthorizationMetadata, OAuthFailure> {
        let resolution = manager
            .resolve_metadata_from_challenge(challenge)
            .await
            .map_err(|e| {
                failed(
                    "discovery (protected resource and authorization server metadata)",
                    e,
                )
            })?;
        let metadata = resolution.metadata;
        if let Some(expected) = expected_issuer
            && metadata.issuer.as_deref() != Some(expected)
        {
            return Err(OAuthFailure(format!(
                "OAuth discovery found the authorization server {}, not {expected} where vMCP \
                 signed in: sign in again (disconnect and connect the server)",
                metadata.issuer.as_deref().unwrap_or("without an issuer")
            )));
        }
        manager.set_metadata(metadata.clone());
        Ok(metadata)
    }

    /// The manager for a new connection: signed in before (tokens kept), or obtaining tokens
    /// by client credentials. No manager asks for a connection without a token, whose 401
    /// starts a sign-in.
    pub async fn for_connect(
        &self,
        server_id: &str,
        url: &str,
        auth: &UpstreamAuth,
    ) -> Result<Connecting, OAuthFailure> {
        if auth.grant == OAuthGrant::ClientCredentials {
            let mut manager = self
                .manager(server_id, url, self.states(server_id), None)
                .await?;
            let metadata = self.discover(&mut manager, None, None).await?;
            // The grant first (the token is kept in it), with the metadata for revocation.
            let id = server_id.to_string();
            let update = GrantUpdate {
                metadata: Some(Some(serde_json::to_string(&metadata).expect("serializes"))),
                ..Default::default()
            };
            self.db(move |s| s.update_oauth_grant(&id, update)).await?;
            let renew = self.client_credentials(&mut manager, url, auth).await?;
            return Ok(Connecting {
                link: Some(OAuthLink {
                    manager,
                    renew: Some(renew),
                }),
                credentials: None,
            });
        }
        let grant = self.grant(server_id).await?;
        let credentials = grant.as_ref().and_then(|g| g.credentials.clone());
        let record = ClientRecord::parse(grant.as_ref().and_then(|g| g.client.as_deref()));
        let stored: Option<StoredCredentials> = credentials
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        // Tokens are used with the client they were issued to, and no other.
        let (Some(record), Some(stored)) = (record, stored) else {
            return Ok(Connecting {
                link: None,
                credentials,
            });
        };
        if stored.client_id != record.client_id {
            return Ok(Connecting {
                link: None,
                credentials,
            });
        }
        let mut manager = self
            .manager(server_id, url, self.states(server_id), None)
            .await?;
        let metadata = self
            .discover(&mut manager, record.challenge.as_deref(), None)
            .await?;
        if metadata.issuer != record.issuer {
            // Another authorization server now (the server moved, or its URL changed while a
            // sign-in finished): these tokens are not for it. Connecting without them gets the
            // refusal that starts a new sign-in (and clears them).
            return Ok(Connecting {
                link: None,
                credentials,
            });
        }
        manager
            .configure_client(client_config(&record, auth))
            .map_err(|e| failed("client set-up", e))?;
        Ok(Connecting {
            link: Some(OAuthLink {
                manager,
                renew: None,
            }),
            credentials,
        })
    }

    /// Obtains a token by the client credentials grant; answers the grant's settings, with
    /// which the connection obtains the next ones.
    async fn client_credentials(
        &self,
        manager: &mut AuthorizationManager,
        url: &str,
        auth: &UpstreamAuth,
    ) -> Result<ClientCredentialsConfig, OAuthFailure> {
        let (Some(client_id), Some(client_secret)) = (&auth.client_id, &auth.client_secret) else {
            return Err(OAuthFailure(
                "OAuth client credentials need config.auth.client_id and client_secret".into(),
            ));
        };
        let config = ClientCredentialsConfig::ClientSecret {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            scopes: auth.scopes.clone(),
            resource: Some(url.to_string()),
        };
        manager
            .configure_client_credentials(&config)
            .map_err(|e| failed("client set-up", e))?;
        manager
            .exchange_client_credentials(&config)
            .await
            .map_err(|e| failed("client credentials grant", e))?;
        Ok(config)
    }

    /// After the server refused vMCP (401, or 403 for more scopes) with `challenge`: clears
    /// the refused credentials (unless replaced meanwhile) and starts a sign-in.
    pub async fn on_refused(
        &self,
        server_id: &str,
        url: &str,
        auth: &UpstreamAuth,
        challenge: &str,
        refused: Option<String>,
    ) -> Result<Refusal, OAuthFailure> {
        if auth.grant == OAuthGrant::ClientCredentials {
            // The token was obtained just before this connection: asking again would loop.
            return Err(OAuthFailure(format!(
                "the server refused the access token of the client credentials grant \
                 (WWW-Authenticate: {challenge}); check the client's scopes and audience"
            )));
        }
        if let Some(refused) = refused.clone() {
            let id = server_id.to_string();
            self.db(move |s| s.clear_refused_credentials(&id, &refused))
                .await?;
        }
        let grant = self.grant(server_id).await?;
        let kept = grant.as_ref().and_then(|g| g.credentials.clone());
        if kept.is_some() && kept != refused {
            // Other credentials than the refused ones are kept now (a sign-in finished, or a
            // replica refreshed, meanwhile): try those first.
            return Ok(Refusal::Retry);
        }
        let registered = ClientRecord::parse(grant.as_ref().and_then(|g| g.client.as_deref()));
        let states = self.states(server_id);
        let started_with = states.client.clone();
        let mut manager = self.manager(server_id, url, states, None).await?;
        let challenge = (!challenge.is_empty()).then_some(challenge);
        let metadata = self.discover(&mut manager, challenge, None).await?;
        // It is shown to people as a link: only a web address will do (checked before any
        // registration, which a refusal here would otherwise repeat at every retry).
        if !(metadata.authorization_endpoint.starts_with("https://")
            || metadata.authorization_endpoint.starts_with("http://"))
        {
            return Err(OAuthFailure(format!(
                "OAuth discovery gave an authorization endpoint that is not an http(s) URL: {:?}",
                metadata.authorization_endpoint
            )));
        }
        let mut request =
            AuthorizationRequest::new(self.redirect_uri.clone()).with_client_name("vMCP");
        if let Some(challenge) = challenge {
            request = request.with_challenge(challenge);
        }
        // The scopes: configured, else the challenge's or the metadata's (rmcp's choice); plus
        // what a 403's challenge asks for; with offline_access where offered, for a refresh
        // token.
        let mut scopes = if auth.scopes.is_empty() {
            manager.select_initial_scopes(&[]).await
        } else {
            auth.scopes.clone()
        };
        for s in challenge.map(challenge_scopes).unwrap_or_default() {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let offline = metadata
            .scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == "offline_access"));
        if offline && !scopes.is_empty() && !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".into());
        }
        if scopes.is_empty() {
            request = request.with_initial_scope_selection();
        } else {
            request = request.with_scopes(scopes.iter().cloned());
        }
        let cimd_supported = metadata
            .additional_fields
            .get("client_id_metadata_document_supported")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        // The client of this sign-in: configured; a metadata document; the registration made
        // before with this authorization server and callback; or a new registration.
        let reusable = registered.filter(|r| {
            auth.client_id.is_none()
                && r.redirect_uri == self.redirect_uri
                && r.issuer.is_some()
                && r.issuer == metadata.issuer
                && Some(&r.client_id) != self.client_metadata_url.as_ref()
        });
        let client = if let Some(client_id) = &auth.client_id {
            request = request.with_preregistered_client(client_id.clone());
            if let Some(secret) = &auth.client_secret {
                request = request.with_client_secret(secret.clone());
            }
            (client_id.clone(), None)
        } else if let (Some(cimd), true) = (&self.client_metadata_url, cimd_supported) {
            request = request.with_client_metadata_url(cimd.clone());
            (cimd.clone(), None)
        } else if let Some(r) = reusable {
            request = request.with_preregistered_client(r.client_id.clone());
            if let Some(secret) = &r.client_secret {
                request = request.with_client_secret(secret.clone());
            }
            (r.client_id, r.client_secret)
        } else if metadata.registration_endpoint.is_some() {
            // Registered here rather than by rmcp's session, which would not say which secret
            // (if any) the authorization server issued: a confidential registration (where only
            // client_secret_basic or _post is allowed) needs it at the token endpoint, also
            // after a restart.
            let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let registered = manager
                .register_client("vMCP", &self.redirect_uri, &refs)
                .await
                .map_err(|e| failed("dynamic client registration", e))?;
            request = request.with_preregistered_client(registered.client_id.clone());
            if let Some(secret) = registered.client_secret.clone() {
                request = request.with_client_secret(secret);
            }
            (registered.client_id, registered.client_secret)
        } else {
            return Err(OAuthFailure(format!(
                "OAuth client registration is not possible: the authorization server {} offers \
                 no dynamic registration, and no client ID metadata document (that needs its \
                 support and an https --public-url of vMCP); register a client there and set \
                 config.auth.client_id (and client_secret)",
                metadata
                    .issuer
                    .as_deref()
                    .unwrap_or(&metadata.authorization_endpoint)
            )));
        };
        let record = ClientRecord {
            client_id: client.0,
            client_secret: client.1,
            redirect_uri: self.redirect_uri.clone(),
            challenge: challenge.map(String::from),
            issuer: metadata.issuer.clone(),
        };
        // The sign-in's state row carries this record, so that its callback uses this client
        // whatever sign-ins start meanwhile.
        *started_with.lock().expect("client lock") = Some(record.text());
        let session = AuthorizationSession::new(manager, request)
            .await
            .map_err(|(_, e)| failed("authorization request", e))?;
        let authorization_url = session.get_authorization_url().to_string();
        let id = server_id.to_string();
        let update = GrantUpdate {
            // The latest registration, for the next sign-ins to reuse.
            client: (ClientRecord::parse(grant.as_ref().and_then(|g| g.client.as_deref()))
                .as_ref()
                != Some(&record))
            .then(|| Some(record.text()))
            .filter(|_| kept.is_none()),
            metadata: Some(Some(serde_json::to_string(&metadata).expect("serializes"))),
            ..Default::default()
        };
        self.db(move |s| s.update_oauth_grant(&id, update)).await?;
        Ok(Refusal::SignIn(SignInStarted {
            authorization_url,
            credentials: kept,
        }))
    }

    /// The server a callback's `state` belongs to, unless unknown, used or expired.
    pub async fn server_of_state(&self, state: &str) -> Result<Option<String>, OAuthFailure> {
        let csrf = state.to_string();
        Ok(self
            .db(move |s| s.oauth_state(&csrf))
            .await?
            .map(|p| p.server_id))
    }

    /// Completes a sign-in: exchanges `code` (checking `iss`) with the client the sign-in was
    /// started with, and keeps the tokens with that client.
    pub async fn complete(
        &self,
        server_id: &str,
        url: &str,
        auth: &UpstreamAuth,
        code: &str,
        state: &str,
        iss: Option<&str>,
    ) -> Result<(), OAuthFailure> {
        let csrf = state.to_string();
        let pending = self.db(move |s| s.oauth_state(&csrf)).await?;
        let Some(record) = pending
            .filter(|p| p.server_id == server_id)
            .and_then(|p| ClientRecord::parse(p.client.as_deref()))
        else {
            return Err(OAuthFailure(
                "this sign-in is unknown, was completed already, or expired".into(),
            ));
        };
        // The tokens are saved by the exchange, in one write with their client.
        let mut manager = self
            .manager(server_id, url, self.states(server_id), Some(record.text()))
            .await?;
        self.discover(
            &mut manager,
            record.challenge.as_deref(),
            record.issuer.as_deref(),
        )
        .await?;
        manager
            .configure_client(client_config(&record, auth))
            .map_err(|e| failed("client set-up", e))?;
        manager
            .exchange_code_for_token_with_issuer(code, state, iss)
            .await
            .map_err(|e| failed("code exchange", e))?;
        Ok(())
    }

    /// A callback that carries an error (the person declined, or the authorization server
    /// refused): the sign-in is over.
    pub async fn abandon(&self, state: &str) -> Result<(), OAuthFailure> {
        let csrf = state.to_string();
        self.db(move |s| s.take_oauth_state(&csrf)).await?;
        Ok(())
    }

    /// Whether the credentials kept for the server are there and other than `before` (a
    /// sign-in finished since, maybe on another replica).
    pub async fn signed_in_since(&self, server_id: &str, before: Option<&str>) -> bool {
        match self.grant(server_id).await {
            Ok(Some(g)) => g.credentials.is_some() && g.credentials.as_deref() != before,
            _ => false,
        }
    }

    /// Revokes the tokens kept for a server at its authorization server (RFC 7009, when it
    /// offers revocation) and forgets them. Revocation is best effort: the tokens are
    /// forgotten whatever the answer.
    pub async fn forget(&self, server_id: &str, auth: Option<&UpstreamAuth>) -> Vec<String> {
        let grant = self.kept(server_id).await;
        let mut notes = self.revoke_all(grant, auth).await;
        let id = server_id.to_string();
        if let Err(e) = self.db(move |s| s.clear_oauth(&id)).await {
            notes.push(e.0);
        }
        notes
    }

    /// What is kept for a server (read before the server is deleted: its rows go with it).
    pub async fn kept(&self, server_id: &str) -> Option<vmcp_store::oauth::OAuthGrant> {
        let id = server_id.to_string();
        self.db(move |s| s.oauth_grant(&id)).await.ok().flatten()
    }

    /// Revokes the tokens of `grant` (RFC 7009), best effort; says what happened to each.
    pub async fn revoke_all(
        &self,
        grant: Option<vmcp_store::oauth::OAuthGrant>,
        auth: Option<&UpstreamAuth>,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(grant) = grant {
            let metadata: Option<AuthorizationMetadata> = grant
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok());
            let record = ClientRecord::parse(grant.client.as_deref());
            let credentials: Option<StoredCredentials> = grant
                .credentials
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok());
            let endpoint = metadata.as_ref().and_then(|m| {
                m.additional_fields
                    .get("revocation_endpoint")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            });
            if let (None, Some(_)) = (&endpoint, &credentials) {
                notes.push("the authorization server offers no revocation".into());
            }
            if let (Some(endpoint), Some(credentials)) = (endpoint, credentials) {
                let issued = record.as_ref().and_then(|r| r.client_secret.clone());
                let client_id = record
                    .map(|r| r.client_id)
                    .unwrap_or(credentials.client_id.clone());
                let secret = issued.or_else(|| {
                    auth.filter(|a| a.client_id.as_deref() == Some(client_id.as_str()))
                        .and_then(|a| a.client_secret.clone())
                });
                if let Some(tokens) = &credentials.token_response {
                    let tokens = serde_json::to_value(tokens).unwrap_or_default();
                    let field =
                        |name: &str| tokens.get(name).and_then(|v| v.as_str()).map(String::from);
                    let mut pairs = Vec::new();
                    if let Some(refresh) = field("refresh_token") {
                        pairs.push((refresh, "refresh_token"));
                    }
                    if let Some(access) = field("access_token") {
                        pairs.push((access, "access_token"));
                    }
                    for (token, hint) in pairs {
                        match self
                            .revoke(&endpoint, &client_id, secret.as_deref(), &token, hint)
                            .await
                        {
                            Ok(()) => notes.push(format!("{hint} revoked")),
                            Err(e) => notes.push(format!("{hint} not revoked: {e}")),
                        }
                    }
                }
            }
        }
        notes
    }

    async fn revoke(
        &self,
        endpoint: &str,
        client_id: &str,
        secret: Option<&str>,
        token: &str,
        hint: &str,
    ) -> Result<(), String> {
        let mut form = vec![("token", token), ("token_type_hint", hint)];
        let request = self.http.post(endpoint);
        // RFC 6749 section 2.3.1: both are form-encoded before they go into Basic.
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let request = match secret {
            Some(secret) => request.basic_auth(encode(client_id), Some(encode(secret))),
            None => {
                form.push(("client_id", client_id));
                request
            }
        };
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }
}

fn client_config(record: &ClientRecord, auth: &UpstreamAuth) -> OAuthClientConfig {
    let mut config = OAuthClientConfig::new(record.client_id.clone(), record.redirect_uri.clone())
        .with_scopes(auth.scopes.clone());
    // A configured secret belongs to the configured client only.
    if let Some(secret) = &record.client_secret {
        config = config.with_client_secret(secret.clone());
    } else if auth.client_id.as_deref() == Some(record.client_id.as_str())
        && let Some(secret) = &auth.client_secret
    {
        config = config.with_client_secret(secret.clone());
    }
    config
}

/// How long one refresh may hold the grant's lease: more than twice rmcp's HTTP timeout (30 s),
/// so that a slow token endpoint never lets a second replica spend the same refresh token.
const REFRESH_LEASE: chrono::Duration = chrono::Duration::seconds(75);

/// Tokens in `oauth_grants.credentials`, cached in memory: a request reads the cache. A
/// refresh takes the grant's lease in the database (refreshes are serial across replicas, so a
/// rotating refresh token is never spent twice), then reads the database, so that it starts
/// from what another replica refreshed, and saves only if the credentials are still the ones it
/// started from (a sign-in that finished meanwhile wins). Credentials are written with the
/// client they belong to, and never create a grant (a deleted server keeps nothing).
struct DbCredentials {
    store: Store,
    server_id: String,
    cache: Arc<std::sync::Mutex<Option<Option<StoredCredentials>>>>,
    refreshing: Arc<Mutex<()>>,
    /// The client record saved with the next credentials (a sign-in's).
    client: Option<String>,
    /// While a refresh holds the lease: the credentials (as stored) it started from.
    refreshing_from: Arc<std::sync::Mutex<Option<Option<String>>>>,
}

impl DbCredentials {
    fn new(store: Store, server_id: &str, client: Option<String>) -> Self {
        Self {
            store,
            server_id: server_id.to_string(),
            cache: Arc::default(),
            refreshing: Arc::default(),
            client,
            refreshing_from: Arc::default(),
        }
    }

    async fn write(&self, credentials: Option<StoredCredentials>) -> Result<(), AuthError> {
        let text = credentials
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("credentials serialize"));
        let store = self.store.clone();
        let id = self.server_id.clone();
        let expected = self.refreshing_from.lock().expect("lock").clone();
        let refreshing = expected.is_some();
        let client = self.client.clone();
        let written = tokio::task::spawn_blocking(move || {
            store.set_credentials(
                &id,
                expected.as_ref().map(|e| e.as_deref()),
                text.as_deref(),
                client.as_deref(),
            )
        })
        .await
        .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?
        .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?;
        if written {
            *self.cache.lock().expect("credentials lock") = Some(credentials);
            return Ok(());
        }
        // Not written: read what is kept on the next use.
        *self.cache.lock().expect("credentials lock") = None;
        if refreshing {
            // A sign-in (or a replica's refresh) replaced the credentials meanwhile: theirs win.
            Ok(())
        } else {
            Err(AuthError::CredentialStoreError(
                "nothing is kept for this server any more (deleted or signed out meanwhile)".into(),
            ))
        }
    }
}

#[async_trait]
impl CredentialStore for DbCredentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        if let Some(cached) = self.cache.lock().expect("credentials lock").clone() {
            return Ok(cached);
        }
        let store = self.store.clone();
        let id = self.server_id.clone();
        let grant = tokio::task::spawn_blocking(move || store.oauth_grant(&id))
            .await
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?;
        let text = grant.and_then(|g| g.credentials);
        let mut from = self.refreshing_from.lock().expect("lock");
        if let Some(base) = from.as_mut() {
            base.clone_from(&text);
        }
        drop(from);
        let credentials: Option<StoredCredentials> =
            text.as_deref().and_then(|c| serde_json::from_str(c).ok());
        *self.cache.lock().expect("credentials lock") = Some(credentials.clone());
        Ok(credentials)
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        self.write(Some(credentials)).await
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.write(None).await
    }

    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let local = self.refreshing.clone().lock_owned().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let until = loop {
            let store = self.store.clone();
            let id = self.server_id.clone();
            let until = vmcp_domain::time::now().naive_utc() + REFRESH_LEASE;
            let lease = tokio::task::spawn_blocking(move || store.take_refresh_lease(&id, until))
                .await
                .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?
                .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?;
            match lease {
                vmcp_store::oauth::Lease::Taken => break until,
                // Signed out or deleted: nothing to refresh; a new sign-in is needed.
                vmcp_store::oauth::Lease::NoGrant => return Err(AuthError::AuthorizationRequired),
                vmcp_store::oauth::Lease::Busy => {}
            }
            if std::time::Instant::now() > deadline {
                return Err(AuthError::CredentialStoreError(
                    "another replica has been refreshing these tokens for too long".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        // The next load reads the database (another replica may have refreshed already) and
        // remembers what it read, for the save to check.
        *self.cache.lock().expect("credentials lock") = None;
        *self.refreshing_from.lock().expect("lock") = Some(None);
        Ok(Some(CredentialRefreshGuard::new(Lease {
            store: self.store.clone(),
            server_id: self.server_id.clone(),
            until,
            refreshing_from: self.refreshing_from.clone(),
            _local: local,
        })))
    }
}

/// The grant's refresh lease, released when the refresh is over.
struct Lease {
    store: Store,
    server_id: String,
    until: chrono::NaiveDateTime,
    refreshing_from: Arc<std::sync::Mutex<Option<Option<String>>>>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self.refreshing_from.lock().expect("lock") = None;
        let store = self.store.clone();
        let id = self.server_id.clone();
        let until = self.until;
        let release = move || {
            if let Err(e) = store.release_refresh_lease(&id, until) {
                tracing::warn!(server = %id, error = %e, "cannot release the OAuth refresh lease (it expires by itself)");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(release);
            }
            Err(_) => release(),
        }
    }
}

/// Sign-ins under way, in `oauth_states`, each with the client it was started with.
struct DbStates {
    store: Store,
    server_id: String,
    /// The client record to keep with the next sign-in's state.
    client: Arc<std::sync::Mutex<Option<String>>>,
}

#[async_trait]
impl StateStore for DbStates {
    async fn save(&self, csrf: &str, state: StoredAuthorizationState) -> Result<(), AuthError> {
        let text = serde_json::to_string(&state).expect("state serializes");
        let store = self.store.clone();
        let (csrf, id) = (csrf.to_string(), self.server_id.clone());
        let client = self.client.lock().expect("client lock").clone();
        tokio::task::spawn_blocking(move || {
            store.save_oauth_state(&csrf, &id, &text, client.as_deref())
        })
        .await
        .map_err(|e| AuthError::InternalError(e.to_string()))?
        .map_err(|e| AuthError::InternalError(e.to_string()))
    }

    async fn load(&self, csrf: &str) -> Result<Option<StoredAuthorizationState>, AuthError> {
        let store = self.store.clone();
        let csrf = csrf.to_string();
        let found = tokio::task::spawn_blocking(move || store.oauth_state(&csrf))
            .await
            .map_err(|e| AuthError::InternalError(e.to_string()))?
            .map_err(|e| AuthError::InternalError(e.to_string()))?;
        Ok(found
            .filter(|p| p.server_id == self.server_id)
            .and_then(|p| serde_json::from_str(&p.state).ok()))
    }

    /// Consuming a state is the point where two callbacks with the same `state` part: the one
    /// that removes it goes on; the other is refused before any code is exchanged.
    async fn delete(&self, csrf: &str) -> Result<(), AuthError> {
        let store = self.store.clone();
        let csrf = csrf.to_string();
        let taken = tokio::task::spawn_blocking(move || store.take_oauth_state(&csrf))
            .await
            .map_err(|e| AuthError::InternalError(e.to_string()))?
            .map_err(|e| AuthError::InternalError(e.to_string()))?;
        if taken {
            Ok(())
        } else {
            Err(AuthError::AuthorizationFailed(
                "this sign-in was completed already (the callback was replayed)".into(),
            ))
        }
    }
}

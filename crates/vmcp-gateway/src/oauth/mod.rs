//! OAuth 2.1 on both sides (docs/oauth.md): vMCP as the client of upstream servers that demand
//! it (`upstream`), and vMCP endpoints as protected resources that accept an identity
//! provider's access tokens (`verify`).

pub mod upstream;
pub mod verify;

use vmcp_domain::VmcpAuth;

use crate::{ErrorKind, Gateway, GatewayError, Result};

/// OAuth settings of the whole gateway.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// How browsers and clients reach vMCP (`--public-url`), e.g. `https://vmcp.example.com`.
    /// Names the callback of upstream sign-ins and the resource URLs of protected endpoints.
    /// `None`: the bind address for the callback, and each request's `Host` for resources.
    pub public_url: Option<url::Url>,
    /// The callback's base when no public URL is set (`http://{bind}`).
    pub fallback_url: url::Url,
    /// Protection of every vMCP endpoint that sets no `auth` of its own (`--oauth-issuer`).
    pub default_auth: Option<VmcpAuth>,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        Self {
            public_url: None,
            fallback_url: url::Url::parse("http://127.0.0.1:8000").expect("a URL"),
            default_auth: None,
        }
    }
}

impl OAuthOptions {
    /// The base URL of vMCP for browsers coming back from a sign-in.
    pub fn callback_base(&self) -> &url::Url {
        self.public_url.as_ref().unwrap_or(&self.fallback_url)
    }
}

/// Put by the HTTP layer in a request's extensions once its access token is verified: the
/// token's subject, which names the client in the operation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject(pub String);

/// What a browser brings back to `GET /api/oauth/callback`.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// How a vMCP endpoint is protected, as a request sees it.
#[derive(Debug, Clone)]
pub struct Protection {
    pub auth: VmcpAuth,
    /// The endpoint's URLs (by id and by name) under the base: the accepted audiences. The
    /// first is the one the request used. Empty when vMCP cannot tell its own URL (no
    /// `--public-url`, and a request whose `Host` cannot be trusted for it).
    pub resources: Vec<String>,
    /// Where the endpoint's protected-resource metadata is (RFC 9728).
    pub metadata_url: String,
}

/// `base` + the path segments, each percent-encoded as a URL path segment.
fn under(base: &str, segments: &[&str]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url.to_string())
}

impl Gateway {
    /// The OAuth settings of the gateway.
    pub fn oauth_options(&self) -> &OAuthOptions {
        &self.oauth
    }

    /// Whether the endpoint of `vmcp` (id or name, decoded) requires OAuth.
    pub fn mcp_protected(&self, vmcp: &str) -> bool {
        self.vmcp_entry(vmcp)
            .is_some_and(|e| e.vmcp.auth.is_some() || self.oauth.default_auth.is_some())
    }

    /// How the endpoint of `vmcp` (id or name, decoded, as in the request's path) is
    /// protected, if it is; `raw`: that path segment as the request spelled it (clients name
    /// the resource by the URL they use); `base`: the request's own origin when it can be
    /// trusted, used when no public URL is set.
    pub fn mcp_protection(
        &self,
        vmcp: &str,
        raw: Option<&str>,
        base: Option<&str>,
    ) -> Option<Protection> {
        let entry = self.vmcp_entry(vmcp)?;
        let auth = entry
            .vmcp
            .auth
            .clone()
            .or_else(|| self.oauth.default_auth.clone())?;
        let base = match &self.oauth.public_url {
            Some(u) => Some(u.as_str().to_string()),
            None => base.map(String::from),
        };
        let Some(base) = base else {
            return Some(Protection {
                auth,
                resources: Vec::new(),
                metadata_url: String::new(),
            });
        };
        let mut resources = Vec::new();
        let spelled = raw.map(|raw| format!("{}/vmcp/{raw}/mcp", base.trim_end_matches('/')));
        resources.extend(spelled);
        for name in [vmcp, &entry.vmcp.vmcp_id, &entry.vmcp.name] {
            if let Some(url) = under(&base, &["vmcp", name, "mcp"])
                && !resources.contains(&url)
            {
                resources.push(url);
            }
        }
        let metadata_url = match raw {
            Some(raw) => format!(
                "{}/.well-known/oauth-protected-resource/vmcp/{raw}/mcp",
                base.trim_end_matches('/')
            ),
            None => under(
                &base,
                &[
                    ".well-known",
                    "oauth-protected-resource",
                    "vmcp",
                    vmcp,
                    "mcp",
                ],
            )
            .unwrap_or_default(),
        };
        Some(Protection {
            auth,
            resources,
            metadata_url,
        })
    }

    /// Checks a client's access token against a protection.
    pub async fn verify_token(
        &self,
        token: &str,
        protection: &Protection,
    ) -> std::result::Result<verify::TokenIdentity, verify::Denied> {
        self.verifier
            .verify(
                token,
                &protection.auth.issuer,
                &protection.resources,
                &protection.auth.scopes,
            )
            .await
    }

    /// Completes (or, on an error from the authorization server, ends) the sign-in that
    /// `callback.state` names, and connects its server. Returns the server's name.
    pub async fn oauth_callback(&self, callback: Callback) -> Result<String> {
        let refused =
            |detail: String| GatewayError::new(ErrorKind::BadRequest, "sign-in failed", detail);
        let Some(state) = callback.state.as_deref().filter(|s| !s.is_empty()) else {
            return Err(refused(
                "the callback has no state parameter: open the server's authorization_url to \
                 sign in"
                    .into(),
            ));
        };
        let oauth = self.supervisor.oauth().clone();
        let server_id = oauth
            .server_of_state(state)
            .await
            .map_err(|e| GatewayError::new(ErrorKind::Unavailable, "sign-in failed", e.0))?
            .ok_or_else(|| {
                refused(
                    "this sign-in is unknown, was completed already, or expired (15 minutes): \
                     connect the server again for a new authorization_url"
                        .into(),
                )
            })?;
        let slot = self
            .supervisor
            .slot(&server_id)
            .ok_or_else(|| refused("the server of this sign-in no longer exists".into()))?;
        let name = slot.name();
        if let Some(error) = &callback.error {
            let _ = oauth.abandon(state).await;
            let detail = format!(
                "the authorization server refused the sign-in for {name}: {error}{}",
                callback
                    .error_description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
            slot.log().push(&format!("[vmcp] {detail}"));
            // The URL shown is spent: a fresh sign-in for the next attempt.
            self.supervisor.retry_sign_in(&slot);
            return Err(refused(detail));
        }
        let Some(code) = callback.code.as_deref() else {
            return Err(refused("the callback has no code parameter".into()));
        };
        let Some((url, auth)) = self.supervisor.oauth_target(&slot) else {
            return Err(refused(format!("{name} no longer has config.auth")));
        };
        if let Err(e) = oauth
            .complete(
                &server_id,
                &url,
                &auth,
                code,
                state,
                callback.iss.as_deref(),
            )
            .await
        {
            slot.log().push(&format!("[vmcp] sign-in failed: {e}"));
            return Err(refused(format!("{name}: {e}")));
        }
        slot.log().push("[vmcp] signed in; connecting");
        self.supervisor.retry_sign_in(&slot);
        Ok(name)
    }
}

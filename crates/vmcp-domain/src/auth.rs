//! OAuth settings on both sides: how vMCP signs in to an upstream server (`config.auth` of a
//! server) and what a vMCP's MCP endpoint demands of its clients (`auth` of a vMCP).
//! See docs/oauth.md.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

/// The kind of authentication. Only OAuth 2.1 (the MCP authorization specification) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    #[default]
    Oauth,
}

/// How vMCP obtains tokens for an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    /// A person signs in once in a browser (authorization code with PKCE); vMCP keeps and
    /// refreshes the tokens.
    #[default]
    AuthorizationCode,
    /// Machine to machine: `client_id` and `client_secret` are exchanged for a token, no person
    /// involved.
    ClientCredentials,
}

impl OAuthGrant {
    fn is_default(&self) -> bool {
        *self == OAuthGrant::AuthorizationCode
    }
}

/// `config.auth` of a `streamable_http` server: vMCP is an OAuth client of it. On the server's
/// 401, vMCP discovers its authorization server (RFC 9728, RFC 8414), identifies itself by the
/// configured client, a Client ID Metadata Document or dynamic registration (RFC 7591), and
/// the server's status becomes `auth_required` with an `authorization_url` for a person to
/// open; the browser comes back to `GET /api/oauth/callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "oauth", "scopes": ["mcp:tools"]}))]
pub struct UpstreamAuth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// A client registered in advance with the authorization server (else vMCP registers
    /// itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The secret of `client_id`, for confidential clients. Write-only: shown masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Scopes to ask for (default: what the server's challenge or metadata names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `authorization_code` (default) or `client_credentials` (needs `client_id` and
    /// `client_secret`).
    #[serde(default, skip_serializing_if = "OAuthGrant::is_default")]
    pub grant: OAuthGrant,
}

fn check_scopes(scopes: &[String], field: &str) -> Result<(), ValidationError> {
    if scopes.len() > 50 {
        return Err(ValidationError::new(field, "lists more than 50 scopes"));
    }
    for (i, s) in scopes.iter().enumerate() {
        // RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if s.is_empty()
            || s.len() > 200
            || !s
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!(
                    "{s:?} is not a scope: 1 to 200 printable characters without spaces, quotes \
                     or backslashes"
                ),
            ));
        }
    }
    Ok(())
}

fn check_short(value: &str, field: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.len() > 2000 || value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must be 1 to 2000 characters without control characters",
        ));
    }
    Ok(())
}

impl UpstreamAuth {
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if let Some(id) = &self.client_id {
            check_short(id, &format!("{field}.client_id"))?;
        }
        if let Some(secret) = &self.client_secret {
            check_short(secret, &format!("{field}.client_secret"))?;
            if self.client_id.is_none() {
                return Err(ValidationError::new(
                    format!("{field}.client_secret"),
                    "needs client_id: a secret belongs to a client registered in advance",
                ));
            }
        }
        check_scopes(&self.scopes, &format!("{field}.scopes"))?;
        if self.grant == OAuthGrant::ClientCredentials
            && (self.client_id.is_none() || self.client_secret.is_none())
        {
            return Err(ValidationError::new(
                format!("{field}.grant"),
                "\"client_credentials\" needs client_id and client_secret",
            ));
        }
        Ok(())
    }
}

/// `auth` of a vMCP: its MCP endpoint is an OAuth protected resource (RFC 9728). Clients must
/// send `Authorization: Bearer <JWT>` issued by `issuer` for the endpoint's URL (`aud`), with
/// the `scopes`; the token's subject names the client in logs and stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "oauth", "issuer": "https://login.example.com", "scopes": ["mcp:tools"]}))]
pub struct VmcpAuth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// The authorization server's issuer identifier (its metadata is fetched from
    /// `{issuer}/.well-known/oauth-authorization-server` or `openid-configuration`).
    pub issuer: String,
    /// Scopes every token must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl VmcpAuth {
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        match url::Url::parse(&self.issuer) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none() => {}
            _ => {
                return Err(ValidationError::new(
                    format!("{field}.issuer"),
                    format!(
                        "{:?} is not an issuer: an https:// URL (http:// for tests) without \
                         query or fragment",
                        self.issuer
                    ),
                ));
            }
        }
        check_scopes(&self.scopes, &format!("{field}.scopes"))
    }
}

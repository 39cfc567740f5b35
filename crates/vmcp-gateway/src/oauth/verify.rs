//! Access tokens of a vMCP's MCP clients (the vMCP endpoint as an OAuth protected resource):
//! JWTs signed by a key of the issuer's JWKS, for this endpoint's URL, unexpired, with the
//! scopes the vMCP requires.
//!
//! Invariants: only asymmetric signatures are accepted (a key published in a JWKS can never
//! verify an HMAC); the issuer's metadata must name the issuer itself (RFC 8414 section 3.3);
//! keys are cached for `KEYS_TTL`, and a token signed by a key id not in the cache refetches
//! the set at most once per `REFETCH_EVERY` (key rotation without a fetch per forged token).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

/// How long a fetched key set is used before it is fetched again.
const KEYS_TTL: Duration = Duration::from_secs(600);
/// Least time between two fetches of one issuer's keys for unknown key ids.
const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 10;

/// Who a valid token says the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// `sub`: becomes the client id in logs and stats.
    pub subject: String,
    /// `client_id` or `azp`, when the token names the OAuth client.
    pub client: Option<String>,
    pub scopes: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// A token that is not valid here: 401 `invalid_token`.
    Invalid(String),
    /// Valid, but without these scopes: 403 `insufficient_scope`.
    InsufficientScope(Vec<String>),
    /// The issuer's metadata or keys could not be fetched: the token cannot be checked (502).
    Unavailable(String),
}

#[derive(Debug, Deserialize)]
struct IssuerMetadata {
    issuer: String,
    jwks_uri: Option<String>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

struct Issuer {
    jwks_uri: String,
    keys: Option<Keys>,
    last_fetch: Option<Instant>,
}

/// How long an issuer whose metadata could not be read is not asked again (each request with a
/// JWT-shaped token would otherwise cost outbound requests).
const METADATA_RETRY: Duration = Duration::from_secs(30);

/// Verifies tokens; caches issuers' metadata and keys. Cheap to share.
#[derive(Clone)]
pub struct Verifier {
    http: reqwest::Client,
    issuers: Arc<Mutex<HashMap<String, Arc<Mutex<Issuer>>>>>,
    /// Issuers whose metadata could not be read, since when and why.
    unreadable: Arc<Mutex<HashMap<String, (Instant, Denied)>>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<serde_json::Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// The well-known URLs of an issuer's metadata, in the order tried: RFC 8414 (path inserted
/// after the host), then OpenID Connect Discovery (appended).
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )];
    urls.push(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ));
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    }
    urls
}

impl Verifier {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client builds"),
            issuers: Arc::default(),
            unreadable: Arc::default(),
        }
    }

    /// Checks `token` for a resource: issued by `issuer`, for one of `audiences`, with `scopes`.
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
        scopes: &[String],
    ) -> Result<TokenIdentity, Denied> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Denied::Invalid(format!("not a JWT: {e}")))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(Denied::Invalid(format!(
                "signature algorithm {:?} is not accepted (asymmetric signatures only)",
                header.alg
            )));
        }
        let key = self.key(issuer, header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Denied::Invalid(match e.kind() {
                K::ExpiredSignature => "the token has expired".to_string(),
                K::InvalidIssuer => format!("the token was not issued by {issuer}"),
                K::InvalidAudience => format!(
                    "the token is not meant for this endpoint (its audience must be {})",
                    audiences.first().map(String::as_str).unwrap_or("")
                ),
                K::InvalidSignature => "the token's signature is not valid".to_string(),
                K::ImmatureSignature => "the token is not valid yet".to_string(),
                K::MissingRequiredClaim(c) => format!("the token has no {c:?} claim"),
                _ => format!("the token is not valid: {e}"),
            })
        })?;
        let claims = data.claims;
        let mut granted: Vec<String> = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect();
        match &claims.scp {
            Some(serde_json::Value::String(s)) => {
                granted.extend(s.split_whitespace().map(String::from))
            }
            Some(serde_json::Value::Array(items)) => {
                granted.extend(items.iter().filter_map(|v| v.as_str().map(String::from)))
            }
            _ => {}
        }
        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !granted.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Denied::InsufficientScope(missing));
        }
        Ok(TokenIdentity {
            subject: claims.sub.unwrap_or_default(),
            client: claims.client_id.or(claims.azp),
            scopes: granted,
        })
    }

    async fn issuer(&self, issuer: &str) -> Result<Arc<Mutex<Issuer>>, Denied> {
        if let Some(i) = self.issuers.lock().await.get(issuer) {
            return Ok(i.clone());
        }
        if let Some((since, why)) = self.unreadable.lock().await.get(issuer)
            && since.elapsed() < METADATA_RETRY
        {
            return Err(why.clone());
        }
        let outcome = self.read_metadata(issuer).await;
        match &outcome {
            Ok(entry) => {
                self.issuers
                    .lock()
                    .await
                    .insert(issuer.to_string(), entry.clone());
                self.unreadable.lock().await.remove(issuer);
            }
            Err(why) => {
                self.unreadable
                    .lock()
                    .await
                    .insert(issuer.to_string(), (Instant::now(), why.clone()));
            }
        }
        outcome
    }

    async fn read_metadata(&self, issuer: &str) -> Result<Arc<Mutex<Issuer>>, Denied> {
        let mut failures = Vec::new();
        for url in metadata_urls(issuer) {
            let answer = match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.json::<IssuerMetadata>().await,
                Ok(r) => {
                    failures.push(format!("{url}: HTTP {}", r.status().as_u16()));
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{url}: {}", describe(&e)));
                    continue;
                }
            };
            let metadata = match answer {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{url}: not metadata ({e})"));
                    continue;
                }
            };
            if metadata.issuer != issuer {
                // RFC 8414 section 3.3: a document naming another issuer is not this one's.
                return Err(Denied::Unavailable(format!(
                    "the metadata at {url} names the issuer {:?}, not {issuer:?}",
                    metadata.issuer
                )));
            }
            let Some(jwks_uri) = metadata.jwks_uri else {
                return Err(Denied::Unavailable(format!(
                    "the authorization server {issuer} publishes no jwks_uri: its tokens cannot \
                     be verified here"
                )));
            };
            return Ok(Arc::new(Mutex::new(Issuer {
                jwks_uri,
                keys: None,
                last_fetch: None,
            })));
        }
        Err(Denied::Unavailable(format!(
            "cannot read the metadata of the authorization server {issuer}: {}",
            failures.join("; ")
        )))
    }

    async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, Denied> {
        let entry = self.issuer(issuer).await?;
        let mut entry = entry.lock().await;
        let stale = entry
            .keys
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() > KEYS_TTL);
        if stale {
            self.fetch(&mut entry).await?;
        }
        if let Some(key) = find(entry.keys.as_ref(), kid, alg) {
            return key;
        }
        // Perhaps the keys rotated: fetch again, but not for every unknown kid.
        if entry.last_fetch.is_none_or(|t| t.elapsed() > REFETCH_EVERY) {
            self.fetch(&mut entry).await?;
            if let Some(key) = find(entry.keys.as_ref(), kid, alg) {
                return key;
            }
        }
        Err(Denied::Invalid(format!(
            "the token is signed by a key {issuer} does not publish (kid {kid:?})"
        )))
    }

    async fn fetch(&self, entry: &mut Issuer) -> Result<(), Denied> {
        entry.last_fetch = Some(Instant::now());
        let set = match self.http.get(&entry.jwks_uri).send().await {
            Ok(r) if r.status().is_success() => r.json::<JwkSet>().await.map_err(|e| {
                Denied::Unavailable(format!(
                    "the key set at {} is not a JWKS: {e}",
                    entry.jwks_uri
                ))
            }),
            Ok(r) => Err(Denied::Unavailable(format!(
                "the key set at {} answered HTTP {}",
                entry.jwks_uri,
                r.status().as_u16()
            ))),
            Err(e) => Err(Denied::Unavailable(format!(
                "cannot fetch the key set at {}: {}",
                entry.jwks_uri,
                describe(&e)
            ))),
        };
        match set {
            Ok(set) => {
                entry.keys = Some(Keys {
                    set,
                    fetched: Instant::now(),
                });
                Ok(())
            }
            // Keys fetched before stay usable while the server is down; the next try is in
            // REFETCH_EVERY, not on every request.
            Err(_) if entry.keys.is_some() => {
                if let Some(keys) = entry.keys.as_mut() {
                    keys.fetched = Instant::now()
                        .checked_sub(KEYS_TTL.saturating_sub(REFETCH_EVERY))
                        .unwrap_or(keys.fetched);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn find(
    keys: Option<&Keys>,
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<Result<DecodingKey, Denied>> {
    let set = &keys?.set;
    let jwk = match kid {
        Some(kid) => set.find(kid)?,
        // No key id: only an unambiguous set will do.
        None if set.keys.len() == 1 => &set.keys[0],
        None => return None,
    };
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg.to_string() != format!("{alg:?}")
    {
        return Some(Err(Denied::Invalid(format!(
            "the token says {alg:?} but its key is for {key_alg}"
        ))));
    }
    Some(
        DecodingKey::from_jwk(jwk)
            .map_err(|e| Denied::Invalid(format!("the signing key cannot be used: {e}"))),
    )
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_rfc_8414_then_openid() {
        assert_eq!(
            metadata_urls("https://login.example.com"),
            vec![
                "https://login.example.com/.well-known/oauth-authorization-server",
                "https://login.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("https://login.example.com/tenant/1/"),
            vec![
                "https://login.example.com/.well-known/oauth-authorization-server/tenant/1",
                "https://login.example.com/tenant/1/.well-known/openid-configuration",
                "https://login.example.com/.well-known/openid-configuration/tenant/1",
            ]
        );
    }
}

//! Secrets are write-only: a server's `env` and `headers` values and a vMCP's `active_config`
//! values that look secret are shown as `SECRET_MASK`, and a document that sends the mask back
//! means "keep the stored value".
//!
//! What looks secret:
//! - a name containing `key`, `token`, `secret`, `password`, `passwd`, `passphrase`, `pwd`,
//!   `credential`, `auth`, `cookie`, `session` or `private` (any case), or whose last word (words
//!   split at `_`, `-`, `.`, digits and camelCase) is `pass`, `pgpass`, `pat`, `pw`, `access` or
//!   `jwt`: `PGPASS`, `DB_PASS`, `GITHUB_PAT`, `githubPat`, `ACCESS` are secret; `PATH`,
//!   `passthrough`, `BYPASS_CACHE`, `compat`, `ACCESS_LOG`, `JWT_ISSUER` are not;
//! - a value that carries a credential itself: `Bearer ...`, `Basic ...`, a URL with a password,
//!   or a token of a well-known shape anywhere in it (GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`
//!   and `github_pat_`, OpenAI and Anthropic `sk-`, Slack `xox?-`, AWS `AKIA`/`ASIA`, GitLab
//!   `glpat-`, and JWTs: three base64url segments, the first starting `eyJ`);
//! - a name listed in the server's or vMCP's `secret_keys`, for what no rule can guess.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::ValidationError;

/// What a hidden value is shown as.
pub const SECRET_MASK: &str = "********";

/// Names containing one of these are secret.
const SECRET_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "credential",
    "auth",
    "cookie",
    "session",
    "private",
];

/// Names whose last word is one of these are secret (as substrings they would catch `path`,
/// `compass`, `passthrough`; as any word, `ACCESS_LOG` or `JWT_ISSUER`).
const SECRET_LAST_WORDS: &[&str] = &["pass", "pgpass", "pat", "pw", "access", "jwt"];

/// The words of a name: split at anything but letters, and where lower case turns upper
/// (`githubPat` -> `github`, `pat`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphabetic() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a variable, header or configuration key names a secret.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w))
        || words(name)
            .last()
            .is_some_and(|w| SECRET_LAST_WORDS.contains(&w.as_str()))
}

/// Whether `name` is secret by the rules or by a `secret_keys` list (any case).
pub fn secret_key(name: &str, extra: &[String]) -> bool {
    secret_name(name) || extra.iter().any(|k| k.eq_ignore_ascii_case(name))
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `word` (a run of `[A-Za-z0-9_.-]`) has the shape of a well-known token.
fn token_shaped(word: &str) -> bool {
    // (prefix, shortest rest) of tokens whose rest is `[A-Za-z0-9_-]`.
    const PREFIXED: &[(&str, usize)] = &[
        ("ghp_", 30),
        ("gho_", 30),
        ("ghu_", 30),
        ("ghs_", 30),
        ("ghr_", 30),
        ("github_pat_", 30),
        ("sk-ant-", 20),
        ("sk-", 20),
        ("xoxb-", 10),
        ("xoxp-", 10),
        ("xoxa-", 10),
        ("xoxr-", 10),
        ("xoxs-", 10),
        ("xoxe-", 10),
        ("glpat-", 20),
    ];
    for (prefix, min) in PREFIXED {
        if let Some(rest) = word.strip_prefix(prefix)
            && rest.len() >= *min
            && rest.chars().all(is_token_char)
        {
            return true;
        }
    }
    // AWS access key ids.
    if (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.len() == 20
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return true;
    }
    // JWT: header.payload.signature, base64url, the header a JSON object (`{"` is `eyJ`).
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[0].len() >= 10
        && parts[1].len() >= 10
        && parts[2].len() >= 10
        && parts.iter().all(|p| p.chars().all(is_token_char))
}

/// Whether a value carries a credential whatever its name.
pub fn secret_value(value: &str) -> bool {
    let v = value.trim_start();
    let lower = v.get(..7).unwrap_or(v).to_ascii_lowercase();
    if lower.starts_with("bearer ") || lower.starts_with("basic ") {
        return true;
    }
    // scheme://user:password@host
    if let Some((_, rest)) = v.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return true;
        }
    }
    v.split(|c: char| !(is_token_char(c) || c == '.'))
        .any(token_shaped)
}

fn hidden(name: &str, value: &str, extra: &[String]) -> bool {
    !value.is_empty() && (secret_key(name, extra) || secret_value(value))
}

/// `map` with its secret values masked (`extra`: names to treat as secret).
pub fn mask_strings(map: &BTreeMap<String, String>, extra: &[String]) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| {
            let v = if hidden(k, v, extra) {
                SECRET_MASK.to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Replaces each masked value of `map` by the stored one. A mask with nothing stored under its
/// name is an error at `field.NAME`.
pub fn restore_strings(
    map: &mut BTreeMap<String, String>,
    stored: Option<&BTreeMap<String, String>>,
    field: &str,
) -> Result<(), ValidationError> {
    for (k, v) in map.iter_mut() {
        if v != SECRET_MASK {
            continue;
        }
        match stored.and_then(|s| s.get(k)) {
            Some(old) => v.clone_from(old),
            None => return Err(masked_without_value(&format!("{field}.{k}"))),
        }
    }
    Ok(())
}

fn masked_without_value(field: &str) -> ValidationError {
    ValidationError::new(
        field,
        format!(
            "is {SECRET_MASK:?}, the mask of a hidden value, but there is no stored value to \
             keep; send the real value (an export hides secrets unless asked with \
             ?include_secrets=true)"
        ),
    )
}

/// A configuration object with the values of secret-looking keys (and credential-carrying
/// strings) masked, at any depth. `extra`: key names to treat as secret (`secret_keys`).
pub fn mask_config(config: &Map<String, Value>, extra: &[String]) -> Map<String, Value> {
    fn walk(key: &str, v: &Value, extra: &[String]) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), walk(k, v, extra)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| walk(key, v, extra)).collect())
            }
            Value::String(s) if hidden(key, s, extra) => Value::String(SECRET_MASK.into()),
            Value::Bool(_) | Value::Number(_) if secret_key(key, extra) => {
                Value::String(SECRET_MASK.into())
            }
            other => other.clone(),
        }
    }
    config
        .iter()
        .map(|(k, v)| (k.clone(), walk(k, v, extra)))
        .collect()
}

/// Replaces each masked value of `config` by the value at the same path in `stored`.
pub fn restore_config(
    config: &mut Map<String, Value>,
    stored: Option<&Map<String, Value>>,
    field: &str,
) -> Result<(), ValidationError> {
    fn walk(v: &mut Value, stored: Option<&Value>, path: &str) -> Result<(), ValidationError> {
        match v {
            Value::String(s) if s == SECRET_MASK => match stored {
                Some(old) if !old.is_object() && !old.is_array() => {
                    *v = old.clone();
                    Ok(())
                }
                _ => Err(masked_without_value(path)),
            },
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    walk(child, stored.and_then(|s| s.get(k)), &format!("{path}.{k}"))?;
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    walk(
                        child,
                        stored.and_then(|s| s.get(i)),
                        &format!("{path}[{i}]"),
                    )?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    let stored = stored.map(|s| Value::Object(s.clone()));
    for (k, child) in config.iter_mut() {
        walk(
            child,
            stored.as_ref().and_then(|s| s.get(k)),
            &format!("{field}.{k}"),
        )?;
    }
    Ok(())
}

/// Secret values shorter than this are not searched for in logged text (too many false hits).
pub const MIN_SCRUBBED_LEN: usize = 6;

/// The secret string values of a configuration (those `mask_config` hides), long enough to be
/// searched for in text.
pub fn config_secret_values(config: &Map<String, Value>, extra: &[String]) -> Vec<String> {
    fn walk(key: &str, v: &Value, extra: &[String], out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(k, v, extra, out)),
            Value::Array(items) => items.iter().for_each(|v| walk(key, v, extra, out)),
            Value::String(s) if hidden(key, s, extra) && s.len() >= MIN_SCRUBBED_LEN => {
                out.push(s.clone())
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    config.iter().for_each(|(k, v)| walk(k, v, extra, &mut out));
    out
}

/// `text` with every occurrence of a secret replaced by the mask; `None` when none occurs.
pub fn scrub<S: AsRef<str>>(text: &str, secrets: &[S]) -> Option<String> {
    let mut out: Option<String> = None;
    for secret in secrets {
        let secret = secret.as_ref();
        let current = out.as_deref().unwrap_or(text);
        if current.contains(secret) {
            out = Some(current.replace(secret, SECRET_MASK));
        }
    }
    out
}

/// The value of JSON `text` that `scrub` changed (a secret cut across JSON escapes could break
/// the text: then the mask alone).
pub fn reparse_scrubbed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(SECRET_MASK.into()))
}

/// `value` with every occurrence of a secret inside its strings (keys included) masked.
pub fn scrub_value<S: AsRef<str>>(value: &Value, secrets: &[S]) -> Option<Value> {
    if secrets.is_empty() {
        return None;
    }
    scrub(&value.to_string(), secrets).map(|text| reparse_scrubbed(&text))
}

/// Whether any value of `config` (at any depth) is the mask.
pub fn config_has_mask(config: &Map<String, Value>) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::String(s) => s == SECRET_MASK,
            Value::Object(m) => m.values().any(walk),
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    config.values().any(walk)
}

impl crate::ServerConfig {
    /// This config with its secret `env` and `headers` values masked.
    pub fn masked(&self) -> Self {
        let mut c = self.clone();
        c.env = mask_strings(&self.env, &self.secret_keys);
        c.headers = mask_strings(&self.headers, &self.secret_keys);
        if let Some(auth) = c.auth.as_mut()
            && auth.client_secret.is_some()
        {
            auth.client_secret = Some(SECRET_MASK.into());
        }
        c
    }

    /// The secret `env` and `headers` values, long enough to be searched for in text.
    pub fn secret_values(&self) -> Vec<String> {
        self.env
            .iter()
            .chain(self.headers.iter())
            .filter(|(k, v)| hidden(k, v, &self.secret_keys))
            .chain(
                self.auth
                    .iter()
                    .filter_map(|a| a.client_secret.as_ref().map(|s| (s, s))),
            )
            .flat_map(|(_, v)| {
                // An `Authorization: Bearer X` header: X alone may show up too.
                let bare = v
                    .split_once(' ')
                    .filter(|_| secret_value(v))
                    .map(|(_, rest)| rest.trim().to_string());
                std::iter::once(v.clone()).chain(bare)
            })
            .filter(|v| v.len() >= MIN_SCRUBBED_LEN)
            .collect()
    }

    /// Whether any `env` or `headers` value is the mask.
    pub fn has_mask(&self) -> bool {
        self.env
            .values()
            .chain(self.headers.values())
            .chain(self.auth.iter().filter_map(|a| a.client_secret.as_ref()))
            .any(|v| v == SECRET_MASK)
    }

    /// Puts the stored values back where this config has the mask. `field` is where the config
    /// sits in the request (`config`, `mcp_servers[0].config`).
    pub fn restore_masked(
        &mut self,
        stored: Option<&crate::ServerConfig>,
        field: &str,
    ) -> Result<(), ValidationError> {
        restore_strings(
            &mut self.env,
            stored.map(|s| &s.env),
            &format!("{field}.env"),
        )?;
        restore_strings(
            &mut self.headers,
            stored.map(|s| &s.headers),
            &format!("{field}.headers"),
        )?;
        if let Some(secret) = self
            .auth
            .as_mut()
            .and_then(|a| a.client_secret.as_mut())
            .filter(|s| *s == SECRET_MASK)
        {
            match stored
                .and_then(|s| s.auth.as_ref())
                .and_then(|a| a.client_secret.as_ref())
            {
                Some(old) => secret.clone_from(old),
                None => {
                    return Err(masked_without_value(&format!("{field}.auth.client_secret")));
                }
            }
        }
        Ok(())
    }
}

impl crate::McpServer {
    /// This server as the API shows it: secrets masked.
    pub fn masked(mut self) -> Self {
        self.config = self.config.masked();
        self
    }
}

impl crate::Vmcp {
    /// This vMCP as the API shows it: secrets in `active_config` masked.
    pub fn masked(mut self) -> Self {
        self.active_config = mask_config(&self.active_config, &self.secret_keys);
        self
    }
}

impl crate::VmcpExport {
    /// This export with every secret masked (its servers' and its `active_config`'s).
    pub fn masked(mut self) -> Self {
        self.active_config = mask_config(&self.active_config, &self.secret_keys);
        for s in &mut self.mcp_servers {
            s.config = s.config.masked();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_and_values_that_look_secret() {
        for n in [
            "API_KEY",
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "Authorization",
            "X-Api-Key",
            "db_password",
            "Cookie",
            "privateKey",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "PGPASS",
            "PGPASSWORD",
            "DB_PASS",
            "GITHUB_PAT",
            "githubPat",
            "ACCESS",
            "ACCESS_KEY",
            "CREDENTIAL",
            "CREDENTIALS",
            "PRIVATE_KEY",
            "SESSION",
            "COOKIE",
            "JWT",
            "smtp-pw",
            "GPG_PASSPHRASE",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "LOG_LEVEL",
            "PATH",
            "Accept",
            "region",
            "url",
            "path",
            "passthrough",
            "PASSTHROUGH_MODE",
            "BYPASS_CACHE",
            "compass",
            "compat",
            "PATTERN",
            "PGPASSFILE",
            "ACCESS_LOG",
            "PASS_THROUGH",
            "JWT_ISSUER",
            "GITHUB_PAT_FILE",
        ] {
            assert!(!secret_name(n), "{n}");
        }
        assert!(secret_key("SERVICE_ID", &["service_id".to_string()]));
        assert!(!secret_key("SERVICE_ID", &[]));
        for v in [
            "Bearer abc",
            "basic Zm9vOmJhcg==",
            "postgres://me:pw@db:5432/x",
            "https://u:p@h/path@x",
        ] {
            assert!(secret_value(v), "{v}");
        }
        for v in [
            "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "token ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxb-1234567890-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "glpat-AbCdEfGhIjKlMnOpQrSt",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "https://api.example.com/?token=ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        ] {
            assert!(secret_value(v), "{v}");
        }
        for v in [
            "debug",
            "sk-learn",
            "ghp_short",
            "AKIA is an AWS prefix",
            "eyJ.a.b",
            "version.1.2",
            "https://example.com/mcp",
            "https://user@host/x",
            "mailto:a@b",
            "https://h/p?x=a:b@c",
        ] {
            assert!(!secret_value(v), "{v}");
        }
    }

    #[test]
    fn masks_and_restores_strings() {
        let stored: BTreeMap<String, String> = [
            ("API_KEY", "s3cret"),
            ("LOG_LEVEL", "debug"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
            ("EMPTY_TOKEN", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let masked = mask_strings(&stored, &[]);
        assert_eq!(masked["API_KEY"], SECRET_MASK);
        assert_eq!(masked["DATABASE_URL"], SECRET_MASK);
        assert_eq!(masked["LOG_LEVEL"], "debug");
        assert_eq!(masked["EMPTY_TOKEN"], "");
        let mut back = masked.clone();
        back.insert("LOG_LEVEL".into(), "info".into());
        restore_strings(&mut back, Some(&stored), "config.env").unwrap();
        assert_eq!(back["API_KEY"], "s3cret");
        assert_eq!(back["DATABASE_URL"], "postgres://u:pw@h/db");
        assert_eq!(back["LOG_LEVEL"], "info");

        let mut new = BTreeMap::from([("NEW_TOKEN".to_string(), SECRET_MASK.to_string())]);
        let err = restore_strings(&mut new, Some(&stored), "config.env").unwrap_err();
        assert_eq!(err.field, "config.env.NEW_TOKEN");
        assert!(restore_strings(&mut new, None, "config.env").is_err());
    }

    #[test]
    fn scrubs_secret_values_out_of_text() {
        let config = obj(
            json!({"api_key": "k1-long-secret", "pin": "abc", "region": "eu",
                                "nested": {"token": "tok-123456"}, "short_key": "abc"}),
        );
        let secrets = config_secret_values(&config, &[]);
        assert_eq!(secrets, ["k1-long-secret", "tok-123456"]);
        let v = json!({"content": [{"type": "text", "text": "key=k1-long-secret tok-123456 eu"}]});
        assert_eq!(
            scrub_value(&v, &secrets).unwrap(),
            json!({"content": [{"type": "text", "text": "key=******** ******** eu"}]})
        );
        assert_eq!(scrub_value(&json!({"text": "nothing"}), &secrets), None);
        let server = crate::ServerConfig {
            headers: [("Authorization".to_string(), "Bearer abcdef123".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(server.secret_values(), ["Bearer abcdef123", "abcdef123"]);
        let server = crate::ServerConfig {
            env: [("SERVICE_ID".to_string(), "id-that-is-secret".to_string())].into(),
            secret_keys: vec!["service_id".into()],
            ..Default::default()
        };
        assert_eq!(server.secret_values(), ["id-that-is-secret"]);
        assert_eq!(server.masked().env["SERVICE_ID"], SECRET_MASK);
    }

    #[test]
    fn masks_and_restores_configs_at_any_depth() {
        let stored = obj(json!({
            "api_key": "k1", "region": "eu", "port": 5,
            "db": {"password": "pw", "host": "h", "url": "mysql://a:b@h/x"},
            "tokens": ["t1", "t2"], "auth": {"user": "me"}, "pin_code": null,
            "secret_number": 42
        }));
        let masked = mask_config(&stored, &[]);
        assert_eq!(
            Value::Object(masked.clone()),
            json!({
                "api_key": SECRET_MASK, "region": "eu", "port": 5,
                "db": {"password": SECRET_MASK, "host": "h", "url": SECRET_MASK},
                "tokens": [SECRET_MASK, SECRET_MASK], "auth": {"user": "me"}, "pin_code": null,
                "secret_number": SECRET_MASK
            })
        );
        assert!(config_has_mask(&masked));
        assert!(!config_has_mask(&stored));
        let mut back = masked.clone();
        back.insert("region".into(), json!("us"));
        restore_config(&mut back, Some(&stored), "active_config").unwrap();
        let mut expected = stored.clone();
        expected.insert("region".into(), json!("us"));
        assert_eq!(back, expected);

        let mut moved = obj(json!({"other": {"api_key": SECRET_MASK}}));
        let err = restore_config(&mut moved, Some(&stored), "active_config").unwrap_err();
        assert_eq!(err.field, "active_config.other.api_key");
    }
}

//! Secrets are write-only: a server's `env` and `headers` values and a vMCP's `active_config`
//! values that look secret are shown as `SECRET_MASK`, and a document that sends the mask back
//! means "keep the stored value".
//!
//! What looks secret: a name containing `key`, `token`, `secret`, `password`, `passwd`, `pwd`,
//! `credential`, `auth`, `cookie`, `session` or `private` (any case), or a value that carries
//! credentials itself (`Bearer ...`, `Basic ...`, a URL with a password).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::ValidationError;

/// What a hidden value is shown as.
pub const SECRET_MASK: &str = "********";

const SECRET_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "credential",
    "auth",
    "cookie",
    "session",
    "private",
];

/// Whether a variable, header or configuration key names a secret.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w))
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
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            return userinfo.contains(':');
        }
    }
    false
}

fn hidden(name: &str, value: &str) -> bool {
    !value.is_empty() && (secret_name(name) || secret_value(value))
}

/// `map` with its secret values masked.
pub fn mask_strings(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| {
            let v = if hidden(k, v) {
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
/// strings) masked, at any depth.
pub fn mask_config(config: &Map<String, Value>) -> Map<String, Value> {
    fn walk(key: &str, v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), walk(k, v))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(key, v)).collect()),
            Value::String(s) if hidden(key, s) => Value::String(SECRET_MASK.into()),
            Value::Bool(_) | Value::Number(_) if secret_name(key) => {
                Value::String(SECRET_MASK.into())
            }
            other => other.clone(),
        }
    }
    config
        .iter()
        .map(|(k, v)| (k.clone(), walk(k, v)))
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
pub fn config_secret_values(config: &Map<String, Value>) -> Vec<String> {
    fn walk(key: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(k, v, out)),
            Value::Array(items) => items.iter().for_each(|v| walk(key, v, out)),
            Value::String(s) if hidden(key, s) && s.len() >= MIN_SCRUBBED_LEN => {
                out.push(s.clone())
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    config.iter().for_each(|(k, v)| walk(k, v, &mut out));
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
        c.env = mask_strings(&self.env);
        c.headers = mask_strings(&self.headers);
        c
    }

    /// The secret `env` and `headers` values, long enough to be searched for in text.
    pub fn secret_values(&self) -> Vec<String> {
        self.env
            .iter()
            .chain(self.headers.iter())
            .filter(|(k, v)| hidden(k, v))
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
        )
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
        self.active_config = mask_config(&self.active_config);
        self
    }
}

impl crate::VmcpExport {
    /// This export with every secret masked (its servers' and its `active_config`'s).
    pub fn masked(mut self) -> Self {
        self.active_config = mask_config(&self.active_config);
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
        for n in ["LOG_LEVEL", "PATH", "Accept", "region", "url"] {
            assert!(!secret_name(n), "{n}");
        }
        for v in [
            "Bearer abc",
            "basic Zm9vOmJhcg==",
            "postgres://me:pw@db:5432/x",
            "https://u:p@h/path@x",
        ] {
            assert!(secret_value(v), "{v}");
        }
        for v in [
            "debug",
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
        let masked = mask_strings(&stored);
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
        let secrets = config_secret_values(&config);
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
    }

    #[test]
    fn masks_and_restores_configs_at_any_depth() {
        let stored = obj(json!({
            "api_key": "k1", "region": "eu", "port": 5,
            "db": {"password": "pw", "host": "h", "url": "mysql://a:b@h/x"},
            "tokens": ["t1", "t2"], "auth": {"user": "me"}, "pin_code": null,
            "secret_number": 42
        }));
        let masked = mask_config(&stored);
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

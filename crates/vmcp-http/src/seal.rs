//! Sealed MCP session ids.
//!
//! A streamable HTTP session's id (`Mcp-Session-Id`) carries what any replica needs to resume
//! the session: the transport's own id of it, the vMCP, when it began and the client's
//! `initialize` parameters (negotiated version, client info, capabilities). It is sealed with
//! XChaCha20-Poly1305 (random 192-bit nonces, so no counter is shared between replicas): a
//! client can neither read nor forge one, and every replica that holds the same key opens it.
//!
//! The key comes from `VMCP_SESSION_KEY` (any secret of at least 32 characters, reduced to 256
//! bits with SHA-256); without one, each process makes a random key, so its sessions are its
//! own and end with it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version prefix of sealed ids (a later format gets another one).
const PREFIX: &str = "v1.";
/// Bound to every sealed id: a ciphertext made for anything else does not open as an id.
const AAD: &[u8] = b"vmcp mcp session id v1";
const NONCE_LEN: usize = 24;

/// What a sealed session id holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSeal {
    /// The transport's id of the session (the same on every replica that resumes it).
    #[serde(rename = "u")]
    pub transport_id: String,
    /// The vMCP the session belongs to.
    #[serde(rename = "v")]
    pub vmcp_id: String,
    /// When the session began, in seconds since the Unix epoch.
    #[serde(rename = "t")]
    pub began: i64,
    /// The client's `initialize` parameters, replayed to resume the session.
    #[serde(rename = "p")]
    pub initialize: serde_json::Value,
    /// On an OAuth-protected endpoint: the subject of the token that opened the session. Only
    /// requests with a token of the same subject may use it.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The key that seals and opens session ids.
#[derive(Clone)]
pub struct SessionKey {
    cipher: XChaCha20Poly1305,
    fingerprint: String,
    configured: bool,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("fingerprint", &self.fingerprint)
            .field("configured", &self.configured)
            .finish()
    }
}

impl SessionKey {
    /// The shortest secret accepted as a key.
    pub const MIN_LEN: usize = 32;

    /// The key of a configured secret (shared by the replicas of a deployment).
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.chars().count() < Self::MIN_LEN {
            return Err(format!(
                "the session key must be at least {} characters long (it has {}); make one with \
                 `openssl rand -base64 32` and give every replica the same",
                Self::MIN_LEN,
                secret.chars().count()
            ));
        }
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"vmcp session key v1\0")
            .chain_update(secret.as_bytes())
            .finalize()
            .into();
        Ok(Self::from_bytes(key, true))
    }

    /// A random key of this process alone: its sessions cannot move to another process.
    pub fn random() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self::from_bytes(key.into(), false)
    }

    fn from_bytes(key: [u8; 32], configured: bool) -> Self {
        let digest = Sha256::new()
            .chain_update(b"vmcp session key fingerprint\0")
            .chain_update(key)
            .finalize();
        let fingerprint = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            fingerprint,
            configured,
        }
    }

    /// Whether the key was configured (shared), rather than made by this process.
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// A short digest that tells keys apart without revealing them (replicas compare it).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn seal(&self, seal: &SessionSeal) -> String {
        let plain = serde_json::to_vec(seal).expect("a session seal serializes");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .expect("sealing cannot fail for a message this size");
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Opens a sealed id; `None` for anything this key did not seal (another key, a changed
    /// byte, another format).
    pub fn open(&self, id: &str) -> Option<SessionSeal> {
        let bytes = URL_SAFE_NO_PAD.decode(id.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> SessionSeal {
        SessionSeal {
            transport_id: "3f2a".into(),
            vmcp_id: "v1".into(),
            began: 1_790_000_000,
            initialize: serde_json::json!({"protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "c", "version": "1"}}),
            subject: None,
        }
    }

    #[test]
    fn replicas_with_one_secret_open_each_others_ids() {
        let a = SessionKey::from_secret("a shared secret of at least thirty-two chars").unwrap();
        let b = SessionKey::from_secret("a shared secret of at least thirty-two chars").unwrap();
        let id = a.seal(&seal());
        assert_eq!(b.open(&id), Some(seal()));
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.is_configured());
        // Two seals of the same session differ (random nonces) and both open.
        assert_ne!(a.seal(&seal()), id);
    }

    #[test]
    fn other_keys_changed_bytes_and_plain_ids_do_not_open() {
        let a = SessionKey::from_secret("a shared secret of at least thirty-two chars").unwrap();
        let other = SessionKey::from_secret("another secret of at least thirty-two chars").unwrap();
        let id = a.seal(&seal());
        assert_eq!(other.open(&id), None);
        assert_ne!(a.fingerprint(), other.fingerprint());
        let mut bytes = id.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(a.open(&String::from_utf8(bytes).unwrap()), None);
        for bad in ["", "v1.", "v1.AAAA", "3f2a", "v2.abc", &id[3..]] {
            assert_eq!(a.open(bad), None, "{bad}");
        }
        // The id reveals nothing of what it holds.
        assert!(!id.contains("2025-11-25") && !id.contains("3f2a"));
        assert!(SessionKey::random().open(&id).is_none());
    }

    #[test]
    fn short_secrets_are_refused() {
        let e = SessionKey::from_secret("short").unwrap_err();
        assert!(e.contains("at least 32 characters"), "{e}");
        assert!(!SessionKey::random().is_configured());
    }
}

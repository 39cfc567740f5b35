//! Identifiers: `server_<16 hex>`, `vmcp_<16 hex>`, `log_<16 hex>`.

pub const SERVER_PREFIX: &str = "server_";
pub const VMCP_PREFIX: &str = "vmcp_";
pub const LOG_PREFIX: &str = "log_";

fn new_id(prefix: &str) -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &uuid[..16])
}

pub fn new_server_id() -> String {
    new_id(SERVER_PREFIX)
}

pub fn new_vmcp_id() -> String {
    new_id(VMCP_PREFIX)
}

pub fn new_log_id() -> String {
    new_id(LOG_PREFIX)
}

/// Whether `s` has the shape of an id with this prefix (`prefix` then 1..=64 of `[A-Za-z0-9_-]`).
/// Ids from other installations keep working as long as they have this shape.
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_their_prefix_and_shape() {
        let id = new_server_id();
        assert!(is_id(SERVER_PREFIX, &id), "{id}");
        assert_eq!(id.len(), SERVER_PREFIX.len() + 16);
        assert!(is_id(VMCP_PREFIX, &new_vmcp_id()));
        assert!(is_id(LOG_PREFIX, &new_log_id()));
        assert_ne!(new_vmcp_id(), new_vmcp_id());
    }

    #[test]
    fn foreign_shapes_are_not_ids() {
        assert!(!is_id(VMCP_PREFIX, "vmcp_"));
        assert!(!is_id(VMCP_PREFIX, "server_abc"));
        assert!(!is_id(VMCP_PREFIX, "vmcp_a b"));
        assert!(!is_id(VMCP_PREFIX, "vmcp_../etc"));
    }
}

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

/// An id that does not have the shape of its kind, said for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId(pub String);

impl std::fmt::Display for BadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadId {}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parsed once, at the edge (a path, a body): past it, the id has the right shape.
            pub fn parse(s: &str) -> Result<Self, BadId> {
                if is_id($prefix, s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(BadId(format!(
                        "{s:?} is not a valid {what} id: {what} ids look like {prefix}0123456789abcdef",
                        what = $what,
                        prefix = $prefix
                    )))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// The id of a registered MCP server (`server_...`).
    ServerId,
    SERVER_PREFIX,
    "MCP server"
);
id_type!(
    /// The id of a vMCP (`vmcp_...`).
    VmcpId,
    VMCP_PREFIX,
    "vMCP"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ids_parse_once_and_say_what_is_wrong() {
        assert_eq!(
            ServerId::parse("server_0a1b").unwrap().as_str(),
            "server_0a1b"
        );
        let e = ServerId::parse("vmcp_0a1b").unwrap_err();
        assert!(e.0.contains("is not a valid MCP server id"), "{e}");
        assert!(VmcpId::parse("vmcp_../x").is_err());
    }

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

//! The replicas of a deployment, as `GET /api/replicas` shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ServerStatus, Timestamp};

/// A live replica on this database, and its own view of the servers (each replica runs its
/// own upstream connections).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "vmcp-0:8000", "started_at": "2026-11-30T06:00:00Z",
    "seen_at": "2026-11-30T06:10:00Z", "this": true,
    "servers": {"srv_1f2e3d4c5b6a": {"status": "connected"}}}))]
pub struct Replica {
    pub id: String,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it last said it is alive (every 5 s; a replica silent for 15 s is not listed).
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub seen_at: Timestamp,
    /// Whether this is the replica that answered.
    pub this: bool,
    /// The state of each server's connection on that replica, by server id.
    pub servers: BTreeMap<String, ReplicaServer>,
}

/// A server's connection on one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaServer {
    pub status: ServerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

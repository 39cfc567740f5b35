pub mod operations;
pub mod servers;
pub mod stats;
pub mod system;
pub mod vmcps;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A confirmation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"message": "vMCP deleted successfully"}))]
pub struct MessageBody {
    pub message: String,
}

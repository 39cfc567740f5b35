use std::fmt;

use vmcp_domain::ValidationError;
use vmcp_store::StoreError;

/// What was looked for and not found. Each face words its errors from it (MCP: which JSON-RPC
/// code; REST and MCP: where to list what exists), so no error text is ever matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Vmcp,
    Server,
    Tool,
    Prompt,
    Resource,
    /// A method the upstream (or its protocol revision) does not have.
    Method,
    /// Anything else (a log entry, an upstream's own "not found").
    Other,
}

impl What {
    /// The word for it in messages.
    pub fn word(self) -> &'static str {
        match self {
            What::Vmcp => "vMCP",
            What::Server => "MCP server",
            What::Tool => "tool",
            What::Prompt => "prompt",
            What::Resource => "resource",
            What::Method => "method",
            What::Other => "item",
        }
    }
}

/// What kind of failure an operation had; the HTTP layer maps each to one status, the MCP layer
/// to one JSON-RPC error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong: 400.
    BadRequest,
    /// Something named does not exist: 404.
    NotFound { what: What },
    /// The operation clashes with stored state: 409.
    Conflict,
    /// An upstream MCP server failed or answered garbage: 502.
    Upstream,
    /// The database cannot be reached: 503.
    Unavailable,
    /// An upstream MCP server did not answer in time: 504.
    Timeout,
    /// The caller went away (or its session ended) before the operation finished.
    Cancelled,
    /// A bug: 500.
    Internal,
}

/// Where a caller can see what exists, said by each face in its own words (REST: the list
/// route; MCP: the list method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// "list them": the vMCP's list of `what` (tools, prompts or resources).
    List { what: What, vmcp: String },
}

/// An error as users see it: a short summary (`error`) and a sentence that says what happened
/// and, where it can, what to change (`detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub error: String,
    pub detail: String,
    /// Where to look next, for the face to word (not part of `detail`).
    pub hint: Option<Hint>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            error: error.into(),
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn not_found(what: What, error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound { what }, error, detail)
    }

    pub fn with_hint(mut self, hint: Hint) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn cancelled(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "invalid request", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal error", detail)
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.detail)
    }
}

impl std::error::Error for GatewayError {}

impl From<vmcp_domain::ids::BadId> for GatewayError {
    fn from(e: vmcp_domain::ids::BadId) -> Self {
        Self::bad_request(e.0)
    }
}

impl From<ValidationError> for GatewayError {
    fn from(e: ValidationError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => Self::not_found(
                match what {
                    "vMCP" => What::Vmcp,
                    "MCP server" => What::Server,
                    _ => What::Other,
                },
                format!("{what} not found"),
                format!("no {what} with id {id}"),
            ),
            StoreError::Invalid(v) => v.into(),
            StoreError::Conflict(detail) => Self::new(ErrorKind::Conflict, "conflict", detail),
            e @ StoreError::InUse { .. } => {
                Self::new(ErrorKind::Conflict, "MCP server in use", e.to_string())
            }
            StoreError::Unavailable(detail) => Self::new(
                ErrorKind::Unavailable,
                "database unavailable",
                format!("{detail}; try again shortly"),
            ),
            e @ (StoreError::Config(_) | StoreError::Migration(_) | StoreError::Database(_)) => {
                tracing::error!(error = %e, "database failure");
                Self::internal(e.to_string())
            }
        }
    }
}

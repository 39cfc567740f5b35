use std::fmt;

use vmcp_domain::ValidationError;
use vmcp_store::StoreError;

/// What kind of failure an operation had; the HTTP layer maps each to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong: 400.
    BadRequest,
    /// Something named does not exist: 404.
    NotFound,
    /// The operation clashes with stored state: 409.
    Conflict,
    /// An upstream MCP server failed or answered garbage: 502.
    Upstream,
    /// The database cannot be reached: 503.
    Unavailable,
    /// An upstream MCP server did not answer in time: 504.
    Timeout,
    /// A bug: 500.
    Internal,
}

/// An error as users see it: a short summary (`error`) and a sentence that says what happened
/// and, where it can, what to change (`detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub error: String,
    pub detail: String,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            error: error.into(),
            detail: detail.into(),
        }
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

impl From<ValidationError> for GatewayError {
    fn from(e: ValidationError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => Self::new(
                ErrorKind::NotFound,
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

//! The error every adapter returns to the gateway.

use std::io;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the network is shutting down")]
    Shutdown,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a transfer sink refused a write or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("range {start}..{end} is outside the content of {size} bytes")]
    OutOfRange { start: u64, end: u64, size: u64 },
    #[error("the transfer is no longer running")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
}

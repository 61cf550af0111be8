//! Errors of the servent (sockets, peers, timeouts) and their mapping to the contract's error.

use std::io;
use std::net::SocketAddrV4;

use junction_core::NetworkError;

/// What went wrong on a connection or a transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServentError {
    /// A socket error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The peer sent bytes the wire layer rejects.
    #[error("wire: {0}")]
    Wire(#[from] crate::Error),
    /// A peer did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The peer closed the connection.
    #[error("connection closed during {0}")]
    Closed(&'static str),
    /// The peer refused the handshake or request.
    #[error("refused: {code} {reason}")]
    Refused {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
        /// Alternative hosts it suggested.
        try_hosts: Vec<SocketAddrV4>,
    },
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// We are shutting down.
    #[error("the servent is shutting down")]
    Shutdown,
}

impl From<ServentError> for NetworkError {
    fn from(e: ServentError) -> Self {
        match e {
            ServentError::Io(e) => NetworkError::Io(e),
            ServentError::Timeout(w) => NetworkError::Timeout(w.to_owned()),
            ServentError::Shutdown => NetworkError::Shutdown,
            ServentError::Closed(_) | ServentError::Refused { .. } => {
                NetworkError::Unreachable(e.to_string())
            }
            ServentError::Wire(_) | ServentError::Protocol(_) => {
                NetworkError::Protocol(e.to_string())
            }
        }
    }
}

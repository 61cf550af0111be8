//! The gateway's errors. They become `tonic::Status` in one place, `api::status`.

use junction_core::{ContentIdError, NetworkError, link::LinkError, query::ParseError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("bad query: {0}")]
    Query(#[from] ParseError),
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("bad content id: {0}")]
    ContentId(#[from] ContentIdError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Not possible yet; the same call may work later.
    #[error("{0}")]
    Unavailable(String),
    #[error("network {network}: {source}")]
    Network {
        network: String,
        source: NetworkError,
    },
    #[error("storage: {0}")]
    Store(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<redb::Error> for GatewayError {
    fn from(e: redb::Error) -> Self {
        GatewayError::Store(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for GatewayError {
            fn from(e: $t) -> Self {
                GatewayError::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

//! Error type of the wire layer.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while decoding or encoding Gnutella wire data.
///
/// Every variant names the structure (`what`) that was being handled so a log
/// line points at the offending field. A peer that makes us return one of these
/// should, in general, be disconnected: the Gnutella stream has no
/// resynchronisation marker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a structure whose length was already known
    /// (e.g. a payload shorter than its fixed fields).
    #[error("truncated {what}: the data ends before the structure is complete")]
    Truncated {
        /// The structure being decoded.
        what: &'static str,
    },
    /// A length or count exceeds what we are willing to buffer or allocate.
    #[error("{what} too large: {len} exceeds the limit of {max}")]
    TooLarge {
        /// The structure or field.
        what: &'static str,
        /// The announced or accumulated size.
        len: u64,
        /// Our limit.
        max: u64,
    },
    /// The data is structurally wrong (bad magic, bad flags, bad number...).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The structure or field.
        what: &'static str,
        /// A human readable explanation, including the offending value.
        detail: String,
    },
    /// A compressed (zlib/deflate) payload could not be inflated.
    #[error("cannot inflate {what}: {detail}")]
    Inflate {
        /// The structure whose data was compressed.
        what: &'static str,
        /// The underlying zlib error.
        detail: String,
    },
}

/// A `Range` or `Content-Range` header refused by the shared parser in core.
impl From<junction_core::http_range::RangeError> for Error {
    fn from(e: junction_core::http_range::RangeError) -> Self {
        use junction_core::http_range::RangeError;
        match e {
            RangeError::Invalid { what, detail } => Error::Invalid { what, detail },
            RangeError::TooMany { what, count, max } => Error::too_large(what, count, max),
        }
    }
}

/// An HTTP head (or a handshake block, or a `GIV` line) refused by the shared parser in core.
impl From<junction_core::http::HeadError> for Error {
    fn from(e: junction_core::http::HeadError) -> Self {
        use junction_core::http::HeadError;
        match e {
            HeadError::Invalid { what, detail } => Error::Invalid { what, detail },
            HeadError::TooLarge { what, len, max } => Error::too_large(what, len, max),
        }
    }
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: &'static str, detail: impl fmt::Display) -> Self {
        Error::Invalid {
            what,
            detail: detail.to_string(),
        }
    }

    /// Shorthand for [`Error::Truncated`].
    pub fn truncated(what: &'static str) -> Self {
        Error::Truncated { what }
    }

    /// Shorthand for [`Error::TooLarge`].
    pub fn too_large(what: &'static str, len: impl TryInto<u64>, max: impl TryInto<u64>) -> Self {
        Error::TooLarge {
            what,
            len: len.try_into().unwrap_or(u64::MAX),
            max: max.try_into().unwrap_or(u64::MAX),
        }
    }
}

//! Bounded zlib inflation: a compressed peer payload may never expand beyond
//! the limit the caller sets (zip bombs).

use junction_core::inflate::InflateError;

use crate::error::{Error, Result};

/// Inflate a complete zlib (RFC 1950) stream, failing if the output would
/// exceed `max` bytes ([`junction_core::inflate::zlib_bounded`], with its
/// errors as [`Error`]s about `what`).
pub(crate) fn zlib_bounded(data: &[u8], max: usize, what: &'static str) -> Result<Vec<u8>> {
    junction_core::inflate::zlib_bounded(data, max).map_err(|e| match e {
        InflateError::TooLarge { len, max } => Error::too_large(what, len, max),
        InflateError::Corrupt(detail) => Error::Inflate { what, detail },
    })
}

/// Compress with zlib at the default level.
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

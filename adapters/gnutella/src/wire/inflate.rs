//! Bounded zlib inflation: a compressed peer payload may never expand beyond
//! the limit the caller sets (zip bombs).

use std::io::Read;

use flate2::read::ZlibDecoder;

use crate::error::{Error, Result};

/// Inflate a complete zlib (RFC 1950) stream, failing if the output would
/// exceed `max` bytes.
pub(crate) fn zlib_bounded(data: &[u8], max: usize, what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::Inflate {
            what,
            detail: e.to_string(),
        })?;
    if out.len() > max {
        return Err(Error::too_large(what, out.len(), max));
    }
    Ok(out)
}

/// Compress with zlib at the default level.
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

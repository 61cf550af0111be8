//! Bounded zlib inflation: a compressed payload from a peer may never expand beyond the limit
//! the caller sets, so a few bytes (a zip bomb) cannot make us allocate megabytes.
//!
//! eD2k (packed frames, Kad-packed datagrams, compressed blocks) and Gnutella (GGEP data, QRP
//! patches) both inflate whole zlib streams this way; each maps [`InflateError`] to its own
//! error type.

use std::io::Read;

use flate2::read::ZlibDecoder;

/// Why [`zlib_bounded`] gave no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The stream is not valid zlib (bad header, bad data, bad checksum). Holds zlib's
    /// message.
    #[error("corrupt zlib stream: {0}")]
    Corrupt(String),
    /// The stream inflates to more than `max` bytes. Inflation stopped at `len`, one byte
    /// past the maximum; the stream's whole size is not known.
    #[error("zlib stream inflates beyond the {max} byte maximum")]
    TooLarge {
        /// Bytes produced when inflation stopped (`max + 1`).
        len: usize,
        /// The caller's maximum.
        max: usize,
    },
}

/// Inflates a complete zlib (RFC 1950) stream, refusing to produce more than `max` bytes.
///
/// At most `max + 1` bytes are ever produced: one byte past the maximum is enough to know the
/// stream is too large. An empty output (`max` of 0 and an empty stream) is allowed.
pub fn zlib_bounded(data: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| InflateError::Corrupt(e.to_string()))?;
    if out.len() > max {
        return Err(InflateError::TooLarge {
            len: out.len(),
            max,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trips_within_the_bound() {
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let packed = zlib(&plain);
        assert_eq!(zlib_bounded(&packed, plain.len()).unwrap(), plain);
        assert_eq!(zlib_bounded(&packed, usize::MAX).unwrap(), plain);
        assert_eq!(zlib_bounded(&zlib(b""), 0).unwrap(), b"");
    }

    #[test]
    fn a_bomb_stops_one_byte_past_the_bound() {
        let bomb = zlib(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 2048);
        assert_eq!(
            zlib_bounded(&bomb, 4096),
            Err(InflateError::TooLarge {
                len: 4097,
                max: 4096
            })
        );
        // One byte short of the whole output is too large as well.
        assert!(matches!(
            zlib_bounded(&bomb, (1 << 20) - 1),
            Err(InflateError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_data_is_an_error() {
        assert!(matches!(
            zlib_bounded(b"garbage!", 1024),
            Err(InflateError::Corrupt(_))
        ));
        let mut cut = zlib(b"hello, hello, hello");
        cut.truncate(cut.len() - 3);
        assert!(matches!(
            zlib_bounded(&cut, 1024),
            Err(InflateError::Corrupt(_))
        ));
    }
}

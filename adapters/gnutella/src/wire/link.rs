//! Deflate link compression (`Content-Encoding: deflate` after the
//! handshake): one continuous zlib stream per direction, flushed with
//! `Z_SYNC_FLUSH`. Pure state machines over byte slices; the servent feeds
//! them socket bytes.

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{Error, Result};

/// Inflates a peer's compressed stream. Any window size is accepted
/// (gtk-gnutella uses 2^14 on some links, 2^15 on others).
pub struct LinkInflater {
    z: Decompress,
    /// Most bytes one [`LinkInflater::inflate`] call may produce.
    max_out: usize,
}

impl std::fmt::Debug for LinkInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkInflater")
            .field("total_in", &self.z.total_in())
            .field("total_out", &self.z.total_out())
            .finish()
    }
}

impl LinkInflater {
    /// A zlib (RFC 1950) inflater; one call may yield at most `max_out` bytes
    /// so a compressed burst cannot balloon the receive buffer.
    pub fn new(max_out: usize) -> Self {
        LinkInflater {
            z: Decompress::new(true),
            max_out,
        }
    }

    /// Inflate all of `input`, appending to `out`.
    pub fn inflate(&mut self, input: &[u8], out: &mut BytesMut) -> Result<()> {
        let start_out = self.z.total_out();
        let mut pos = 0;
        loop {
            let produced = usize::try_from(self.z.total_out() - start_out).unwrap_or(usize::MAX);
            if produced > self.max_out {
                return Err(Error::too_large(
                    "inflated link data",
                    produced,
                    self.max_out,
                ));
            }
            let mut chunk = [0u8; 8192];
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            let status = self
                .z
                .decompress(&input[pos..], &mut chunk, FlushDecompress::Sync)
                .map_err(|e| Error::Inflate {
                    what: "link stream",
                    detail: e.to_string(),
                })?;
            let used = usize::try_from(self.z.total_in() - before_in).unwrap_or(0);
            let made = usize::try_from(self.z.total_out() - before_out).unwrap_or(0);
            pos += used;
            out.extend_from_slice(&chunk[..made]);
            if status == Status::StreamEnd {
                if pos < input.len() {
                    return Err(Error::invalid(
                        "link stream",
                        "data after the end of the zlib stream",
                    ));
                }
                return Ok(());
            }
            if pos >= input.len() && made < chunk.len() {
                return Ok(());
            }
            if used == 0 && made == 0 {
                return Err(Error::invalid("link stream", "inflater made no progress"));
            }
        }
    }
}

/// Compresses our outgoing stream.
pub struct LinkDeflater {
    z: Compress,
}

impl std::fmt::Debug for LinkDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkDeflater")
            .field("total_in", &self.z.total_in())
            .finish()
    }
}

impl Default for LinkDeflater {
    fn default() -> Self {
        LinkDeflater {
            z: Compress::new(Compression::default(), true),
        }
    }
}

impl LinkDeflater {
    /// Compress `input` and sync-flush, so the peer can decode everything
    /// sent so far (the chunk ends with `00 00 ff ff`).
    pub fn deflate_flush(&mut self, input: &[u8], out: &mut BytesMut) -> Result<()> {
        let mut pos = 0;
        loop {
            let mut chunk = [0u8; 8192];
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            self.z
                .compress(&input[pos..], &mut chunk, FlushCompress::Sync)
                .map_err(|e| Error::Inflate {
                    what: "link stream (deflate)",
                    detail: e.to_string(),
                })?;
            pos += usize::try_from(self.z.total_in() - before_in).unwrap_or(0);
            let made = usize::try_from(self.z.total_out() - before_out).unwrap_or(0);
            out.extend_from_slice(&chunk[..made]);
            if pos >= input.len() && made < chunk.len() {
                return Ok(());
            }
        }
    }
}

impl LinkDeflater {
    /// End the zlib stream (final block and Adler-32 trailer); nothing may follow.
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<()> {
        loop {
            let mut chunk = [0u8; 8192];
            let before_out = self.z.total_out();
            let status = self
                .z
                .compress(&[], &mut chunk, FlushCompress::Finish)
                .map_err(|e| Error::Inflate {
                    what: "link stream (deflate)",
                    detail: e.to_string(),
                })?;
            let made = usize::try_from(self.z.total_out() - before_out).unwrap_or(0);
            out.extend_from_slice(&chunk[..made]);
            if status == Status::StreamEnd {
                return Ok(());
            }
            if made == 0 {
                return Err(Error::invalid("link stream (deflate)", "cannot finish"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces() {
        let mut d = LinkDeflater::default();
        let mut wire = BytesMut::new();
        let a = b"hello gnutella ".repeat(1000);
        d.deflate_flush(&a, &mut wire).unwrap();
        assert!(wire.ends_with(&[0, 0, 0xff, 0xff]));
        d.deflate_flush(b"more", &mut wire).unwrap();
        let mut i = LinkInflater::new(1 << 20);
        let mut out = BytesMut::new();
        for piece in wire.chunks(7) {
            i.inflate(piece, &mut out).unwrap();
        }
        assert_eq!(&out[..a.len()], &a[..]);
        assert_eq!(&out[a.len()..], b"more");
        let mut small = LinkInflater::new(100);
        assert!(small.inflate(&wire, &mut BytesMut::new()).is_err());
        assert!(
            LinkInflater::new(100)
                .inflate(b"garbage!", &mut BytesMut::new())
                .is_err()
        );
    }
}

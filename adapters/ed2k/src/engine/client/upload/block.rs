//! Sending one requested block: in 10,240-byte packets as eMule splits them, compressed
//! when that pays off (sampled once per part).

use bytes::Bytes;

use super::Link;
use crate::engine::client::{Shared, SharedFile, share};
use crate::engine::net::ConnError;
use crate::wire::{ByteRange, PeerMessage};

/// Bytes per data packet, as eMule splits blocks.
const PACKET_DATA: usize = 10_240;

/// Sends `start..end` of a shared file in packets of [`PACKET_DATA`] bytes: compressed when
/// the client reads compressed parts and the block shrinks by a tenth, plain otherwise.
/// Every packet waits for the upload rate limit.
pub(super) async fn send_block(
    s: &Shared,
    link: &Link<'_>,
    compression: bool,
    f: &SharedFile,
    start: u64,
    end: u64,
) -> Result<(), ConnError> {
    let len =
        usize::try_from(end - start).map_err(|_| ConnError::Protocol("range too long".into()))?;
    let mut data = share::read_at(f, start, len).await?;
    if s.cfg.corrupt_uploads_from.is_some_and(|o| start >= o) && !data.is_empty() {
        let mut v = data.to_vec();
        v[0] ^= 0xFF;
        data = Bytes::from(v);
    }
    if compression && part_compressible(f, start, &data) {
        let packed = tokio::task::spawn_blocking({
            let d = data.clone();
            move || deflate_fast(&d)
        })
        .await
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
        if packed.len() < data.len() * 9 / 10 {
            let total = u32::try_from(packed.len())
                .map_err(|_| ConnError::Protocol("block too big".into()))?;
            let packed = Bytes::from(packed);
            let mut off = 0;
            while off < packed.len() {
                let n = PACKET_DATA.min(packed.len() - off);
                let m = PeerMessage::CompressedPart {
                    hash: f.hash,
                    start,
                    packed_total: total,
                    data: packed.slice(off..off + n),
                };
                s.upload_limit.take(n as u64).await;
                link.send(&m).await?;
                off += n;
            }
            return Ok(());
        }
    }
    let mut off = 0usize;
    while off < data.len() {
        let n = PACKET_DATA.min(data.len() - off);
        let a = start + off as u64;
        let range = ByteRange::new(a, a + n as u64)?;
        let m = PeerMessage::SendingPart {
            hash: f.hash,
            range,
            data: data.slice(off..off + n),
        };
        s.upload_limit.take(n as u64).await;
        link.send(&m).await?;
        off += n;
    }
    Ok(())
}

/// Is compressing blocks of this part likely to pay off? Sampled on the first block served
/// from each part (files are mostly all compressible or all not).
fn part_compressible(f: &SharedFile, start: u64, data: &[u8]) -> bool {
    let part = start / crate::wire::hash::PART_SIZE;
    let known = f
        .compressible
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&part)
        .copied();
    known.unwrap_or_else(|| {
        let c = compressible(data);
        f.compressible
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(part, c);
        c
    })
}

/// A quick sample: is compressing this block likely to pay off?
fn compressible(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(4096)];
    sample.len() >= 256 && deflate_fast(sample).len() < sample.len() * 8 / 10
}

/// zlib at the fastest level (receivers inflate any level).
fn deflate_fast(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let _ = flate2::read::ZlibEncoder::new(data, flate2::Compression::fast()).read_to_end(&mut out);
    out
}

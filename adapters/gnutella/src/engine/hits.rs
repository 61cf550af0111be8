//! The QueryHits this servent sends: records with every hash it knows, and its trailer.

use std::net::SocketAddrV4;

use bytes::Bytes;

use super::Shared;
use crate::wire::ext::{ExtArea, Item};
use crate::wire::ggep::{self, Block, Extension};
use crate::wire::message::{HitRecord, QhdTrailer, QueryHit, qhd};
use crate::wire::push_proxy::push_extension;
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};

/// Hits per QueryHit message we send.
pub(crate) const HITS_PER_MESSAGE: usize = 10;
/// Our vendor code in QueryHit trailers.
pub const VENDOR: [u8; 4] = *b"JNCT";

/// One result record: the HUGE `urn:sha1:` text (and `urn:ed2khash:` when known), and GGEP
/// `LF` for sizes ≥ 4 GiB.
/// A QueryHit from this servent, at the address it announces.
pub fn our_hit(shared: &Shared, records: &[HitRecord], trailer: QhdTrailer) -> QueryHit {
    let a = shared.my_addr();
    QueryHit {
        port: a.port(),
        ip: *a.ip(),
        speed: 10_000,
        results: records.to_vec(),
        trailer: Some(trailer),
        servent: shared.guid,
    }
}

pub fn hit_record(
    index: u32,
    name: &str,
    size: u64,
    sha1: &Sha1Hash,
    ed2k: Option<&[u8; 16]>,
    tth: Option<&TigerHash>,
) -> HitRecord {
    let mut items = vec![Item::Text(Bytes::from(Urn::Sha1(*sha1).to_string()))];
    if let Some(h) = ed2k {
        items.push(Item::Text(Bytes::from(Urn::Ed2k(*h).to_string())));
    }
    // As gtk-gnutella: the TTH as GGEP `TT` (binary, COBS-encoded when it holds a NUL),
    // in the record's GGEP block beside `LF`.
    let mut ggep = Vec::new();
    if let Some(t) = tth
        && let Ok(e) = Extension::new_nul_free(ggep::ids::TT, &t.0)
    {
        ggep.push(e);
    }
    let size32 = match u32::try_from(size) {
        Ok(s) if s != u32::MAX => s,
        _ => {
            if let Ok(e) = Extension::new_nul_free(ggep::ids::LF, &ggep::encode_vlint(size)) {
                ggep.push(e);
            }
            u32::MAX
        }
    };
    if !ggep.is_empty() {
        items.push(Item::Ggep(Block::new(ggep)));
    }
    let name: String = name.replace('\0', "_").chars().take(1024).collect();
    HitRecord {
        index,
        size: size32,
        name: Bytes::from(name.into_bytes()),
        ext: ExtArea::from_items(items),
    }
}

/// Our QueryHit trailer: vendor code and the open-data flag bytes
/// (push in byte 1 with its "valid" bit in byte 2, the others the other way round).
/// The private data holds a GGEP block with `BH` (browse host supported), as
/// gtk-gnutella's hits do, and when we are firewalled `PUSH` with our push proxies.
pub fn trailer(
    firewalled: bool,
    proxies: &[SocketAddrV4],
    busy: bool,
    uploaded: bool,
) -> QhdTrailer {
    let mut b1 = qhd::BUSY | qhd::UPLOADED | qhd::GGEP;
    let mut b2 = qhd::PUSH | qhd::GGEP;
    if firewalled {
        b1 |= qhd::PUSH;
    }
    if busy {
        b2 |= qhd::BUSY;
    }
    if uploaded {
        b2 |= qhd::UPLOADED;
    }
    QhdTrailer {
        vendor: VENDOR,
        open_data: Bytes::copy_from_slice(&[b1, b2]),
        private_data: {
            let mut v = Vec::new();
            let mut ext: Vec<Extension> = Extension::new(ggep::ids::BH, Bytes::new())
                .into_iter()
                .collect();
            if firewalled {
                ext.extend(push_extension(proxies));
            }
            Block::new(ext).encode(&mut v);
            Bytes::from(v)
        },
    }
}

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

/// Every hash a result record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHashes {
    pub sha1: Sha1Hash,
    pub ed2k: Option<[u8; 16]>,
    pub tth: Option<TigerHash>,
    pub btih: Option<[u8; 20]>,
}

impl RecordHashes {
    /// As HUGE URN texts: `urn:sha1:` first, then the other networks' (`urn:ed2khash:`,
    /// `urn:btih:`, as Shareaza writes them), so one file is known on every network.
    pub fn urns(&self) -> Vec<Urn> {
        let mut urns = vec![Urn::Sha1(self.sha1)];
        urns.extend(self.ed2k.map(Urn::Ed2k));
        urns.extend(self.btih.map(Urn::Btih));
        urns
    }

    /// The `X-Content-URN` headers of an upload, one per hash as Shareaza sends them: the
    /// SHA-1 and TTH first as one bitprint (LimeWire takes the tree root from it, and a
    /// client that reads only the first header still gets the SHA-1).
    pub fn x_content_urns(&self) -> Vec<String> {
        let mut urns = self.urns();
        if let Some(t) = self.tth {
            urns[0] = Urn::Bitprint(self.sha1, t);
        }
        urns.iter().map(ToString::to_string).collect()
    }
}

/// One result record: the HUGE URN texts of every hash but the TTH, the TTH as GGEP `TT`,
/// and GGEP `LF` for sizes ≥ 4 GiB.
pub fn hit_record(index: u32, name: &str, size: u64, hashes: &RecordHashes) -> HitRecord {
    let mut items: Vec<Item> = (hashes.urns().iter())
        .map(|u| Item::Text(Bytes::from(u.to_string())))
        .collect();
    let tth = hashes.tth.as_ref();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_uploads_name_every_hash() {
        let h = RecordHashes {
            sha1: Sha1Hash::digest(b""),
            ed2k: Some([0x31; 16]),
            tth: Some(TigerHash([7; 24])),
            btih: Some([0x64; 20]),
        };
        let rec = hit_record(1, "a.bin", 5, &h);
        let texts: Vec<String> = rec.ext.urns().iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts[0].starts_with("urn:sha1:3I42H3S6"), "{texts:?}");
        assert!(texts[1].starts_with("urn:ed2khash:3131"), "{texts:?}");
        assert!(texts[2].starts_with("urn:btih:MRSG"), "{texts:?}");
        assert_eq!(
            rec.ext.tiger(),
            Some(TigerHash([7; 24])),
            "the TTH as GGEP TT"
        );
        let headers = h.x_content_urns();
        assert_eq!(headers.len(), 3, "{headers:?}");
        assert!(
            headers[0].starts_with("urn:bitprint:3I42H3S6"),
            "{headers:?}"
        );
        assert!(headers.iter().all(|p| Urn::parse(p).is_ok()), "{headers:?}");
        let bare = RecordHashes {
            tth: None,
            ed2k: None,
            btih: None,
            ..h
        };
        assert_eq!(bare.x_content_urns(), [Urn::Sha1(h.sha1).to_string()]);
    }
}

//! Extension areas: the mixed HUGE/GEM text, GGEP and XML items found after
//! a Query's criteria, inside each QueryHit record, and after Ping, Pong and
//! Push payloads (GGEP appendix B, "peaceful co-existence").
//!
//! An item is a GGEP block (starts with 0xC3) or a text run (`urn:sha1:…`,
//! `urn:`, XML) ended by a 0x1C or 0x00 separator. Each item remembers the
//! separator that followed it, so decoding then encoding is byte-exact.

use bytes::{Buf, BufMut, Bytes};

use crate::error::{Error, Result};
use crate::wire::ggep::{self, Block, Extension};
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};

/// GEM item separator.
pub const SEP_FS: u8 = 0x1C;
/// Most items accepted in one area.
pub const MAX_ITEMS: usize = 64;

/// One extension item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A GGEP block.
    Ggep(Block),
    /// A HUGE/GEM text item (URN, bare `urn:`, XML...), raw bytes.
    Text(Bytes),
}

/// An item and the separator byte that followed it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The item.
    pub item: Item,
    /// 0x1C or 0x00 after the item, `None` when the area ended or the next
    /// item followed directly.
    pub sep: Option<u8>,
}

/// A whole extension area.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtArea {
    /// Items in wire order.
    pub entries: Vec<Entry>,
}

impl ExtArea {
    /// Items separated by 0x1C, the canonical layout.
    pub fn from_items(items: Vec<Item>) -> Self {
        let n = items.len();
        ExtArea {
            entries: items
                .into_iter()
                .enumerate()
                .map(|(i, item)| Entry {
                    item,
                    sep: (i + 1 < n).then_some(SEP_FS),
                })
                .collect(),
        }
    }

    /// No item.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decode an area that runs to the end of `data` (Query, Ping, Pong,
    /// Push); 0x00 and 0x1C both separate items.
    pub fn decode_to_end(mut data: Bytes) -> Result<Self> {
        let mut entries = Vec::new();
        while data.has_remaining() {
            check_count(&entries)?;
            let item = read_item(&mut data)?;
            let sep = match data.first() {
                Some(&b) if b == SEP_FS || b == 0 => {
                    data.advance(1);
                    Some(b)
                }
                _ => None,
            };
            entries.push(Entry { item, sep });
        }
        Ok(ExtArea { entries })
    }

    /// Decode a NUL-terminated area (a QueryHit record, "between the NULs"),
    /// consuming the terminating NUL.
    pub fn decode_nul_terminated(data: &mut Bytes) -> Result<Self> {
        let mut entries = Vec::new();
        loop {
            match data.first() {
                None => return Err(Error::truncated("result extensions (no NUL)")),
                Some(0) => {
                    data.advance(1);
                    return Ok(ExtArea { entries });
                }
                Some(_) => {}
            }
            check_count(&entries)?;
            let item = read_item(data)?;
            let sep = match data.first() {
                Some(&SEP_FS) => {
                    data.advance(1);
                    Some(SEP_FS)
                }
                _ => None,
            };
            entries.push(Entry { item, sep });
        }
    }

    /// Write the area (no terminator).
    pub fn encode(&self, dst: &mut impl BufMut) {
        for e in &self.entries {
            match &e.item {
                Item::Ggep(b) => b.encode(dst),
                Item::Text(t) => dst.put_slice(t),
            }
            if let Some(s) = e.sep {
                dst.put_u8(s);
            }
        }
    }

    /// Bytes the area takes (no terminator).
    pub fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                let l = match &e.item {
                    Item::Ggep(b) => b.encoded_len(),
                    Item::Text(t) => t.len(),
                };
                l + usize::from(e.sep.is_some())
            })
            .sum()
    }

    /// Every GGEP block.
    pub fn ggep_blocks(&self) -> impl Iterator<Item = &Block> {
        self.entries.iter().filter_map(|e| match &e.item {
            Item::Ggep(b) => Some(b),
            Item::Text(_) => None,
        })
    }

    /// The first GGEP extension with `id` in any block.
    pub fn ggep(&self, id: &str) -> Option<&Extension> {
        self.ggep_blocks().find_map(|b| b.get(id))
    }

    /// Every text item.
    pub fn texts(&self) -> impl Iterator<Item = &Bytes> {
        self.entries.iter().filter_map(|e| match &e.item {
            Item::Text(t) => Some(t),
            Item::Ggep(_) => None,
        })
    }

    /// URNs found in text items and in GGEP `H` / `u` (unparseable ones are
    /// skipped: extension areas are advisory).
    pub fn urns(&self) -> Vec<Urn> {
        let mut out: Vec<Urn> = self
            .texts()
            .filter_map(|t| std::str::from_utf8(t).ok())
            .filter_map(|s| Urn::parse(s).ok())
            .collect();
        for b in self.ggep_blocks() {
            match b.hash() {
                Some(Ok(ggep::Hash::Sha1(h))) => out.push(Urn::Sha1(h)),
                Some(Ok(ggep::Hash::Bitprint(h, t))) => out.push(Urn::Bitprint(h, t)),
                _ => {}
            }
            if let Some(Ok(d)) = b.get(ggep::ids::U).map(Extension::data)
                && let Ok(u) = Urn::parse(&String::from_utf8_lossy(&d))
            {
                out.push(u);
            }
        }
        out
    }

    /// The first SHA-1 named by the area.
    pub fn sha1(&self) -> Option<Sha1Hash> {
        self.urns().iter().find_map(Urn::sha1)
    }

    /// The Tiger tree root named by the area: GGEP `TT` (as gtk-gnutella sends it), a
    /// bitprint (text or GGEP `H`), or `urn:tree:tiger:`.
    pub fn tiger(&self) -> Option<TigerHash> {
        self.ggep_blocks()
            .find_map(|b| b.tiger_tree_root().and_then(Result::ok))
            .or_else(|| self.urns().iter().find_map(Urn::tiger))
    }

    /// Whether a bare `urn:` item asks responders to include URNs.
    pub fn wants_urns(&self) -> bool {
        self.texts().any(|t| t.eq_ignore_ascii_case(b"urn:"))
    }
}

fn check_count(entries: &[Entry]) -> Result<()> {
    if entries.len() >= MAX_ITEMS {
        return Err(Error::too_large(
            "extension items",
            entries.len() + 1,
            MAX_ITEMS,
        ));
    }
    Ok(())
}

fn read_item(data: &mut Bytes) -> Result<Item> {
    if data.first() == Some(&ggep::MAGIC) {
        return Block::decode(data).map(Item::Ggep);
    }
    let end = data
        .iter()
        .position(|&b| b == SEP_FS || b == 0)
        .unwrap_or(data.len());
    Ok(Item::Text(data.split_to(end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_round_trips() {
        for raw in [
            &b"urn:\x00"[..],
            b"urn:sha1:W5KVHB5MIOKGIZJ26BVGC5JGWU53N3VK\x00",
            b"\xc3\x82PR\x40",
            b"urn:sha1:4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7\x1c\xc3\x82PR\x40",
            b"\x00\x00",
            b"a\x1c\x1cb",
        ] {
            let a = ExtArea::decode_to_end(Bytes::copy_from_slice(raw)).unwrap();
            let mut v = Vec::new();
            a.encode(&mut v);
            assert_eq!(v, raw, "{a:?}");
            assert_eq!(a.encoded_len(), raw.len());
        }
    }

    #[test]
    fn nul_terminated() {
        let mut b = Bytes::from_static(b"urn:x\x1c\xc3\x82CT\x44\xee\xad\x06\x6b\x00rest");
        let a = ExtArea::decode_nul_terminated(&mut b).unwrap();
        assert_eq!(&b[..], b"rest");
        assert_eq!(a.entries.len(), 2);
        assert_eq!(
            a.ggep_blocks()
                .next()
                .unwrap()
                .creation_time()
                .unwrap()
                .unwrap(),
            1_795_599_854
        );
        let mut t = Bytes::from_static(b"urn:sha1:abc");
        assert!(ExtArea::decode_nul_terminated(&mut t).is_err());
    }
}

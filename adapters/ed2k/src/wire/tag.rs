//! Tags: typed attributes in the classic form `[type][u16 name_len][name][value]` and the compact
//! form `[type|0x80][id][value]`, and tag lists (`u32 count` + tags; Kad uses a `u8` count).

use bytes::{Buf, BufMut, Bytes};

use crate::error::{Result, WireError};
use crate::wire::codec::{
    Hash16, WireString, check_count, count_as, get_array, get_bytes, get_u8, get_u16, get_u32,
    get_u64, put_string16,
};

/// Tag value type bytes (`TAGTYPE_*`).
pub mod tag_type {
    pub const HASH16: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const UINT32: u8 = 0x03;
    pub const FLOAT32: u8 = 0x04;
    pub const BOOL: u8 = 0x05;
    pub const BOOLARRAY: u8 = 0x06;
    pub const BLOB: u8 = 0x07;
    pub const UINT16: u8 = 0x08;
    pub const UINT8: u8 = 0x09;
    pub const BSOB: u8 = 0x0A;
    pub const UINT64: u8 = 0x0B;
    /// `STR1`; `STRn` = `STR1 + n - 1` up to `STR16` (0x20).
    pub const STR1: u8 = 0x11;
    pub const STR16: u8 = 0x20;
    /// `STR17..STR22` are read (an old eMule flaw wrote them) but never written.
    pub const STR22: u8 = 0x26;
    /// Bit of the type byte marking the compact form (1-byte numeric name, no length).
    pub const COMPACT: u8 = 0x80;
}

/// File tag IDs (`FT_*`).
pub mod ft {
    pub const FILENAME: u8 = 0x01;
    pub const FILESIZE: u8 = 0x02;
    pub const FILETYPE: u8 = 0x03;
    pub const FILEFORMAT: u8 = 0x04;
    pub const LASTSEENCOMPLETE: u8 = 0x05;
    pub const TRANSFERRED: u8 = 0x08;
    pub const GAPSTART: u8 = 0x09;
    pub const GAPEND: u8 = 0x0A;
    pub const DESCRIPTION: u8 = 0x0B;
    pub const PARTFILENAME: u8 = 0x12;
    pub const STATUS: u8 = 0x14;
    pub const SOURCES: u8 = 0x15;
    pub const PERMISSIONS: u8 = 0x16;
    pub const DLPRIORITY: u8 = 0x18;
    pub const ULPRIORITY: u8 = 0x19;
    pub const KADLASTPUBLISHKEY: u8 = 0x20;
    pub const KADLASTPUBLISHSRC: u8 = 0x21;
    pub const FLAGS: u8 = 0x22;
    pub const KADLASTPUBLISHNOTES: u8 = 0x26;
    pub const AICH_HASH: u8 = 0x27;
    pub const FILEHASH: u8 = 0x28;
    pub const COMPLETE_SOURCES: u8 = 0x30;
    pub const PUBLISHINFO: u8 = 0x33;
    pub const AICHHASHSET: u8 = 0x35;
    pub const FILESIZE_HI: u8 = 0x3A;
    pub const MEDIA_ARTIST: u8 = 0xD0;
    pub const MEDIA_ALBUM: u8 = 0xD1;
    pub const MEDIA_TITLE: u8 = 0xD2;
    pub const MEDIA_LENGTH: u8 = 0xD3;
    pub const MEDIA_BITRATE: u8 = 0xD4;
    pub const MEDIA_CODEC: u8 = 0xD5;
    pub const FILECOMMENT: u8 = 0xF6;
    pub const FILERATING: u8 = 0xF7;

    /// Integer `FT_FILETYPE` values (`ED2KFT_*`, servers with `TYPETAGINTEGER`).
    pub const TYPE_AUDIO: u32 = 1;
    pub const TYPE_VIDEO: u32 = 2;
    pub const TYPE_IMAGE: u32 = 3;
    pub const TYPE_PROGRAM: u32 = 4;
    pub const TYPE_DOCUMENT: u32 = 5;
    pub const TYPE_ARCHIVE: u32 = 6;
    pub const TYPE_CDIMAGE: u32 = 7;
}

/// Client tag IDs (`CT_*`) and the old MuleInfo tags (`ET_*`).
pub mod ct {
    pub const NAME: u8 = 0x01;
    pub const SERVER_UDPSEARCH_FLAGS: u8 = 0x0E;
    pub const PORT: u8 = 0x0F;
    pub const VERSION: u8 = 0x11;
    pub const SERVER_FLAGS: u8 = 0x20;
    pub const MOD_VERSION: u8 = 0x55;
    pub const EMULECOMPAT_OPTIONS: u8 = 0xEF;
    pub const EMULE_UDPPORTS: u8 = 0xF9;
    pub const EMULE_MISCOPTIONS1: u8 = 0xFA;
    pub const EMULE_VERSION: u8 = 0xFB;
    pub const EMULE_BUDDYIP: u8 = 0xFC;
    pub const EMULE_BUDDYUDP: u8 = 0xFD;
    pub const EMULE_MISCOPTIONS2: u8 = 0xFE;

    /// `CT_VERSION` value sent by eMule/aMule (`EDONKEYVERSION`).
    pub const EDONKEY_VERSION: u32 = 0x3C;

    pub const ET_COMPRESSION: u8 = 0x20;
    pub const ET_UDPPORT: u8 = 0x21;
    pub const ET_UDPVER: u8 = 0x22;
    pub const ET_SOURCEEXCHANGE: u8 = 0x23;
    pub const ET_COMMENTS: u8 = 0x24;
    pub const ET_EXTENDEDREQUEST: u8 = 0x25;
    pub const ET_COMPATIBLECLIENT: u8 = 0x26;
    pub const ET_FEATURES: u8 = 0x27;
    pub const ET_MOD_VERSION: u8 = 0x55;

    /// Server capability bits in `CT_SERVER_FLAGS` (`SRVCAP_*`).
    pub const SRVCAP_ZLIB: u32 = 0x0001;
    pub const SRVCAP_IP_IN_LOGIN: u32 = 0x0002;
    pub const SRVCAP_AUXPORT: u32 = 0x0004;
    pub const SRVCAP_NEWTAGS: u32 = 0x0008;
    pub const SRVCAP_UNICODE: u32 = 0x0010;
    pub const SRVCAP_LARGEFILES: u32 = 0x0100;
    pub const SRVCAP_SUPPORTCRYPT: u32 = 0x0200;
    pub const SRVCAP_REQUESTCRYPT: u32 = 0x0400;
    pub const SRVCAP_REQUIRECRYPT: u32 = 0x0800;
}

/// Server / `server.met` tag IDs (`ST_*`).
pub mod st {
    pub const SERVERNAME: u8 = 0x01;
    pub const DESCRIPTION: u8 = 0x0B;
    pub const PING: u8 = 0x0C;
    pub const FAIL: u8 = 0x0D;
    pub const PREFERENCE: u8 = 0x0E;
    pub const PORT: u8 = 0x0F;
    pub const IP: u8 = 0x10;
    pub const DYNIP: u8 = 0x85;
    pub const MAXUSERS: u8 = 0x87;
    pub const SOFTFILES: u8 = 0x88;
    pub const HARDFILES: u8 = 0x89;
    pub const LASTPING: u8 = 0x90;
    pub const VERSION: u8 = 0x91;
    pub const UDPFLAGS: u8 = 0x92;
    pub const AUXPORTSLIST: u8 = 0x93;
    pub const LOWIDUSERS: u8 = 0x94;
    pub const UDPKEY: u8 = 0x95;
    pub const UDPKEYIP: u8 = 0x96;
    pub const TCPPORTOBFUSCATION: u8 = 0x97;
    pub const UDPPORTOBFUSCATION: u8 = 0x98;
    /// String-named tags eMule also writes.
    pub const USERS: &str = "users";
    pub const FILES: &str = "files";
}

/// A tag's name: a 1-byte numeric ID or a string. A 1-byte string name is the same wire bytes
/// as an ID, so it always decodes as [`TagName::Id`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagName {
    Id(u8),
    Name(WireString),
}

impl TagName {
    fn put(&self, dst: &mut impl BufMut) -> Result<()> {
        match self {
            TagName::Id(id) => {
                dst.put_u16_le(1);
                dst.put_u8(*id);
                Ok(())
            }
            TagName::Name(n) => put_string16(dst, n.as_bytes(), "tag name"),
        }
    }
    /// `u16 len` + name; length 1 means a numeric ID.
    pub(crate) fn get(buf: &mut impl Buf) -> Result<Self> {
        let len = usize::from(get_u16(buf, "tag name")?);
        if len == 1 {
            return Ok(TagName::Id(get_u8(buf, "tag name")?));
        }
        Ok(TagName::Name(WireString::from_bytes(get_bytes(
            buf, len, "tag name",
        )?)))
    }
    pub(crate) fn encode(&self, dst: &mut impl BufMut) -> Result<()> {
        self.put(dst)
    }
}

/// A tag value. Integer widths are kept as received so re-encoding is exact; use
/// [`TagValue::uint`] to pick the smallest width (compact style) and [`TagValue::as_u64`] to read
/// any width.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    Hash16(Hash16),
    /// Any string type (`STRING`, `STR1..STR22`).
    String(WireString),
    U32(u32),
    Float(f32),
    Bool(bool),
    /// Legacy: bit count and `bits / 8 + 1` bytes.
    BoolArray {
        bits: u16,
        data: Bytes,
    },
    Blob(Bytes),
    U16(u16),
    U8(u8),
    Bsob(Bytes),
    U64(u64),
}

impl TagValue {
    /// The smallest integer type holding `v`, as compact tags and Kad use.
    pub fn uint(v: u64) -> Self {
        if let Ok(v) = u8::try_from(v) {
            TagValue::U8(v)
        } else if let Ok(v) = u16::try_from(v) {
            TagValue::U16(v)
        } else if let Ok(v) = u32::try_from(v) {
            TagValue::U32(v)
        } else {
            TagValue::U64(v)
        }
    }
    /// Any unsigned integer widened.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            TagValue::U8(v) => Some(v.into()),
            TagValue::U16(v) => Some(v.into()),
            TagValue::U32(v) => Some(v.into()),
            TagValue::U64(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_string(&self) -> Option<&WireString> {
        match self {
            TagValue::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_hash(&self) -> Option<&Hash16> {
        match self {
            TagValue::Hash16(h) => Some(h),
            _ => None,
        }
    }
    /// The type byte written for this value (strings of 1..=16 bytes use `STRn` when compact).
    fn type_byte(&self, compact: bool) -> u8 {
        use tag_type::*;
        match self {
            TagValue::Hash16(_) => HASH16,
            TagValue::String(s) if compact && (1..=16).contains(&s.len()) => {
                // 1..=16 fits in u8.
                STR1 + (s.len() as u8) - 1
            }
            TagValue::String(_) => STRING,
            TagValue::U32(_) => UINT32,
            TagValue::Float(_) => FLOAT32,
            TagValue::Bool(_) => BOOL,
            TagValue::BoolArray { .. } => BOOLARRAY,
            TagValue::Blob(_) => BLOB,
            TagValue::U16(_) => UINT16,
            TagValue::U8(_) => UINT8,
            TagValue::Bsob(_) => BSOB,
            TagValue::U64(_) => UINT64,
        }
    }

    fn put(&self, dst: &mut impl BufMut, type_byte: u8) -> Result<()> {
        match self {
            TagValue::Hash16(h) => dst.put_slice(h),
            TagValue::String(s) => {
                if type_byte == tag_type::STRING {
                    put_string16(dst, s.as_bytes(), "tag string")?;
                } else {
                    dst.put_slice(s.as_bytes());
                }
            }
            TagValue::U32(v) => dst.put_u32_le(*v),
            TagValue::Float(v) => dst.put_f32_le(*v),
            TagValue::Bool(v) => dst.put_u8(u8::from(*v)),
            TagValue::BoolArray { bits, data } => {
                let want = usize::from(*bits) / 8 + 1;
                if data.len() != want {
                    return Err(WireError::InvalidValue {
                        what: "bool array byte count",
                        value: data.len() as u64,
                    });
                }
                dst.put_u16_le(*bits);
                dst.put_slice(data);
            }
            TagValue::Blob(b) => {
                let len: u32 = count_as(b.len(), "tag blob", u32::MAX as usize)?;
                dst.put_u32_le(len);
                dst.put_slice(b);
            }
            TagValue::U16(v) => dst.put_u16_le(*v),
            TagValue::U8(v) => dst.put_u8(*v),
            TagValue::Bsob(b) => {
                let len: u8 = count_as(b.len(), "tag bsob", 255)?;
                dst.put_u8(len);
                dst.put_slice(b);
            }
            TagValue::U64(v) => dst.put_u64_le(*v),
        }
        Ok(())
    }

    fn get(buf: &mut impl Buf, ty: u8) -> Result<Self> {
        use tag_type::*;
        const W: &str = "tag value";
        Ok(match ty {
            HASH16 => TagValue::Hash16(get_array(buf, W)?),
            STRING => {
                let len = usize::from(get_u16(buf, W)?);
                TagValue::String(WireString::from_bytes(get_bytes(buf, len, W)?))
            }
            UINT32 => TagValue::U32(get_u32(buf, W)?),
            FLOAT32 => TagValue::Float(f32::from_le_bytes(get_array(buf, W)?)),
            BOOL => TagValue::Bool(get_u8(buf, W)? != 0),
            BOOLARRAY => {
                let bits = get_u16(buf, W)?;
                let data = get_bytes(buf, usize::from(bits) / 8 + 1, W)?;
                TagValue::BoolArray { bits, data }
            }
            BLOB => {
                let len = get_u32(buf, W)?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                TagValue::Blob(get_bytes(buf, len, W)?)
            }
            UINT16 => TagValue::U16(get_u16(buf, W)?),
            UINT8 => TagValue::U8(get_u8(buf, W)?),
            BSOB => {
                let len = usize::from(get_u8(buf, W)?);
                TagValue::Bsob(get_bytes(buf, len, W)?)
            }
            UINT64 => TagValue::U64(get_u64(buf, W)?),
            STR1..=STR22 => {
                let len = usize::from(ty - STR1 + 1);
                TagValue::String(WireString::from_bytes(get_bytes(buf, len, W)?))
            }
            other => return Err(WireError::UnknownTagType(other)),
        })
    }
}

/// How tags are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagEncoding {
    /// `[type][u16 name_len][name][value]`: always understood; `.met` files, Kad, old servers.
    #[default]
    Classic,
    /// Numeric names as `[type|0x80][id]`, strings of 1..=16 bytes as `STRn`; for servers with
    /// `NEWTAGS` and eMule ≥ 0.42.7 clients.
    Compact,
}

/// A named, typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub name: TagName,
    pub value: TagValue,
}

/// Smallest possible encoded tag (compact name + 1-byte value); bounds tag counts.
pub const MIN_TAG_LEN: usize = 3;

impl Tag {
    pub fn new(name: TagName, value: TagValue) -> Self {
        Self { name, value }
    }
    /// A tag with a numeric name.
    pub fn id(id: u8, value: TagValue) -> Self {
        Self::new(TagName::Id(id), value)
    }
    /// A tag with a string name.
    pub fn named(name: &str, value: TagValue) -> Self {
        Self::new(TagName::Name(name.into()), value)
    }
    /// A numeric-named string tag.
    pub fn string(id: u8, s: impl Into<WireString>) -> Self {
        Self::id(id, TagValue::String(s.into()))
    }
    /// A numeric-named `UINT32` tag.
    pub fn u32(id: u8, v: u32) -> Self {
        Self::id(id, TagValue::U32(v))
    }

    /// Decodes one tag in either encoding.
    pub fn decode(buf: &mut impl Buf) -> Result<Self> {
        let ty = get_u8(buf, "tag type")?;
        let (ty, name) = if ty & tag_type::COMPACT != 0 {
            (
                ty & !tag_type::COMPACT,
                TagName::Id(get_u8(buf, "tag name")?),
            )
        } else {
            (ty, TagName::get(buf)?)
        };
        let value = TagValue::get(buf, ty)?;
        Ok(Self { name, value })
    }

    /// Encodes one tag.
    pub fn encode(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        let compact = enc == TagEncoding::Compact;
        let ty = self.value.type_byte(compact);
        match (&self.name, compact) {
            (TagName::Id(id), true) => {
                dst.put_u8(ty | tag_type::COMPACT);
                dst.put_u8(*id);
            }
            (name, _) => {
                dst.put_u8(ty);
                name.put(dst)?;
            }
        }
        self.value.put(dst, ty)
    }
}

/// Decodes a `u32 count` + tags list; the count is bounded by the bytes left.
pub fn decode_list(buf: &mut impl Buf) -> Result<Vec<Tag>> {
    let count = get_u32(buf, "tag count")?;
    decode_n(buf, u64::from(count))
}

/// Decodes a Kad `u8 count` + tags list.
pub fn decode_kad_list(buf: &mut impl Buf) -> Result<Vec<Tag>> {
    let count = get_u8(buf, "tag count")?;
    decode_n(buf, u64::from(count))
}

fn decode_n(buf: &mut impl Buf, count: u64) -> Result<Vec<Tag>> {
    let n = check_count(count, MIN_TAG_LEN, buf.remaining(), "tag")?;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        tags.push(Tag::decode(buf)?);
    }
    Ok(tags)
}

/// Encodes a `u32 count` + tags list.
pub fn encode_list(tags: &[Tag], dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
    let n: u32 = count_as(tags.len(), "tag list", u32::MAX as usize)?;
    dst.put_u32_le(n);
    tags.iter().try_for_each(|t| t.encode(dst, enc))
}

/// Encodes a Kad `u8 count` + tags list (classic names, as Kad requires).
pub fn encode_kad_list(tags: &[Tag], dst: &mut impl BufMut) -> Result<()> {
    let n: u8 = count_as(tags.len(), "Kad tag list", 255)?;
    dst.put_u8(n);
    tags.iter()
        .try_for_each(|t| t.encode(dst, TagEncoding::Classic))
}

/// Look-ups over a tag list.
pub trait TagsExt {
    /// The first value with numeric name `id`.
    fn get_id(&self, id: u8) -> Option<&TagValue>;
    /// The first value with string name `name`.
    fn get_named(&self, name: &str) -> Option<&TagValue>;
    /// An integer of any width under `id`.
    fn u64_of(&self, id: u8) -> Option<u64> {
        self.get_id(id).and_then(TagValue::as_u64)
    }
    /// A string under `id`.
    fn string_of(&self, id: u8) -> Option<&WireString> {
        self.get_id(id).and_then(TagValue::as_string)
    }
    /// The file size from `FT_FILESIZE` (any width) plus `FT_FILESIZE_HI` if present.
    fn file_size(&self) -> Option<u64> {
        let lo = self.u64_of(ft::FILESIZE)?;
        match self.u64_of(ft::FILESIZE_HI) {
            Some(hi) => Some((hi << 32) | (lo & 0xFFFF_FFFF)),
            None => Some(lo),
        }
    }
}

impl TagsExt for [Tag] {
    fn get_id(&self, id: u8) -> Option<&TagValue> {
        self.iter()
            .find(|t| t.name == TagName::Id(id))
            .map(|t| &t.value)
    }
    fn get_named(&self, name: &str) -> Option<&TagValue> {
        self.iter()
            .find(|t| matches!(&t.name, TagName::Name(n) if n.as_bytes() == name.as_bytes()))
            .map(|t| &t.value)
    }
}

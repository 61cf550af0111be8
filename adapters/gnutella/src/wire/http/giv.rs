//! The `GIV` line a pushed servent sends on the connection it opened.

use bytes::BufMut;
use junction_core::http::split_head;

use crate::error::{Error, Result};
use crate::wire::guid::Guid;

/// `GIV <index>:<guid hex>/<name>` LF LF, sent by a pushed servent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Giv {
    /// File index from the Push.
    pub index: u32,
    /// The pushed servent's GUID.
    pub servent: Guid,
    /// File name (gtk-gnutella sends the literal `file`).
    pub name: String,
}

/// Largest GIV line we buffer.
pub const MAX_GIV_LEN: usize = 4096;

impl Giv {
    /// Parse a GIV at the start of `buf` (ended by an empty line, LF or
    /// CRLF): `Ok(None)` until complete.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let Some(raw) = split_head(buf, MAX_GIV_LEN, "GIV line")? else {
            return Ok(None);
        };
        let what = "GIV line";
        let bad = || Error::invalid(what, format!("{:?}", raw.start));
        let rest = raw.start.strip_prefix("GIV ").ok_or_else(bad)?;
        let (idx, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (guid, name) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(Some((
            Giv {
                index: idx.trim().parse().map_err(|_| bad())?,
                servent: Guid::from_hex(guid)?,
                name: name.to_owned(),
            },
            raw.len,
        )))
    }

    /// Write the line as gtk-gnutella does: LF LF.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(
            format!(
                "GIV {}:{}/{}\n\n",
                self.index,
                self.servent.to_hex(),
                self.name
            )
            .as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giv() {
        let (g, n) = Giv::parse(b"GIV 3:54cd3102ab408d4acfb983e172dbd151/file\n\nGET")
            .unwrap()
            .unwrap();
        assert_eq!((g.index, n), (3, 45));
        let mut v = Vec::new();
        g.encode(&mut v);
        assert_eq!(v, b"GIV 3:54cd3102ab408d4acfb983e172dbd151/file\n\n");
        assert!(Giv::parse(b"GIV x:00/file\n\n").is_err());
        assert!(Giv::parse(b"GIV 3:54cd/file\n\n").is_err());
    }
}

//! `ed2k://` links: `|file|…|/`, `|server|host|port|/`, `|serverlist|url|/`, `|nodeslist|url|/`.
//!
//! Tokens are separated by `|`; only the `ed2k://` prefix is case-insensitive.

use std::fmt;
use std::str::FromStr;

use junction_core::link::percent_decode;

use crate::error::{Result, WireError};
use crate::wire::codec::{ClientId, Hash16};
use crate::wire::hash::{
    AichHash, MAX_FILE_SIZE, parse_base32_aich, parse_hex_hash, to_base32, to_hex,
};

/// Longest link we parse; a link is pasted text, never megabytes.
pub const MAX_LINK_LEN: usize = 64 * 1024;

/// A parsed `ed2k://` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ed2kLink {
    File(FileLink),
    Server(ServerLink),
    /// URL of a `server.met`.
    ServerList(String),
    /// URL of a Kad `nodes.dat`.
    NodesList(String),
}

/// `ed2k://|server|<host or IP>|<port>|/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLink {
    pub host: String,
    pub port: u16,
}

/// A source from the `|sources,host:port,…|/` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSource {
    pub host: String,
    pub port: u16,
}

/// `ed2k://|file|<name>|<size>|<hash>|[h=…|][p=…|][s=…|]/[|sources,…|/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    /// Percent-decoded name (not sanitised).
    pub name: String,
    pub size: u64,
    pub hash: Hash16,
    /// `h=` AICH root.
    pub aich: Option<AichHash>,
    /// `p=` full MD4 hashset (empty if absent).
    pub part_hashes: Vec<Hash16>,
    /// `s=` web sources.
    pub web_sources: Vec<String>,
    /// `sources,…` peers (LowID-looking IPs are dropped, as eMule does).
    pub sources: Vec<LinkSource>,
}

impl FileLink {
    pub fn new(name: impl Into<String>, size: u64, hash: Hash16) -> Self {
        Self {
            name: name.into(),
            size,
            hash,
            aich: None,
            part_hashes: Vec::new(),
            web_sources: Vec::new(),
            sources: Vec::new(),
        }
    }
}

fn bad(reason: impl Into<String>) -> WireError {
    WireError::InvalidLink(reason.into())
}

impl Ed2kLink {
    /// Parses a link.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() > MAX_LINK_LEN {
            return Err(bad(format!(
                "link is {} bytes, more than the {MAX_LINK_LEN} byte maximum",
                s.len()
            )));
        }
        let rest = s
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("ed2k://"))
            .and_then(|_| s.get(7..))
            .ok_or_else(|| bad("does not start with ed2k://"))?;
        let rest = rest
            .strip_prefix('|')
            .ok_or_else(|| bad("expected '|' after ed2k://"))?;
        let tokens: Vec<&str> = rest.split('|').collect();
        let kind = tokens.first().copied().unwrap_or_default();
        match kind.to_ascii_lowercase().as_str() {
            "file" => parse_file(&tokens[1..]).map(Ed2kLink::File),
            "server" => {
                let host = tokens.get(1).copied().unwrap_or_default().trim();
                let port = tokens.get(2).copied().unwrap_or_default().trim();
                if host.is_empty() {
                    return Err(bad("server link without a host"));
                }
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(format!("invalid server port {port:?}")))?;
                Ok(Ed2kLink::Server(ServerLink {
                    host: host.to_owned(),
                    port,
                }))
            }
            "serverlist" | "nodeslist" => {
                let url = tokens.get(1).copied().unwrap_or_default().trim();
                if url.is_empty() {
                    return Err(bad(format!("{kind} link without a URL")));
                }
                Ok(if kind.eq_ignore_ascii_case("serverlist") {
                    Ed2kLink::ServerList(url.to_owned())
                } else {
                    Ed2kLink::NodesList(url.to_owned())
                })
            }
            other => Err(bad(format!("unsupported link type {other:?}"))),
        }
    }
}

impl FromStr for Ed2kLink {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn parse_file(t: &[&str]) -> Result<FileLink> {
    let (Some(name), Some(size), Some(hash)) = (t.first(), t.get(1), t.get(2)) else {
        return Err(bad("file link needs name, size and hash"));
    };
    let name = percent_decode(name);
    if name.trim().is_empty() {
        return Err(bad("file link with an empty name"));
    }
    let size: u64 = size
        .trim()
        .parse()
        .map_err(|_| bad(format!("invalid file size {size:?}")))?;
    if size == 0 || size >= MAX_FILE_SIZE {
        return Err(bad(format!("file size {size} outside 1..2^38")));
    }
    let hash = parse_hex_hash(hash.trim()).ok_or_else(|| bad(format!("invalid hash {hash:?}")))?;
    let mut link = FileLink::new(name, size, hash);

    let mut i = 3;
    // Parameters up to the first "/" token.
    while let Some(tok) = t.get(i) {
        i += 1;
        if *tok == "/" || tok.is_empty() && t.get(i).is_none() {
            break;
        }
        if let Some(v) = tok.strip_prefix("h=") {
            link.aich =
                Some(parse_base32_aich(v).ok_or_else(|| bad(format!("invalid AICH hash {v:?}")))?);
        } else if let Some(v) = tok.strip_prefix("p=") {
            let parts = v
                .split(':')
                .map(|p| parse_hex_hash(p).ok_or_else(|| bad(format!("invalid part hash {p:?}"))))
                .collect::<Result<Vec<_>>>()?;
            let want = crate::wire::hash::part_hash_count(size);
            if parts.len() as u64 != want {
                return Err(bad(format!(
                    "p= lists {} part hashes, a file of {size} bytes has {want}",
                    parts.len()
                )));
            }
            link.part_hashes = parts;
        } else if let Some(v) = tok.strip_prefix("s=") {
            link.web_sources.push(percent_decode(v));
        }
        // Unknown parameters are ignored, as eMule does.
    }
    // Optional eMule extension section.
    while let Some(tok) = t.get(i) {
        i += 1;
        let lower = tok.to_ascii_lowercase();
        if lower.starts_with("sources,") || lower.starts_with("sources@") {
            for entry in tok.split(',').skip(1) {
                if let Some(src) = parse_source(entry) {
                    link.sources.push(src);
                }
            }
        }
    }
    Ok(link)
}

/// `host:port[:cryptopts[:userhash]]`; LowID-looking IPs are dropped.
fn parse_source(entry: &str) -> Option<LinkSource> {
    let mut it = entry.trim().split(':');
    let host = it.next()?.trim();
    let port: u16 = it.next()?.trim().parse().ok().filter(|p| *p != 0)?;
    if host.is_empty() {
        return None;
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>()
        && ClientId::from_ipv4(ip).is_low_id()
    {
        return None;
    }
    Some(LinkSource {
        host: host.to_owned(),
        port,
    })
}

impl fmt::Display for FileLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ed2k://|file|")?;
        // Core's percent-coding, as every link Junction writes: eMule decodes any `%XX`.
        f.write_str(&junction_core::link::percent_encode(&self.name))?;
        write!(f, "|{}|{}|", self.size, to_hex(&self.hash))?;
        if !self.part_hashes.is_empty() {
            let parts: Vec<String> = self.part_hashes.iter().map(|h| to_hex(h)).collect();
            write!(f, "p={}|", parts.join(":"))?;
        }
        if let Some(aich) = &self.aich {
            write!(f, "h={}|", to_base32(aich))?;
        }
        for s in &self.web_sources {
            f.write_str("s=")?;
            f.write_str(&junction_core::link::percent_encode(s))?;
            f.write_str("|")?;
        }
        f.write_str("/")?;
        if !self.sources.is_empty() {
            f.write_str("|sources")?;
            for s in &self.sources {
                write!(f, ",{}:{}", s.host, s.port)?;
            }
            f.write_str("|/")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ed2kLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ed2kLink::File(l) => l.fmt(f),
            Ed2kLink::Server(s) => write!(f, "ed2k://|server|{}|{}|/", s.host, s.port),
            Ed2kLink::ServerList(u) => write!(f, "ed2k://|serverlist|{u}|/"),
            Ed2kLink::NodesList(u) => write!(f, "ed2k://|nodeslist|{u}|/"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_links() {
        let l = Ed2kLink::parse("ed2k://|server|127.0.0.1|4661|/").unwrap();
        assert_eq!(
            l,
            Ed2kLink::Server(ServerLink {
                host: "127.0.0.1".into(),
                port: 4661
            })
        );
        assert_eq!(l.to_string(), "ed2k://|server|127.0.0.1|4661|/");
        assert!(Ed2kLink::parse("ED2K://|server|example.org|4242|/").is_ok());
        assert!(Ed2kLink::parse("ed2k://|server|1.2.3.4|0|/").is_err());
        assert!(Ed2kLink::parse("ed2k://|server|1.2.3.4|70000|/").is_err());
        assert!(Ed2kLink::parse("ed2k://|server||4661|/").is_err());
        let sl = Ed2kLink::parse("ed2k://|serverlist|http://127.0.0.1/server.met|/").unwrap();
        assert_eq!(
            sl,
            Ed2kLink::ServerList("http://127.0.0.1/server.met".into())
        );
        assert_eq!(
            sl.to_string(),
            "ed2k://|serverlist|http://127.0.0.1/server.met|/"
        );
        assert!(Ed2kLink::parse("ed2k://|serverlist||/").is_err());
        assert!(Ed2kLink::parse("http://x").is_err());
        assert!(Ed2kLink::parse("ed2k:/").is_err());
        assert!(Ed2kLink::parse("ed2k://|bogus|/").is_err());
    }

    #[test]
    fn file_links() {
        let canon = "ed2k://|file|name.ext|12345|0123456789ABCDEF0123456789ABCDEF|/";
        let Ed2kLink::File(f) = Ed2kLink::parse(canon).unwrap() else {
            panic!("not a file link")
        };
        assert_eq!(f.name, "name.ext");
        assert_eq!(f.size, 12345);
        assert_eq!(to_hex(&f.hash), "0123456789ABCDEF0123456789ABCDEF");
        assert_eq!(f.to_string(), canon);

        let full = "ed2k://|file|My%20File%7C1.avi|9728000|FC21D9AF828F92A8DF64BEAC3357425D|\
                    p=D7DEF262A127CD79096A108E7A9FC138:31D6CFE0D16AE931B73C59D7E0C089C0|\
                    h=5D3N4HQHIUMQ7IU7A5QLPLI6RHSWOR7B|/|sources,10.0.0.1:4662,1.2.3.0:4662,host.example:1|/";
        let Ed2kLink::File(f) = Ed2kLink::parse(full).unwrap() else {
            panic!("not a file link")
        };
        assert_eq!(f.name, "My File|1.avi");
        assert_eq!(f.part_hashes.len(), 2);
        assert!(f.aich.is_some());
        // 1.2.3.0 looks like a LowID and is dropped.
        assert_eq!(f.sources.len(), 2);
        assert_eq!(Ed2kLink::parse(&f.to_string()).unwrap(), Ed2kLink::File(f));

        // p= with the wrong count, bad hash, zero size, empty name.
        for bad in [
            "ed2k://|file|a|9728000|FC21D9AF828F92A8DF64BEAC3357425D|p=D7DEF262A127CD79096A108E7A9FC138|/",
            "ed2k://|file|a|1|XYZ|/",
            "ed2k://|file|a|0|FC21D9AF828F92A8DF64BEAC3357425D|/",
            "ed2k://|file| |5|FC21D9AF828F92A8DF64BEAC3357425D|/",
            "ed2k://|file|a|5|/",
        ] {
            assert!(Ed2kLink::parse(bad).is_err(), "{bad}");
        }
    }

    /// Names and web sources are decoded by core's `percent_decode`: an escape is `%` and two
    /// hex digits, so `%+1` stays as written (the old copy read the `+` as a sign: byte 1).
    #[test]
    fn a_sign_is_not_a_hex_digit() {
        let link =
            "ed2k://|file|a%+1b%20c%zz|5|FC21D9AF828F92A8DF64BEAC3357425D|s=http://h/%+1%41|/";
        let Ed2kLink::File(f) = Ed2kLink::parse(link).unwrap() else {
            panic!("not a file link")
        };
        assert_eq!(f.name, "a%+1b c%zz");
        assert_eq!(f.web_sources, ["http://h/%+1A"]);
        assert_eq!(Ed2kLink::parse(&f.to_string()).unwrap(), Ed2kLink::File(f));
    }
}

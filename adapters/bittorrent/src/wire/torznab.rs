//! Torznab responses (the search API Jackett and Prowlarr expose): RSS items turned into
//! hits with info-hashes, seeders and peers; the search itself is `engine::torznab`. The XML
//! is read with a small bounded scanner (no XML crate is available): only the elements
//! Torznab defines are looked at, entities and CDATA are decoded, anything else is skipped.

use junction_core::{ContentId, HashKind, Hit, NetworkId};

use super::http;
use crate::wire::id::InfoHash;
use crate::wire::magnet::Magnet;
use crate::wire::percent;

/// Most items read from one response.
pub const MAX_ITEMS: usize = 500;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorznabError {
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("Torznab error {code}: {description}")]
    Api { code: String, description: String },
}

/// One search result of a feed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    pub title: String,
    pub size: Option<u64>,
    pub info_hash: Option<InfoHash>,
    pub magnet: Option<String>,
    /// The `.torrent` download link (often through the indexer).
    pub link: Option<String>,
    pub seeders: Option<u32>,
    /// Torznab `peers`: seeders and leechers together.
    pub peers: Option<u32>,
}

impl Item {
    /// A hit, if the item names its content by info-hash (directly or in its magnet).
    pub fn to_hit(&self) -> Option<Hit> {
        let ih = self.info_hash.or_else(|| {
            self.magnet
                .as_deref()
                .and_then(|m| Magnet::parse(m).ok())
                .and_then(|m| m.btih())
        })?;
        let size = self.size.unwrap_or(0);
        let id = ContentId::new(self.size).with(HashKind::Btih, &ih.0);
        let mut h = Hit::new(NetworkId::BITTORRENT, id, self.title.clone(), size);
        h.sources = self.peers.or(self.seeders).unwrap_or(0);
        h.complete_sources = self.seeders;
        h.link = Some(self.magnet.clone().unwrap_or_else(|| {
            format!(
                "magnet:?xt=urn:btih:{}&dn={}",
                ih.to_hex(),
                percent::encode(self.title.as_bytes())
            )
        }));
        Some(h)
    }
}

/// Parses a Torznab response: an RSS channel of items, or an `<error>`.
pub fn parse(xml: &str) -> Result<Vec<Item>, TorznabError> {
    if let Some(e) = find_tag(xml, "error") {
        return Err(TorznabError::Api {
            code: attr(e, "code").unwrap_or_default(),
            description: attr(e, "description").unwrap_or_default(),
        });
    }
    let mut items = Vec::new();
    let mut rest = xml;
    while items.len() < MAX_ITEMS {
        let Some(start) = rest.find("<item") else {
            break;
        };
        let after = &rest[start + 5..];
        if !after.starts_with(['>', ' ', '\t', '\r', '\n']) {
            rest = after;
            continue;
        }
        let Some(end) = after.find("</item>") else {
            break;
        };
        items.push(parse_item(&after[..end]));
        rest = &after[end + 7..];
    }
    Ok(items)
}

fn parse_item(x: &str) -> Item {
    let mut it = Item {
        title: element_text(x, "title").unwrap_or_default(),
        size: element_text(x, "size").and_then(|s| s.trim().parse().ok()),
        link: element_text(x, "link").map(|s| s.trim().to_owned()),
        ..Item::default()
    };
    if let Some(enc) = find_tag(x, "enclosure") {
        if it.size.is_none() {
            it.size = attr(enc, "length").and_then(|s| s.parse().ok());
        }
        if it.link.is_none() {
            it.link = attr(enc, "url");
        }
    }
    let mut rest = x;
    while let Some(i) = rest.find("<torznab:attr") {
        let tail = &rest[i..];
        let end = tail.find('>').unwrap_or(tail.len());
        let tag = &tail[..end];
        if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
            match name.as_str() {
                "infohash" => it.info_hash = InfoHash::from_hex(value.trim()),
                "magneturl" => it.magnet = Some(value),
                "seeders" => it.seeders = value.trim().parse().ok(),
                "peers" => it.peers = value.trim().parse().ok(),
                "size" if it.size.is_none() => it.size = value.trim().parse().ok(),
                _ => {}
            }
        }
        rest = &tail[end..];
    }
    if it.magnet.is_none() && it.link.as_deref().is_some_and(|l| l.starts_with("magnet:")) {
        it.magnet = it.link.take();
    }
    it
}

/// The opening tag `<name …>` (up to its `>`), if present.
fn find_tag<'a>(x: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}");
    let mut rest = x;
    loop {
        let i = rest.find(&open)?;
        let tail = &rest[i + open.len()..];
        if tail.starts_with([' ', '>', '/', '\t', '\r', '\n']) {
            let end = tail.find('>')?;
            return Some(&tail[..end]);
        }
        rest = tail;
    }
}

/// The decoded text of `<name>…</name>`.
fn element_text(x: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let i = x.find(&open)? + open.len();
    let j = x[i..].find(&close)? + i;
    let raw = x[i..j].trim();
    let raw = raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"));
    Some(match raw {
        Some(cdata) => cdata.to_owned(),
        None => unescape(x[i..j].trim()),
    })
}

/// The decoded value of `name="…"` (or single quotes) inside a tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let i = rest.find(name)?;
        let before_ok = i == 0 || rest[..i].ends_with([' ', '\t', '\r', '\n']);
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let q = v.chars().next()?;
            if q == '"' || q == '\'' {
                let end = v[1..].find(q)? + 1;
                return Some(unescape(&v[1..end]));
            }
        }
        rest = &rest[i + name.len()..];
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let ent = &tail[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const FIXTURE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:torznab="http://torznab.com/schemas/2015/feed">
  <channel>
    <title>Test indexer</title>
    <item>
      <title>Debian 12 netinst &amp; firmware</title>
      <guid>1</guid>
      <link>http://127.0.0.1/dl/1.torrent</link>
      <size>658505728</size>
      <enclosure url="http://127.0.0.1/dl/1.torrent" length="658505728" type="application/x-bittorrent" />
      <torznab:attr name="seeders" value="42" />
      <torznab:attr name="peers" value="50" />
      <torznab:attr name="infohash" value="64A980ABE6E448226BB930BA061592E44C3781A1" />
    </item>
    <item>
      <title><![CDATA[Ubuntu <desktop>]]></title>
      <torznab:attr name="size" value="1000" />
      <torznab:attr name="magneturl" value="magnet:?xt=urn:btih:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&amp;dn=u" />
    </item>
    <item><title>no hash</title><link>http://127.0.0.1/x</link></item>
  </channel>
</rss>"#;

    #[test]
    fn items_become_hits() {
        let items = parse(FIXTURE).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].title, "Debian 12 netinst & firmware");
        assert_eq!(items[0].seeders, Some(42));
        assert_eq!(items[0].peers, Some(50));
        assert_eq!(items[0].size, Some(658_505_728));
        let h = items[0].to_hit().unwrap();
        assert_eq!(
            h.id.get(HashKind::Btih)
                .map(|b| InfoHash::from_slice(b).unwrap().to_hex()),
            Some("64a980abe6e448226bb930ba061592e44c3781a1".into())
        );
        assert_eq!((h.sources, h.complete_sources), (50, Some(42)));
        assert!(h.link.unwrap().starts_with("magnet:?xt=urn:btih:64a980ab"));
        assert_eq!(items[1].title, "Ubuntu <desktop>");
        assert_eq!(items[1].size, Some(1000));
        let h = items[1].to_hit().unwrap();
        assert_eq!(
            h.link.as_deref(),
            Some("magnet:?xt=urn:btih:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&dn=u")
        );
        assert!(items[2].to_hit().is_none());
    }

    #[test]
    fn errors_and_garbage() {
        let e = parse(
            r#"<?xml version="1.0"?><error code="100" description="Incorrect user credentials"/>"#,
        );
        assert!(matches!(e, Err(TorznabError::Api { code, .. }) if code == "100"));
        assert!(parse("").unwrap().is_empty());
        assert!(parse("<item><title>x").unwrap().is_empty());
        assert_eq!(unescape("a &amp;&#65;&#x42; &bogus; &"), "a &AB &bogus; &");
        for cut in 0..FIXTURE.len() {
            if FIXTURE.is_char_boundary(cut) {
                let _ = parse(&FIXTURE[..cut]);
            }
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_xml_never_panics(s in "(<item>|</item>|<title>|</title>|<torznab:attr |name=\"|value=\"|infohash|seeders|\"|&amp;|&#|;|<!\\[CDATA\\[|\\]\\]>|/>|>|[a-z0-9 ]){0,60}") {
            if let Ok(items) = super::parse(&s) {
                for it in items {
                    let _ = it.to_hit();
                }
            }
        }
    }
}

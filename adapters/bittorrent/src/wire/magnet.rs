//! Magnet links (BEP 9, BEP 53 and the multi-network forms in `specs/hashes-and-links.md`).
//!
//! A magnet may name one content under several networks' hashes (`urn:ed2k`, `urn:sha1`,
//! `urn:tree:tiger`, …); all of them are kept as typed [`Topic`]s so the gateway can link
//! them, while BitTorrent uses `urn:btih` / `urn:btmh`.

use std::fmt;
use std::net::SocketAddr;

use data_encoding::{BASE32_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE, HEXUPPER};

use crate::error::MagnetError;
use crate::wire::id::{InfoHash, InfoHashV2};
use crate::wire::percent;

/// Longest magnet accepted; real ones are a few KiB even with many trackers.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;

/// One `xt` (exact topic).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// BitTorrent v1 info-hash (`urn:btih:`, 40 hex or 32 base32).
    BtIh(InfoHash),
    /// BitTorrent v2 info-hash (`urn:btmh:1220…`).
    BtMh(InfoHashV2),
    /// SHA-1 of the whole file (`urn:sha1:`, base32), Gnutella's id.
    Sha1([u8; 20]),
    /// Tiger tree root (`urn:tree:tiger:` or `urn:tree:tiger/:`, base32).
    Tth([u8; 24]),
    /// `urn:bitprint:<sha1>.<tth>`.
    Bitprint { sha1: [u8; 20], tth: [u8; 24] },
    /// eD2k MD4 hashset root (`urn:ed2k:` or `urn:ed2khash:`, hex).
    Ed2k([u8; 16]),
    /// eMule AICH root (`urn:aich:`, base32).
    Aich([u8; 20]),
    /// `urn:md5:`, hex.
    Md5([u8; 16]),
    /// Any other topic, kept verbatim.
    Other(String),
}

/// Parses the hash part of one URN scheme.
type TopicParser = fn(&str) -> Option<Topic>;

fn base32<const N: usize>(s: &str) -> Option<[u8; N]> {
    let v = BASE32_NOPAD
        .decode(s.to_ascii_uppercase().as_bytes())
        .ok()?;
    v.try_into().ok()
}

fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let v = HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()?;
    v.try_into().ok()
}

/// Strips a case-insensitive ASCII prefix.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl Topic {
    /// Parses an `xt` value. Known URN schemes with a malformed hash are errors; unknown
    /// schemes become [`Topic::Other`].
    pub fn parse(xt: &str) -> Result<Self, MagnetError> {
        let bad = || MagnetError::BadTopic(xt.to_owned());
        let known: [(&str, TopicParser); 10] = [
            ("urn:btih:", |h| {
                InfoHash::from_hex(h)
                    .or_else(|| (h.len() == 32).then(|| InfoHash::from_base32(h)).flatten())
                    .map(Topic::BtIh)
            }),
            ("urn:btmh:", |h| {
                InfoHashV2::from_multihash_hex(h).map(Topic::BtMh)
            }),
            ("urn:sha1:", |h| {
                base32(h).or_else(|| hex(h)).map(Topic::Sha1)
            }),
            ("urn:tree:tiger/:", |h| base32(h).map(Topic::Tth)),
            ("urn:tree:tiger:", |h| base32(h).map(Topic::Tth)),
            ("urn:bitprint:", |h| {
                let (s, t) = h.split_once('.')?;
                Some(Topic::Bitprint {
                    sha1: base32(s)?,
                    tth: base32(t)?,
                })
            }),
            ("urn:ed2khash:", |h| hex(h).map(Topic::Ed2k)),
            ("urn:ed2k:", |h| hex(h).map(Topic::Ed2k)),
            ("urn:aich:", |h| base32(h).map(Topic::Aich)),
            ("urn:md5:", |h| hex(h).map(Topic::Md5)),
        ];
        for (prefix, parse) in known {
            if let Some(rest) = strip_prefix_ci(xt, prefix) {
                return parse(rest).ok_or_else(bad);
            }
        }
        Ok(Topic::Other(xt.to_owned()))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::BtIh(h) => write!(f, "urn:btih:{}", h.to_hex()),
            Topic::BtMh(h) => write!(f, "urn:btmh:{}", h.to_multihash_hex()),
            Topic::Sha1(h) => write!(f, "urn:sha1:{}", BASE32_NOPAD.encode(h)),
            Topic::Tth(h) => write!(f, "urn:tree:tiger:{}", BASE32_NOPAD.encode(h)),
            Topic::Bitprint { sha1, tth } => write!(
                f,
                "urn:bitprint:{}.{}",
                BASE32_NOPAD.encode(sha1),
                BASE32_NOPAD.encode(tth)
            ),
            Topic::Ed2k(h) => write!(f, "urn:ed2k:{}", HEXLOWER.encode(h)),
            Topic::Aich(h) => write!(f, "urn:aich:{}", BASE32_NOPAD.encode(h)),
            Topic::Md5(h) => write!(f, "urn:md5:{}", HEXUPPER.encode(h)),
            Topic::Other(s) => f.write_str(s),
        }
    }
}

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Magnet {
    /// `xt`, in link order.
    pub topics: Vec<Topic>,
    /// `dn`.
    pub display_name: Option<String>,
    /// `xl`.
    pub exact_length: Option<u64>,
    /// `tr` tracker URLs.
    pub trackers: Vec<String>,
    /// `ws` web seeds (BEP 19).
    pub web_seeds: Vec<String>,
    /// `x.pe` peers, as given: `host:port`, `ipv4:port` or `[ipv6]:port`.
    pub peers: Vec<String>,
    /// `xs` exact sources and `as` acceptable sources (URLs for other networks).
    pub exact_sources: Vec<String>,
    pub acceptable_sources: Vec<String>,
    /// `kt` keyword topic.
    pub keywords: Option<String>,
    /// `so` select-only file list (BEP 53), unparsed, e.g. `0,2,4-6`.
    pub select_only: Option<String>,
}

impl Magnet {
    pub fn parse(link: &str) -> Result<Self, MagnetError> {
        if link.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::BadValue {
                key: "magnet".into(),
                value: format!("{} bytes long", link.len()),
            });
        }
        let query = strip_prefix_ci(link.trim(), "magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut m = Magnet::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            // libtorrent strips numbered suffixes: `tr.1` is `tr`.
            let key = match raw_key.rsplit_once('.') {
                Some((k, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => k,
                _ => raw_key,
            };
            let value = percent::decode(raw_value, true)
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| MagnetError::BadEscape(key.to_owned()))?;
            match key {
                "xt" => m.topics.push(Topic::parse(&value)?),
                "dn" => m.display_name = Some(value),
                "xl" => {
                    let n = value.parse().map_err(|_| MagnetError::BadValue {
                        key: key.into(),
                        value: value.clone(),
                    })?;
                    m.exact_length = Some(n);
                }
                "tr" => m.trackers.push(value),
                "ws" => m.web_seeds.push(value),
                "x.pe" => m.peers.push(value),
                "xs" => m.exact_sources.push(value),
                "as" => m.acceptable_sources.push(value),
                "kt" => m.keywords = Some(value),
                "so" => m.select_only = Some(value),
                _ => {} // unknown parameters are ignored, as every client does
            }
        }
        if m.topics.is_empty() {
            return Err(MagnetError::NoTopic);
        }
        Ok(m)
    }

    /// The v1 info-hash, if the link has one.
    pub fn btih(&self) -> Option<InfoHash> {
        self.topics.iter().find_map(|t| match t {
            Topic::BtIh(h) => Some(*h),
            _ => None,
        })
    }

    /// The v2 info-hash, if the link has one.
    pub fn btmh(&self) -> Option<InfoHashV2> {
        self.topics.iter().find_map(|t| match t {
            Topic::BtMh(h) => Some(*h),
            _ => None,
        })
    }

    /// The 20-byte hash to use on trackers, the DHT and the handshake: the v1 hash if
    /// present, else the truncated v2 hash.
    pub fn swarm_hash(&self) -> Option<InfoHash> {
        self.btih().or_else(|| self.btmh().map(|h| h.truncated()))
    }

    /// `x.pe` peers that are literal socket addresses (host names need resolving elsewhere).
    pub fn peer_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.iter().filter_map(|p| p.parse().ok())
    }
}

impl fmt::Display for Magnet {
    /// Emits `xt`s first, then `dn`, `xl`, `tr`, `ws`, `x.pe`, `xs`, `as`, `kt`, `so`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for t in &self.topics {
            // Topic text is URN syntax; keep `:` readable, as every client emits it.
            let text = percent::encode(t.to_string().as_bytes()).replace("%3A", ":");
            pairs.push(("xt", text));
        }
        let esc = |v: &str| percent::encode(v.as_bytes());
        if let Some(dn) = &self.display_name {
            pairs.push(("dn", esc(dn)));
        }
        if let Some(xl) = self.exact_length {
            pairs.push(("xl", xl.to_string()));
        }
        for (key, list) in [
            ("tr", &self.trackers),
            ("ws", &self.web_seeds),
            ("x.pe", &self.peers),
            ("xs", &self.exact_sources),
            ("as", &self.acceptable_sources),
        ] {
            pairs.extend(list.iter().map(|v| (key, esc(v))));
        }
        for (key, value) in [("kt", &self.keywords), ("so", &self.select_only)] {
            pairs.extend(value.iter().map(|v| (key, esc(v))));
        }
        f.write_str("magnet:?")?;
        for (i, (key, value)) in pairs.iter().enumerate() {
            let sep = if i == 0 { "" } else { "&" };
            write!(f, "{sep}{key}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn v2_example_from_rqbit() {
        let m = Magnet::parse("magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e&dn=bittorrent-v2-test").unwrap();
        assert_eq!(m.display_name.as_deref(), Some("bittorrent-v2-test"));
        assert_eq!(m.btih(), None);
        assert_eq!(
            m.swarm_hash().unwrap().to_hex(),
            "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa"
        );
        assert_eq!(Magnet::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn hex_and_base32_btih_and_trackers() {
        let hex = "64a980abe6e448226bb930ba061592e44c3781a1";
        let ih = InfoHash::from_hex(hex).unwrap();
        let b32 = BASE32_NOPAD.encode(&ih.0);
        let link = format!(
            "magnet:?xt=urn:btih:{b32}&dn=ubuntu+21.04%20desktop&tr=https%3A%2F%2Ftorrent.ubuntu.com%2Fannounce&tr.1=udp%3A%2F%2Ft.example%3A80&x.pe=10.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A6881&x.pe=peer.example:1&ws=http%3A%2F%2Fws.example%2F&xl=2818738176"
        );
        let m = Magnet::parse(&link).unwrap();
        assert_eq!(m.btih(), Some(ih));
        assert_eq!(m.display_name.as_deref(), Some("ubuntu 21.04 desktop"));
        assert_eq!(
            m.trackers,
            vec!["https://torrent.ubuntu.com/announce", "udp://t.example:80"]
        );
        assert_eq!(m.exact_length, Some(2_818_738_176));
        assert_eq!(m.web_seeds, vec!["http://ws.example/"]);
        let peers: Vec<SocketAddr> = m.peer_addrs().collect();
        assert_eq!(
            peers,
            vec![
                "10.0.0.1:6881".parse().unwrap(),
                "[::1]:6881".parse().unwrap()
            ]
        );
        let emitted = m.to_string();
        assert!(emitted.starts_with(&format!(
            "magnet:?xt=urn:btih:{hex}&dn=ubuntu%2021.04%20desktop&xl=2818738176&tr=https%3A%2F%2F"
        )));
        assert_eq!(Magnet::parse(&emitted).unwrap(), m);
    }

    #[test]
    fn multi_network_examples_from_mldonkey() {
        let m = Magnet::parse("magnet:?xt=urn:ed2k:31D6CFE0D16AE931B73C59D7E0C089C0&xl=0&dn=zero_len.fil&xt=urn:bitprint:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ.LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ&xt=urn:md5:D41D8CD98F00B204E9800998ECF8427E").unwrap();
        assert_eq!(m.exact_length, Some(0));
        let sha1_empty = hex::decode("da39a3ee5e6b4b0d3255bfef95601890afd80709").unwrap();
        match &m.topics[..] {
            [
                Topic::Ed2k(e),
                Topic::Bitprint { sha1, tth },
                Topic::Md5(md5),
            ] => {
                assert_eq!(hex::encode_upper(e), "31D6CFE0D16AE931B73C59D7E0C089C0");
                assert_eq!(&sha1[..], &sha1_empty[..]);
                assert_eq!(
                    BASE32_NOPAD.encode(tth),
                    "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ"
                );
                assert_eq!(hex::encode_upper(md5), "D41D8CD98F00B204E9800998ECF8427E");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.swarm_hash(), None);
        assert_eq!(Magnet::parse(&m.to_string()).unwrap(), m);

        let m = Magnet::parse("magnet:?xt=urn:ed2k:354B15E68FB8F36D7CD88FF94116CDC1&xl=10826029&dn=mediawiki-1.15.1.tar.gz&xt=urn:tree:tiger:7N5OAMRNGMSSEUE3ORHOKWN4WWIQ5X4EBOOTLJY&xt=urn:btih:QHQXPYWMACKDWKP47RRVIV7VOURXFE5Q").unwrap();
        assert_eq!(m.topics.len(), 3);
        assert!(matches!(m.topics[1], Topic::Tth(_)));
        assert_eq!(
            m.btih().unwrap().0.to_vec(),
            BASE32_NOPAD
                .decode(b"QHQXPYWMACKDWKP47RRVIV7VOURXFE5Q")
                .unwrap()
        );
        assert_eq!(
            Topic::parse("urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ").unwrap(),
            Topic::Sha1(sha1_empty.try_into().unwrap())
        );
        assert!(matches!(
            Topic::parse("urn:tree:tiger/:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ").unwrap(),
            Topic::Tth(_)
        ));
        assert_eq!(
            Topic::parse("urn:foo:bar").unwrap(),
            Topic::Other("urn:foo:bar".into())
        );
    }

    #[test]
    fn malformed_links_are_errors() {
        assert_eq!(Magnet::parse("http://x/"), Err(MagnetError::NotMagnet));
        assert_eq!(Magnet::parse("magnet:?dn=x"), Err(MagnetError::NoTopic));
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btih:abcd"),
            Err(MagnetError::BadTopic(_))
        ));
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btmh:1114aaaa"),
            Err(MagnetError::BadTopic(_))
        ));
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btih:64a980abe6e448226bb930ba061592e44c3781a1&dn=%zz"),
            Err(MagnetError::BadEscape(_))
        ));
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btih:64a980abe6e448226bb930ba061592e44c3781a1&dn=%ff"),
            Err(MagnetError::BadEscape(_))
        ));
        assert!(
            Magnet::parse("magnet:?xt=urn:btih:64a980abe6e448226bb930ba061592e44c3781a1&xl=-1")
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn emitted_links_parse_back(
            ih in any::<[u8; 20]>(),
            dn in proptest::option::of(".{0,30}"),
            trackers in proptest::collection::vec(".{1,30}", 0..4),
            xl in proptest::option::of(any::<u64>()),
        ) {
            let m = Magnet {
                topics: vec![Topic::BtIh(InfoHash(ih))],
                display_name: dn,
                trackers,
                exact_length: xl,
                ..Magnet::default()
            };
            prop_assert_eq!(Magnet::parse(&m.to_string()).unwrap(), m);
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = Magnet::parse(&format!("magnet:?{s}"));
        }
    }
}

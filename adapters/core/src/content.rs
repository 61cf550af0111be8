//! Content identity: the hashes one file is known by on each network.
//!
//! Two records are the same content when at least one hash kind that both carry matches,
//! none differs, and their sizes agree. A name and a size alone never make content equal.

use std::fmt;

use data_encoding::{BASE32_NOPAD, HEXLOWER_PERMISSIVE};

/// The kinds of hash Junction knows, each with its URN spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    /// eD2k MD4 hashset root, 16 bytes.
    Ed2k,
    /// eMule AICH root (SHA-1 Merkle), 20 bytes.
    Aich,
    /// SHA-1 of the whole file (Gnutella HUGE), 20 bytes.
    Sha1,
    /// Tiger tree hash root, 24 bytes.
    Tth,
    Md5,
    /// BitTorrent v1 info-hash: identifies a torrent, not a file.
    Btih,
    /// BitTorrent v2 info-hash (SHA-256 digest of the multihash `1220…`).
    Btmh,
    /// BitTorrent v2 per-file `pieces root` (SHA-256 Merkle), a true file hash.
    BtRoot,
}

impl HashKind {
    pub const ALL: [HashKind; 8] = [
        HashKind::Ed2k,
        HashKind::Aich,
        HashKind::Sha1,
        HashKind::Tth,
        HashKind::Md5,
        HashKind::Btih,
        HashKind::Btmh,
        HashKind::BtRoot,
    ];

    pub fn digest_len(self) -> usize {
        match self {
            HashKind::Ed2k | HashKind::Md5 => 16,
            HashKind::Aich | HashKind::Sha1 | HashKind::Btih => 20,
            HashKind::Tth => 24,
            HashKind::Btmh | HashKind::BtRoot => 32,
        }
    }

    /// The URN namespace, as in `urn:<ns>:<digest>`.
    pub fn urn_prefix(self) -> &'static str {
        match self {
            HashKind::Ed2k => "ed2k",
            HashKind::Aich => "aich",
            HashKind::Sha1 => "sha1",
            HashKind::Tth => "tree:tiger",
            HashKind::Md5 => "md5",
            HashKind::Btih => "btih",
            HashKind::Btmh => "btmh",
            HashKind::BtRoot => "btpr",
        }
    }

    fn uses_base32(self) -> bool {
        matches!(self, HashKind::Aich | HashKind::Sha1 | HashKind::Tth)
    }

    /// The digest in this kind's usual text form (hex or base32).
    pub fn format(self, digest: &[u8]) -> String {
        match self {
            _ if self.uses_base32() => BASE32_NOPAD.encode(digest),
            HashKind::Btmh => format!("1220{}", hex::encode(digest)),
            _ => hex::encode(digest),
        }
    }

    /// Parses a digest in hex or base32, whichever fits this kind's length.
    pub fn parse_digest(self, text: &str) -> Result<Vec<u8>, ContentIdError> {
        let text = match self {
            HashKind::Btmh => text
                .strip_prefix("1220")
                .ok_or_else(|| ContentIdError::BadDigest(self, text.to_owned()))?,
            _ => text,
        };
        let n = self.digest_len();
        let bytes = if text.len() == n * 2 {
            HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok()
        } else if text.len() == (n * 8).div_ceil(5) {
            BASE32_NOPAD
                .decode(text.to_ascii_uppercase().as_bytes())
                .ok()
        } else {
            None
        };
        bytes
            .filter(|b| b.len() == n)
            .ok_or_else(|| ContentIdError::BadDigest(self, text.to_owned()))
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.urn_prefix())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentIdError {
    #[error(
        "unknown content id {0:?}; expected urn:sha1:, urn:ed2k:, urn:btih:, urn:tree:tiger:, urn:aich:, urn:md5: or urn:btmh:"
    )]
    UnknownUrn(String),
    #[error("{0} digest {1:?} has the wrong length or alphabet")]
    BadDigest(HashKind, String),
}

/// The hashes known for one content, and its size when known.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ContentId {
    pub size: Option<u64>,
    /// Sorted by kind, at most one digest per kind.
    hashes: Vec<(HashKind, Vec<u8>)>,
}

/// How two content ids relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A shared hash matches, no hash or size differs.
    Same,
    /// A shared hash or the size differs while another hash matches: never merge.
    Conflict,
    /// Nothing in common to compare.
    Unrelated,
}

impl ContentId {
    pub fn new(size: Option<u64>) -> Self {
        ContentId {
            size,
            hashes: Vec::new(),
        }
    }

    /// Adds or replaces a digest. Panics only on a programming error (wrong length).
    pub fn with(mut self, kind: HashKind, digest: &[u8]) -> Self {
        self.set(kind, digest);
        self
    }

    pub fn set(&mut self, kind: HashKind, digest: &[u8]) {
        assert_eq!(digest.len(), kind.digest_len(), "{kind} digest length");
        match self.hashes.binary_search_by_key(&kind, |(k, _)| *k) {
            Ok(i) => self.hashes[i].1 = digest.to_vec(),
            Err(i) => self.hashes.insert(i, (kind, digest.to_vec())),
        }
    }

    pub fn get(&self, kind: HashKind) -> Option<&[u8]> {
        self.hashes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| d.as_slice())
    }

    pub fn hashes(&self) -> impl Iterator<Item = (HashKind, &[u8])> {
        self.hashes.iter().map(|(k, d)| (*k, d.as_slice()))
    }

    pub fn has_hashes(&self) -> bool {
        !self.hashes.is_empty()
    }

    pub fn relation(&self, other: &ContentId) -> Identity {
        let mut matched = false;
        for (kind, digest) in self.hashes() {
            match other.get(kind) {
                Some(d) if d == digest => matched = true,
                Some(_) => return Identity::Conflict,
                None => {}
            }
        }
        match (matched, self.size, other.size) {
            (true, Some(a), Some(b)) if a != b => Identity::Conflict,
            (true, _, _) => Identity::Same,
            (false, _, _) => Identity::Unrelated,
        }
    }

    /// Takes in the hashes and size `other` knows and this one does not.
    pub fn absorb(&mut self, other: &ContentId) {
        for (kind, digest) in other.hashes() {
            if self.get(kind).is_none() {
                self.set(kind, digest);
            }
        }
        self.size = self.size.or(other.size);
    }

    /// Every hash as a URN, e.g. `urn:sha1:…`, `urn:ed2k:…`.
    pub fn urns(&self) -> Vec<String> {
        self.hashes()
            .map(|(k, d)| format!("urn:{}:{}", k.urn_prefix(), k.format(d)))
            .collect()
    }

    /// Adds the hash(es) one URN names. Accepts the aliases other clients write:
    /// `urn:ed2khash:`, `urn:tree:tiger/:`, `urn:tree:tiger/1024:`, `urn:bitprint:`.
    pub fn add_urn(&mut self, urn: &str) -> Result<(), ContentIdError> {
        let lower = urn.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("urn:")
            .ok_or_else(|| ContentIdError::UnknownUrn(urn.to_owned()))?;
        let body = &urn[urn.len() - rest.len()..];
        if let Some(bp) = rest.strip_prefix("bitprint:") {
            let digest = &body[body.len() - bp.len()..];
            let (sha1, tth) = digest
                .split_once('.')
                .ok_or_else(|| ContentIdError::UnknownUrn(urn.to_owned()))?;
            let sha1 = HashKind::Sha1.parse_digest(sha1)?;
            let tth = HashKind::Tth.parse_digest(tth)?;
            self.set(HashKind::Sha1, &sha1);
            self.set(HashKind::Tth, &tth);
            return Ok(());
        }
        const ALIASES: [(&str, HashKind); 10] = [
            ("ed2k:", HashKind::Ed2k),
            ("ed2khash:", HashKind::Ed2k),
            ("aich:", HashKind::Aich),
            ("sha1:", HashKind::Sha1),
            ("tree:tiger:", HashKind::Tth),
            ("tree:tiger/:", HashKind::Tth),
            ("tree:tiger/1024:", HashKind::Tth),
            ("md5:", HashKind::Md5),
            ("btih:", HashKind::Btih),
            ("btmh:", HashKind::Btmh),
        ];
        let (kind, digest) = ALIASES
            .iter()
            .chain(&[("btpr:", HashKind::BtRoot)])
            .find_map(|(p, k)| {
                rest.strip_prefix(p)
                    .map(|d| (*k, &body[body.len() - d.len()..]))
            })
            .ok_or_else(|| ContentIdError::UnknownUrn(urn.to_owned()))?;
        let digest = kind.parse_digest(digest)?;
        self.set(kind, &digest);
        Ok(())
    }

    /// Builds an id from URNs, e.g. from the API.
    pub fn from_urns<'a>(
        size: Option<u64>,
        urns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ContentIdError> {
        let mut id = ContentId::new(size);
        for u in urns {
            id.add_urn(u)?;
        }
        Ok(id)
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({:?}, {:?})", self.size, self.urns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1_B32: &str = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";

    #[test]
    fn urns_round_trip_in_canonical_form() {
        let id = ContentId::from_urns(
            Some(3),
            [
                SHA1_B32,
                "urn:ed2khash:31D6CFE0D16AE931B73C59D7E0C089C0",
                "urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
            ],
        )
        .unwrap();
        assert_eq!(
            id.urns(),
            vec![
                "urn:ed2k:31d6cfe0d16ae931b73c59d7e0c089c0",
                SHA1_B32,
                "urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
            ]
        );
    }

    #[test]
    fn btih_in_base32_equals_hex() {
        let hex = ContentId::from_urns(None, ["urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a"]);
        let b32 = ContentId::from_urns(None, ["urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"]);
        assert_eq!(hex.unwrap(), b32.unwrap());
    }

    #[test]
    fn bitprint_gives_sha1_and_tth() {
        let id = ContentId::from_urns(
            None,
            ["urn:bitprint:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB.LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ"],
        )
        .unwrap();
        assert!(id.get(HashKind::Sha1).is_some() && id.get(HashKind::Tth).is_some());
    }

    #[test]
    fn bad_urns_are_named_in_the_error() {
        let e = ContentId::from_urns(None, ["urn:sha1:TOOSHORT"]).unwrap_err();
        assert!(e.to_string().contains("TOOSHORT"), "{e}");
        assert!(ContentId::from_urns(None, ["urn:foo:bar"]).is_err());
        assert!(ContentId::from_urns(None, ["sha1:abc"]).is_err());
    }

    #[test]
    fn identity_rules() {
        let sha = |b: u8| ContentId::new(Some(10)).with(HashKind::Sha1, &[b; 20]);
        let ed = |b: u8| ContentId::new(Some(10)).with(HashKind::Ed2k, &[b; 16]);
        assert_eq!(sha(1).relation(&sha(1)), Identity::Same);
        assert_eq!(sha(1).relation(&sha(2)), Identity::Conflict);
        assert_eq!(sha(1).relation(&ed(1)), Identity::Unrelated);
        // One hash matches, another differs: a conflict, never the same.
        let both = sha(1).with(HashKind::Ed2k, &[1; 16]);
        assert_eq!(
            both.relation(&ed(2).with(HashKind::Sha1, &[1; 20])),
            Identity::Conflict
        );
        // Same hash, different size.
        let mut other = sha(1);
        other.size = Some(11);
        assert_eq!(sha(1).relation(&other), Identity::Conflict);
        // Name and size alone never make content equal.
        assert_eq!(
            ContentId::new(Some(10)).relation(&ContentId::new(Some(10))),
            Identity::Unrelated
        );
    }
}

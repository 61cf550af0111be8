//! Realistic hits for the merge benchmark: three networks answering one popular query.
//!
//! Each hit names a content; about a third of the hits name a content an earlier hit
//! already named (the same network again, or another network sharing a SHA-1), so they
//! merge into an existing item. Hits carry names of usual length, source counts, a
//! Gnutella peer location or an eD2k/magnet link, as the real adapters report them.

use std::time::{Duration, Instant};

use gateway::search::Merger;
use junction_core::{ContentId, HashKind, Hit, NetworkId, Source};

/// A small deterministic generator (xorshift64*), so every run merges the same hits.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Share of hits (percent) that name a content seen before.
pub const REPEAT_PERCENT: u64 = 35;

const WORDS: &[&str] = &[
    "ubuntu",
    "desktop",
    "live",
    "concert",
    "remastered",
    "official",
    "extended",
    "edition",
    "complete",
    "season",
    "episode",
    "album",
    "soundtrack",
    "documentary",
    "lecture",
    "archive",
    "collection",
    "original",
    "mix",
    "session",
    "vol",
    "part",
    "final",
    "director",
];
const EXTS: &[&str] = &[
    "mkv", "mp4", "avi", "mp3", "flac", "iso", "zip", "pdf", "epub",
];
const QUALITY: &[&str] = &[
    "1080p", "720p", "2160p", "320kbps", "x264", "HEVC", "WEB-DL",
];

/// One content as every network knows it.
struct Content {
    name: String,
    size: u64,
    ed2k: Vec<u8>,
    aich: Vec<u8>,
    sha1: Vec<u8>,
    btih: Vec<u8>,
}

fn content(rng: &mut Rng, query: &str) -> Content {
    let mut name = String::from(query);
    for _ in 0..2 + rng.below(4) {
        name.push(' ');
        name.push_str(rng.pick(WORDS));
    }
    name.push_str(&format!(
        " ({}) [{}].{}",
        1990 + rng.below(35),
        rng.pick(QUALITY),
        rng.pick(EXTS)
    ));
    Content {
        name,
        size: 1_000_000 + rng.below(4_000_000_000),
        ed2k: rng.bytes(16),
        aich: rng.bytes(20),
        sha1: rng.bytes(20),
        btih: rng.bytes(20),
    }
}

fn hit(rng: &mut Rng, c: &Content, net: NetworkId) -> Hit {
    let mut id = ContentId::new(Some(c.size));
    // Each network's own hash; half the time also the SHA-1 (Gnutella always has it; for
    // the others the gateway's identity index often knows it), which merges across networks.
    match net {
        NetworkId::ED2K => {
            id.set(HashKind::Ed2k, &c.ed2k);
            if rng.chance(50) {
                id.set(HashKind::Aich, &c.aich);
            }
        }
        NetworkId::BITTORRENT => id.set(HashKind::Btih, &c.btih),
        _ => {}
    }
    if net == NetworkId::GNUTELLA || rng.chance(50) {
        id.set(HashKind::Sha1, &c.sha1);
    }
    // Names differ a little between sources (case, a suffix), as they do in practice.
    let name = match rng.below(10) {
        0 => c.name.to_uppercase(),
        1 => format!("{} (1)", c.name),
        _ => c.name.clone(),
    };
    let mut h = Hit::new(net, id, name, c.size);
    h.sources = 1 + rng.below(400) as u32;
    match net {
        NetworkId::GNUTELLA => {
            h.sources = 1;
            h.locations.push(Source {
                network: net,
                address: std::net::SocketAddr::from((
                    [
                        10,
                        rng.below(256) as u8,
                        rng.below(256) as u8,
                        rng.below(256) as u8,
                    ],
                    6346,
                ))
                .into(),
                detail: Some(format!("{:032x}", u128::from(rng.next_u64()) << 64)),
            });
        }
        NetworkId::ED2K => {
            h.complete_sources = Some(h.sources / 2);
            h.link = Some(format!(
                "ed2k://|file|{}|{}|{}|/",
                h.name,
                c.size,
                HashKind::Ed2k.format(&c.ed2k)
            ));
        }
        _ => {
            h.complete_sources = Some(h.sources / 3);
            h.link = Some(format!(
                "magnet:?xt=urn:btih:{}&xl={}",
                HashKind::Btih.format(&c.btih),
                c.size
            ));
        }
    }
    h
}

/// `n` hits for `query` from the three networks, deterministic from `seed`.
pub fn hits(n: usize, seed: u64, query: &str) -> Vec<Hit> {
    let mut rng = Rng::new(seed);
    let nets = [NetworkId::ED2K, NetworkId::GNUTELLA, NetworkId::BITTORRENT];
    let mut seen: Vec<Content> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let net = nets[rng.below(3) as usize];
        if !seen.is_empty() && rng.chance(REPEAT_PERCENT) {
            let i = rng.below(seen.len() as u64) as usize;
            out.push(hit(&mut rng, &seen[i], net));
        } else {
            let c = content(&mut rng, query);
            out.push(hit(&mut rng, &c, net));
            seen.push(c);
        }
    }
    out
}

/// Merges `hits` the way the search hub does: `snapshot` also builds the item the client
/// is sent after every hit. Returns the number of items.
pub fn merge(hits: Vec<Hit>, terms: &[String], snapshot: bool) -> usize {
    let mut m = Merger::new("b", terms.to_vec());
    for h in hits {
        if let Some(r) = m.add(h, usize::MAX)
            && snapshot
        {
            let i = match r {
                gateway::search::Merged::New(i) | gateway::search::Merged::Updated(i) => i,
            };
            std::hint::black_box(m.item(i));
        }
    }
    m.len()
}

/// Hits per second merging `hits` on this thread: the median of `rounds` runs.
pub fn merge_rate(hits: &[Hit], terms: &[String], snapshot: bool, rounds: usize) -> f64 {
    let mut times: Vec<Duration> = (0..rounds.max(1))
        .map(|_| {
            let input = hits.to_vec();
            let t = Instant::now();
            std::hint::black_box(merge(input, terms, snapshot));
            t.elapsed()
        })
        .collect();
    times.sort();
    hits.len() as f64 / times[times.len() / 2].as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_the_hits_merge_and_the_rest_stay_apart() {
        let hits = hits(3000, 7, "movie");
        let items = merge(hits.clone(), &["movie".into()], true);
        let merged = hits.len() - items;
        // About REPEAT_PERCENT of the hits repeat a content; a few of those do not merge
        // (another network without a shared hash), so somewhat fewer than that merge.
        assert!(
            merged > hits.len() * 15 / 100 && merged < hits.len() * 40 / 100,
            "{merged} of {} merged",
            hits.len()
        );
        assert!(hits.iter().all(|h| h.id.has_hashes() && !h.name.is_empty()));
        assert_eq!(super::hits(50, 7, "movie"), hits[..50].to_vec());
    }
}

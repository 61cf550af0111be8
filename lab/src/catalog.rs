//! The lab's sample content: which files exist, on which networks and peers, and their
//! bytes, generated from a seed so every run with the same seed has the same files and
//! hashes.

use std::io::Write;
use std::path::{Path, PathBuf};

use junction_core::link::percent_encode as percent;
use junction_core::{ContentId, HashKind, NetworkId};
use sha1::{Digest, Sha1};

/// One sample file and where it is shared. Each network of the lab has two sharing peers
/// (eD2k peers, Gnutella leaves, BitTorrent seeders), numbered 0 and 1.
struct Spec {
    name: &'static str,
    /// Size in bytes; `None` is the lab's large size.
    size: Option<u64>,
    ed2k: &'static [usize],
    gnutella: &'static [usize],
    bittorrent: &'static [usize],
}

const MIB: u64 = 1024 * 1024;

/// Some files are on all three networks (they merge into one item), some on two, some on
/// one; the large one shows progress; the "beta" one is there for exclusion queries.
const SPECS: &[Spec] = &[
    Spec {
        name: "Lab Sunrise Timelapse 1080p.mkv",
        size: Some(24 * MIB),
        ed2k: &[0, 1],
        gnutella: &[0],
        bittorrent: &[0],
    },
    Spec {
        name: "Lab Deep Space Documentary 2160p.mkv",
        size: None,
        ed2k: &[0],
        gnutella: &[1],
        bittorrent: &[0, 1],
    },
    Spec {
        name: "Lab Field Recordings Vol 1.flac",
        size: Some(8 * MIB + 4321),
        ed2k: &[1],
        gnutella: &[0],
        bittorrent: &[],
    },
    Spec {
        name: "Lab City Atlas.pdf",
        size: Some(3 * MIB + 17),
        ed2k: &[],
        gnutella: &[1],
        bittorrent: &[1],
    },
    Spec {
        name: "Lab Ocean Waves.mp3",
        size: Some(5 * MIB + 999),
        ed2k: &[0],
        gnutella: &[],
        bittorrent: &[],
    },
    Spec {
        name: "Lab Forest Photos.zip",
        size: Some(6 * MIB + 1),
        ed2k: &[],
        gnutella: &[0],
        bittorrent: &[],
    },
    Spec {
        name: "Lab Mountain Trail 720p.mp4",
        size: Some(12 * MIB + 77),
        ed2k: &[],
        gnutella: &[],
        bittorrent: &[1],
    },
    Spec {
        name: "Lab Sunrise Timelapse 720p beta.mkv",
        size: Some(4 * MIB + 5),
        ed2k: &[1],
        gnutella: &[],
        bittorrent: &[0],
    },
];

/// A generated file of the lab.
#[derive(Debug, Clone)]
pub struct LabFile {
    pub name: String,
    pub size: u64,
    pub path: PathBuf,
    /// SHA-1, eD2k and AICH; the BitTorrent info-hash once a seeder has made its torrent.
    pub id: ContentId,
    /// Sharing peers per network: (network, peer numbers).
    pub shared_by: Vec<(NetworkId, Vec<usize>)>,
    /// The large file, whose size the lab's configuration sets.
    pub large: bool,
}

impl LabFile {
    pub fn networks(&self) -> impl Iterator<Item = NetworkId> + '_ {
        self.shared_by.iter().map(|(n, _)| *n)
    }

    pub fn is_on(&self, net: NetworkId) -> bool {
        self.networks().any(|n| n == net)
    }

    /// Peer numbers sharing it on `net`.
    pub fn peers_on(&self, net: NetworkId) -> &[usize] {
        self.shared_by
            .iter()
            .find(|(n, _)| *n == net)
            .map_or(&[], |(_, p)| p.as_slice())
    }

    /// `ed2k://|file|NAME|SIZE|HASH|/`, with the name percent-encoded as aMule writes it.
    pub fn ed2k_link(&self) -> Option<String> {
        let h = self.id.get(HashKind::Ed2k)?;
        Some(format!(
            "ed2k://|file|{}|{}|{}|/",
            percent(&self.name),
            self.size,
            hex(h)
        ))
    }

    /// A magnet with the info-hash, size, name and the lab's tracker.
    pub fn magnet(&self, tracker: &str) -> Option<String> {
        let h = self.id.get(HashKind::Btih)?;
        Some(format!(
            "magnet:?xt=urn:btih:{}&xl={}&dn={}&tr={}",
            hex(h),
            self.size,
            percent(&self.name),
            percent(tracker)
        ))
    }
}

/// Writes every sample file under `dir` and hashes it, in one pass per file.
pub fn generate(dir: &Path, seed: u64, large_size: u64) -> std::io::Result<Vec<LabFile>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::with_capacity(SPECS.len());
    for (i, spec) in SPECS.iter().enumerate() {
        let size = spec.size.unwrap_or(large_size);
        let path = dir.join(spec.name);
        let id = write_file(
            &path,
            size,
            seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )?;
        let mut shared_by = Vec::new();
        for (net, peers) in [
            (NetworkId::ED2K, spec.ed2k),
            (NetworkId::GNUTELLA, spec.gnutella),
            (NetworkId::BITTORRENT, spec.bittorrent),
        ] {
            if !peers.is_empty() {
                shared_by.push((net, peers.to_vec()));
            }
        }
        out.push(LabFile {
            name: spec.name.to_owned(),
            size,
            path,
            id,
            shared_by,
            large: spec.size.is_none(),
        });
    }
    Ok(out)
}

/// Writes `size` pseudo-random bytes (SplitMix64 from `seed`) and returns their hashes.
fn write_file(path: &Path, size: u64, seed: u64) -> std::io::Result<ContentId> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut sha1 = Sha1::new();
    let mut ed2k = ed2k::hash::FileHasher::new();
    let mut state = seed;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for word in buf[..n].chunks_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            word.copy_from_slice(&z.to_le_bytes()[..word.len()]);
        }
        f.write_all(&buf[..n])?;
        sha1.update(&buf[..n]);
        ed2k.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush()?;
    let (hashset, aich) = ed2k.finish();
    let mut id = ContentId::new(Some(size));
    id.set(HashKind::Sha1, &sha1.finalize());
    id.set(HashKind::Ed2k, &hashset.root);
    id.set(HashKind::Aich, aich.as_ref());
    Ok(id)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_files_other_seed_other_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let x = generate(a.path(), 7, 1_000_003).unwrap();
        let y = generate(b.path(), 7, 1_000_003).unwrap();
        let z = generate(b.path(), 8, 1_000_003).unwrap();
        assert_eq!(x.len(), SPECS.len());
        for ((x, y), z) in x.iter().zip(&y).zip(&z) {
            assert_eq!(x.id, y.id, "{}", x.name);
            assert_ne!(x.id.get(HashKind::Sha1), z.id.get(HashKind::Sha1));
            assert_eq!(std::fs::metadata(&x.path).unwrap().len(), x.size);
        }
        let data = std::fs::read(&x[4].path).unwrap();
        assert_eq!(
            x[4].id.get(HashKind::Sha1).unwrap(),
            Sha1::digest(&data).as_slice()
        );
        assert_eq!(
            x[4].id.get(HashKind::Ed2k).unwrap(),
            ed2k::hash::ed2k_hash(&data).root.as_slice()
        );
    }

    #[test]
    fn every_network_has_files_alone_and_shared() {
        let d = tempfile::tempdir().unwrap();
        let files = generate(d.path(), 1, 1000).unwrap();
        for net in [NetworkId::ED2K, NetworkId::GNUTELLA, NetworkId::BITTORRENT] {
            assert!(
                files
                    .iter()
                    .any(|f| f.is_on(net) && f.networks().count() == 1)
            );
            assert!(
                files
                    .iter()
                    .any(|f| f.is_on(net) && f.networks().count() > 1)
            );
        }
        assert!(files.iter().any(|f| f.networks().count() == 3));
        let link = files[0].ed2k_link().unwrap();
        assert!(link.starts_with("ed2k://|file|Lab%20Sunrise%20Timelapse%201080p.mkv|25165824|"));
    }
}

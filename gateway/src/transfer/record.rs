//! What the database keeps of a transfer, and what clients see of it.

use std::path::PathBuf;

use junction_core::layout::FileSpan;
use junction_core::{ContentId, FetchRequest, NetworkId, RangeSet, Source};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Queued,
    Active,
    Paused,
    Complete,
    Failed,
    Cancelled,
}

/// The persisted form of a transfer. Verified ranges are the point: a restart resumes
/// from them without fetching those bytes again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub urns: Vec<String>,
    pub state: State,
    #[serde(default)]
    pub error: Option<String>,
    /// Networks the user limited it to; empty = any.
    #[serde(default)]
    pub networks: Vec<String>,
    /// (network, address, detail)
    #[serde(default)]
    pub sources: Vec<(String, String, Option<String>)>,
    #[serde(default)]
    pub trackers: Vec<String>,
    /// Hex of the `.torrent` bytes it was started from.
    #[serde(default)]
    pub torrent: Option<String>,
    /// A magnet's info dict once its swarm sent it, handed back with every request as a
    /// `.torrent`, so BitTorrent need not fetch it again (after a restart, say). Kept in a
    /// table of its own (`Table::Metadata`), written once, not with the record.
    #[serde(skip)]
    pub metadata: Option<bytes::Bytes>,
    pub created_ms: u64,
    pub path: PathBuf,
    #[serde(default)]
    pub verified: Vec<(u64, u64)>,
    /// Written ranges (a superset of the verified ones), durable when recorded.
    #[serde(default)]
    pub written: Vec<(u64, u64)>,
    /// A magnet without a size: the torrent's metadata is fetched first.
    #[serde(default)]
    pub awaiting_metadata: bool,
    /// How long it has run with no source on any network, in ms (the give-up clock).
    #[serde(default)]
    pub sourceless_ms: u64,
    /// Paused because the disk is full: it goes on by itself once there is room, also
    /// after a restart.
    #[serde(default)]
    pub waiting_for_space: bool,
    /// Bytes free on that disk (root's reserve included) when it paused.
    #[serde(default)]
    pub free_at_pause: u64,
    /// The files the content is made of, when several (a multi-file torrent).
    #[serde(default)]
    pub files: Vec<StoredFile>,
    /// The bytes are those files, in the folder at `path` (else one file there, split
    /// into the folder when it completes: the files were learnt after it started).
    #[serde(default)]
    pub folder: bool,
    /// Files asked for before the files were known (a magnet's), applied once they are.
    #[serde(default)]
    pub select: Vec<u32>,
    /// A local copy (a shared file) the bytes are taken from first.
    #[serde(default)]
    pub local: Option<PathBuf>,
    /// Started as a torrent (from a `.torrent`, or by a torrent's info-hash): BitTorrent
    /// fetches it as that torrent and seeds it once it is finished.
    #[serde(default)]
    pub as_torrent: bool,
}

/// Which files to leave out when `wanted` names files by their place among those that are
/// not padding (`pads` flags the padding), every file when it is empty.
pub fn choose(pads: &[bool], wanted: &[u32]) -> Result<Vec<bool>, String> {
    let real: Vec<usize> = (0..pads.len()).filter(|&i| !pads[i]).collect();
    if real.is_empty() && wanted.iter().all(|&w| w == 0) {
        return Ok(Vec::new()); // one file, and it is wanted
    }
    if let Some(bad) = wanted.iter().find(|&&w| w as usize >= real.len()) {
        return Err(match real.len() {
            0 => format!("there is no file {bad} to choose: this content is one file"),
            n => format!(
                "there is no file {bad}: the files are numbered 0 to {}",
                n - 1
            ),
        });
    }
    let mut skip = vec![false; pads.len()];
    for (n, &i) in real.iter().enumerate() {
        skip[i] = !wanted.is_empty() && !wanted.contains(&(n as u32));
    }
    Ok(skip)
}

/// A [`FileSpan`] as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub path: Vec<String>,
    pub length: u64,
    #[serde(default)]
    pub pad: bool,
    /// Left out of the transfer by the user.
    #[serde(default)]
    pub skip: bool,
    /// The file's own hashes, when the torrent gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urns: Vec<String>,
}

impl From<&FileSpan> for StoredFile {
    fn from(f: &FileSpan) -> Self {
        StoredFile {
            path: f.path.clone(),
            length: f.length,
            pad: f.pad,
            skip: false,
            urns: f.urns.clone(),
        }
    }
}

/// A range set as stored: (start, end) pairs.
pub fn pairs(set: &RangeSet) -> Vec<(u64, u64)> {
    set.iter().map(|r| (r.start, r.end)).collect()
}

impl Record {
    pub fn content(&self) -> ContentId {
        let mut id = ContentId::new((!self.awaiting_metadata).then_some(self.size));
        for u in &self.urns {
            // Written by us, so valid; an unreadable one is skipped rather than fatal.
            let _ = id.add_urn(u);
        }
        id
    }

    /// The files of the content, when several.
    pub fn files(&self) -> Vec<FileSpan> {
        self.files
            .iter()
            .map(|f| FileSpan {
                path: f.path.clone(),
                length: f.length,
                pad: f.pad,
                urns: f.urns.clone(),
            })
            .collect()
    }

    /// How the bytes are laid out on disk now: the files in a folder, or one file.
    pub fn layout(&self) -> Vec<FileSpan> {
        if self.folder {
            self.files()
        } else {
            Vec::new()
        }
    }

    /// Which of [`Record::files`] are left out.
    pub fn skip_flags(&self) -> Vec<bool> {
        self.files.iter().map(|f| f.skip).collect()
    }

    /// Fetches only the files `wanted` names (see [`choose`]); the others are left out.
    pub fn select(&mut self, wanted: &[u32]) -> Result<(), String> {
        let pads: Vec<bool> = self.files.iter().map(|f| f.pad).collect();
        let skip = choose(&pads, wanted)?;
        for (f, s) in self.files.iter_mut().zip(skip) {
            f.skip = s;
        }
        Ok(())
    }

    /// The files are known, but the bytes are still one file.
    pub fn needs_split(&self) -> bool {
        !self.folder && !self.files.is_empty()
    }

    pub fn verified_set(&self) -> RangeSet {
        self.verified.iter().map(|&(s, e)| s..e).collect()
    }

    /// Whether BitTorrent fetched it as a torrent of its own, which it seeds once finished
    /// (`seed.rs`). A btih learnt after it finished does not make one: a finished download
    /// shared on BitTorrent gets a torrent of the gateway's own, which the share seeds
    /// from the file, and fetching that torrent here would replace it with one that has
    /// no metadata. Records from before `as_torrent` count by their `.torrent` or files.
    pub fn is_torrent(&self) -> bool {
        self.as_torrent || self.torrent.is_some() || !self.files.is_empty()
    }

    /// What a network is asked to fetch: the content, with the sources on the networks in
    /// `known`, the trackers and the `.torrent`.
    pub fn request(&self, known: &[NetworkId]) -> FetchRequest {
        FetchRequest {
            id: self.content(),
            name: self.name.clone(),
            size: self.size,
            sources: self.sources(known),
            trackers: self.trackers.clone(),
            torrent: self
                .torrent
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .map(Into::into)
                .or_else(|| self.metadata.as_deref().map(torrent_of_info)),
        }
    }

    pub fn written_set(&self) -> RangeSet {
        self.written.iter().map(|&(s, e)| s..e).collect()
    }

    /// Sources whose network this gateway still runs (kept as text: `PeerAddr`'s form).
    pub fn sources(&self, known: &[NetworkId]) -> Vec<Source> {
        self.sources
            .iter()
            .filter_map(|(n, a, d)| {
                let network = *known.iter().find(|k| k.as_str() == n)?;
                Some(Source {
                    network,
                    address: a.parse().ok()?,
                    detail: d.clone(),
                })
            })
            .collect()
    }
}

/// A transfer as clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferInfo {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub content: ContentId,
    pub state: State,
    pub bytes_written: u64,
    pub bytes_verified: u64,
    /// Bytes received this run and dropped: already verified, corrupt, or written where
    /// another source was fetching.
    pub bytes_redundant: u64,
    pub rate: u64,
    pub networks: Vec<String>,
    pub peers: u32,
    /// Only errors: why it failed, or why nothing can fetch it now.
    pub error: Option<String>,
    /// What the networks said that is not an error, as `network: note`.
    pub notes: Vec<String>,
    pub path: PathBuf,
    pub verified: RangeSet,
    pub created_ms: u64,
    /// What each network did for it.
    pub per_network: Vec<NetworkInfo>,
    /// The files the content is made of, when several (padding left out).
    pub files: Vec<FileInfo>,
}

/// One file of a transfer made of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Inside the transfer's folder.
    pub path: PathBuf,
    pub size: u64,
    pub bytes_verified: u64,
    /// False: left out of the transfer.
    pub wanted: bool,
}

impl FileInfo {
    /// The files of `record`, with what of each `verified` holds.
    pub fn of(record: &Record, verified: &RangeSet) -> Vec<FileInfo> {
        let files = record.files();
        junction_core::layout::place(&files)
            .into_iter()
            .zip(&record.files)
            .filter_map(|((at, path), f)| {
                let mut done = verified.clone();
                done.remove(0..at);
                done.remove(at + f.length..u64::MAX);
                Some(FileInfo {
                    path: path?,
                    size: f.length,
                    bytes_verified: done.covered(),
                    wanted: !f.skip,
                })
            })
            .collect()
    }
}

/// One network's part in a transfer, this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub network: String,
    pub bytes_received: u64,
    /// Bytes it sent that passed a check.
    pub bytes_verified: u64,
    /// Bytes it sent that were dropped: corrupt, or fetched twice.
    pub bytes_discarded: u64,
    /// Sources dropped because their bytes failed a hash check.
    pub sources_dropped: u32,
    /// Hash checks its bytes failed.
    pub failed_checks: u32,
    pub sources: u32,
    pub rate: u64,
    /// `fetching`, `idle` or `not applicable`.
    pub state: String,
    pub note: Option<String>,
}

/// What `WatchTransfers` streams.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferEvent {
    pub transfer: TransferInfo,
    pub removed: bool,
}

/// A `.torrent` that holds only `info` (the trackers go with the request).
fn torrent_of_info(info: &[u8]) -> bytes::Bytes {
    [&b"d4:info"[..], info, b"e"].concat().into()
}

/// A source as a record keeps it: its network, `PeerAddr`'s text form, and its detail.
pub fn source_row(s: &Source) -> (String, String, Option<String>) {
    (
        s.network.to_string(),
        s.address.to_string(),
        s.detail.clone(),
    )
}

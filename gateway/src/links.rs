//! Links out: every form a transfer's or a share's content has, so a user can hand it
//! to a friend on any network.

use std::path::Path;

use junction_core::hashing::FileHashes;
use junction_core::torrent::{SingleFile, info_dict, torrent_file};
use junction_core::{ContentId, HashKind, link};

use crate::{Gateway, GatewayError, Result};

/// What a link request names.
pub enum Target<'a> {
    Transfer(&'a str),
    Share(&'a Path),
}

/// The links of one content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub name: String,
    pub content: ContentId,
    pub ed2k: Option<String>,
    pub magnet: String,
    pub torrent: Option<Vec<u8>>,
}

pub fn links(gw: &Gateway, target: Target<'_>) -> Result<Links> {
    // The trackers BitTorrent announces shares to, so a friend without the DHT finds the
    // gateway too.
    let mut trackers: Vec<String> = gw
        .networks
        .iter()
        .flat_map(|n| n.status().trackers().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    trackers.dedup();
    let (name, mut content, path, torrent) = match target {
        Target::Transfer(id) => {
            let t = gw.transfers.get(id)?;
            let torrent = gw.transfers.torrent_bytes(id)?;
            (t.name, t.content, t.path, torrent)
        }
        Target::Share(path) => {
            let r = gw.shares.record(path)?.ok_or_else(|| {
                GatewayError::NotFound(format!(
                    "{} is not shared; `junction share PATH` shares it",
                    path.display()
                ))
            })?;
            (r.name.clone(), r.content(), r.path.clone(), None)
        }
    };
    let hashes = gw.shares.hashes(&path)?;
    if let Some(h) = &hashes {
        content.absorb(&h.content_id());
    }
    // A transfer started from a torrent keeps that torrent (its swarm); otherwise the
    // torrent is the one BitTorrent seeds a shared file under.
    let torrent = torrent.or_else(|| made_torrent(&name, hashes.as_ref()?, &trackers));
    // Its hashes join the content's (a hybrid's btmh too) unless it names another swarm.
    if let Some(t) = &torrent
        && let Ok(l) = link::parse_torrent(t)
        && content
            .get(HashKind::Btih)
            .is_none_or(|b| l.id.get(HashKind::Btih) == Some(b))
    {
        content.absorb(&l.id);
    }
    let parts = hashes
        .as_ref()
        .and_then(|h| h.ed2k.as_ref())
        .map_or(&[][..], |e| &e.parts[..]);
    Ok(Links {
        ed2k: link::ed2k_link(&name, &content, parts),
        magnet: link::magnet(&name, &content, &trackers),
        name,
        content,
        torrent,
    })
}

fn made_torrent(name: &str, h: &FileHashes, trackers: &[String]) -> Option<Vec<u8>> {
    let name = junction_core::sanitize_file_name(name);
    let f = SingleFile::from_hashes(&name, h)?;
    let info = info_dict(&f);
    Some(torrent_file(&info, trackers, f.hybrid()))
}

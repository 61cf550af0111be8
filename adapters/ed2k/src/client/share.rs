//! Shared files: hashing (ed2k hashset + AICH root, one pass) and reading parts to upload.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::hash::{AichHash, Ed2kHashset, FileHasher};
use crate::wire::Hash16;

/// A file we offer to peers.
#[derive(Debug, Clone)]
pub struct SharedFile {
    pub hash: Hash16,
    pub name: String,
    pub size: u64,
    pub path: PathBuf,
    /// MD4 part hashes (empty below one part).
    pub parts: Vec<Hash16>,
    pub aich: AichHash,
}

/// Hashes a file in one pass; runs on the blocking pool.
pub async fn hash_file(path: PathBuf) -> std::io::Result<(Ed2kHashset, AichHash, u64)> {
    tokio::task::spawn_blocking(move || hash_file_blocking(&path))
        .await
        .map_err(std::io::Error::other)?
}

fn hash_file_blocking(path: &Path) -> std::io::Result<(Ed2kHashset, AichHash, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = FileHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    let (ed2k, aich) = h.finish();
    Ok((ed2k, aich, total))
}

/// Reads `len` bytes at `offset` of a shared file.
pub async fn read_at(path: PathBuf, offset: u64, len: usize) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

//! `junction cat`: a transfer's verified bytes to stdout or a file, waiting for missing ones.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use proto::v1 as pb;
use tonic::Streaming;

use crate::client::{self, Client};
use crate::output::size;
use crate::term::{self, Interrupted, duration_ms};

/// `target` is a transfer id, or a link or .torrent whose transfer is started (or found) first,
/// so a file can be streamed while it downloads with one command. `-o -` is stdout, forced
/// even onto a terminal (as curl's).
pub async fn cat(
    c: &mut Client,
    target: String,
    offset: u64,
    length: u64,
    out: Option<PathBuf>,
) -> Result<()> {
    let id = if client::is_link(&target) || target.ends_with(".torrent") {
        client::start(c, &target).await?.id
    } else {
        target
    };
    let forced = out.as_deref() == Some(Path::new("-"));
    let file = out.filter(|p| p != Path::new("-"));
    // Known before the first byte, so a bar has its length (0 when a magnet's size is not
    // known yet: the bar then counts bytes only).
    let total = match length {
        0 if file.is_some() => c
            .get_transfer(pb::TransferRef { id: id.clone() })
            .await?
            .into_inner()
            .size
            .saturating_sub(offset),
        n => n,
    };
    let stream = c
        .read_content(pb::ReadContentRequest {
            transfer_id: id.clone(),
            offset,
            length,
        })
        .await?
        .into_inner();
    match file {
        Some(path) => to_file(stream, &path, total, &id).await,
        None => to_stdout(stream, forced, &id).await,
    }
}

async fn to_stdout(mut stream: Streaming<pb::ContentChunk>, forced: bool, id: &str) -> Result<()> {
    let guard = !forced && term::stdout_is_terminal();
    let mut sink = std::io::BufWriter::new(std::io::stdout().lock());
    let mut first = true;
    loop {
        let chunk = tokio::select! {
            c = stream.next() => c,
            _ = tokio::signal::ctrl_c() => {
                let _ = sink.flush();
                return Err(Interrupted::goes_on(id).into());
            }
        };
        let Some(chunk) = chunk else { break };
        let data = chunk?.data;
        if first && guard && looks_binary(&data) {
            bail!(
                "transfer {id} is binary, and printing it would garble the terminal: \
                 write it to a file with `-o FILE`, pipe it, or use `-o -` to print it anyway"
            );
        }
        first = false;
        sink.write_all(&data)?;
        // A terminal or a slow reader should see bytes as they come, not per 8 KiB.
        sink.flush()?;
    }
    sink.flush()?;
    Ok(())
}

/// Binary as curl decides it: a NUL byte, or bytes that are not UTF-8 (a character cut at
/// the chunk's end is not held against it).
fn looks_binary(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    head.contains(&0) || std::str::from_utf8(head).is_err_and(|e| e.error_len().is_some())
}

/// Writes to a `.part` file beside `path`, renamed to `path` once complete: an interrupted
/// or failed `cat -o` leaves no empty or truncated file that looks finished.
async fn to_file(
    mut stream: Streaming<pb::ContentChunk>,
    path: &Path,
    total: u64,
    id: &str,
) -> Result<()> {
    let part = part_path(path);
    let file = std::fs::File::create(&part)
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut sink = std::io::BufWriter::new(file);
    let bar = if total > 0 {
        ProgressBar::new(total).with_style(ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
        )?)
    } else {
        ProgressBar::no_length().with_style(ProgressStyle::with_template(
            "{prefix} {bytes} {bytes_per_sec}",
        )?)
    };
    bar.set_prefix(path.display().to_string());
    let started = Instant::now();
    let mut written = 0u64;
    let result: Result<()> = async {
        loop {
            let chunk = tokio::select! {
                c = stream.next() => c,
                _ = tokio::signal::ctrl_c() => return Err(Interrupted::goes_on(id).into()),
            };
            let Some(chunk) = chunk else { break };
            let data = chunk?.data;
            sink.write_all(&data)
                .with_context(|| format!("cannot write {}", part.display()))?;
            written += data.len() as u64;
            bar.set_position(written);
        }
        sink.flush()
            .with_context(|| format!("cannot write {}", part.display()))?;
        Ok(())
    }
    .await;
    drop(sink);
    if let Err(e) = result {
        bar.abandon();
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    bar.finish_and_clear();
    std::fs::rename(&part, path)
        .with_context(|| format!("cannot move {} to {}", part.display(), path.display()))?;
    eprintln!(
        "wrote {} to {} in {}",
        size(written),
        path.display(),
        duration_ms(started.elapsed().as_millis() as u64)
    );
    Ok(())
}

/// `dir/.name.part`: hidden, in the same directory so the rename cannot cross filesystems.
fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "junction-cat".into());
    path.with_file_name(format!(".{name}.part"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_told_from_text() {
        assert!(!looks_binary(b"hello\nworld\n"));
        assert!(!looks_binary("h\u{e9}llo".as_bytes()));
        // A two-byte character cut at the chunk's end is still text.
        assert!(!looks_binary(&"h\u{e9}".as_bytes()[..2]));
        assert!(looks_binary(b"\x1aE\xdf\xa3\x00\x00"));
        assert!(looks_binary(b"\xff\xfe"));
    }

    #[test]
    fn the_part_file_sits_beside_the_target() {
        assert_eq!(
            part_path(Path::new("out/big.mkv")),
            Path::new("out/.big.mkv.part")
        );
    }
}

//! `GET`/`HEAD /content/{id}`: a transfer's bytes for media players, one `Range` at a time,
//! and `/content/{id}.m3u`, a playlist naming that URL.
//!
//! The id may be a transfer id, a search item id, a link (percent-encoded magnet or
//! `ed2k://`) or a hash (`btih:`, `ed2k:`, `sha1:`, a URN, or bare hex); the transfer starts
//! if none runs. Bytes come through `TransferManager::read`, which waits for verified bytes
//! and moves every network's priority to the reader's position; the claim order already
//! fetches the file's last MiB early, which players probe for an index.

use std::ops::Range;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use junction_core::http_range::ByteRange;
use junction_core::{ContentId, HashKind, Identity, link};
use tokio_stream::wrappers::ReceiverStream;

use super::known::without_synthetic;
use super::{AppState, HttpError, query_param, torznab};
use crate::GatewayError;
use crate::api::{spec_from_item, spec_from_link};
use crate::transfer::{self, StartSpec, TransferInfo};

/// How long a bare hash is searched for on the networks to learn its size and sources.
const HASH_SEARCH: Duration = Duration::from_secs(8);

pub(super) async fn get(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    if let Some(id) = raw.strip_suffix(".m3u") {
        let info = resolve(&s, id).await?;
        let apikey = query_param(query.as_deref().unwrap_or(""), "apikey");
        return Ok(playlist(&s, &headers, &info, apikey.as_deref()));
    }
    let info = resolve(&s, &raw).await?;
    let info = with_size(&s, info).await?;
    let size = info.size;
    let range = match headers.get(header::RANGE) {
        Some(v) => Some(parse_range(
            v.to_str()
                .map_err(|_| HttpError::BadRequest("the Range header is not text".into()))?,
            size,
        )?),
        None => None,
    };
    let span = range.clone().unwrap_or(0..size);
    let mut resp = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, content_type(&info.name))
        .header(header::CONTENT_LENGTH, span.end - span.start);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "inline; filename*=UTF-8''{}",
        link::percent_encode(&info.name)
    )) {
        resp = resp.header(header::CONTENT_DISPOSITION, v);
    }
    resp = match &range {
        Some(r) => resp.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", r.start, r.end - 1),
        ),
        None => resp.status(StatusCode::OK),
    };
    let body = if method == Method::HEAD || span.is_empty() {
        Body::empty()
    } else {
        // A paused or failed transfer is not running, and a player waiting on it would
        // wait for ever: reading starts it again, after the request proved sound.
        if matches!(
            info.state,
            transfer::State::Paused | transfer::State::Failed
        ) {
            s.gw.transfers.resume(&info.id)?;
        }
        let rx =
            s.gw.transfers
                .read(&info.id, span.start, span.end - span.start)
                .await?;
        let stream = ReceiverStream::new(rx)
            .map(|chunk| chunk.map(|(_, bytes)| bytes).map_err(std::io::Error::other))
            .take_until(s.stop.clone().cancelled_owned());
        Body::from_stream(stream)
    };
    resp.body(body)
        .map_err(|e| HttpError::BadRequest(format!("cannot build the response: {e}")))
}

/// The transfer an id names, started when none runs yet.
async fn resolve(s: &AppState, raw: &str) -> Result<TransferInfo, HttpError> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(HttpError::NotFound(
            "give a transfer id, a search item id, a link or a hash after /content/".into(),
        ));
    }
    if let Ok(info) = s.gw.transfers.get(id) {
        return Ok(info);
    }
    if let Some(item) = s.gw.hub.cache().get(id) {
        return Ok(s.gw.start_transfer(spec_from_item(item))?);
    }
    let lower = id.to_ascii_lowercase();
    if ["magnet:", "ed2k://", "urn:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        let mut target = link::parse_link(id).map_err(GatewayError::from)?;
        target.id = without_synthetic(&target.id);
        let spec = match known_spec(s, &target.id) {
            Some(spec) => spec,
            None => spec_from_link(target),
        };
        return Ok(s.gw.start_transfer(spec)?);
    }
    let candidates = parse_hash(id);
    if candidates.is_empty() {
        return Err(HttpError::NotFound(format!(
            "{id:?} is not a transfer id, a recent search item id, a link or a hash \
             (btih:HEX, ed2k:HEX, sha1:HEX or 32/40 hex digits); `junction transfers` lists transfers"
        )));
    }
    for wanted in &candidates {
        if let Some(info) = running(s, wanted) {
            return Ok(info);
        }
        if let Some(spec) = known_spec(s, wanted) {
            return Ok(s.gw.start_transfer(spec)?);
        }
    }
    let urns: Vec<String> = candidates.iter().flat_map(ContentId::urns).collect();
    let found = torznab::search_items(s, &urns.join(" OR "), HASH_SEARCH).await?;
    if let Some(item) = found.into_iter().find(|i| {
        candidates
            .iter()
            .any(|w| i.content.relation(w) == Identity::Same)
    }) {
        return Ok(s.gw.start_transfer(spec_from_item(item))?);
    }
    if let Some(btih) = candidates.iter().find(|w| w.get(HashKind::Btih).is_some()) {
        // A torrent nobody listed yet: its metadata, from the swarm, gives the size.
        return Ok(s.gw.start_transfer(StartSpec {
            name: btih.urns().join(""),
            content: btih.clone(),
            ..Default::default()
        })?);
    }
    Err(HttpError::NotFound(format!(
        "no network knows {id} (searched {} s); try a link with its size",
        HASH_SEARCH.as_secs()
    )))
}

/// A transfer already running for the content.
fn running(s: &AppState, wanted: &ContentId) -> Option<TransferInfo> {
    s.gw.transfers
        .list()
        .into_iter()
        .find(|t| t.content.relation(wanted) == Identity::Same)
}

/// What a front handed out for this content (a bare synthetic info-hash resolves here).
fn known_spec(s: &AppState, id: &ContentId) -> Option<StartSpec> {
    let k = s.known.get(id.get(HashKind::Btih)?)?;
    Some(spec_from_item(k.item))
}

/// The contents a hash may name: `btih:HEX`, `ed2k:HEX`, `sha1:HEX|BASE32`, or bare:
/// 40 hex digits are an info-hash or a SHA-1, 32 an eD2k hash in hex or a SHA-1 in base32.
pub(super) fn parse_hash(id: &str) -> Vec<ContentId> {
    let kinds: &[HashKind] = match id.split_once(':') {
        Some((k, _)) => match k.to_ascii_lowercase().as_str() {
            "btih" => &[HashKind::Btih],
            "ed2k" => &[HashKind::Ed2k],
            "sha1" => &[HashKind::Sha1],
            _ => &[],
        },
        None if id.len() == 40 => &[HashKind::Btih, HashKind::Sha1],
        None if id.len() == 32 => &[HashKind::Ed2k, HashKind::Sha1],
        None => &[],
    };
    let digest = id.split_once(':').map_or(id, |(_, d)| d);
    kinds
        .iter()
        .filter_map(|&k| {
            let bytes = k.parse_digest(digest).ok()?;
            Some(ContentId::new(None).with(k, &bytes))
        })
        .collect()
}

/// Waits (bounded, by `read`) for a magnet's metadata when the size is not known yet.
async fn with_size(s: &AppState, info: TransferInfo) -> Result<TransferInfo, HttpError> {
    if info.content.size.is_some() {
        return Ok(info);
    }
    drop(s.gw.transfers.read(&info.id, 0, 1).await?);
    Ok(s.gw.transfers.get(&info.id)?)
}

/// One `bytes=` range of a content of `size` bytes, as a half-open range.
pub(super) fn parse_range(header: &str, size: u64) -> Result<Range<u64>, HttpError> {
    let ranges = ByteRange::parse_header(header, 1).map_err(|e| {
        HttpError::BadRequest(format!(
            "{e}; send one range, as bytes=START-END, bytes=START- or bytes=-LENGTH"
        ))
    })?;
    let unsatisfiable = || HttpError::RangeNotSatisfiable {
        message: format!("range {header:?} lies outside the content's {size} bytes"),
        size,
    };
    // parse_header gives at least one range.
    let (first, last) = ranges
        .first()
        .and_then(|r| r.resolve(size))
        .ok_or_else(unsatisfiable)?;
    Ok(first..last + 1)
}

/// The media type players expect, from the file name's extension.
fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mkv" => "video/x-matroska",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "avi" | "divx" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "wmv" => "video/x-ms-wmv",
        "mpg" | "mpeg" | "vob" => "video/mpeg",
        "ts" => "video/mp2t",
        "ogv" => "video/ogg",
        "flv" => "video/x-flv",
        "3gp" => "video/3gpp",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" | "aac" => "audio/mp4",
        "wav" => "audio/wav",
        "mka" => "audio/x-matroska",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "epub" => "application/epub+zip",
        "txt" | "nfo" => "text/plain; charset=utf-8",
        "srt" => "application/x-subrip",
        "zip" => "application/zip",
        "iso" => "application/x-iso9660-image",
        _ => "application/octet-stream",
    }
}

/// An M3U playlist with the transfer's stream URL, for players that open playlists.
fn playlist(
    s: &AppState,
    headers: &HeaderMap,
    info: &TransferInfo,
    apikey: Option<&str>,
) -> Response {
    let scheme = if s.gw.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:4480");
    // A player cannot send headers, so a key the playlist was fetched with goes in its URL.
    let key = apikey.map_or(String::new(), |k| {
        format!("?apikey={}", link::percent_encode(k))
    });
    let title: String = info.name.chars().filter(|c| !c.is_control()).collect();
    let body = format!(
        "#EXTM3U\n#EXTINF:-1,{title}\n{scheme}://{host}/content/{}{key}\n",
        info.id
    );
    (
        [(header::CONTENT_TYPE, "audio/x-mpegurl; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(h: &str, size: u64) -> Result<Range<u64>, u16> {
        parse_range(h, size).map_err(|e| e.status().as_u16())
    }

    #[test]
    fn ranges_as_players_send_them() {
        assert_eq!(range("bytes=0-1", 100), Ok(0..2));
        assert_eq!(range("bytes=10-", 100), Ok(10..100));
        assert_eq!(range("bytes=-10", 100), Ok(90..100));
        assert_eq!(range("bytes=-1000", 100), Ok(0..100));
        assert_eq!(range("bytes=90-1000", 100), Ok(90..100));
        assert_eq!(range("bytes=99-99", 100), Ok(99..100));
    }

    #[test]
    fn bad_and_unsatisfiable_ranges() {
        assert_eq!(range("bytes=100-", 100), Err(416));
        assert_eq!(range("bytes=-0", 100), Err(416));
        assert_eq!(range("bytes=0-0", 0), Err(416));
        assert_eq!(range("bytes=5-2", 100), Err(400));
        assert_eq!(range("bytes=a-b", 100), Err(400));
        assert_eq!(range("bytes=0-1,5-6", 100), Err(400));
        assert_eq!(range("items=0-1", 100), Err(400));
        assert_eq!(range("bytes=-", 100), Err(400));
    }

    #[test]
    fn hashes_in_every_form() {
        let hex40 = "0123456789abcdef0123456789abcdef01234567";
        let kinds = |id: &str| -> Vec<HashKind> {
            parse_hash(id)
                .iter()
                .flat_map(|c| c.hashes().map(|(k, _)| k).collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(kinds(hex40), [HashKind::Btih, HashKind::Sha1]);
        assert_eq!(kinds(&format!("sha1:{hex40}")), [HashKind::Sha1]);
        assert_eq!(kinds(&hex40[..32]), [HashKind::Ed2k]);
        assert_eq!(kinds(&"Q".repeat(32)), [HashKind::Sha1], "base32");
        assert!(kinds("nothex").is_empty());
        assert!(kinds("btih:zz").is_empty());
    }

    #[test]
    fn media_types_from_names() {
        assert_eq!(content_type("A Film.MKV"), "video/x-matroska");
        assert_eq!(content_type("song.mp3"), "audio/mpeg");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}

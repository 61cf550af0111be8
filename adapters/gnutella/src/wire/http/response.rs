//! What Gnutella reads from response heads (the transfer headers a downloader reads), and
//! the answers an uploader sends (partial content, not found, busy).

use std::net::SocketAddrV4;

use super::{ContentRange, MAX_RANGES, Queued, ResponseHead, content_urn};
use crate::error::Result;
use crate::wire::addr_list::addr_list;
use crate::wire::urn::Urn;
use junction_core::http::Headers;

/// What Gnutella reads from a response head, and the answers its uploader sends.
pub trait ResponseExt: Sized {
    /// Parsed `Content-Range`.
    fn content_range(&self) -> Option<Result<ContentRange>>;

    /// `X-Gnutella-Content-URN` / `X-Content-URN`.
    fn content_urn(&self) -> Option<Urn>;

    /// `X-Alt` alternate locations.
    fn alt_locs(&self) -> Vec<SocketAddrV4>;

    /// PARQ `X-Queued`.
    fn queued(&self) -> Option<Queued>;

    /// `X-Available-Ranges` (inclusive ranges; bad items skipped).
    fn available_ranges(&self) -> Option<Vec<(u64, u64)>>;

    /// `206 Partial Content` for bytes `start..=end` of a `total`-byte file.
    fn partial(start: u64, end: u64, total: u64, server: &str, urn: Option<&Urn>) -> Self;

    /// `404 Not Found`.
    fn not_found(server: &str) -> Self;

    /// `416` with `Content-Range: bytes */total`.
    fn range_not_satisfiable(total: u64, server: &str) -> Self;

    /// `503` busy, or queued with PARQ fields and `Retry-After`.
    fn busy(server: &str, queued: Option<&Queued>, retry_after: Option<u64>) -> Self;
}

impl ResponseExt for ResponseHead {
    fn content_range(&self) -> Option<Result<ContentRange>> {
        self.headers
            .get("Content-Range")
            .map(|v| Ok(ContentRange::parse(v)?))
    }

    fn content_urn(&self) -> Option<Urn> {
        content_urn(&self.headers)
    }

    fn alt_locs(&self) -> Vec<SocketAddrV4> {
        addr_list(&self.headers, "X-Alt")
    }

    fn queued(&self) -> Option<Queued> {
        self.headers.get("X-Queued").map(Queued::parse)
    }

    fn available_ranges(&self) -> Option<Vec<(u64, u64)>> {
        let v = self.headers.get("X-Available-Ranges")?;
        let v = v
            .trim()
            .strip_prefix("bytes")
            .unwrap_or(v)
            .trim_start_matches([' ', '=']);
        Some(
            v.split(',')
                .filter_map(|r| {
                    let (a, b) = r.trim().split_once('-')?;
                    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                    (a <= b).then_some((a, b))
                })
                .take(MAX_RANGES)
                .collect(),
        )
    }

    fn partial(start: u64, end: u64, total: u64, server: &str, urn: Option<&Urn>) -> Self {
        let mut h = Headers::new().with("Server", server);
        h.push(
            "Content-Range",
            ContentRange {
                start,
                end,
                total: Some(total),
            }
            .to_string(),
        )
        .push("Content-Length", (end - start.min(end) + 1).to_string());
        if let Some(u) = urn {
            h.push("X-Gnutella-Content-URN", u.to_string());
        }
        Self::new(206, "Partial Content", h)
    }

    fn not_found(server: &str) -> Self {
        Self::new(
            404,
            "Not Found",
            Headers::new()
                .with("Server", server)
                .with("Content-Length", "0"),
        )
    }

    fn range_not_satisfiable(total: u64, server: &str) -> Self {
        Self::new(
            416,
            "Requested Range Not Satisfiable",
            Headers::new()
                .with("Server", server)
                .with("Content-Range", format!("bytes */{total}"))
                .with("Content-Length", "0"),
        )
    }

    fn busy(server: &str, queued: Option<&Queued>, retry_after: Option<u64>) -> Self {
        let mut h = Headers::new().with("Server", server);
        let reason = if let Some(q) = queued {
            h.push("X-Queued", q.to_string());
            format!("Queued (slot {})", q.position.unwrap_or(0))
        } else {
            "Busy".to_owned()
        };
        if let Some(s) = retry_after {
            h.push("Retry-After", s.to_string());
        }
        h.push("Content-Length", "0");
        Self::new(503, reason, h)
    }
}

//! Response heads: the transfer headers a downloader reads, and the answers an uploader
//! sends (partial content, not found, busy).

use std::net::SocketAddrV4;

use bytes::BufMut;

use super::{
    ContentRange, HttpHead, HttpVersion, MAX_HEAD_LEN, MAX_RANGES, Queued, content_urn, finish,
};
use crate::error::{Error, Result};
use crate::urn::Urn;
use crate::wire::head;
use crate::wire::headers::Headers;

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Version.
    pub version: HttpVersion,
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Headers,
}

impl ResponseHead {
    /// A response with `code` and `reason`.
    pub fn new(code: u16, reason: impl Into<String>, headers: Headers) -> Self {
        ResponseHead {
            version: HttpVersion::V1_1,
            code,
            reason: reason.into(),
            headers,
        }
    }

    /// `Content-Length`, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.headers.get_u64("Content-Length")
    }

    /// Parsed `Content-Range`.
    pub fn content_range(&self) -> Option<Result<ContentRange>> {
        self.headers
            .get("Content-Range")
            .map(|v| Ok(ContentRange::parse(v)?))
    }

    /// `X-Gnutella-Content-URN` / `X-Content-URN`.
    pub fn content_urn(&self) -> Option<Urn> {
        content_urn(&self.headers)
    }

    /// `X-Alt` alternate locations.
    pub fn alt_locs(&self) -> Vec<SocketAddrV4> {
        self.headers.addr_list("X-Alt")
    }

    /// PARQ `X-Queued`.
    pub fn queued(&self) -> Option<Queued> {
        self.headers.get("X-Queued").map(Queued::parse)
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get_u64("Retry-After")
    }

    /// `X-Available-Ranges` (inclusive ranges; bad items skipped).
    pub fn available_ranges(&self) -> Option<Vec<(u64, u64)>> {
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

    /// `206 Partial Content` for bytes `start..=end` of a `total`-byte file.
    pub fn partial(start: u64, end: u64, total: u64, server: &str, urn: Option<&Urn>) -> Self {
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

    /// `404 Not Found`.
    pub fn not_found(server: &str) -> Self {
        Self::new(
            404,
            "Not Found",
            Headers::new()
                .with("Server", server)
                .with("Content-Length", "0"),
        )
    }

    /// `416` with `Content-Range: bytes */total`.
    pub fn range_not_satisfiable(total: u64, server: &str) -> Self {
        Self::new(
            416,
            "Requested Range Not Satisfiable",
            Headers::new()
                .with("Server", server)
                .with("Content-Range", format!("bytes */{total}"))
                .with("Content-Length", "0"),
        )
    }

    /// `503` busy, or queued with PARQ fields and `Retry-After`.
    pub fn busy(server: &str, queued: Option<&Queued>, retry_after: Option<u64>) -> Self {
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

impl HttpHead for ResponseHead {
    fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let Some(raw) = head::split(buf, MAX_HEAD_LEN, "HTTP response head")? else {
            return Ok(None);
        };
        let mut parts = raw.start.splitn(3, ' ');
        let version = HttpVersion::parse(parts.next().unwrap_or(""))?;
        let code_s = parts.next().unwrap_or("");
        let code = code_s
            .parse::<u16>()
            .ok()
            .filter(|c| (100..1000).contains(c))
            .ok_or_else(|| Error::invalid("HTTP status code", format!("{code_s:?}")))?;
        Ok(Some((
            ResponseHead {
                version,
                code,
                reason: parts.next().unwrap_or("").to_owned(),
                headers: raw.headers,
            },
            raw.len,
        )))
    }

    fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(format!("{} {} {}\r\n", self.version, self.code, self.reason).as_bytes());
        finish(dst, &self.headers);
    }
}

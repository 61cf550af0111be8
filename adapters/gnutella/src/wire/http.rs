//! HTTP/1.1 heads for Gnutella transfers, and the `GIV` line of push.
//!
//! The heads themselves (request and response lines, headers, bounds) are core's
//! [`junction_core::http`], re-exported here; this module adds what Gnutella reads from
//! and builds with them ([`RequestExt`], [`ResponseExt`]): `Range` / `Content-Range`, the
//! request targets servents use (`/uri-res/N2R?urn:sha1:…`, `/get/<index>/<name>`),
//! `X-Alt`, PARQ `X-Queued`, `X-Available-Ranges`, content URNs.

mod giv;
mod parq;
mod request;
mod response;

use crate::wire::urn::Urn;
use junction_core::http::Headers;

pub use giv::{Giv, MAX_GIV_LEN};
pub use junction_core::http::{HttpHead, HttpVersion, MAX_HEAD_LEN, RequestHead, ResponseHead};
pub use junction_core::http_range::{ByteRange, ContentRange};
pub use parq::Queued;
pub use request::{RequestExt, Target, percent_decode, percent_encode};
pub use response::ResponseExt;

/// Most ranges accepted in one `Range` header.
pub const MAX_RANGES: usize = 64;

fn content_urn(h: &Headers) -> Option<Urn> {
    h.get("X-Gnutella-Content-URN")
        .or_else(|| h.get("X-Content-URN"))
        .and_then(|v| Urn::parse(v.split(',').next().unwrap_or("")).ok())
}

//! Percent-encoding (RFC 3986) for magnet links and tracker query strings: core's, which
//! every network uses.

pub use junction_core::link::percent::{decode, encode};

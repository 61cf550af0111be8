//! Serde helpers the adapters' config tables share, so a key means the same on every
//! network: a `listen` address is resolved as everywhere else (a name such as
//! `localhost:4662` works, and one that does not resolve is named), and a rate is in KiB/s
//! with 0 for unlimited.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::addr::{RESOLVE_TIMEOUT, resolve_blocking};

/// A `listen = "host:port"` key.
pub fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    resolve_blocking(&text, RESOLVE_TIMEOUT).map_err(serde::de::Error::custom)
}

/// A `listen` key whose absence means something of its own (no listener, or "the peer
/// port"); when present it is read as [`listen_addr`].
pub fn listen_addr_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    listen_addr(d).map(Some)
}

/// A rate key in KiB/s (`upload_limit_kib = 512`) as bytes per second; 0 is unlimited
/// (`None`), which is what the adapters' `Option<u64>` limits mean by `None`.
pub fn kib_per_sec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(kib(u64::deserialize(d)?))
}

/// KiB/s as bytes/s; 0: unlimited (`None`).
pub fn kib(k: u64) -> Option<u64> {
    (k > 0).then(|| k.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_is_bytes_times_1024_and_zero_is_unlimited() {
        assert_eq!(kib(512), Some(512 * 1024));
        assert_eq!(kib(0), None);
        assert_eq!(kib(u64::MAX), Some(u64::MAX), "saturates, never wraps");
    }
}

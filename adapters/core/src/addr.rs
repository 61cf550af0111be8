//! `host:port` addresses, resolved the same way on every network: an IP literal as it
//! is, a name (`localhost`, `server.example.org`) through the system resolver with a
//! deadline, and an error that names the value when it does not resolve.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// How long one name may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    #[error("not a host:port: {0:?} (e.g. 192.0.2.7:4661 or server.example.org:4661)")]
    Malformed(String),
    #[error("cannot resolve {value:?}: {why} (is the name right?)")]
    Unresolved { value: String, why: String },
    #[error("resolving {value:?} took longer than {secs} s")]
    Timeout { value: String, secs: u64 },
}

impl From<AddrError> for crate::NetworkError {
    fn from(e: AddrError) -> Self {
        crate::NetworkError::Invalid(e.to_string())
    }
}

/// The host and port of `host:port` or `[v6]:port`; the host is not resolved.
pub fn split_host_port(value: &str) -> Result<(&str, u16), AddrError> {
    let bad = || AddrError::Malformed(value.to_owned());
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let plain = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if host.is_empty() || !plain {
        return Err(bad());
    }
    Ok((host, port))
}

/// The first IPv4 address when there is one (every network here dials IPv4 first),
/// otherwise the first address.
fn pick(value: &str, addrs: impl Iterator<Item = SocketAddr>) -> Result<SocketAddr, AddrError> {
    let all: Vec<SocketAddr> = addrs.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or_else(|| all.first())
        .copied()
        .ok_or_else(|| AddrError::Unresolved {
            value: value.to_owned(),
            why: "no address".into(),
        })
}

/// What needs no resolver: an IP literal, and the names RFC 6761 reserves (`localhost`
/// and `*.localhost` are the IPv4 loopback, `*.invalid` never resolves), so they mean
/// the same on every host and no query leaves it for them.
fn without_resolver(value: &str) -> Result<Option<SocketAddr>, AddrError> {
    if let Ok(a) = value.parse::<SocketAddr>() {
        return Ok(Some(a));
    }
    let (host, port) = split_host_port(value)?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Ok(Some(SocketAddr::from(([127, 0, 0, 1], port))));
    }
    if host == "invalid" || host.ends_with(".invalid") {
        return Err(AddrError::Unresolved {
            value: value.to_owned(),
            why: "the .invalid domain never resolves".into(),
        });
    }
    Ok(None)
}

/// Resolves `host:port` (an IP literal needs no lookup), within `limit`.
pub async fn resolve(value: &str, limit: Duration) -> Result<SocketAddr, AddrError> {
    let value = value.trim();
    if let Some(a) = without_resolver(value)? {
        return Ok(a);
    }
    let (host, port) = split_host_port(value)?;
    let found = tokio::time::timeout(limit, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| AddrError::Timeout {
            value: value.to_owned(),
            secs: limit.as_secs().max(1),
        })?
        .map_err(|e| AddrError::Unresolved {
            value: value.to_owned(),
            why: e.to_string(),
        })?;
    pick(value, found)
}

/// [`resolve`] for code that runs before any runtime (reading the config at start):
/// the lookup runs on its own thread, so the deadline holds even if the resolver hangs.
pub fn resolve_blocking(value: &str, limit: Duration) -> Result<SocketAddr, AddrError> {
    let value = value.trim();
    if let Some(a) = without_resolver(value)? {
        return Ok(a);
    }
    let (host, port) = split_host_port(value)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let host = host.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send((host.as_str(), port).to_socket_addrs());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(found)) => pick(value, found),
        Ok(Err(e)) => Err(AddrError::Unresolved {
            value: value.to_owned(),
            why: e.to_string(),
        }),
        Err(_) => Err(AddrError::Timeout {
            value: value.to_owned(),
            secs: limit.as_secs().max(1),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split() {
        assert_eq!(split_host_port("localhost:80"), Ok(("localhost", 80)));
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1", 80)));
        assert_eq!(
            split_host_port("a.b-c.example:4661"),
            Ok(("a.b-c.example", 4661))
        );
        for bad in [
            "",
            "host",
            ":80",
            "host:",
            "host:99999",
            "a b:1",
            "::1:80",
            "[::1:80",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn literals_and_loopback_names_resolve() {
        let a = resolve("127.0.0.2:9", RESOLVE_TIMEOUT).await.unwrap();
        assert_eq!(a, "127.0.0.2:9".parse().unwrap());
        let l = resolve(" localhost:6346 ", RESOLVE_TIMEOUT).await.unwrap();
        assert_eq!(l, "127.0.0.1:6346".parse().unwrap());
        let b = resolve_blocking("LocalHost.:0", RESOLVE_TIMEOUT).unwrap();
        assert_eq!(b, "127.0.0.1:0".parse().unwrap());
        let v6 = resolve("[::1]:80", RESOLVE_TIMEOUT).await.unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
    }

    #[tokio::test]
    async fn errors_name_the_value() {
        // `.invalid` never resolves (RFC 6761), and no query leaves the host for it.
        let e = resolve("nowhere.invalid:6346", RESOLVE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("\"nowhere.invalid:6346\""), "{e}");
        let e = resolve("not an address", RESOLVE_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(e, AddrError::Malformed("not an address".into()));
        let e = resolve_blocking("nowhere.invalid:1", RESOLVE_TIMEOUT).unwrap_err();
        assert!(e.to_string().contains("cannot resolve"), "{e}");
    }
}

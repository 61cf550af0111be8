//! `junction stream`: the URL a media player streams a transfer from (the gateway's
//! `/content/{id}` and its `.m3u` playlist), with the transfer started first, or a player
//! opened on it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use junction_core::link::percent_encode;
use proto::v1 as pb;
use serde_json::json;
use tonic::transport::Uri;

use crate::client::{self, Client};
use crate::term::out;

/// The HTTP fronts' port when `--http` is not given: `[http] listen`'s default.
const HTTP_PORT: u16 = 4480;

/// The player `--play` runs when `PLAYER` is not set.
const DEFAULT_PLAYER: &str = "mpv";

pub struct Args {
    pub target: String,
    pub play: bool,
    pub http: Option<String>,
    pub json: bool,
}

/// What the URL names: a transfer (started or found through the API), or a hash that
/// `/content` resolves itself on the first request (it searches the networks for it).
struct Stream {
    id: String,
    transfer: Option<pb::Transfer>,
}

pub async fn stream(c: &mut Client, server: &str, token: Option<&str>, args: Args) -> Result<()> {
    let base = http_base(server, args.http.as_deref())?;
    // Before anything starts: a URL nothing answers at is no use to print or to play.
    reachable(&base).await?;
    let s = resolve(c, &args.target).await?;
    let key = token.map_or(String::new(), |t| format!("?apikey={}", percent_encode(t)));
    if token.is_some() {
        // Players cannot send a header, so the token rides in the URL: say where it goes.
        eprintln!(
            "note: these URLs carry the gateway's token (players cannot send it otherwise); \
             they show in the player's history and, with --play, in its command line"
        );
    }
    let id = percent_encode(&s.id);
    let url = format!("{base}/content/{id}{key}");
    let playlist = format!("{base}/content/{id}.m3u{key}");
    let name = s.transfer.as_ref().map(|t| t.name.as_str()).unwrap_or("");
    if args.json {
        out!(
            "{}",
            json!({
                "transfer_id": s.transfer.as_ref().map(|t| t.id.as_str()),
                "name": name, "url": url, "playlist": playlist,
            })
        );
    } else {
        out!("{url}");
        out!("{playlist}");
    }
    if !args.play {
        return Ok(());
    }
    match &s.transfer {
        Some(t) => eprintln!("playing {} (transfer {})", t.name, t.id),
        None => eprintln!("playing {}", s.id),
    }
    play(&url).await
}

/// Where the HTTP fronts are: `--http` (an address or URL), or else the `--server` host on
/// port 4480, over TLS when the API is (the fronts use the same certificate).
fn http_base(server: &str, http: Option<&str>) -> Result<String> {
    let server = client::server_url(server);
    let uri: Uri = server.parse().map_err(|_| {
        anyhow!("--server {server:?} is not an address: give one like http://127.0.0.1:4470")
    })?;
    let scheme = uri.scheme_str().unwrap_or("http");
    let base = match http {
        Some(h) if h.contains("://") => h.to_owned(),
        Some(h) => format!("{scheme}://{h}"),
        None => {
            let host = uri.host().unwrap_or("127.0.0.1");
            format!("{scheme}://{host}:{HTTP_PORT}")
        }
    };
    if !base.parse::<Uri>().is_ok_and(|u| u.host().is_some()) {
        bail!("--http {base:?} is not an address: give the HTTP fronts' one, like 127.0.0.1:4480");
    }
    Ok(base.trim_end_matches('/').to_owned())
}

/// Whether something listens where the fronts should be.
async fn reachable(base: &str) -> Result<()> {
    let uri: Uri = base.parse()?;
    let host = uri.host().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!(
            "the gateway's HTTP fronts do not answer at {base} ({e}): give their address with \
             --http or JUNCTION_HTTP (`junction serve` and `junction lab` print it), or turn \
             them on with [http] enabled = true in the gateway's config"
        ),
        Err(_) => bail!(
            "the gateway's HTTP fronts at {base} did not answer within 5 s: check --http or \
             JUNCTION_HTTP (`junction serve` and `junction lab` print their address)"
        ),
    }
}

/// A link or .torrent starts (or finds) its transfer; a transfer id is looked up; a search
/// item id starts its transfer; a hash is left to `/content`, which searches for it.
async fn resolve(c: &mut Client, target: &str) -> Result<Stream> {
    if client::is_link(target) || target.ends_with(".torrent") || Path::new(target).is_file() {
        let t = client::start(c, target).await?;
        return Ok(Stream {
            id: t.id.clone(),
            transfer: Some(t),
        });
    }
    match c
        .get_transfer(pb::TransferRef {
            id: target.to_owned(),
        })
        .await
    {
        Ok(t) => {
            let t = t.into_inner();
            return Ok(Stream {
                id: t.id.clone(),
                transfer: Some(t),
            });
        }
        Err(s) if s.code() == tonic::Code::NotFound => {}
        Err(s) => return Err(s.into()),
    }
    if looks_like_hash(target) {
        return Ok(Stream {
            id: target.to_owned(),
            transfer: None,
        });
    }
    match client::start(c, target).await {
        Ok(t) => Ok(Stream {
            id: t.id.clone(),
            transfer: Some(t),
        }),
        Err(e)
            if e.downcast_ref::<tonic::Status>()
                .is_some_and(|s| s.code() == tonic::Code::NotFound) =>
        {
            bail!(
                "{target:?} is not a transfer id, a recent search item id, a link, a .torrent \
                 file or a hash (btih:HEX, ed2k:HEX, sha1:HEX): `junction transfers` lists \
                 transfers, `junction search` gives item ids"
            )
        }
        Err(e) => Err(e),
    }
}

/// `btih:`, `ed2k:` or `sha1:` and digits, or 32 or 40 of them bare: what `/content` takes.
fn looks_like_hash(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let digest = ["btih:", "ed2k:", "sha1:"]
        .iter()
        .find_map(|p| lower.strip_prefix(p));
    match digest {
        Some(d) => !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => matches!(s.len(), 32 | 40) && s.bytes().all(|b| b.is_ascii_alphanumeric()),
    }
}

/// Runs `PLAYER` (split on spaces, so `PLAYER="mpv --fs"` works) or mpv on the URL, and
/// waits for it.
async fn play(url: &str) -> Result<()> {
    let from_env = std::env::var("PLAYER")
        .ok()
        .filter(|p| !p.trim().is_empty());
    let command = from_env
        .clone()
        .unwrap_or_else(|| DEFAULT_PLAYER.to_owned());
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or(DEFAULT_PLAYER).to_owned();
    let args: Vec<String> = words.map(str::to_owned).collect();
    let url = url.to_owned();
    let run = {
        let program = program.clone();
        move || {
            std::process::Command::new(&program)
                .args(&args)
                .arg(&url)
                .status()
        }
    };
    let status = tokio::task::spawn_blocking(run)
        .await
        .context("the player's task failed")?;
    let status = match status {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match from_env {
                Some(p) => anyhow!(
                    "the player PLAYER names ({p:?}) is not installed or not on PATH: install \
                     it, or set PLAYER to one that is; without --play, `junction stream` prints \
                     the URL to open by hand"
                ),
                None => anyhow!(
                    "mpv is not installed or not on PATH: install it (e.g. `apt install mpv`), \
                     or set PLAYER to your player (e.g. PLAYER=vlc); without --play, \
                     `junction stream` prints the URL to open by hand"
                ),
            });
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot run the player {program}"))),
    };
    if !status.success() {
        bail!("the player {program} ended with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fronts_are_on_the_servers_host_by_default() {
        let base = |server: &str, http: Option<&str>| http_base(server, http).unwrap();
        assert_eq!(base("http://127.0.0.1:4470", None), "http://127.0.0.1:4480");
        assert_eq!(base("10.0.0.5:9000", None), "http://10.0.0.5:4480");
        assert_eq!(
            base("https://gw.example:4470", None),
            "https://gw.example:4480",
            "TLS as the API's"
        );
        assert_eq!(base("http://[::1]:4470", None), "http://[::1]:4480");
        assert_eq!(
            base("https://gw.example:4470", Some("gw.example:8080")),
            "https://gw.example:8080"
        );
        assert_eq!(
            base("http://127.0.0.1:4470", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000"
        );
        assert!(http_base("http://127.0.0.1:4470", Some("not an address")).is_err());
    }

    #[test]
    fn hashes_are_told_from_ids() {
        assert!(looks_like_hash(
            "btih:0123456789abcdef0123456789abcdef01234567"
        ));
        assert!(looks_like_hash("ED2K:0123456789abcdef0123456789abcdef"));
        assert!(looks_like_hash("0123456789abcdef0123456789abcdef01234567"));
        assert!(!looks_like_hash("t-3"));
        assert!(!looks_like_hash("btih:"));
    }
}

//! Drives Junction's BitTorrent adapter from the interop script (tests/interop/bt_libtorrent.sh):
//!
//! ```text
//! bt_interop tracker HTTP_ADDR [UDP_ADDR]            run the crate's tracker until killed
//! bt_interop fetch LISTEN OUT (--torrent FILE | --magnet LINK [--size N]) [--timeout S]
//!                  [--dht UDP_ADDR --bootstrap HOST:PORT,...] [--discard]
//!                  [--linger S]
//!                  (--discard: verify every piece but write none, to time the network
//!                  and hashing without the storage; --linger: seed what was fetched for
//!                  S seconds more, or until interrupted)
//! bt_interop seed LISTEN FILE TORRENT_OUT TRACKER_URL [--dht UDP_ADDR --bootstrap HOST:PORT,...]
//!                                                  share FILE, write its .torrent, seed until killed
//! ```
//! bt_interop sha1-speed [SECS]                      one core's SHA-1 rate through the `sha1` crate
//! Only loopback addresses are meant to be used.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use junction_bittorrent::{Adapter, Config, InfoHash, TrackerServer};
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, SharedItem};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn usage() -> ! {
    eprintln!(
        "usage: bt_interop tracker HTTP [UDP] | fetch LISTEN OUT (--torrent F | --magnet L [--size N]) | seed LISTEN FILE TORRENT_OUT TRACKER"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tracker") => tracker(&args[1..]).await,
        Some("fetch") => fetch(&args[1..]).await,
        Some("seed") => seed(&args[1..]).await,
        Some("sha1-speed") => {
            let secs = args.get(1).map_or(Ok(2.0), |s| s.parse::<f64>())?;
            sha1_speed(Duration::from_secs_f64(secs));
            Ok(())
        }
        _ => usage(),
    }
}

/// Hashes 16 KiB buffers for `secs` (two seconds by default), as `openssl speed -bytes 16384
/// sha1` does, and prints the rate in MB/s (10^6 bytes) per second of this thread's CPU
/// time, which is what `openssl speed` counts too (its user time), so both mean one core's
/// rate even on a busy machine.
fn sha1_speed(secs: Duration) {
    use sha1::{Digest, Sha1};
    // Nanoseconds this thread has run (Linux: the first field of its schedstat).
    fn cpu_ns() -> Option<u64> {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
    let buf = vec![0x5au8; 16 * 1024];
    let t0 = Instant::now();
    let c0 = cpu_ns();
    let mut n = 0u64;
    let mut acc = 0u8;
    while t0.elapsed() < secs {
        for _ in 0..256 {
            acc ^= Sha1::digest(&buf)[0];
            n += buf.len() as u64;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    println!(
        "sha1 crate {:.1} MB/s per CPU second ({:.1} MB/s wall) ({acc})",
        n as f64 / cpu / 1e6,
        n as f64 / wall / 1e6
    );
}

async fn tracker(a: &[String]) -> Res<()> {
    let http = a.first().unwrap_or_else(|| usage()).parse()?;
    let udp = a.get(1).map(|u| u.parse()).transpose()?;
    let t = TrackerServer::bind(http, udp, 5).await?;
    println!(
        "tracker {} {}",
        t.announce_url(),
        t.udp_url().unwrap_or_default()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn config(listen: &str) -> Res<Config> {
    Ok(Config {
        listen: listen.parse()?,
        min_announce_interval: Duration::from_secs(2),
        ..Config::default()
    })
}

/// `fetch`'s arguments, and the torrent they name.
struct FetchArgs {
    listen: String,
    out: String,
    torrent: Option<Bytes>,
    magnet: Option<String>,
    /// From the `.torrent`, the magnet's `xl` or `--size`; `None`: ask the swarm.
    size: Option<u64>,
    limit: u64,
    dht: Option<std::net::SocketAddr>,
    bootstrap: Vec<String>,
    discard: bool,
    linger: u64,
    ih: InfoHash,
}

fn fetch_args(a: &[String]) -> Res<FetchArgs> {
    let (listen, out) = match a {
        [l, o, ..] => (l, o),
        _ => usage(),
    };
    let mut torrent = None;
    let mut magnet = None;
    let mut size = None;
    let mut limit = 600u64;
    let mut dht = None;
    let mut bootstrap = Vec::new();
    let mut discard = false;
    let mut linger = 0u64;
    let mut i = 2;
    while i < a.len() {
        if a[i] == "--discard" {
            discard = true;
            i += 1;
            continue;
        }
        if i + 1 >= a.len() {
            usage();
        }
        match a[i].as_str() {
            "--torrent" => torrent = Some(Bytes::from(std::fs::read(&a[i + 1])?)),
            "--magnet" => magnet = Some(a[i + 1].clone()),
            "--size" => size = Some(a[i + 1].parse::<u64>()?),
            "--timeout" => limit = a[i + 1].parse()?,
            "--linger" => linger = a[i + 1].parse()?,
            "--dht" => dht = Some(a[i + 1].parse()?),
            "--bootstrap" => bootstrap = a[i + 1].split(',').map(str::to_owned).collect(),
            _ => usage(),
        }
        i += 2;
    }
    let (ih, size) = match (&torrent, &magnet) {
        (Some(t), _) => {
            let m = junction_bittorrent::wire::metainfo::Metainfo::parse(t)?;
            (m.info.swarm_hash(), Some(m.info.total_length))
        }
        (None, Some(l)) => {
            let m = junction_bittorrent::wire::magnet::Magnet::parse(l)?;
            let ih = m.swarm_hash().ok_or("magnet without btih")?;
            (ih, size.or(m.exact_length))
        }
        _ => usage(),
    };
    Ok(FetchArgs {
        listen: listen.clone(),
        out: out.clone(),
        torrent,
        magnet,
        size,
        limit,
        dht,
        bootstrap,
        discard,
        linger,
        ih,
    })
}

async fn fetch(a: &[String]) -> Res<()> {
    let FetchArgs {
        listen,
        out,
        torrent,
        magnet,
        size,
        limit,
        dht,
        bootstrap,
        discard,
        linger,
        ih,
    } = fetch_args(a)?;
    let mut cfg = config(&listen)?;
    cfg.dht_listen = dht;
    cfg.dht_bootstrap = bootstrap;
    let adapter = Adapter::start(cfg).await?;
    let t0 = Instant::now();
    let size = match size {
        Some(s) => s,
        // No `xl` and no --size: ask the swarm (metadata only), then fetch.
        None => look_up_size(&adapter, ih, magnet.clone().unwrap_or_default(), limit).await?,
    };
    let mut sink = common::FileSink::at(out.into(), size);
    sink.discard = discard;
    let sink = Arc::new(sink);
    let req = FetchRequest {
        id: ContentId::new(Some(size)).with(HashKind::Btih, &ih.0),
        name: String::new(),
        size,
        sources: Vec::new(),
        trackers: magnet.into_iter().collect(),
        torrent,
    };
    let mut first_data = None;
    let mut events = adapter.fetch(req, sink.clone()).await?;
    let run = async {
        let mut last = Instant::now();
        loop {
            tokio::select! {
                e = events.next() => match e {
                    Some(FetchEvent::Identified(id)) => {
                        println!("{:7.2}s metadata: {} bytes", t0.elapsed().as_secs_f64(), id.size.unwrap_or(0));
                    }
                    Some(e) => println!("{:7.2}s {e:?}", t0.elapsed().as_secs_f64()),
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let v = sink.verified_bytes();
            if v > 0 && first_data.is_none() {
                first_data = Some(t0.elapsed());
            }
            if last.elapsed() >= Duration::from_secs(2) {
                last = Instant::now();
                if let Some(st) = adapter.torrent_stats(&ih) {
                    println!(
                        "{:7.2}s verified {}/{} MB, peers {}, failed pieces {}, DHT nodes {}",
                        t0.elapsed().as_secs_f64(),
                        v >> 20,
                        size >> 20,
                        st.peers,
                        st.failed_pieces,
                        adapter.status().dht_nodes
                    );
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(limit), run)
        .await
        .is_err()
    {
        eprintln!(
            "fetch timed out after {limit}s, verified {} of {size}",
            sink.verified_bytes()
        );
        std::process::exit(1);
    }
    let secs = t0.elapsed().as_secs_f64();
    let verified = sink.verified_bytes();
    println!(
        "RESULT {} bytes verified of {size} in {secs:.2}s: {:.1} MB/s overall{}",
        verified,
        size as f64 / secs / 1e6,
        first_data.map_or(String::new(), |f| format!(
            ", {:.1} MB/s from the first verified piece",
            size as f64 / (secs - f.as_secs_f64()).max(0.001) / 1e6
        ))
    );
    let st = adapter.torrent_stats(&ih);
    println!("stats {st:?}");
    linger_seeding(&adapter, &ih, if verified == size { linger } else { 0 }).await;
    adapter.shutdown().await;
    if verified != size {
        std::process::exit(1);
    }
    Ok(())
}

/// Seeds what was fetched for `secs`, or until interrupted.
async fn linger_seeding(adapter: &Adapter, ih: &InfoHash, secs: u64) {
    if secs == 0 {
        return;
    }
    println!("seeding for {secs}s");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("stats {:?}", adapter.torrent_stats(ih));
}

/// Learns a magnet's size from its metadata alone (`identify`).
async fn look_up_size(adapter: &Adapter, ih: InfoHash, magnet: String, limit: u64) -> Res<u64> {
    let req = FetchRequest {
        id: ContentId::new(None).with(HashKind::Btih, &ih.0),
        name: String::new(),
        size: 0,
        sources: Vec::new(),
        trackers: vec![magnet],
        torrent: None,
    };
    let t0 = Instant::now();
    let mut events = adapter.identify(req).await?;
    let found = tokio::time::timeout(Duration::from_secs(limit), async {
        while let Some(e) = events.next().await {
            if let FetchEvent::Identified(id) = e {
                return id.size;
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("no metadata for the magnet")?;
    println!(
        "size lookup: {found} bytes in {:.2}s",
        t0.elapsed().as_secs_f64()
    );
    Ok(found)
}

async fn seed(a: &[String]) -> Res<()> {
    let [listen, file, torrent_out, tracker_url, rest @ ..] = a else {
        usage()
    };
    let mut cfg = config(listen)?;
    cfg.trackers = vec![tracker_url.clone()];
    for kv in rest.chunks(2) {
        match kv {
            [k, v] if k == "--dht" => cfg.dht_listen = Some(v.parse()?),
            [k, v] if k == "--bootstrap" => {
                cfg.dht_bootstrap = v.split(',').map(str::to_owned).collect();
            }
            _ => usage(),
        }
    }
    let adapter = Adapter::start(cfg).await?;
    let size = std::fs::metadata(file)?.len();
    let t0 = Instant::now();
    let id = adapter
        .share(SharedItem {
            path: file.into(),
            name: String::new(),
            size,
            id: ContentId::new(Some(size)),
            hashes: None,
        })
        .await?;
    let ih = InfoHash::from_slice(id.get(HashKind::Btih).ok_or("no btih")?).ok_or("bad btih")?;
    let entry = adapter.index_entry(&ih).ok_or("not indexed")?;
    std::fs::write(torrent_out, entry.torrent.as_deref().unwrap_or_default())?;
    println!(
        "seeding {} ({size} bytes, hashed in {:.2}s) {}",
        ih,
        t0.elapsed().as_secs_f64(),
        entry.magnet()
    );
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                if let Some(st) = adapter.torrent_stats(&ih) {
                    println!("{:7.2}s uploaded {} MB to {} peers", t0.elapsed().as_secs_f64(), st.uploaded >> 20, st.peers);
                }
            }
        }
    }
    adapter.shutdown().await;
    Ok(())
}

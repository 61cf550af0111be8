//! A flood (issue 15): 10,000 connections opened to `junction serve`'s ports (the gRPC API,
//! the HTTP fronts, the eD2k client and index server, the Gnutella ultrapeer, BitTorrent),
//! half of them left idle and half sending junk, while it downloads from the lab. The
//! download completes with the right bytes, the API answers, resident memory stays under
//! 512 MiB, and once the flood leaves the gateway holds no more descriptors than before.
//! The flood comes from 127.0.0.2: every port has per-IP limits, which back the flooding
//! address off while the client on 127.0.0.1 is still served.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Lab;
use common::serve::{Serve, config, free_port, lab_large_file};

const CONNECTIONS: usize = 10_000;
/// The bound the flood must stay under.
const MAX_RSS_KIB: u64 = 512 * 1024;

/// `VmHWM` (peak resident) and open descriptors of a process.
fn peak_rss_and_fds(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (hwm, fds)
}

/// Lifts this process's limit on descriptors to the hard limit (the gateway it starts
/// inherits it); returns the limit now.
fn lift_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The flooding address.
const FLOODER: [u8; 4] = [127, 0, 0, 2];

/// Connects to `to` from [`FLOODER`] within 500 ms.
fn connect_from_flooder(rt: &tokio::runtime::Runtime, to: SocketAddr) -> Option<TcpStream> {
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().ok()?;
        s.bind((FLOODER, 0).into()).ok()?;
        let c = tokio::time::timeout(Duration::from_millis(500), s.connect(to))
            .await
            .ok()?
            .ok()?;
        let c = c.into_std().ok()?;
        c.set_nonblocking(false).ok()?;
        Some(c)
    })
}

/// Opens `n` connections to `addr` from [`FLOODER`], writing junk on every other one;
/// returns those that connected (a full accept queue refuses some).
fn flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Some(mut s) = connect_from_flooder(&rt, addr) else {
            continue;
        };
        if i % 2 == 1 {
            let _ = s.write_all(b"\x00\xffGARBAGE \r\n\r\n\x13BitTorrent junk\xe3\x01");
        }
        out.push(s);
    }
    out
}

#[test]
fn ten_thousand_connections_do_not_stop_a_download_or_leak() {
    let limit = lift_fd_limit();
    assert!(
        limit >= CONNECTIONS as u64 + 1000,
        "this test opens {CONNECTIONS} connections: raise the hard open-files limit (ulimit -Hn), now {limit}"
    );
    // 32 MiB from two seeders at 2 MiB/s each: the download runs through the flood.
    let lab = Lab::start(32, 2);
    let magnet = lab.large_magnet();
    let original = lab_large_file(&lab.world());

    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    let [http, ed2k, server, gnutella, bt] = [(); 5].map(|()| free_port());
    let more = format!(
        "[http]\nlisten = \"127.0.0.1:{http}\"\n\
         [ed2k]\nlisten = \"127.0.0.1:{ed2k}\"\n[ed2k.server]\nenabled = true\nlisten = \"127.0.0.1:{server}\"\n\
         [gnutella]\nlisten = \"127.0.0.1:{gnutella}\"\nultrapeer = true\n\
         [bittorrent]\nlisten = \"127.0.0.1:{bt}\"\n[bittorrent.dht]\nenabled = false\n"
    );
    let config = config(dir.path(), api, &more);
    let gw = Serve::start(&config, api, &dir.path().join("serve.log"));
    std::thread::sleep(Duration::from_secs(2));
    let (rss_before, fds_before) = peak_rss_and_fds(gw.pid());

    let id = gw.get(&magnet);
    let ports = [api, http, ed2k, server, gnutella, bt];
    let started = Instant::now();
    let floods: Vec<_> = ports
        .iter()
        .map(|&p| {
            let addr: SocketAddr = format!("127.0.0.1:{p}").parse().unwrap();
            std::thread::spawn(move || flood(addr, CONNECTIONS / ports.len() + 1))
        })
        .collect();
    // The API answers during the flood.
    std::thread::sleep(Duration::from_secs(1));
    let asked = Instant::now();
    let networks = gw.run(&["networks"]);
    assert!(
        networks.status.success() && asked.elapsed() < Duration::from_secs(15),
        "the API under the flood: {:?} after {:?}",
        networks,
        asked.elapsed()
    );
    let held: Vec<Vec<TcpStream>> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    let connected: usize = held.iter().map(Vec::len).sum();
    let flooded_in = started.elapsed();

    let done = gw.completed(&id, Duration::from_secs(120));
    assert!(
        std::fs::read(done["path"].as_str().unwrap()).unwrap() == original,
        "the file differs from the source"
    );
    let (peak, fds_flooded) = peak_rss_and_fds(gw.pid());
    drop(held);

    // Once the flood is gone, so are its descriptors.
    let left = Instant::now();
    let fds_after = loop {
        let (_, fds) = peak_rss_and_fds(gw.pid());
        if fds <= fds_before + 20 || left.elapsed() > Duration::from_secs(30) {
            break fds;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "{connected} of {} connections in {flooded_in:?}; peak RSS {} MiB (before {} MiB, \
         bound {} MiB); descriptors {fds_before} before, {fds_flooded} in the flood, \
         {fds_after} {:?} after it left",
        ports.len() * (CONNECTIONS / ports.len() + 1),
        peak >> 10,
        rss_before >> 10,
        MAX_RSS_KIB >> 10,
        left.elapsed()
    );
    assert!(connected >= CONNECTIONS / 2, "only {connected} connected");
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
    assert!(
        fds_after <= fds_before + 20,
        "descriptors leaked: {fds_before} before, {fds_after} after"
    );
}

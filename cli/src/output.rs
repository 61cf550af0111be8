//! How results print: one line per thing for people, one JSON object per line for `jq`.

use proto::v1 as pb;
use serde_json::{Value, json};

use crate::term::{duration_ms, plural};

pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Where an item is, compactly: `ed2k 3 · gnut 2 · bt 5/2` (sources, and complete sources
/// when a network knows them); short names leave the name column room.
pub fn availability(i: &pb::Item) -> String {
    i.availability
        .iter()
        .map(|a| {
            let net = short_net(&a.network);
            if a.complete_sources > 0 && a.complete_sources != a.sources {
                format!("{net} {}/{}", a.sources, a.complete_sources)
            } else {
                format!("{net} {}", a.sources)
            }
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A network's id in a narrow column.
pub fn short_net(id: &str) -> &str {
    match id {
        "gnutella" => "gnut",
        "bittorrent" => "bt",
        n => n,
    }
}

/// One network's part in a search: `  gnutella    done          3 hits   2.1 s`.
pub fn progress_line(p: &pb::NetworkProgress) -> String {
    let state = format!("{:?}", p.state()).to_lowercase().replace('_', " ");
    let mut line = format!(
        "  {:<11} {:<11} {:>9}  {:>8}",
        p.network,
        state,
        plural(p.hits.into(), "hit", "hits"),
        duration_ms(p.elapsed_ms)
    );
    if !p.error.is_empty() {
        line.push_str(&format!("  {}", p.error));
    }
    if !p.ignored_terms.is_empty() {
        line.push_str(&format!("  (filtered here: {})", p.ignored_terms.join(" ")));
    }
    line
}

fn content_json(c: &Option<pb::ContentId>) -> Value {
    match c {
        Some(c) => json!({ "size": c.size, "urns": c.urns }),
        None => Value::Null,
    }
}

fn item_json(i: &pb::Item) -> Value {
    json!({
        "id": i.id, "name": i.name, "size": i.size, "content": content_json(&i.content),
        "availability": i.availability.iter().map(|a| json!({
            "network": a.network, "sources": a.sources, "complete_sources": a.complete_sources,
        })).collect::<Vec<_>>(),
        "other_names": i.other_names, "score": i.score, "file_type": i.file_type, "links": i.links,
    })
}

pub fn search_event_json(ev: &pb::search_event::Event) -> Value {
    use pb::search_event::Event;
    match ev {
        Event::Item(i) => json!({ "type": "item", "item": item_json(i) }),
        Event::Update(i) => json!({ "type": "update", "item": item_json(i) }),
        Event::Progress(p) => json!({
            "type": "progress", "network": p.network,
            "state": format!("{:?}", p.state()).to_lowercase(), "hits": p.hits,
            "error": p.error, "elapsed_ms": p.elapsed_ms, "ignored_terms": p.ignored_terms,
        }),
        Event::Finished(f) => {
            json!({ "type": "finished", "items": f.items, "elapsed_ms": f.elapsed_ms })
        }
    }
}

pub fn percent(t: &pb::Transfer) -> f64 {
    if t.size == 0 {
        if t.state() == pb::transfer::State::Complete {
            100.0
        } else {
            0.0
        }
    } else {
        t.bytes_verified as f64 * 100.0 / t.size as f64
    }
}

pub fn state(t: &pb::Transfer) -> String {
    format!("{:?}", t.state()).to_lowercase()
}

/// The rate, only while the transfer runs: a paused or finished one may still carry the
/// last rate it had.
pub fn rate(t: &pb::Transfer) -> String {
    if t.state() == pb::transfer::State::Active {
        format!("{}/s", size(t.rate_bytes_per_sec))
    } else {
        "-".into()
    }
}

/// Time left at the current rate; `-` when not running or not moving.
pub fn eta(t: &pb::Transfer) -> String {
    let left = t.size.saturating_sub(t.bytes_verified);
    if t.state() != pb::transfer::State::Active || t.rate_bytes_per_sec == 0 || t.size == 0 {
        return "-".into();
    }
    duration_ms(left.saturating_mul(1000) / t.rate_bytes_per_sec)
}

/// What a progress bar says after its bytes: `2.0 MiB/s, 6.0 s left`, or the state when
/// the transfer is not moving (`paused`, `queued`, `waiting for sources`).
pub fn rate_and_eta(t: &pb::Transfer) -> String {
    use pb::transfer::State;
    match t.state() {
        State::Active if t.rate_bytes_per_sec == 0 => "waiting for sources".into(),
        State::Active => format!("{}, {} left", rate(t), eta(t)),
        _ => state(t),
    }
}

pub fn transfer_line(t: &pb::Transfer) -> String {
    let mut line = format!(
        "{}  {:<9} {:>5.1}%  {:>10}  {:>12}  {}",
        t.id,
        state(t),
        percent(t),
        size(t.size),
        rate(t),
        t.name
    );
    if !t.error.is_empty() {
        line.push_str(&format!("  ({})", t.error));
    }
    for n in &t.per_network {
        line.push_str(&format!("\n    {}", network_part(n)));
    }
    line
}

/// One network's part in a transfer: `ed2k  fetching  3 sources  1.2 MiB/s  received …`.
pub fn network_part(n: &pb::TransferNetwork) -> String {
    let mut line = format!(
        "{:<11} {:<14} {:>3} src {:>10}/s  received {:>10}  verified {:>10}  discarded {:>10}",
        n.network,
        n.state,
        n.sources,
        size(n.rate_bytes_per_sec),
        size(n.bytes_received),
        size(n.bytes_verified),
        size(n.bytes_discarded),
    );
    if n.sources_dropped > 0 {
        line.push_str(&format!("  dropped {} lying source(s)", n.sources_dropped));
    }
    if !n.note.is_empty() {
        line.push_str(&format!("  ({})", n.note));
    }
    line
}

/// Each delivering network's share of the verified bytes, e.g. `ed2k 35% · bittorrent 65%`.
pub fn network_shares(t: &pb::Transfer) -> String {
    let total: u64 = t.per_network.iter().map(|n| n.bytes_verified).sum();
    if total == 0 {
        return String::new();
    }
    t.per_network
        .iter()
        .filter(|n| n.bytes_verified > 0)
        .map(|n| format!("{} {}%", n.network, n.bytes_verified * 100 / total))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn transfer_json(t: &pb::Transfer) -> Value {
    json!({
        "id": t.id, "name": t.name, "size": t.size, "content": content_json(&t.content),
        "state": format!("{:?}", t.state()).to_lowercase(),
        "bytes_written": t.bytes_written, "bytes_verified": t.bytes_verified,
        "bytes_redundant": t.bytes_redundant,
        "rate_bytes_per_sec": t.rate_bytes_per_sec, "networks": t.networks, "peers": t.peers,
        "error": t.error, "notes": t.notes, "path": t.path,
        "per_network": t.per_network.iter().map(|n| json!({
            "network": n.network, "state": n.state, "sources": n.sources,
            "rate_bytes_per_sec": n.rate_bytes_per_sec, "bytes_received": n.bytes_received,
            "bytes_verified": n.bytes_verified, "bytes_discarded": n.bytes_discarded,
            "sources_dropped": n.sources_dropped, "failed_checks": n.failed_checks,
            "note": n.note,
        })).collect::<Vec<_>>(),
        "verified": t.verified.iter().map(|r| [r.start, r.end]).collect::<Vec<_>>(),
        "files": t.files.iter().enumerate().map(|(i, f)| file_json(i, f)).collect::<Vec<_>>(),
    })
}

/// One file of a multi-file transfer: its number, whether it is fetched, its progress.
pub fn file_line(index: usize, f: &pb::TransferFile) -> String {
    let done = match f.size {
        0 => 100.0,
        n => f.bytes_verified as f64 * 100.0 / n as f64,
    };
    let mark = if f.wanted { "get " } else { "skip" };
    format!(
        "{index:>4}  {mark}  {done:>5.1}%  {:>10}  {}",
        size(f.size),
        f.path
    )
}

pub fn file_json(index: usize, f: &pb::TransferFile) -> Value {
    json!({
        "index": index, "path": f.path, "size": f.size,
        "bytes_verified": f.bytes_verified, "wanted": f.wanted,
    })
}

pub fn network_line(n: &pb::Network) -> String {
    let state = format!("{:?}", n.state()).to_lowercase();
    let mut line = format!(
        "{:<11} {:<8} {:<10} peers {:>4}  in {:>10}  out {:>10}  offers {} file(s), {}",
        n.id,
        state,
        n.reachability,
        n.peers,
        size(n.bytes_in),
        size(n.bytes_out),
        n.files_offered,
        size(n.bytes_offered)
    );
    if !n.last_error.is_empty() {
        line.push_str(&format!("  last error: {}", n.last_error));
    }
    line
}

pub fn network_json(n: &pb::Network) -> Value {
    json!({
        "id": n.id, "state": format!("{:?}", n.state()).to_lowercase(),
        "reachability": n.reachability,
        "inbound": format!("{:?}", n.inbound()).to_lowercase(),
        "listening": n.listening, "external_ip": n.external_ip,
        "peers": n.peers, "servers": n.servers,
        "dht_nodes": n.dht_nodes, "bytes_in": n.bytes_in, "bytes_out": n.bytes_out,
        "last_error": n.last_error, "details": n.details,
        "files_offered": n.files_offered, "bytes_offered": n.bytes_offered,
    })
}

pub fn shared_line(f: &pb::SharedFile) -> String {
    let mut line = format!(
        "{:>10}  {}  [{}]",
        size(f.size),
        f.path,
        f.networks.join(",")
    );
    for e in &f.errors {
        line.push_str(&format!("\n            refused: {e}"));
    }
    line
}

pub fn links_json(l: &pb::Links) -> Value {
    json!({
        "name": l.name, "content": content_json(&l.content), "ed2k": l.ed2k,
        "magnet": l.magnet, "torrent": !l.torrent.is_empty(),
    })
}

pub fn shared_json(f: &pb::SharedFile) -> Value {
    json!({
        "path": f.path, "name": f.name, "size": f.size, "content": content_json(&f.content),
        "networks": f.networks, "errors": f.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::transfer::State;

    fn transfer(state: State, rate: u64) -> pb::Transfer {
        pb::Transfer {
            size: 10 << 20,
            bytes_verified: 4 << 20,
            rate_bytes_per_sec: rate,
            state: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_stopped_transfer_shows_no_stale_rate_or_eta() {
        let running = transfer(State::Active, 2 << 20);
        assert_eq!(rate_and_eta(&running), "2.0 MiB/s, 3.0 s left");
        // The gateway may still report the last rate of a paused or finished transfer.
        for (state, says) in [(State::Paused, "paused"), (State::Complete, "complete")] {
            let t = transfer(state, 2 << 20);
            assert_eq!(rate_and_eta(&t), says);
            assert_eq!((rate(&t), eta(&t)), ("-".into(), "-".into()));
        }
        assert_eq!(
            rate_and_eta(&transfer(State::Active, 0)),
            "waiting for sources"
        );
    }
}

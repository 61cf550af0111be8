//! Snapshots of the human tables at 80 and 160 columns, and in a pipe (no width).

use pb::search_event::Event;
use proto::v1 as pb;

use super::*;

fn item(id: &str, name: &str, size: u64, score: f64, avail: &[(&str, u32, u32)]) -> pb::Item {
    pb::Item {
        id: id.into(),
        name: name.into(),
        size,
        score,
        file_type: "video".into(),
        availability: avail
            .iter()
            .map(|&(n, s, c)| pb::Availability {
                network: n.into(),
                sources: s,
                complete_sources: c,
            })
            .collect(),
        ..Default::default()
    }
}

fn progress(net: &str, state: pb::network_progress::State, hits: u32, ms: u64) -> Event {
    Event::Progress(pb::NetworkProgress {
        network: net.into(),
        state: state.into(),
        hits,
        elapsed_ms: ms,
        ..Default::default()
    })
}

/// Items arrive unsorted and one is updated (more sources): the table shows each once,
/// best first.
fn view() -> SearchView {
    use pb::network_progress::State;
    let mut v = SearchView::default();
    v.apply(Event::Item(item(
        "a1-2",
        "Lab Sunrise Timelapse 720p beta.mkv",
        4 << 20,
        0.5,
        &[("ed2k", 1, 0)],
    )));
    v.apply(Event::Item(item(
        "a1-1",
        "Lab Sunrise Timelapse 1080p.mkv",
        24 << 20,
        0.9,
        &[("ed2k", 2, 0)],
    )));
    v.apply(Event::Update(item(
        "a1-1",
        "Lab Sunrise Timelapse 1080p.mkv",
        24 << 20,
        0.9,
        &[("ed2k", 2, 0), ("gnutella", 1, 0), ("bittorrent", 12, 3)],
    )));
    v.apply(Event::Item(item(
        "a1-3",
        "A Very Long Name Of A Sunrise Timelapse Recorded Over Many Days In The Mountains.mkv",
        1 << 30,
        0.7,
        &[("bittorrent", 40, 38)],
    )));
    v.apply(progress("ed2k", State::Done, 2, 12));
    v.apply(progress("gnutella", State::Done, 1, 2_100));
    v.apply(progress("bittorrent", State::Done, 2, 10_000));
    v.apply(Event::Finished(pb::Finished {
        items: 3,
        elapsed_ms: 10_000,
    }));
    v
}

#[test]
fn search_table_at_80_columns() {
    let got = view().table(Some(80)).join("\n");
    let want = "\
ID        SIZE  SOURCES                    NAME
a1-1  24.0 MiB  ed2k 2 · gnut 1 · bt 12/3  Lab Sunrise Timelapse 1080p.mkv
a1-3   1.0 GiB  bt 40/38                   A Very Long Name Of A Sunrise Timel…
a1-2   4.0 MiB  ed2k 1                     Lab Sunrise Timelapse 720p beta.mkv";
    assert_eq!(got, want, "\n{got}");
    assert!(view().table(Some(80)).iter().all(|l| columns(l) < 80));
}

#[test]
fn search_table_at_160_columns() {
    let got = view().table(Some(160)).join("\n");
    let want = "\
ID        SIZE  SOURCES                    TYPE   NAME
a1-1  24.0 MiB  ed2k 2 · gnut 1 · bt 12/3  video  Lab Sunrise Timelapse 1080p.mkv
a1-3   1.0 GiB  bt 40/38                   video  A Very Long Name Of A Sunrise Timelapse Recorded Over Many Days In The Mountains.mkv
a1-2   4.0 MiB  ed2k 1                     video  Lab Sunrise Timelapse 720p beta.mkv";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn search_status_counts_in_words() {
    let got = view().status_lines().join("\n");
    let want = [
        "  ed2k        done           2 hits     12 ms",
        "  gnutella    done            1 hit     2.1 s",
        "  bittorrent  done           2 hits    10.0 s",
        "3 items in 10.0 s",
    ]
    .join("\n");
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn the_live_view_fits_the_screen() {
    let lines = view().live_lines(Some(80), Some(5));
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].starts_with("searching… 3 items so far"),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| columns(l) < 80));
    assert!(
        lines[0].ends_with("  (ed2k done · gnutella done · bittorrent done)"),
        "{lines:#?}"
    );
    // Below the status line (its time is the test's own), the table as a terminal shows it.
    let got = lines[1..].join("\n");
    let want = "\
ID        SIZE  SOURCES                    NAME
a1-1  24.0 MiB  ed2k 2 · gnut 1 · bt 12/3  Lab Sunrise Timelapse 1080p.mkv
a1-3   1.0 GiB  bt 40/38                   A Very Long Name Of A Sunrise Timel…";
    assert_eq!(got, want, "\n{got}");
}

fn transfer(id: &str, state: pb::transfer::State, done: u64, rate: u64) -> pb::Transfer {
    pb::Transfer {
        id: id.into(),
        name: "Lab Deep Space Documentary 2160p.mkv".into(),
        size: 64 << 20,
        state: state.into(),
        bytes_verified: done,
        rate_bytes_per_sec: rate,
        peers: 4,
        networks: vec!["ed2k".into(), "bittorrent".into()],
        ..Default::default()
    }
}

#[test]
fn transfers_table_at_80_and_160_columns() {
    use pb::transfer::State;
    let all = [
        transfer("00000000000000a1", State::Active, 16 << 20, 4 << 20),
        // Paused with a stale rate: neither rate nor ETA shows.
        transfer("00000000000000b2", State::Paused, 32 << 20, 4 << 20),
    ];
    let wide = transfers(&all, Some(160), Some(40)).join("\n");
    let want = "\
2 transfers, 1 active (Ctrl-C stops watching; transfers go on)
ID                NAME                                  STATE      DONE        RATE         ETA  PEERS        SIZE  NETWORKS
00000000000000a1  Lab Deep Space Documentary 2160p.mkv  active    25.0%   4.0 MiB/s      12.0 s      4    64.0 MiB  ed2k,bt
00000000000000b2  Lab Deep Space Documentary 2160p.mkv  paused    50.0%           -           -      4    64.0 MiB  ed2k,bt";
    assert_eq!(wide, want, "\n{wide}");
    let narrow = transfers(&all, Some(80), Some(40));
    assert!(narrow.iter().all(|l| columns(l) < 80), "{narrow:#?}");
    assert!(narrow[2].contains("Lab Deep Spa…  active"), "{narrow:#?}");
    // Under 120 columns, SIZE and NETWORKS give way to the name: 80 columns cannot hold a
    // 16-digit id, a readable name and every column.
    let got = narrow.join("\n");
    let want = "\
2 transfers, 1 active (Ctrl-C stops watching; transfers go on)
ID                NAME           STATE      DONE        RATE         ETA  PEERS
00000000000000a1  Lab Deep Spa…  active    25.0%   4.0 MiB/s      12.0 s      4
00000000000000b2  Lab Deep Spa…  paused    50.0%           -           -      4";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn a_finished_transfer_names_the_networks_it_came_from() {
    let mut done = transfer(
        "00000000000000c3",
        pb::transfer::State::Complete,
        64 << 20,
        0,
    );
    done.networks.clear();
    let part = |network: &str, verified: u64| pb::TransferNetwork {
        network: network.into(),
        bytes_verified: verified,
        ..Default::default()
    };
    done.per_network = vec![
        part("bittorrent", 40 << 20),
        part("ed2k", 24 << 20),
        part("gnutella", 0),
    ];
    let lines = transfers(&[done], Some(160), Some(40));
    assert!(
        lines[2].ends_with("complete 100.0%           -           -      4    64.0 MiB  bt,ed2k"),
        "{lines:#?}"
    );
}

#[test]
fn a_long_transfer_list_is_cut_to_the_screen() {
    use pb::transfer::State;
    let all: Vec<_> = (0..30)
        .map(|i| transfer(&format!("{i:016x}"), State::Queued, 0, 0))
        .collect();
    let lines = transfers(&all, Some(120), Some(10));
    assert_eq!(lines.len(), 9, "{lines:#?}");
    assert!(lines[8].starts_with("… and 24 more"), "{lines:#?}");
}

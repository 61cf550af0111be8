//! Internal types → the API's messages.

use junction_core::{Capabilities, ContentId, NetworkState, NetworkStatus};
use proto::v1 as pb;

use crate::search::{Item, Progress, ProgressState, SearchEvent};
use crate::share::ShareRecord;
use crate::transfer::{State, TransferInfo};

pub fn content(id: &ContentId) -> pb::ContentId {
    pb::ContentId {
        size: id.size.unwrap_or(0),
        urns: id.urns(),
    }
}

pub fn item(i: Item) -> pb::Item {
    pb::Item {
        id: i.id,
        name: i.name,
        size: i.size,
        content: Some(content(&i.content)),
        availability: i
            .availability
            .into_iter()
            .map(|a| pb::Availability {
                network: a.network.to_string(),
                sources: a.sources,
                complete_sources: a.complete_sources.unwrap_or(0),
            })
            .collect(),
        other_names: i.other_names,
        score: i.score,
        file_type: i.file_type.map(|t| t.name().to_owned()).unwrap_or_default(),
        links: i.links,
    }
}

fn progress(p: Progress) -> pb::NetworkProgress {
    use pb::network_progress::State as S;
    let state = match p.state {
        ProgressState::Started => S::Started,
        ProgressState::Partial => S::Partial,
        ProgressState::Done => S::Done,
        ProgressState::TimedOut => S::TimedOut,
        ProgressState::Failed => S::Failed,
        ProgressState::Unsupported => S::Unsupported,
    };
    pb::NetworkProgress {
        network: p.network.to_string(),
        state: state.into(),
        hits: p.hits,
        error: p.error.unwrap_or_default(),
        elapsed_ms: p.elapsed.as_millis() as u64,
        ignored_terms: p.ignored,
    }
}

pub fn search_event(ev: SearchEvent) -> pb::SearchEvent {
    use pb::search_event::Event;
    let event = match ev {
        SearchEvent::Item(i) => Event::Item(item(i)),
        SearchEvent::Update(i) => Event::Update(item(i)),
        SearchEvent::Progress(p) => Event::Progress(progress(p)),
        SearchEvent::Finished { items, elapsed } => Event::Finished(pb::Finished {
            items,
            elapsed_ms: elapsed.as_millis() as u64,
        }),
    };
    pb::SearchEvent { event: Some(event) }
}

pub fn transfer(t: TransferInfo) -> pb::Transfer {
    use pb::transfer::State as S;
    let state = match t.state {
        State::Queued => S::Queued,
        State::Active => S::Active,
        State::Paused => S::Paused,
        State::Complete => S::Complete,
        State::Failed => S::Failed,
        State::Cancelled => S::Cancelled,
    };
    pb::Transfer {
        id: t.id,
        name: t.name,
        size: t.size,
        content: Some(content(&t.content)),
        state: state.into(),
        bytes_written: t.bytes_written,
        bytes_verified: t.bytes_verified,
        bytes_redundant: t.bytes_redundant,
        rate_bytes_per_sec: t.rate,
        networks: t.networks,
        peers: t.peers,
        per_network: t
            .per_network
            .into_iter()
            .map(|n| pb::TransferNetwork {
                network: n.network,
                bytes_received: n.bytes_received,
                bytes_verified: n.bytes_verified,
                bytes_discarded: n.bytes_discarded,
                sources_dropped: n.sources_dropped,
                failed_checks: n.failed_checks,
                sources: n.sources,
                rate_bytes_per_sec: n.rate,
                state: n.state,
                note: n.note.unwrap_or_default(),
            })
            .collect(),
        error: t.error.unwrap_or_default(),
        notes: t.notes,
        files: t
            .files
            .into_iter()
            .map(|f| pb::TransferFile {
                path: f.path.to_string_lossy().into_owned(),
                size: f.size,
                bytes_verified: f.bytes_verified,
                wanted: f.wanted,
            })
            .collect(),
        path: t.path.to_string_lossy().into_owned(),
        verified: t
            .verified
            .iter()
            .map(|r| pb::ByteRange {
                start: r.start,
                end: r.end,
            })
            .collect(),
        created_unix_ms: t.created_ms,
    }
}

pub fn network(id: &str, s: NetworkStatus, caps: Capabilities) -> pb::Network {
    use pb::network::State as S;
    let state = match s.state {
        NetworkState::Online => S::Online,
        NetworkState::Degraded => S::Degraded,
        NetworkState::Offline => S::Offline,
    };
    let r = s.reachability;
    let inbound = match r.reachable {
        None => pb::network::Inbound::Unknown,
        Some(true) => pb::network::Inbound::Open,
        Some(false) => pb::network::Inbound::Firewalled,
    };
    pb::Network {
        id: id.to_owned(),
        state: state.into(),
        reachability: r.detail,
        inbound: inbound.into(),
        listening: r.listening.map(|a| a.to_string()).unwrap_or_default(),
        external_ip: r.external.map(|a| a.to_string()).unwrap_or_default(),
        peers: s.peers,
        servers: s.servers,
        dht_nodes: s.dht_nodes,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        last_error: s.last_error.unwrap_or_default(),
        details: s.details.into_iter().collect(),
        capabilities: Some(pb::Capabilities {
            keywords: caps.keywords,
            phrases: caps.phrases,
            any_of: caps.or,
            none_of: caps.not,
            size: caps.size,
            file_type: caps.file_type,
            extension: caps.extension,
            sources: caps.sources,
            content_ids: caps
                .ids
                .iter()
                .chain(&caps.search_ids)
                .map(|k| format!("urn:{k}"))
                .collect(),
        }),
        // Filled in from the share index by the caller.
        files_offered: 0,
        bytes_offered: 0,
    }
}

pub fn links(l: crate::links::Links) -> pb::Links {
    pb::Links {
        content: Some(content(&l.content)),
        name: l.name,
        ed2k: l.ed2k.unwrap_or_default(),
        magnet: l.magnet,
        torrent: l.torrent.unwrap_or_default(),
    }
}

pub fn shared(r: ShareRecord) -> pb::SharedFile {
    pb::SharedFile {
        content: Some(content(&r.content())),
        path: r.path.to_string_lossy().into_owned(),
        name: r.name,
        size: r.size,
        networks: r.networks,
        errors: r.errors,
    }
}

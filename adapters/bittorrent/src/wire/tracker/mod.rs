//! Tracker messages: HTTP announce/scrape (BEP 3, 7, 23, 48) and UDP (BEP 15).

pub mod http;
pub mod udp;

/// Announce event. The UDP codes are BEP 15's; HTTP sends the name, or nothing for `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Event {
    /// A regular re-announce.
    #[default]
    None,
    Completed,
    Started,
    Stopped,
}

impl Event {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Completed => Some("completed"),
            Event::Started => Some("started"),
            Event::Stopped => Some("stopped"),
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "" | "empty" => Some(Event::None),
            "completed" => Some(Event::Completed),
            "started" => Some(Event::Started),
            "stopped" => Some(Event::Stopped),
            _ => None,
        }
    }

    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    pub fn from_udp_code(code: u32) -> Option<Self> {
        [
            Event::None,
            Event::Completed,
            Event::Started,
            Event::Stopped,
        ]
        .into_iter()
        .find(|e| e.udp_code() == code)
    }
}

/// Swarm counts for one torrent from a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScrapeStats {
    /// Seeders (`complete`).
    pub complete: u32,
    /// Completed downloads so far (`downloaded`).
    pub downloaded: u32,
    /// Leechers (`incomplete`).
    pub incomplete: u32,
}

#[cfg(test)]
mod tests;

//! The `Network` trait every adapter implements, and its type-erased twin for the gateway.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::swarm::UnitHashes;
use crate::{ContentId, HashKind, Hit, NetworkError, Query, RangeSet, SinkError, Source};

/// A network's short, stable id: `ed2k`, `gnutella`, `bittorrent`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub &'static str);

impl NetworkId {
    pub const ED2K: NetworkId = NetworkId("ed2k");
    pub const GNUTELLA: NetworkId = NetworkId("gnutella");
    pub const BITTORRENT: NetworkId = NetworkId("bittorrent");

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Which query parts a network evaluates itself; the gateway filters the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub keywords: bool,
    pub phrases: bool,
    pub or: bool,
    pub not: bool,
    pub size: bool,
    pub file_type: bool,
    pub extension: bool,
    pub sources: bool,
    /// Hash kinds it can search by. It fetches by them too.
    pub ids: Vec<HashKind>,
    /// Hash kinds it can fetch by besides those in `ids` (eD2k fetches by its hash but
    /// cannot search by it). A peer a link names for one of them (`x.pe=` of a torrent's
    /// magnet, an ed2k link's sources; see [`crate::link::LinkTarget::peer_kinds`]) is one
    /// of this network's peers. The gateway routes links by this and names no network.
    pub fetch_ids: Vec<HashKind>,
    /// Hash kinds from which [`Network::identify`] learns what a link leaves out: the size,
    /// more hashes, the name and the files (BitTorrent: a torrent's metadata, from its
    /// swarm). Empty: it cannot.
    pub identify_ids: Vec<HashKind>,
    /// Hash kinds it can search by but not fetch by (BitTorrent's index knows a
    /// single-file torrent by the whole-file hashes its info dictionary gives, yet fetches
    /// only by info-hash).
    pub search_ids: Vec<HashKind>,
}

impl Capabilities {
    /// A network that evaluates every query part itself.
    pub fn all() -> Self {
        Capabilities {
            keywords: true,
            phrases: true,
            or: true,
            not: true,
            size: true,
            file_type: true,
            extension: true,
            sources: true,
            ids: HashKind::ALL.to_vec(),
            fetch_ids: Vec::new(),
            identify_ids: Vec::new(),
            search_ids: Vec::new(),
        }
    }

    /// Whether it can search by a hash of this kind (`ids` or `search_ids`).
    pub fn searches(&self, kind: HashKind) -> bool {
        self.ids.contains(&kind) || self.search_ids.contains(&kind)
    }

    /// Whether it can fetch a content by a hash of this kind (`ids` or `fetch_ids`).
    pub fn fetches(&self, kind: HashKind) -> bool {
        self.ids.contains(&kind) || self.fetch_ids.contains(&kind)
    }

    /// Whether [`Network::identify`] can learn about `id` from one of its hashes.
    pub fn identifies(&self, id: &ContentId) -> bool {
        self.identify_ids.iter().any(|&k| id.get(k).is_some())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkState {
    Online,
    Degraded,
    #[default]
    Offline,
}

/// How the network's peers reach this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reachability {
    /// Where peers connect to, when listening.
    pub listening: Option<SocketAddr>,
    /// Whether peers can connect in: `Some(false)` when only call-backs or pushes reach
    /// us (an eD2k LowID, a firewalled Gnutella servent); `None` while nobody said.
    pub reachable: Option<bool>,
    /// The address a server or peer saw us at (an eD2k HighID), when one said.
    pub external: Option<IpAddr>,
    /// The same in the network's own words, for people: "HighID 1.2.3.4", "LowID 1234",
    /// "firewalled".
    pub detail: String,
}

impl fmt::Display for Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// What `ListNetworks` shows for one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkStatus {
    pub state: NetworkState,
    pub reachability: Reachability,
    pub peers: u32,
    pub servers: u32,
    pub dht_nodes: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub last_error: Option<String>,
    /// Anything else worth showing, as label → value.
    pub details: Vec<(String, String)>,
}

impl NetworkStatus {
    /// A [`NetworkStatus::details`] label, once per tracker a network announces its shares
    /// to, so links out can name them (`tr=` in a magnet, a `.torrent`'s `announce`).
    pub const TRACKER: &'static str = "tracker";

    /// The trackers the details name.
    pub fn trackers(&self) -> impl Iterator<Item = &str> {
        self.details
            .iter()
            .filter(|(k, _)| k == Self::TRACKER)
            .map(|(_, v)| v.as_str())
    }
}

pub type HitStream = BoxStream<'static, Result<Hit, NetworkError>>;
pub type SourceStream = BoxStream<'static, Source>;
pub type FetchEvents = BoxStream<'static, FetchEvent>;

/// Asks a network to fetch one content into a sink ([`Network::fetch`]), or to learn what
/// its metadata says ([`Network::identify`]).
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub id: ContentId,
    pub name: String,
    /// The content's size, as the sink holds it; [`Network::identify`] ignores it.
    pub size: u64,
    /// Peers already known (from a hit or a link).
    pub sources: Vec<Source>,
    /// Trackers and other hints a link carried.
    pub trackers: Vec<String>,
    /// The `.torrent` bytes, when the transfer was started from one.
    pub torrent: Option<Bytes>,
}

/// Progress a network reports while it fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// How many peers it is exchanging data with now.
    Peers(u32),
    /// It learnt more hashes of the content (e.g. a torrent's metadata).
    Identified(ContentId),
    /// It learnt the content's name (a torrent's metadata).
    Named(String),
    /// The content is several files laid end to end (a multi-file torrent's metadata),
    /// saved as a folder of those files.
    Files(Vec<crate::layout::FileSpan>),
    /// Something the user should see, e.g. "queued at rank 12".
    Note(String),
    /// A torrent's info dict, as its swarm sent it (a magnet's metadata; its SHA-1 is the
    /// info-hash), so that the gateway can hand it back with later requests and the
    /// network need not fetch it again (after a restart, say).
    Metadata(Bytes),
}

/// Where a network writes the bytes it fetches. The gateway owns the file; the network
/// verifies in its own units (eD2k parts, BitTorrent pieces, whole-file SHA-1) and says so.
pub trait TransferSink: Send + Sync + 'static {
    fn size(&self) -> u64;
    /// Byte ranges not yet verified.
    fn wanted(&self) -> RangeSet;
    /// Where a reader waits, so ranges from there on come first.
    fn priority(&self) -> Option<u64>;
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError>;
    /// Reads back written bytes, e.g. to hash a finished part.
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError>;
    /// A range was checked: `ok` makes it verified; otherwise it is wanted again.
    fn verified(&self, range: Range<u64>, ok: bool);
    /// Ranges written but not yet verified, kept across restarts. A network that verifies
    /// only the whole file (Gnutella's SHA-1) fetches just the rest, then checks it all.
    fn written(&self) -> RangeSet {
        RangeSet::new()
    }
    /// Bytes never to be fetched (files left out; what lies outside the one file a
    /// torrent is fetched for): wanted, yet never handed out, so a network skips them
    /// without asking for each.
    fn skipped(&self) -> RangeSet {
        RangeSet::new()
    }
    /// Claims up to `max` bytes inside `within` for `source` (the network's own number
    /// for a peer) to fetch: bytes no network has and no other source is fetching, where a
    /// reader waits first. `None`: nothing here is free. A sink that does not share work
    /// hands out the first wanted bytes.
    fn claim(&self, _source: u64, within: Range<u64>, max: u64) -> Option<Range<u64>> {
        let mut free = self.wanted();
        free.remove(0..within.start);
        free.remove(within.end..u64::MAX);
        let from = self.priority().unwrap_or(within.start);
        let r = free.first_from(from).or_else(|| free.first_from(0))?;
        Some(r.start..r.end.min(r.start.saturating_add(max.max(1))))
    }
    /// [`TransferSink::claim`] inside any of the ranges of `within` (the parts a peer has):
    /// where a reader waits first, then the bytes fewest sources have.
    fn claim_in(&self, source: u64, within: &RangeSet, max: u64) -> Option<Range<u64>> {
        within.iter().find_map(|w| self.claim(source, w, max))
    }
    /// Which bytes `source` has (`None`: it left), so claims go to the rarest bytes first.
    fn availability(&self, _source: u64, _has: Option<RangeSet>) {}
    /// Claims all of `range` for `source`, or nothing (a BitTorrent piece is fetched whole).
    fn claim_whole(&self, _source: u64, _range: Range<u64>) -> bool {
        true
    }
    /// Gives back the part of a claim that was not fetched.
    fn release(&self, _source: u64, _range: Range<u64>) {}
    /// Writes bytes received from `source`; bytes it may not write (verified, being
    /// checked, claimed by another) are dropped and counted.
    fn write_from(&self, _source: u64, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write(offset, data)
    }
    /// Writes bytes the network hashed itself (a whole BitTorrent piece) and marks them
    /// verified in the same step, so no other write can come between.
    fn write_verified(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write(offset, data)?;
        self.verified(offset..offset + data.len() as u64, true);
        Ok(())
    }
    /// Hashes of fixed-size units of the content. Returns true when the sink checks every
    /// unit itself from then on, whoever wrote its bytes: the network then neither hashes
    /// nor calls `verified`, and learns of bad sources through `is_banned`.
    fn learn(&self, _hashes: UnitHashes) -> bool {
        false
    }
    /// `sources` together sent bytes that failed the network's own check (a BitTorrent
    /// piece): the sink strikes them as it strikes the writers of a unit that failed its
    /// checks (a sole sender is dropped at once, each of several after repeated failures)
    /// and returns those to drop now. A sink that keeps no strikes drops a sole sender.
    fn strike(&self, sources: &[u64]) -> Vec<u64> {
        match sources {
            [one] => vec![*one],
            _ => Vec::new(),
        }
    }
    /// A source whose bytes failed the sink's checks: drop it.
    fn is_banned(&self, _source: u64) -> bool {
        false
    }
    /// The network threw away `bytes` it received and checked itself (a BitTorrent piece
    /// that failed its hash), and dropped `source` for it if `dropped`, so the transfer's
    /// figures show it.
    fn discarded(&self, _source: u64, _bytes: u64, _dropped: bool) {}
}

/// A local file offered to the networks.
#[derive(Debug, Clone)]
pub struct SharedItem {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    /// Hashes already known (cached), so a network need not hash again.
    pub id: ContentId,
    /// Every hash of the file from one read (part hashes and pieces too), when the
    /// gateway has them: a network then reads nothing to share it.
    pub hashes: Option<std::sync::Arc<crate::hashing::FileHashes>>,
}

/// The contract every network adapter implements.
pub trait Network: Send + Sync + fmt::Debug + 'static {
    fn id(&self) -> NetworkId;
    fn capabilities(&self) -> Capabilities;
    fn status(&self) -> NetworkStatus;
    /// Hits stream back as they arrive; dropping the stream cancels the search.
    fn search(&self, q: Query) -> impl Future<Output = Result<HitStream, NetworkError>> + Send;
    /// Finds sources for a content id. `Unsupported` (the default) for a network that
    /// cannot look sources up apart from a search or a fetch.
    fn locate(
        &self,
        _id: ContentId,
    ) -> impl Future<Output = Result<SourceStream, NetworkError>> + Send {
        let id = self.id();
        async move {
            Err(NetworkError::Unsupported(format!(
                "{id} cannot look up sources by hash; search for the content instead"
            )))
        }
    }
    /// Fetches the wanted ranges of one content into the sink. The stream ends when the
    /// network has nothing more to do; dropping it stops the fetch. A fetch always fetches
    /// bytes; a size the caller does not know is learnt first with [`Network::identify`].
    fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> impl Future<Output = Result<FetchEvents, NetworkError>> + Send;
    /// Learns what a link leaves out, without fetching the content: its hashes with the
    /// size ([`FetchEvent::Identified`]), its name ([`FetchEvent::Named`]) and, when it is
    /// several files, those ([`FetchEvent::Files`], sent before the hashes); then the stream
    /// ends. For a magnet without `xl=`, BitTorrent fetches the torrent's metadata from its
    /// swarm. The gateway asks only networks whose [`Capabilities::identify_ids`] take one
    /// of the request's hashes; `Unsupported` (the default) elsewhere.
    fn identify(
        &self,
        _req: FetchRequest,
    ) -> impl Future<Output = Result<FetchEvents, NetworkError>> + Send {
        let id = self.id();
        async move {
            Err(NetworkError::Unsupported(format!(
                "{id} cannot learn a content's size or name from its hashes; give them with the link (xl=, dn=)"
            )))
        }
    }
    /// Offers a local file to this network's peers; returns the hashes it computed.
    /// `Unsupported` (the default) for a network that only fetches.
    fn share(
        &self,
        _item: SharedItem,
    ) -> impl Future<Output = Result<ContentId, NetworkError>> + Send {
        let id = self.id();
        async move {
            Err(NetworkError::Unsupported(format!(
                "{id} does not offer files to its peers"
            )))
        }
    }
    /// Adds a server, host, tracker or DHT node to talk to. `Unsupported` (the default)
    /// for a network that finds its peers by itself.
    fn add_endpoint(
        &self,
        _address: String,
    ) -> impl Future<Output = Result<(), NetworkError>> + Send {
        let id = self.id();
        async move {
            Err(NetworkError::Unsupported(format!(
                "{id} takes no endpoints; it finds its peers by itself"
            )))
        }
    }
    /// Stops talking to an endpoint added before. `Unsupported` (the default) when the
    /// running network cannot let go of one; the message says what happens instead.
    fn remove_endpoint(
        &self,
        _address: String,
    ) -> impl Future<Output = Result<(), NetworkError>> + Send {
        let id = self.id();
        async move {
            Err(NetworkError::Unsupported(format!(
                "{id} cannot drop an endpoint while it runs; it is used until the gateway restarts"
            )))
        }
    }
    /// Withdraws a shared file (named by the hashes its `share` returned). `Unsupported`
    /// (the default) when the network cannot withdraw an offer while it runs.
    fn unshare(&self, _id: ContentId) -> impl Future<Output = Result<(), NetworkError>> + Send {
        let id = self.id();
        async move {
            Err(NetworkError::Unsupported(format!(
                "{id} cannot withdraw an offer while it runs; it is offered until the gateway restarts"
            )))
        }
    }
    /// Gives the network the gateway's bridge, for the legacy clients it serves.
    fn attach_bridge(&self, _bridge: Arc<dyn crate::Bridge>) {}
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}

/// [`Network`] with boxed futures, so the gateway can keep `Arc<dyn DynNetwork>`.
pub trait DynNetwork: Send + Sync + fmt::Debug + 'static {
    fn id(&self) -> NetworkId;
    fn capabilities(&self) -> Capabilities;
    fn status(&self) -> NetworkStatus;
    fn search(&self, q: Query) -> BoxFuture<'_, Result<HitStream, NetworkError>>;
    fn locate(&self, id: ContentId) -> BoxFuture<'_, Result<SourceStream, NetworkError>>;
    fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> BoxFuture<'_, Result<FetchEvents, NetworkError>>;
    fn identify(&self, req: FetchRequest) -> BoxFuture<'_, Result<FetchEvents, NetworkError>>;
    fn share(&self, item: SharedItem) -> BoxFuture<'_, Result<ContentId, NetworkError>>;
    fn add_endpoint(&self, address: String) -> BoxFuture<'_, Result<(), NetworkError>>;
    fn remove_endpoint(&self, address: String) -> BoxFuture<'_, Result<(), NetworkError>>;
    fn unshare(&self, id: ContentId) -> BoxFuture<'_, Result<(), NetworkError>>;
    fn attach_bridge(&self, bridge: Arc<dyn crate::Bridge>);
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

impl<N: Network> DynNetwork for N {
    fn id(&self) -> NetworkId {
        Network::id(self)
    }
    fn capabilities(&self) -> Capabilities {
        Network::capabilities(self)
    }
    fn status(&self) -> NetworkStatus {
        Network::status(self)
    }
    fn search(&self, q: Query) -> BoxFuture<'_, Result<HitStream, NetworkError>> {
        Box::pin(Network::search(self, q))
    }
    fn locate(&self, id: ContentId) -> BoxFuture<'_, Result<SourceStream, NetworkError>> {
        Box::pin(Network::locate(self, id))
    }
    fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> BoxFuture<'_, Result<FetchEvents, NetworkError>> {
        Box::pin(Network::fetch(self, req, sink))
    }
    fn identify(&self, req: FetchRequest) -> BoxFuture<'_, Result<FetchEvents, NetworkError>> {
        Box::pin(Network::identify(self, req))
    }
    fn share(&self, item: SharedItem) -> BoxFuture<'_, Result<ContentId, NetworkError>> {
        Box::pin(Network::share(self, item))
    }
    fn add_endpoint(&self, address: String) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(Network::add_endpoint(self, address))
    }
    fn remove_endpoint(&self, address: String) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(Network::remove_endpoint(self, address))
    }
    fn unshare(&self, id: ContentId) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(Network::unshare(self, id))
    }
    fn attach_bridge(&self, bridge: Arc<dyn crate::Bridge>) {
        Network::attach_bridge(self, bridge)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(Network::shutdown(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network that fetches by SHA-1 and learns nothing from hashes: the defaults.
    #[derive(Debug)]
    struct Plain;

    impl Network for Plain {
        fn id(&self) -> NetworkId {
            NetworkId("plain")
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                ids: vec![HashKind::Sha1],
                fetch_ids: vec![HashKind::Ed2k],
                ..Capabilities::default()
            }
        }
        fn status(&self) -> NetworkStatus {
            NetworkStatus::default()
        }
        async fn search(&self, _q: Query) -> Result<HitStream, NetworkError> {
            unreachable!()
        }
        async fn fetch(
            &self,
            _req: FetchRequest,
            _sink: Arc<dyn TransferSink>,
        ) -> Result<FetchEvents, NetworkError> {
            unreachable!()
        }
        async fn shutdown(&self) {}
    }

    /// A network needs only search, fetch and status; the rest say they are unsupported.
    #[tokio::test]
    async fn locate_share_and_endpoints_are_unsupported_by_default() {
        let net: Arc<dyn DynNetwork> = Arc::new(Plain);
        let unsupported = |r: Result<(), NetworkError>, what: &str| match r {
            Err(NetworkError::Unsupported(why)) => assert!(why.starts_with("plain"), "{why}"),
            other => panic!("{what}: {other:?}"),
        };
        let id = ContentId::new(None).with(HashKind::Sha1, &[7; 20]);
        unsupported(net.locate(id.clone()).await.map(|_| ()), "locate");
        let item = SharedItem {
            path: PathBuf::from("f"),
            name: "f".into(),
            size: 1,
            id: id.clone(),
            hashes: None,
        };
        unsupported(net.share(item).await.map(|_| ()), "share");
        unsupported(net.add_endpoint("h:1".into()).await, "add_endpoint");
        unsupported(net.remove_endpoint("h:1".into()).await, "remove_endpoint");
        unsupported(net.unshare(id).await, "unshare");
    }

    #[tokio::test]
    async fn identify_is_unsupported_unless_a_network_says_it_can() {
        let net: Arc<dyn DynNetwork> = Arc::new(Plain);
        let caps = net.capabilities();
        let id = ContentId::new(None).with(HashKind::Btih, &[7; 20]);
        assert!(!caps.identifies(&id));
        assert!(caps.fetches(HashKind::Sha1) && caps.fetches(HashKind::Ed2k));
        assert!(!caps.fetches(HashKind::Btih));
        let req = FetchRequest {
            id,
            name: String::new(),
            size: 0,
            sources: Vec::new(),
            trackers: Vec::new(),
            torrent: None,
        };
        match net.identify(req).await {
            Err(NetworkError::Unsupported(why)) => assert!(why.contains("xl="), "{why}"),
            Err(e) => panic!("not Unsupported: {e}"),
            Ok(_) => panic!("a network that cannot identify answered"),
        }
    }
}

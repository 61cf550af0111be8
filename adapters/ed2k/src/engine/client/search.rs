//! Query AST → eD2k search expression, and search results → hits.

use futures::StreamExt;
use junction_core::query::Cmp;
use junction_core::{
    Capabilities, ContentId, Expr, HashKind, Hit, HitStream, NetworkError, NetworkId, Query, Source,
};
use tokio::sync::mpsc;

use super::{Shared, server_session};

use crate::wire::file_info;
use crate::wire::link::FileLink;
use crate::wire::server::{FileEntry, offer_magic};
use crate::wire::tag::ft;
use crate::wire::{Comparison, SearchExpr, TagName, TagsExt, WireString};

/// What an eD2k server evaluates: keywords (not phrase adjacency), AND/OR/NOT, size, type,
/// extension and availability. No hash search, but a fetch by ed2k hash.
pub fn capabilities() -> Capabilities {
    Capabilities {
        keywords: true,
        phrases: false,
        or: true,
        not: true,
        size: true,
        file_type: true,
        extension: true,
        sources: true,
        ids: Vec::new(),
        fetch_ids: vec![HashKind::Ed2k],
        identify_ids: Vec::new(),
        search_ids: Vec::new(),
    }
}

/// Why a query cannot be sent to an eD2k server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("eD2k cannot search by content id")]
    ContentId,
    #[error("an eD2k search needs at least one keyword or positive term")]
    NoPositiveTerm,
}

/// Translates a query into the server's expression tree. Negations become the binary
/// `A NOT B`; a NOT without anything positive beside it is dropped when it sits inside an AND
/// with other terms, and is an error on its own. Phrases are sent as keywords (servers AND the
/// words), so the gateway checks adjacency.
pub fn to_search_expr(e: &Expr) -> Result<SearchExpr, QueryError> {
    match e {
        Expr::Word(w) | Expr::Phrase(w) => Ok(SearchExpr::keywords(w.as_str())),
        Expr::Size(c, n) => Ok(numeric(ft::FILESIZE, *c, *n)),
        Expr::Sources(c, n) => Ok(numeric(ft::SOURCES, *c, u64::from(*n))),
        Expr::Type(t) => Ok(SearchExpr::MetaString {
            value: WireString::from(file_info::search_type(*t)),
            tag: TagName::Id(ft::FILETYPE),
        }),
        Expr::Ext(x) => Ok(SearchExpr::MetaString {
            value: WireString::from(x.trim_start_matches('.').to_ascii_lowercase()),
            tag: TagName::Id(ft::FILEFORMAT),
        }),
        Expr::Id(_) => Err(QueryError::ContentId),
        Expr::Not(_) => Err(QueryError::NoPositiveTerm),
        Expr::Or(xs) => {
            let mut it = xs.iter().map(to_search_expr);
            let first = it.next().ok_or(QueryError::NoPositiveTerm)??;
            it.try_fold(first, |acc, x| Ok(SearchExpr::or(acc, x?)))
        }
        Expr::And(xs) => {
            let mut pos = Vec::new();
            let mut neg = Vec::new();
            for x in xs {
                match x {
                    Expr::Not(inner) => neg.push(to_search_expr(inner)?),
                    other => pos.push(to_search_expr(other)?),
                }
            }
            let mut it = pos.into_iter();
            let first = it.next().ok_or(QueryError::NoPositiveTerm)?;
            let p = it.fold(first, SearchExpr::and);
            let mut nit = neg.into_iter();
            Ok(match nit.next() {
                None => p,
                Some(n0) => SearchExpr::not(p, nit.fold(n0, SearchExpr::or)),
            })
        }
    }
}

/// eMule writes `>= v` as `> v-1` and `<= v` as `< v+1`, which every server understands.
fn numeric(tag: u8, c: Cmp, n: u64) -> SearchExpr {
    let (op, value) = match c {
        Cmp::Gt => (Comparison::Greater, n),
        Cmp::Ge if n > 0 => (Comparison::Greater, n - 1),
        Cmp::Ge => (Comparison::GreaterOrEqual, 0),
        Cmp::Lt => (Comparison::Less, n),
        Cmp::Le => (Comparison::Less, n.saturating_add(1)),
    };
    SearchExpr::Numeric {
        value,
        op,
        tag: TagName::Id(tag),
    }
}

/// How a peer is reached: at `ip:port` for a HighID, by callback for a LowID.
pub fn source_address(id: crate::wire::ClientId, port: u16) -> junction_core::PeerAddr {
    if id.is_low_id() {
        junction_core::PeerAddr::LowId(id.0)
    } else {
        std::net::SocketAddr::from((id.to_ipv4(), port)).into()
    }
}

/// A search result as a hit; `None` for entries without a name or size.
pub fn hit_from_entry(f: &FileEntry) -> Option<Hit> {
    let name = f.name()?.to_string();
    let size = f.size()?;
    if name.trim().is_empty() || size == 0 || size > crate::wire::hash::MAX_FILE_SIZE {
        return None;
    }
    let id = ContentId::new(Some(size)).with(HashKind::Ed2k, &f.hash);
    let mut hit = Hit::new(NetworkId::ED2K, id, name.clone(), size);
    hit.sources = f
        .tags
        .u64_of(ft::SOURCES)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    hit.complete_sources = f
        .tags
        .u64_of(ft::COMPLETE_SOURCES)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let magic = matches!(
        f.client_id.0,
        offer_magic::COMPLETE_ID | offer_magic::PARTIAL_ID
    );
    if !magic && !f.client_id.is_low_id() && f.port != 0 {
        hit.locations.push(Source {
            network: NetworkId::ED2K,
            address: source_address(f.client_id, f.port),
            detail: None,
        });
    }
    hit.link = Some(FileLink::new(name, size, f.hash).to_string());
    Some(hit)
}

/// Hits buffered per search.
const SEARCH_BUFFER: usize = 256;

/// Sends a search to the server session and streams its hits as the result batches come.
pub(crate) async fn start(s: &Shared, q: Query) -> Result<HitStream, NetworkError> {
    let expr = to_search_expr(&q.expr).map_err(|e| NetworkError::Unsupported(e.to_string()))?;
    if s.id().0 == 0 {
        return Err(NetworkError::Unreachable(
            "not logged into an eD2k server".into(),
        ));
    }
    let (tx, rx) = mpsc::channel(16);
    s.server_session
        .send(server_session::Cmd::Search { expr, results: tx })
        .await
        .map_err(|_| NetworkError::Shutdown)?;
    let (htx, hrx) = mpsc::channel(SEARCH_BUFFER);
    let span = tracing::debug_span!("ed2k_search");
    junction_core::task::spawn(span, s.cancel.clone(), async move {
        let mut rx = rx;
        while let Some(batch) = rx.recv().await {
            for f in &batch {
                if let Some(h) = hit_from_entry(f)
                    && htx.send(Ok(h)).await.is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(hrx).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::query::{FileType, parse};

    fn expr(q: &str) -> Result<SearchExpr, QueryError> {
        to_search_expr(&parse(q).unwrap().expr)
    }

    #[test]
    fn translation() {
        let kw = |s: &str| SearchExpr::keywords(s);
        assert_eq!(expr("bunny").unwrap(), kw("bunny"));
        let e = expr("bunny -song size>1MB").unwrap();
        match e {
            SearchExpr::Not(a, b) => {
                assert_eq!(*b, kw("song"));
                assert!(matches!(*a, SearchExpr::And(..)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(expr("a OR b").unwrap(), SearchExpr::Or(..)));
        assert_eq!(
            to_search_expr(&Expr::Not(Box::new(Expr::Word("x".into())))),
            Err(QueryError::NoPositiveTerm)
        );
        assert_eq!(
            to_search_expr(&Expr::Type(FileType::Archive)).unwrap(),
            SearchExpr::MetaString {
                value: "Pro".into(),
                tag: TagName::Id(ft::FILETYPE)
            }
        );
        assert_eq!(
            to_search_expr(&Expr::Size(Cmp::Ge, 100)).unwrap(),
            SearchExpr::Numeric {
                value: 99,
                op: Comparison::Greater,
                tag: TagName::Id(ft::FILESIZE)
            }
        );
        assert_eq!(
            to_search_expr(&Expr::Id(ContentId::new(None))),
            Err(QueryError::ContentId)
        );
        // Every translated query encodes.
        for q in [
            "a b",
            "\"x y\" ext:mkv",
            "a (b OR c) -d type:video sources>=2 size<2GiB",
        ] {
            let mut out = Vec::new();
            expr(q).unwrap().encode(&mut out).unwrap();
            assert_eq!(SearchExpr::decode(&mut &out[..]).unwrap(), expr(q).unwrap());
        }
    }

    #[test]
    fn hits() {
        let f = FileEntry {
            hash: [7; 16],
            client_id: crate::wire::ClientId::from_ipv4([10, 0, 0, 1].into()),
            port: 4662,
            tags: {
                let mut t = file_info::file_tags("a b.mkv", 1234);
                t.push(file_info::count_tag(ft::SOURCES, 3));
                t
            },
        };
        let h = hit_from_entry(&f).unwrap();
        assert_eq!(h.size, 1234);
        assert_eq!(h.sources, 3);
        assert_eq!(h.locations[0].address.to_string(), "10.0.0.1:4662");
        assert!(h.link.unwrap().starts_with("ed2k://|file|a%20b.mkv|1234|"));
        let mut g = f.clone();
        g.tags.clear();
        assert!(hit_from_entry(&g).is_none());
    }
}

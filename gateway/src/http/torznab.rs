//! `/torznab/api`: a Torznab indexer over the gateway's merged search, for Sonarr, Radarr
//! and Prowlarr (`t=caps`, `search`, `tvsearch`, `movie`).
//!
//! Every item carries an info-hash, since the apps track a download by the one in its
//! magnet: a torrent's own, or for eD2k- and Gnutella-only content a synthetic one
//! ([`super::synthetic_btih`]) next to the real `xt`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use junction_core::query::FileType;
use junction_core::{ContentId, Identity, link};

use super::known::KnownItem;
use super::{AppState, HttpError, query_pairs};
use crate::search::{Item, SearchEvent, SearchParams};

/// Items per answer at most, and by default (the apps page with `offset`).
const MAX_LIMIT: usize = 100;
/// Longest query accepted, in characters.
const MAX_QUERY: usize = 256;

/// Torznab's category families, from the file type.
const MOVIES: u32 = 2000;
const AUDIO: u32 = 3000;
const TV: u32 = 5000;
const BOOKS: u32 = 7000;
const OTHER: u32 = 8000;

pub(super) async fn api(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: HashMap<String, String> = query_pairs(query.as_deref().unwrap_or("")).collect();
    let result = match params.get("t").map(String::as_str) {
        Some("caps") => Ok(caps()),
        Some("search" | "tvsearch" | "movie" | "music" | "book") => {
            search(&s, &headers, &params).await
        }
        Some(other) => Err(TorznabError::new(
            202,
            format!(
                "no such function t={other:?}; this indexer has caps, search, tvsearch and movie"
            ),
            StatusCode::BAD_REQUEST,
        )),
        None => Err(TorznabError::new(
            200,
            "missing parameter t (caps, search, tvsearch or movie)".into(),
            StatusCode::BAD_REQUEST,
        )),
    };
    match result {
        Ok(xml) => xml_response(StatusCode::OK, xml),
        Err(e) => e.into_response(),
    }
}

/// Feeds are RSS; caps and errors are plain XML documents.
fn xml_type(body: &str) -> &'static str {
    if body.contains("<rss") {
        "application/rss+xml; charset=utf-8"
    } else {
        "application/xml; charset=utf-8"
    }
}

fn caps() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<caps>
  <server version="{version}" title="Junction" strapline="eD2k, Gnutella and BitTorrent in one search"/>
  <limits max="{MAX_LIMIT}" default="{MAX_LIMIT}"/>
  <searching>
    <search available="yes" supportedParams="q"/>
    <tv-search available="yes" supportedParams="q,season,ep"/>
    <movie-search available="yes" supportedParams="q"/>
    <music-search available="no" supportedParams="q"/>
    <audio-search available="no" supportedParams="q"/>
    <book-search available="no" supportedParams="q"/>
  </searching>
  <categories>
    <category id="{MOVIES}" name="Movies"/>
    <category id="{AUDIO}" name="Audio"/>
    <category id="{TV}" name="TV"/>
    <category id="{BOOKS}" name="Books"/>
    <category id="{OTHER}" name="Other"/>
  </categories>
</caps>
"#
    )
}

async fn search(
    s: &AppState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<String, TorznabError> {
    let number = |key: &str| -> Result<Option<u32>, TorznabError> {
        match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                TorznabError::new(
                    201,
                    format!("{key}={v:?} is not a number"),
                    StatusCode::BAD_REQUEST,
                )
            }),
        }
    };
    let season = number("season")?;
    let episode = number("ep")?;
    let limit = number("limit")?.map_or(MAX_LIMIT, |l| (l as usize).clamp(1, MAX_LIMIT));
    let offset = number("offset")?.unwrap_or(0) as usize;
    let cats: Vec<u32> = params
        .get("cat")
        .map(|c| {
            c.split(',')
                .filter_map(|x| x.trim().parse::<u32>().ok())
                .map(|x| x - x % 1000)
                .collect()
        })
        .unwrap_or_default();
    let words = query_words(params.get("q").map_or("", String::as_str));
    if words.chars().count() > MAX_QUERY {
        return Err(TorznabError::new(
            201,
            format!("q is longer than {MAX_QUERY} characters"),
            StatusCode::BAD_REQUEST,
        ));
    }
    let items: Vec<KnownItem> = if words.is_empty() {
        // The apps' RSS probe and feed: what the gateway has seen lately, whatever its
        // category, so a new indexer passes the apps' test.
        recent(s)
    } else {
        let timeout = Duration::from_secs(s.gw.config.search_timeout_secs);
        search_items(s, &words, timeout)
            .await
            .map_err(TorznabError::from)?
            .into_iter()
            .filter_map(|i| s.known.remember(i))
            .filter(|k| cats.is_empty() || cats.contains(&category(&k.item.name)))
            .collect()
    };
    let nothing_yet = words.is_empty() && items.is_empty() && offset == 0;
    let items = items
        .into_iter()
        .filter(|k| matches_episode(&k.item.name, season, episode))
        .skip(offset)
        .take(limit);
    let mut out = feed(s, headers, items);
    if nothing_yet {
        let at = out.len() - FEED_END.len();
        out.insert_str(at, &placeholder_xml(&cats));
    }
    Ok(out)
}

/// The info-hash of the placeholder item: "Junction is ready..." in ASCII.
const PLACEHOLDER_BTIH: &str = "4a756e6374696f6e2069732072656164792e2e2e";

/// What an empty feed shows on a gateway that has seen nothing yet: Sonarr, Radarr and
/// Prowlarr refuse an indexer whose RSS probe returns no item ("Query successful, but no
/// results…"). Its title says what it is and parses as no release, so no app grabs it; in
/// the categories the app asked for, or "other".
fn placeholder_xml(cats: &[u32]) -> String {
    let cats = match cats.is_empty() {
        true => vec![OTHER],
        false => cats.to_vec(),
    };
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let magnet = xml(&format!(
        "magnet:?xt=urn:btih:{PLACEHOLDER_BTIH}&dn=Junction+is+ready+-+search+to+fill+this+feed"
    ));
    let mut out = format!(
        r#"<item>
  <title>Junction is ready - search or download to fill this feed</title>
  <guid isPermaLink="false">junction-ready</guid>
  <link>{magnet}</link>
  <pubDate>{date}</pubDate>
  <size>1</size>
  <category>{}</category>
  <enclosure url="{magnet}" length="1" type="application/x-bittorrent"/>
"#,
        cats[0]
    );
    for c in cats {
        let _ = writeln!(out, r#"  <torznab:attr name="category" value="{c}"/>"#);
    }
    let _ = write!(
        out,
        r#"  <torznab:attr name="size" value="1"/>
  <torznab:attr name="seeders" value="0"/>
  <torznab:attr name="peers" value="0"/>
  <torznab:attr name="infohash" value="{PLACEHOLDER_BTIH}"/>
  <torznab:attr name="magneturl" value="{magnet}"/>
</item>
"#
    );
    out
}

/// Runs a merged search to its end (or `timeout` and a little) and returns the items,
/// best first.
pub(super) async fn search_items(
    s: &AppState,
    query: &str,
    timeout: Duration,
) -> Result<Vec<Item>, HttpError> {
    let mut rx = s.gw.hub.start(SearchParams {
        query: query.to_owned(),
        timeout: Some(timeout),
        max_items: Some(MAX_LIMIT as u32 * 2),
        ..Default::default()
    })?;
    // The hub ends every network at the deadline; the margin covers its last merge.
    let deadline = Instant::now() + timeout + Duration::from_secs(2);
    let mut items: Vec<Item> = Vec::new();
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            () = tokio::time::sleep_until(deadline.into()) => None,
            () = s.stop.cancelled() => None,
        };
        match ev {
            Some(SearchEvent::Item(i) | SearchEvent::Update(i)) => {
                match items.iter_mut().find(|o| o.id == i.id) {
                    Some(o) => *o = i,
                    None => items.push(i),
                }
            }
            Some(SearchEvent::Progress(_)) => {}
            Some(SearchEvent::Finished { .. }) | None => break,
        }
    }
    items.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(items)
}

/// Items for an empty query: recent results, then transfers, then shared files.
fn recent(s: &AppState) -> Vec<KnownItem> {
    let mut out = s.known.recent(MAX_LIMIT);
    let local = s
        .gw
        .transfers
        .list()
        .into_iter()
        .map(|t| (t.id, t.name, t.size, t.content))
        .chain(
            s.gw.shares
                .list()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| {
                    let id = ContentId::from_urns(Some(r.size), r.urns.iter().map(String::as_str));
                    Some((r.path.display().to_string(), r.name, r.size, id.ok()?))
                }),
        );
    for (id, name, size, content) in local {
        if out.len() >= MAX_LIMIT {
            break;
        }
        let item = Item {
            id,
            file_type: FileType::of_name(&name),
            name,
            size,
            content,
            availability: vec![],
            other_names: vec![],
            score: 0.0,
            links: vec![],
            sources: vec![],
        };
        // A finished download is both a transfer and a share, each knowing other hashes of
        // it (so other synthetic info-hashes): one item.
        if out
            .iter()
            .any(|o| o.item.content.relation(&item.content) == Identity::Same)
        {
            continue;
        }
        if let Some(k) = s.known.remember(item)
            && !out.iter().any(|o| o.btih == k.btih)
        {
            out.push(k);
        }
    }
    out
}

/// The words of an app's query, as plain lowercase words: titles carry characters the
/// gateway's query language reads as operators (`-`, quotes, parentheses, `OR`, `size>`).
pub(super) fn query_words(q: &str) -> String {
    let cleaned: String = q
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The category family of a file, from its type (a video with an episode tag is TV).
pub(super) fn category(name: &str) -> u32 {
    match FileType::of_name(name) {
        Some(FileType::Video) if !episode_tags(name).is_empty() => TV,
        Some(FileType::Video) => MOVIES,
        Some(FileType::Audio) => AUDIO,
        Some(FileType::Doc) => BOOKS,
        _ => OTHER,
    }
}

/// Whether a name is of the season and episode asked for (either may be absent).
pub(super) fn matches_episode(name: &str, season: Option<u32>, episode: Option<u32>) -> bool {
    if season.is_none() && episode.is_none() {
        return true;
    }
    episode_tags(name).iter().any(|&(s, e)| {
        season.is_none_or(|want| want == s) && episode.is_none_or(|want| e == Some(want))
    })
}

/// The `S01E02`, `S01` and `1x02` tags in a name, as (season, episode).
pub(super) fn episode_tags(name: &str) -> Vec<(u32, Option<u32>)> {
    let b = name.to_ascii_lowercase().into_bytes();
    let digits = |mut i: usize| -> (Option<u32>, usize) {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 4 {
            i += 1;
        }
        let n = std::str::from_utf8(&b[start..i])
            .ok()
            .and_then(|t| t.parse().ok());
        (n, i)
    };
    let mut out = Vec::new();
    for i in 0..b.len() {
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let tag = if b[i] == b's' {
            let (season, j) = digits(i + 1);
            match (season, b.get(j)) {
                (Some(s), Some(b'e')) => {
                    let (ep, k) = digits(j + 1);
                    ep.filter(|_| !b.get(k).is_some_and(u8::is_ascii_alphanumeric))
                        .map(|e| (s, Some(e)))
                }
                (Some(s), next) if !next.is_some_and(u8::is_ascii_alphanumeric) => Some((s, None)),
                _ => None,
            }
        } else if b[i].is_ascii_digit() {
            let (season, j) = digits(i);
            match (season, b.get(j)) {
                (Some(s), Some(b'x')) => {
                    let (ep, k) = digits(j + 1);
                    ep.filter(|_| {
                        k - (j + 1) >= 2 && !b.get(k).is_some_and(u8::is_ascii_alphanumeric)
                    })
                    .map(|e| (s, Some(e)))
                }
                _ => None,
            }
        } else {
            None
        };
        out.extend(tag);
    }
    out
}

/// The RSS feed of items.
fn feed(s: &AppState, headers: &HeaderMap, items: impl Iterator<Item = KnownItem>) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = if s.gw.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:torznab="http://torznab.com/schemas/2015/feed">
<channel>
<title>Junction</title>
<description>eD2k, Gnutella and BitTorrent through one gateway</description>
<link>{}</link>
"#,
        xml(&format!("{scheme}://{host}/"))
    );
    for k in items {
        item_xml(&mut out, &k);
    }
    out.push_str(FEED_END);
    out
}

const FEED_END: &str = "</channel>\n</rss>\n";

fn item_xml(out: &mut String, k: &KnownItem) {
    let i = &k.item;
    let trackers: Vec<String> = i
        .links
        .iter()
        .filter(|l| l.starts_with("magnet:"))
        .filter_map(|l| link::parse_link(l).ok())
        .flat_map(|t| t.trackers)
        .collect();
    let magnet = link::magnet(&i.name, &k.content_with_btih(), &trackers);
    let btih = hex::encode(k.btih);
    let peers: u32 = i.availability.iter().map(|a| a.sources).sum();
    let seeders: u32 = i
        .availability
        .iter()
        .map(|a| a.complete_sources.unwrap_or(a.sources))
        .sum();
    let cat = category(&i.name);
    let (name, magnet) = (xml(&i.name), xml(&magnet));
    let date = httpdate::fmt_http_date(k.first_seen);
    let size = i.size;
    let _ = write!(
        out,
        r#"<item>
  <title>{name}</title>
  <guid isPermaLink="false">junction-{btih}</guid>
  <link>{magnet}</link>
  <pubDate>{date}</pubDate>
  <size>{size}</size>
  <category>{cat}</category>
  <enclosure url="{magnet}" length="{size}" type="application/x-bittorrent"/>
  <torznab:attr name="category" value="{cat}"/>
  <torznab:attr name="size" value="{size}"/>
  <torznab:attr name="seeders" value="{seeders}"/>
  <torznab:attr name="peers" value="{peers}"/>
  <torznab:attr name="infohash" value="{btih}"/>
  <torznab:attr name="magneturl" value="{magnet}"/>
</item>
"#
    );
}

/// Escapes text for XML content and attribute values.
pub(super) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters, U+FFFE and U+FFFF are not allowed in XML 1.0: a name
            // from a network that holds one would make the whole feed unreadable.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, xml_type(&body))], body).into_response()
}

/// Torznab's `<error code description/>`, with an HTTP status beside it.
#[derive(Debug)]
struct TorznabError {
    code: u16,
    description: String,
    status: StatusCode,
}

impl TorznabError {
    fn new(code: u16, description: String, status: StatusCode) -> Self {
        TorznabError {
            code,
            description,
            status,
        }
    }
}

impl From<HttpError> for TorznabError {
    fn from(e: HttpError) -> Self {
        let status = e.status();
        // 100: incorrect user credentials; 201: incorrect parameter; 900: unknown error.
        let code = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => 100,
            s if s.is_client_error() => 201,
            _ => 900,
        };
        TorznabError::new(code, e.to_string(), status)
    }
}

impl IntoResponse for TorznabError {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error code=\"{}\" description=\"{}\"/>\n",
            self.code,
            xml(&self.description)
        );
        xml_response(self.status, body)
    }
}

/// An auth refusal in Torznab's form.
pub(super) fn error_response(e: HttpError) -> Response {
    TorznabError::from(e).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episode_tags_in_release_names() {
        assert_eq!(episode_tags("Show.Name.S01E02.720p.mkv"), [(1, Some(2))]);
        assert_eq!(episode_tags("show name 3x07 hdtv.avi"), [(3, Some(7))]);
        assert_eq!(episode_tags("Show S02 Complete.mkv"), [(2, None)]);
        assert!(episode_tags("Sunrise 1080p.mkv").is_empty());
        assert!(episode_tags("x264.mkv").is_empty());
        assert!(matches_episode("a.S01E02.mkv", Some(1), Some(2)));
        assert!(!matches_episode("a.S01E03.mkv", Some(1), Some(2)));
        assert!(matches_episode("a.S01E03.mkv", Some(1), None));
        assert!(matches_episode("anything.mkv", None, None));
    }

    #[test]
    fn categories_from_file_types() {
        assert_eq!(category("Film (2020).mkv"), MOVIES);
        assert_eq!(category("Show.S01E01.mp4"), TV);
        assert_eq!(category("album.flac"), AUDIO);
        assert_eq!(category("novel.epub"), BOOKS);
        assert_eq!(category("tool.exe"), OTHER);
    }

    #[test]
    fn app_queries_become_plain_words() {
        assert_eq!(
            query_words("Marvel's Agents (2013) -x OR"),
            "marvel s agents 2013 x or"
        );
        assert_eq!(query_words("  "), "");
        assert_eq!(xml("a<&\"'>\u{1}b"), "a&lt;&amp;&quot;&apos;&gt;b");
        assert_eq!(xml("a\u{FFFE}b\u{FFFF}c\u{FFFD}"), "abc\u{FFFD}");
    }
}

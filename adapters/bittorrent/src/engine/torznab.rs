//! A Torznab client (the search API Jackett and Prowlarr expose): `t=search&q=…` over HTTP,
//! each feed's answer read by [`crate::wire::torznab`].

use std::time::Duration;

use futures::{Stream, StreamExt};
use junction_core::{Hit, NetworkError};
use tracing::debug;

use super::http;
use crate::wire::percent;
pub use crate::wire::torznab::{Item, MAX_ITEMS, TorznabError, parse};

/// Searches one feed. `feed` is the indexer's API URL, usually with `apikey=…`.
pub async fn search(
    feed: &str,
    terms: &str,
    deadline: Duration,
) -> Result<Vec<Item>, TorznabError> {
    let sep = if feed.contains('?') { '&' } else { '?' };
    let url = format!(
        "{feed}{sep}t=search&q={}",
        percent::encode(terms.as_bytes())
    );
    let body = http::get(&url, deadline, None).await?;
    let text = String::from_utf8_lossy(&body);
    parse(&text)
}

/// Searches every feed for `terms`, four at a time; each feed's hits arrive as it answers,
/// and a feed that fails gives one `Unreachable` error in their place.
pub fn search_feeds(
    feeds: Vec<String>,
    terms: String,
    deadline: Duration,
) -> impl Stream<Item = Result<Hit, NetworkError>> + Send + 'static {
    futures::stream::iter(feeds)
        .map(move |feed| {
            let terms = terms.clone();
            async move {
                match search(&feed, &terms, deadline).await {
                    Ok(items) => items
                        .iter()
                        .filter_map(Item::to_hit)
                        .map(Ok)
                        .collect::<Vec<_>>(),
                    Err(e) => {
                        debug!(%feed, error = %e, "torznab search failed");
                        vec![Err(NetworkError::Unreachable(format!("torznab feed: {e}")))]
                    }
                }
            }
        })
        .buffer_unordered(4)
        .flat_map(futures::stream::iter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::torznab::tests::FIXTURE;

    #[tokio::test]
    async fn searches_a_loopback_fixture_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let target = http::read_request_target(&mut s, Duration::from_secs(5))
                .await
                .unwrap();
            http::respond(&mut s, "200 OK", "application/rss+xml", FIXTURE.as_bytes()).await;
            target
        });
        let feed = format!("http://{addr}/api?apikey=k");
        let items = search(&feed, "debian 12", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(items.len(), 3);
        let target = server.await.unwrap();
        assert_eq!(target, "/api?apikey=k&t=search&q=debian%2012");
    }
}

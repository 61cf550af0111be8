//! The servent on 127.0.0.1: routing between three Junction servents, a
//! search and a verified download, a replayed gtk-gnutella leaf, and Byes on
//! malformed input; when a search is done; hosts removed while running; push proxies.

mod common;
mod net;

#[path = "servent/download.rs"]
mod download;
#[path = "servent/endpoints.rs"]
mod endpoints;
#[path = "servent/limits.rs"]
mod limits;
#[path = "servent/links.rs"]
mod links;
#[path = "servent/push_proxy.rs"]
mod push_proxy;
#[path = "servent/routing.rs"]
mod routing;
#[path = "servent/search_done.rs"]
mod search_done;
#[path = "servent/sources.rs"]
mod sources;
#[path = "servent/uploads.rs"]
mod uploads;

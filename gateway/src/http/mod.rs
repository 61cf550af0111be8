//! The HTTP fronts beside the gRPC API, on a port of their own: streaming for media players
//! (`/content/{id}`), a Torznab indexer (`/torznab/api`) and a qBittorrent-compatible
//! download client (`/api/v2/`) for Sonarr, Radarr and Prowlarr.
//!
//! The security rules are the API's: loopback by default, anywhere else only with the
//! gateway's token (`Authorization: Bearer TOKEN`, or `apikey=TOKEN` in the query, which is
//! how Torznab clients and players that cannot set headers send it), and TLS with the same
//! certificate.

mod content;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod known;
pub mod metrics;
mod qbit;
mod server;
mod torznab;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use error::HttpError;
pub use known::{Known, synthetic_btih};
pub use server::serve;

use crate::Gateway;

/// The `[http]` section of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether `junction serve` starts the HTTP fronts.
    pub enabled: bool,
    /// Where they listen. Loopback by default; anything else needs `gateway.token`.
    #[serde(deserialize_with = "crate::config::listen_addr")]
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 4480)),
        }
    }
}

impl HttpConfig {
    /// The API's rule: nothing but loopback without a token.
    pub fn validate(&self, gateway: &crate::GatewayConfig) -> Result<(), String> {
        if self.enabled && !self.listen.ip().is_loopback() && !has_token(gateway) {
            return Err(format!(
                "refusing to serve HTTP on {} without a token: anyone who reaches it could \
                 download through this host. Set gateway.token (or --token / JUNCTION_TOKEN), \
                 or set http.listen to 127.0.0.1",
                self.listen
            ));
        }
        Ok(())
    }
}

fn has_token(gateway: &crate::GatewayConfig) -> bool {
    gateway.token.as_deref().is_some_and(|t| !t.is_empty())
}

/// What every handler shares.
#[derive(Clone, Debug)]
struct AppState {
    gw: Gateway,
    /// Items the fronts have handed out, by info-hash (real or synthetic).
    known: Arc<Known>,
    /// Cancelled when the server stops, so endless bodies end and connections can close.
    stop: CancellationToken,
    /// The qBittorrent front's logged-in sessions, categories and per-transfer records.
    sessions: Arc<qbit::Sessions>,
    book: Arc<qbit::book::Book>,
}

fn router(state: AppState) -> Router {
    let token = state.gw.config.token.clone().filter(|t| !t.is_empty());
    Router::new()
        .route("/content/{id}", get(content::get))
        .route("/torznab/api", get(torznab::api))
        .route("/torznab/api/", get(torznab::api))
        .route("/api/v2/{*method}", any(qbit::api))
        .route("/metrics", get(metrics::get))
        .fallback(|| async {
            HttpError::NotFound(
                "no such page; the fronts are /content/{id}, /content/{id}.m3u, /torznab/api, the qBittorrent API under /api/v2/ and /metrics"
                    .into(),
            )
        })
        .layer(middleware::from_fn_with_state(token, authorize))
        // Outside the token check, so refused calls are counted too.
        .layer(middleware::from_fn(metrics::count_calls))
        .with_state(state)
}

/// Refuses a request without the gateway's token, when one is set: 401 when none was sent,
/// 403 when a wrong one was. Torznab clients get the answer in Torznab's error form.
async fn authorize(State(token): State<Option<String>>, req: Request, next: Next) -> Response {
    let Some(expected) = token else {
        return next.run(req).await;
    };
    // The qBittorrent front has its own login (a cookie), and answers 403 as qBittorrent
    // does, which is what tells the apps to log in.
    if req.uri().path().starts_with("/api/v2/") {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let key = bearer.or_else(|| query_param(req.uri().query().unwrap_or(""), "apikey"));
    let refused = match key {
        Some(k) if crate::api::constant_time_eq(k.as_bytes(), expected.as_bytes()) => None,
        Some(_) => Some(HttpError::Forbidden(
            "the token is wrong (send the gateway's token as `Authorization: Bearer TOKEN` or apikey=TOKEN)".into(),
        )),
        None => Some(HttpError::Unauthorized(
            "this gateway needs its token: send `Authorization: Bearer TOKEN`, or apikey=TOKEN in the query".into(),
        )),
    };
    match refused {
        None => next.run(req).await,
        Some(e) if req.uri().path().starts_with("/torznab") => torznab::error_response(e),
        Some(e) => axum::response::IntoResponse::into_response(e),
    }
}

/// The decoded value of one query parameter (`+` is a space, as forms write it).
fn query_param(query: &str, name: &str) -> Option<String> {
    query_pairs(query).find(|(k, _)| k == name).map(|(_, v)| v)
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| junction_core::link::percent_decode(&s.replace('+', " "));
        (decode(k), decode(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        let q = "t=search&q=big+buck%20bunny&apikey=a%2Bb&empty=";
        assert_eq!(query_param(q, "q").as_deref(), Some("big buck bunny"));
        assert_eq!(query_param(q, "apikey").as_deref(), Some("a+b"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "none"), None);
    }

    #[test]
    fn off_loopback_needs_a_token() {
        let mut gw = crate::GatewayConfig::default();
        let http = HttpConfig {
            listen: "0.0.0.0:4480".parse().unwrap(),
            ..Default::default()
        };
        assert!(http.validate(&gw).is_err());
        gw.token = Some("t".into());
        assert!(http.validate(&gw).is_ok());
        assert!(
            HttpConfig::default()
                .validate(&crate::GatewayConfig::default())
                .is_ok()
        );
    }
}

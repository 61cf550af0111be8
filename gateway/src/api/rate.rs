//! Request rates on the gRPC API and the HTTP fronts, per remote IP: the config's
//! `requests_per_sec`, sustained, after a burst of `requests_burst` (at most
//! `max_tracked_ips` addresses remembered; see [`IpRates`]). A request over it is answered
//! at once and reaches no handler: HTTP 429 Too Many Requests with `Retry-After`, or gRPC
//! `RESOURCE_EXHAUSTED`. The connection stays open, so a client that slows down goes on.
//! The connection limits (`incoming`) bound how many connections an address holds; this
//! bounds what it asks through them. The host's own addresses are not limited, as there.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use junction_core::limit::{IpRates, PeerLimits};
use tonic::codegen::{Service, http};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::incoming::own_host;

/// The per-IP request buckets of one server; clones share them.
#[derive(Debug, Clone)]
pub(crate) struct Rates(Option<Arc<Mutex<IpRates>>>);

impl Rates {
    pub(crate) fn new(limits: &PeerLimits) -> Self {
        let on = limits.requests_per_sec > 0 && limits.requests_burst > 0;
        Self(on.then(|| Arc::new(Mutex::new(limits.ip_rates()))))
    }

    /// Counts one request from `ip`; false when it is over the rate.
    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        match &self.0 {
            Some(r) if !own_host(ip) => r.lock().unwrap_or_else(PoisonError::into_inner).allow(ip),
            _ => true,
        }
    }
}

/// What a refused request is told, on either front.
const SLOW_DOWN: &str = "too many requests from this address; slow down and try again in a second";

/// What a refused request is answered with.
type Refusal<B> = fn() -> http::Response<B>;

/// The gRPC answer: `RESOURCE_EXHAUSTED`, trailers only.
fn grpc_refusal<B: Default>() -> http::Response<B> {
    tonic::Status::resource_exhausted(SLOW_DOWN).into_http()
}

/// The HTTP answer: 429 with `Retry-After`.
fn http_refusal() -> http::Response<axum::body::Body> {
    let mut r = http::Response::new(axum::body::Body::from(format!("{SLOW_DOWN}\n")));
    *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    let h = r.headers_mut();
    h.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Adds [`Rated`] around the gRPC server's routes; the address comes from each request's
/// connection info, which tonic adds outside the layers.
#[derive(Debug, Clone)]
pub(crate) struct RateLayer(pub(crate) Rates);

impl<S> tower_layer::Layer<S> for RateLayer {
    type Service = Rated<S, tonic::body::Body>;

    fn layer(&self, inner: S) -> Self::Service {
        Rated {
            inner,
            rates: self.0.clone(),
            peer: None,
            refuse: grpc_refusal,
        }
    }
}

/// A service whose requests count against their address's rate.
#[derive(Debug)]
pub(crate) struct Rated<S, B> {
    inner: S,
    rates: Rates,
    /// The connection's address, when the service serves one connection (HTTP fronts).
    peer: Option<IpAddr>,
    refuse: Refusal<B>,
}

// By hand: a derive would ask for `B: Clone`, which response bodies are not.
impl<S: Clone, B> Clone for Rated<S, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            rates: self.rates.clone(),
            peer: self.peer,
            refuse: self.refuse,
        }
    }
}

/// One HTTP front connection from `peer`.
pub(crate) fn http_connection(
    inner: axum::Router,
    rates: Rates,
    peer: IpAddr,
) -> Rated<axum::Router, axum::body::Body> {
    Rated {
        inner,
        rates,
        peer: Some(peer),
        refuse: http_refusal,
    }
}

/// The remote address of a gRPC request, plain or TLS.
fn request_peer<T>(req: &http::Request<T>) -> Option<IpAddr> {
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|t| t.get_ref().remote_addr())
        })
        .map(|a| a.ip())
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, B> Service<http::Request<ReqBody>> for Rated<S, B>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let peer = self.peer.or_else(|| request_peer(&req));
        if let Some(ip) = peer
            && !self.rates.allow(ip)
        {
            tracing::debug!(%ip, path = req.uri().path(), "request over the rate refused");
            let refused = (self.refuse)();
            return Box::pin(async move { Ok(refused) });
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_burst_is_refused_and_the_host_never_is() {
        let limits = PeerLimits {
            requests_per_sec: 1,
            requests_burst: 3,
            ..PeerLimits::default()
        };
        let rates = Rates::new(&limits);
        let far: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        let answers: Vec<bool> = (0..5).map(|_| rates.allow(far)).collect();
        assert_eq!(answers, [true, true, true, false, false]);
        assert!(rates.allow(other), "another address pays for the first");
        let host: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..100).all(|_| rates.allow(host)));
        let unlimited = Rates::new(&PeerLimits::unlimited());
        assert!((0..100).all(|_| unlimited.allow(far)));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let r = http_refusal();
        assert_eq!(r.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "1");
        let g: http::Response<tonic::body::Body> = grpc_refusal();
        assert_eq!(g.headers()["grpc-status"], "8");
    }
}

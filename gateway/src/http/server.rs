//! The accept loop: HTTP/1.1 and HTTP/2 through hyper, over TLS when the gateway has a
//! certificate, with a bounded graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::{AppState, Known, has_token, qbit, router};
use crate::Gateway;
use crate::api::incoming::accept;
use crate::api::rate::{self, Rated};
use crate::error::{GatewayError, Result};

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// Open connections get this long to finish their responses when the server stops.
const DRAIN_TIME: Duration = Duration::from_secs(5);
/// An HTTP/2 connection is pinged after this long without a frame, and closed when the
/// ping is not answered within as long again.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Serves the HTTP fronts on `listener` until `shutdown` resolves, each remote IP within
/// the config's per-IP limits. Refuses a listener off
/// loopback when the gateway has no token, as the gRPC API's config check does.
pub async fn serve(
    gw: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && !has_token(&gw.config) {
        return Err(GatewayError::Invalid(format!(
            "refusing to serve HTTP on {addr} without a token; set gateway.token or listen on 127.0.0.1"
        )));
    }
    let tls = tls_acceptor(&gw.config)?;
    let limiter = junction_core::limit::ConnLimiter::new(gw.config.limits.clone());
    let rates = rate::Rates::new(&gw.config.limits);
    let first_byte = gw.config.first_byte_timeout;
    let max_age = gw.config.max_connection_age;
    let stop = gw.closing.child_token();
    let book = Arc::new(qbit::book::Book::open(gw.transfers.store())?);
    let follower = tokio::spawn(super::metrics::follow(gw.clone(), stop.clone()));
    let app = router(AppState {
        gw,
        known: Arc::new(Known::default()),
        stop: stop.clone(),
        sessions: Arc::new(qbit::Sessions::default()),
        book,
    });
    // Without a timer hyper enforces no time limit at all. Every request head (the first,
    // and the next one on a kept-alive HTTP/1 connection, so also its idle time) must be
    // in within the first-byte timeout: a client dribbling its head a byte at a time is
    // closed, where the first-byte timer ends at its first byte. The first request, on
    // HTTP/2 as well (whose preface and settings could be dribbled the same way), must
    // reach the router within that time too: see `serve_one`.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let head_time = (!first_byte.is_zero()).then_some(first_byte);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(head_time);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Over its per-IP limits, an address is closed at once; Nagle is off, so small
        // responses (headers, XML) leave at once.
        let tcp = tokio::select! {
            c = accept(&listener, &limiter, first_byte, 1) => c,
            () = &mut shutdown => break,
            () = stop.cancelled() => break,
        };
        let peer = tcp.peer();
        let svc = TowerToHyperService::new(rate::http_connection(app.clone(), rates.clone(), peer));
        let builder = builder.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let io = TokioIo::new(stream);
                            serve_one(&builder, io, svc, head_time, max_age, &stop).await
                        }
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
                None => {
                    let io = TokioIo::new(tcp);
                    serve_one(&builder, io, svc, head_time, max_age, &stop).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
    stop.cancel();
    let _ = follower.await;
    connections.close();
    if tokio::time::timeout(DRAIN_TIME, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the drain time; leaving them");
    }
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one connection until it ends or the server stops. A connection whose first
/// request has not reached the router within `first_request` is closed: hyper's header
/// timeout covers HTTP/1 heads, but not the protocol sniffing of the first bytes nor an
/// HTTP/2 handshake. One older than `max_age` is asked to close gracefully (see
/// `GatewayConfig::max_connection_age`).
async fn serve_one<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: TowerToHyperService<Rated<axum::Router, axum::body::Body>>,
    first_request: Option<Duration>,
    max_age: Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), BoxError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let asked = Arc::new(AtomicBool::new(false));
    let svc = Asked {
        inner: svc,
        asked: asked.clone(),
    };
    let mut conn = std::pin::pin!(builder.serve_connection(io, svc));
    let mut first = std::pin::pin!(tokio::time::sleep(first_request.unwrap_or_default()));
    let mut waiting = first_request.is_some();
    let mut old = std::pin::pin!(tokio::time::sleep(max_age));
    let ages = !max_age.is_zero();
    // Asked to close for its age already (then the server's stop only waits).
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            () = old.as_mut(), if ages && !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = first.as_mut(), if waiting => {
                if !asked.load(Ordering::Relaxed) {
                    return Err("no request within the header timeout".into());
                }
                waiting = false;
            }
            () = stop.cancelled() => {
                if !closing {
                    conn.as_mut().graceful_shutdown();
                }
                return match tokio::time::timeout(DRAIN_TIME, conn).await {
                    Ok(r) => r,
                    Err(_) => Ok(()),
                };
            }
        }
    }
}

/// A connection's service, noting that a request came.
#[derive(Clone)]
struct Asked<S> {
    inner: S,
    asked: Arc<AtomicBool>,
}

impl<S, R> hyper::service::Service<R> for Asked<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.call(req)
    }
}

/// The gRPC API's certificate and key, for the same TLS on HTTP.
fn tls_acceptor(cfg: &crate::GatewayConfig) -> Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        GatewayError::Invalid(format!("TLS for HTTP: {what}: {e}"))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&cert.display().to_string(), &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&key.display().to_string(), &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

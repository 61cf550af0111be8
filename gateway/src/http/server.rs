//! The accept loop: HTTP/1.1 and HTTP/2 through hyper, over TLS when the gateway has a
//! certificate, with a bounded graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
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
use crate::error::{GatewayError, Result};

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// Open connections get this long to finish their responses when the server stops.
const DRAIN_TIME: Duration = Duration::from_secs(5);

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
    let first_byte = gw.config.first_byte_timeout;
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
    let builder = auto::Builder::new(TokioExecutor::new());
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Over its per-IP limits, an address is closed at once; Nagle is off, so small
        // responses (headers, XML) leave at once.
        let tcp = tokio::select! {
            c = accept(&listener, &limiter, first_byte) => c,
            () = &mut shutdown => break,
            () = stop.cancelled() => break,
        };
        let peer = tcp.peer();
        let svc = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_one(&builder, TokioIo::new(stream), svc, &stop).await
                        }
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
                None => serve_one(&builder, TokioIo::new(tcp), svc, &stop).await,
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

async fn serve_one<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: TowerToHyperService<axum::Router>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), BoxError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut conn = std::pin::pin!(builder.serve_connection(io, svc));
    tokio::select! {
        r = conn.as_mut() => r,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN_TIME, conn).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
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

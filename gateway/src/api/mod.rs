//! The gRPC edge: the Gateway service, health, reflection, auth and TLS.

mod auth;
mod calls;
mod convert;
pub(crate) mod incoming;
pub(crate) mod rate;
mod service;
mod status;

use std::future::Future;
use std::time::Duration;

use junction_core::NetworkState;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

pub use auth::Auth;
pub(crate) use auth::constant_time_eq;
pub use service::Service;
pub(crate) use service::{spec_from_item, spec_from_link};
pub(crate) use status::code as status_code;

use crate::Gateway;
use crate::error::{GatewayError, Result};

/// The health service name of the gateway itself; each network reports under its id.
pub const GATEWAY_SERVICE: &str = "junction.v1.Gateway";

/// Serves the API on `listener` until `shutdown` resolves, each remote IP within the
/// config's per-IP limits.
pub async fn serve(
    gw: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let cfg = gw.config.clone();
    let auth = Auth::new(cfg.token.as_deref());
    let check = move |req| auth.check(req);

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(GATEWAY_SERVICE, ServingStatus::Serving)
        .await;
    health.set_service_status("", ServingStatus::Serving).await;
    let health_task = tokio::spawn(report_health(gw.clone(), health));

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| GatewayError::Store(format!("reflection: {e}")))?;
    // The official Python client (grpcio-reflection) and other older clients speak only
    // v1alpha; the service is the same.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| GatewayError::Store(format!("reflection: {e}")))?;

    // Every call counted for /metrics, refused ones included: the layer sits outside the
    // services and their token check.
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_connection_age(cfg.max_connection_age)
        .layer(calls::CountLayer)
        .layer(rate::RateLayer(rate::Rates::new(&cfg.limits)));
    if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
        let identity = Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| GatewayError::Invalid(format!("TLS: {e}")))?;
    }
    let closing = gw.closing.clone();
    let limiter = junction_core::limit::ConnLimiter::new(cfg.limits.clone());
    let gateway = proto::v1::gateway_server::GatewayServer::new(Service { gw })
        .max_decoding_message_size(32 * 1024 * 1024);
    builder
        .add_service(InterceptedService::new(gateway, check.clone()))
        .add_service(InterceptedService::new(health_service, check.clone()))
        .add_service(InterceptedService::new(reflection_v1, check.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, check))
        // No Nagle (set by `incoming`): a search streams many small frames, each of which
        // should leave at once (with Nagle on, the second waits ~40 ms for the client's
        // delayed ACK).
        .serve_with_incoming_shutdown(
            incoming::incoming(listener, limiter, cfg.first_byte_timeout),
            async move {
                shutdown.await;
                // Graceful shutdown waits for open streams; end the endless ones.
                closing.cancel();
            },
        )
        .await
        .map_err(|e| GatewayError::Io(std::io::Error::other(e)))?;
    health_task.abort();
    let _ = health_task.await;
    Ok(())
}

/// Keeps one health entry per network in step with its status.
async fn report_health(gw: Gateway, health: tonic_health::server::HealthReporter) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        for net in gw.networks.iter() {
            let status = match net.status().state {
                NetworkState::Online | NetworkState::Degraded => ServingStatus::Serving,
                NetworkState::Offline => ServingStatus::NotServing,
            };
            health.set_service_status(net.id().as_str(), status).await;
        }
    }
}

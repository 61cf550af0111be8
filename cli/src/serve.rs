//! `junction serve`: the gateway process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use gateway::Gateway;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

#[derive(clap::Args)]
#[command(next_help_heading = "Server options")]
pub struct Args {
    /// TOML config file; without it the embedded defaults apply.
    #[arg(long, env = "JUNCTION_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the gRPC API (default 127.0.0.1:4470).
    #[arg(long, value_parser = crate::config::listen_arg)]
    listen: Option<SocketAddr>,
    /// Address of the HTTP fronts: streaming and Torznab (default 127.0.0.1:4480).
    #[arg(long, value_parser = crate::config::listen_arg)]
    http: Option<SocketAddr>,
    /// Where transfers and the database live (default ./junction-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The bearer token every API call must carry; required to listen beyond loopback.
    #[arg(long, env = "JUNCTION_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// `token` is the global `--token`, as in `junction --token T serve`; `serve --token T`
/// comes in `args`.
pub async fn run(args: Args, token: Option<String>) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(crate::term::log_colour())
        .init();
    let cfg = configure(args, token)?;
    crate::datadir::prepare(&cfg.gateway.data_dir)?;
    let (listener, http_listener) = bind(&cfg).await?;
    let addr = listener.local_addr()?;
    let started = networks::start_all(&cfg.networks).await?;
    let gw = Gateway::open(cfg.gateway.clone(), started.dyn_networks()).await?;
    share_configured(&gw, &started).await;
    let scheme = if cfg.gateway.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, data_dir = %cfg.gateway.data_dir.display(), "gateway listening");
    let signalled = crate::term::stop_signal();
    eprintln!("junction: gRPC API on {scheme}://{addr} (Ctrl-C stops)");
    let kept = gw.endpoints.list().unwrap_or_default();
    let kept: Vec<&str> = kept.iter().map(|e| e.network.as_str()).collect();
    for line in crate::startup::summary(&cfg, &kept) {
        eprintln!("{line}");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let http = match http_listener {
        Some(l) => {
            let http_addr = l.local_addr()?;
            eprintln!(
                "junction: HTTP on {scheme}://{http_addr}: /content/ID for players, /torznab/api for Sonarr/Radarr/Prowlarr"
            );
            let until = async {
                let _ = stopped.await;
            };
            Some(tokio::spawn(gateway::http::serve(gw.clone(), l, until)))
        }
        None => None,
    };
    let served = gateway::api::serve(gw.clone(), listener, signalled).await;
    let _ = stop.send(());
    if let Some(h) = http {
        match h.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP fronts stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "the HTTP fronts' task failed"),
            Ok(Ok(())) => {}
        }
    }
    served?;
    gw.shutdown().await;
    drop(started.tracker);
    Ok(())
}

/// The config file with the command line's settings over it, checked.
fn configure(args: Args, token: Option<String>) -> Result<Config> {
    let mut cfg = Config::load(args.config.as_deref())?;
    if let Some(l) = args.listen {
        cfg.gateway.listen = l;
    }
    if let Some(h) = args.http {
        cfg.http.listen = h;
    }
    if let Some(d) = args.data_dir {
        cfg.gateway.data_dir = d;
    }
    if let Some(t) = args.token.or(token) {
        cfg.gateway.token = Some(t);
    }
    cfg.gateway.validate().map_err(anyhow::Error::msg)?;
    // The gRPC API and the HTTP fronts take the same per-IP limits as the networks' ports.
    cfg.gateway.limits = cfg.networks.limits.peer_limits()?;
    cfg.http
        .validate(&cfg.gateway)
        .map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// The gRPC API's listener and, when enabled, the HTTP fronts'; bound before any network
/// starts, so a port in use stops the start with a message that says which.
async fn bind(cfg: &Config) -> Result<(tokio::net::TcpListener, Option<tokio::net::TcpListener>)> {
    let listener = tokio::net::TcpListener::bind(cfg.gateway.listen)
        .await
        .with_context(|| {
            format!(
                "cannot serve the gRPC API on {} (choose another with --listen ADDR or \
                 [gateway] listen)",
                cfg.gateway.listen
            )
        })?;
    let http_listener = match cfg.http.enabled {
        true => Some(
            tokio::net::TcpListener::bind(cfg.http.listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot serve HTTP on {} (choose another with --http ADDR or [http] \
                         listen, or turn it off with [http] enabled = false)",
                        cfg.http.listen
                    )
                })?,
        ),
        false => None,
    };
    Ok((listener, http_listener))
}

/// Shares the folders each network's config lists, on that network only.
async fn share_configured(gw: &Gateway, started: &networks::Started) {
    for (net, dirs) in &started.networks {
        for dir in dirs {
            let only = [net.id().to_string()];
            match gw.shares.share(dir, &only).await {
                Ok(files) => {
                    tracing::info!(network = %net.id(), dir = %dir.display(), files = files.len(), "sharing")
                }
                Err(e) => {
                    tracing::warn!(network = %net.id(), dir = %dir.display(), error = %e, "cannot share")
                }
            }
        }
    }
}

//! `junction lab`: the loopback world with a gateway attached, for trying Junction without
//! P2P connectivity.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
#[command(next_help_heading = "Server options")]
pub struct Args {
    /// The sample content is generated from this seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Address of the gateway's gRPC API; without it 127.0.0.1:4470, or a free port if
    /// that one is taken.
    #[arg(long, value_parser = crate::config::listen_arg)]
    listen: Option<SocketAddr>,
    /// Address of the HTTP fronts (streaming, Torznab); without it 127.0.0.1:4480, or a
    /// free port if that one is taken.
    #[arg(long, value_parser = crate::config::listen_arg)]
    http: Option<SocketAddr>,
    /// Where the sample files and the gateway's data go (default: a temporary directory,
    /// deleted on exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Size of the large sample file, in MiB.
    #[arg(long, default_value_t = 128)]
    large_mib: u64,
    /// Upload limit of every seeder on all three networks (eD2k, Gnutella, BitTorrent),
    /// each capped separately, in MiB/s, so progress is visible (0: none).
    #[arg(long, default_value_t = 8)]
    seed_rate_mib: u64,
}

pub async fn run(args: Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(crate::term::log_colour())
        .init();
    let temporary = args.data_dir.is_none();
    let dir = args.data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("junction-lab-{}", std::process::id()))
    });
    let mut cfg = lab::LabConfig::new(&dir);
    cfg.seed = args.seed;
    cfg.large_size = args.large_mib.max(1) * 1024 * 1024;
    cfg.seed_rate_limit =
        (args.seed_rate_mib > 0).then(|| args.seed_rate_mib.saturating_mul(1024 * 1024));
    let listen = args.listen.unwrap_or_else(|| usual_or_free(4470));
    // Bound now and held: a port only found free here could be taken by another lab while
    // this one generates its files (two labs started together: one died on "address in use").
    let http = match args.http {
        Some(a) => tokio::net::TcpListener::bind(a)
            .await
            .with_context(|| format!("cannot serve HTTP on {a} (--http)"))?,
        None => match tokio::net::TcpListener::bind(("127.0.0.1", 4480)).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("cannot serve HTTP on any port of 127.0.0.1")?,
        },
    };
    eprintln!(
        "junction lab: generating sample files in {} and starting the peers…",
        dir.display()
    );
    let lab = lab::Lab::start(&cfg, listen)
        .await
        .with_context(|| format!("starting the lab (gateway on {listen})"))?;
    // The lab's gateway has no token, so the HTTP fronts stay on loopback like its API.
    let http_addr = http.local_addr()?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http_task = tokio::spawn(gateway::http::serve(lab.gateway.clone(), http, async {
        let _ = http_stopped.await;
    }));
    let stop = crate::term::stop_signal();
    // A reader that left (`junction lab | head -1`) stops the lab as Ctrl-C does, quietly,
    // so its temporary directory is removed all the same.
    if banner(&lab, http_addr, &dir).is_ok() {
        tokio::select! {
            () = stop => {}
            () = crate::term::stdout_closed() => {}
        }
    }
    eprintln!("junction lab: stopping…");
    let _ = stop_http.send(());
    match http_task.await {
        Ok(Err(e)) => eprintln!("junction lab: the HTTP fronts stopped: {e}"),
        Err(e) => eprintln!("junction lab: the HTTP fronts' task failed: {e}"),
        Ok(Ok(())) => {}
    }
    lab.shutdown().await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// What the lab runs and commands that work against it, on stdout.
fn banner(lab: &lab::Lab, http_addr: SocketAddr, dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    writeln!(o, "Junction lab is running (Ctrl-C stops it).")?;
    writeln!(o, "  gateway gRPC API: http://{}", lab.addr)?;
    writeln!(
        o,
        "  HTTP fronts:      http://{http_addr} (/content/ID for players, /torznab/api for Sonarr/Radarr/Prowlarr)"
    )?;
    writeln!(o, "  sample files:     {}", dir.join("world").display())?;
    writeln!(
        o,
        "  eD2k: index server + 2 peers; Gnutella: ultrapeer + 2 leaves; BitTorrent: tracker {} + DHT node + 2 seeders",
        lab.world.tracker_url()
    )?;
    writeln!(o, "Try:")?;
    for c in lab.example_commands() {
        writeln!(o, "  {c}")?;
    }
    if let Some(m) = lab
        .world
        .files
        .iter()
        .find(|f| f.large)
        .and_then(|f| f.magnet(lab.world.tracker_url()))
    {
        let id = junction_core::link::percent_encode(&m);
        writeln!(o, "  mpv 'http://{http_addr}/content/{id}'")?;
    }
    writeln!(o, "  curl 'http://{http_addr}/torznab/api?t=search&q=lab'")?;
    o.flush()
}

/// 127.0.0.1 on the usual port, or any free port when that one is taken (a `junction
/// serve` or another lab may hold it).
fn usual_or_free(port: u16) -> SocketAddr {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

//! `junction lab`: the loopback world with a gateway attached, for trying Junction without
//! P2P connectivity.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct Args {
    /// The sample content is generated from this seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Address of the gateway's gRPC API; without it 127.0.0.1:4470, or a free port if
    /// that one is taken.
    #[arg(long)]
    listen: Option<SocketAddr>,
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
    let listen = match args.listen {
        Some(l) => l,
        None => match std::net::TcpListener::bind("127.0.0.1:4470") {
            Ok(l) => l.local_addr()?,
            Err(_) => "127.0.0.1:0".parse()?,
        },
    };
    eprintln!(
        "junction lab: generating sample files in {} and starting the peers…",
        dir.display()
    );
    let lab = lab::Lab::start(&cfg, listen)
        .await
        .with_context(|| format!("starting the lab (gateway on {listen})"))?;
    println!("Junction lab is running (Ctrl-C stops it).");
    println!("  gateway gRPC API: http://{}", lab.addr);
    println!("  sample files:     {}", dir.join("world").display());
    println!(
        "  eD2k: index server + 2 peers; Gnutella: ultrapeer + 2 leaves; BitTorrent: tracker {} + DHT node + 2 seeders",
        lab.world.tracker_url()
    );
    println!("Try:");
    for c in lab.example_commands() {
        println!("  {c}");
    }
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("junction lab: stopping…");
    lab.shutdown().await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

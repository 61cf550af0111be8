//! Junction's whole-process benchmarks (issue 6); prints one table of figures vs goals.
//!
//! `cargo run --release -p junction-bench --bin harness -- [options]`
//!
//!   --only LIST      comma-separated parts: merge,first,download,swarm,hashing,read,rss
//!                    (default: all)
//!   --dl-mib N       size of the file downloaded through each network (default 256)
//!   --swarm-mib N    size of the file on all three networks, for the swarm part (default 128)
//!   --swarm-cap-mib N  each seeder's cap in the capped swarm run, MiB/s (default 4)
//!   --hash-mib N     size of the file hashed in the page cache, hashing part (default 512)
//!   --read-mib N     size of the transfer read back over gRPC (default 1024)
//!   --searches N     searches timed for the first-item delay (default 1000)
//!   --transfers N    transfers started for the loaded RSS figure (default 100)
//!   --junction PATH  the `junction` binary for the RSS part (default: beside this one)
//!   --markdown FILE  also write the table as Markdown to FILE
//!
//! The merge row takes criterion's figure from `target/criterion` when `cargo bench`
//! ran before (bench/run.sh does), and also measures it here on one thread.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use junction_bench::proc::{cpu_model, mem_total_mib};

const MIB: u64 = 1024 * 1024;

#[path = "harness/download.rs"]
mod download;
#[path = "harness/first_item.rs"]
mod first_item;
#[path = "harness/hashing.rs"]
mod hashing;
#[path = "harness/merge.rs"]
mod merge;
#[path = "harness/read.rs"]
mod read;
#[path = "harness/rss.rs"]
mod rss;
#[path = "harness/served.rs"]
mod served;
#[path = "harness/swarm.rs"]
mod swarm;

// The swarm part reaches these through the root.
use served::{serve, wait_complete};

struct Opts {
    only: Vec<String>,
    dl_mib: u64,
    read_mib: u64,
    searches: usize,
    transfers: usize,
    junction: Option<PathBuf>,
    markdown: Option<PathBuf>,
    swarm_mib: u64,
    swarm_cap_mib: u64,
    hash_mib: u64,
}

impl Opts {
    fn parse() -> Result<Opts> {
        let mut o = Opts {
            only: Vec::new(),
            dl_mib: 256,
            read_mib: 1024,
            searches: 1000,
            transfers: 100,
            junction: None,
            markdown: None,
            swarm_mib: 128,
            swarm_cap_mib: 4,
            hash_mib: 512,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut val = || args.next().ok_or_else(|| anyhow!("{a} needs a value"));
            match a.as_str() {
                "--only" => o.only = val()?.split(',').map(str::to_owned).collect(),
                "--dl-mib" => o.dl_mib = val()?.parse()?,
                "--swarm-mib" => o.swarm_mib = val()?.parse()?,
                "--swarm-cap-mib" => o.swarm_cap_mib = val()?.parse()?,
                "--hash-mib" => o.hash_mib = val()?.parse()?,
                "--read-mib" => o.read_mib = val()?.parse()?,
                "--searches" => o.searches = val()?.parse()?,
                "--transfers" => o.transfers = val()?.parse()?,
                "--junction" => o.junction = Some(val()?.into()),
                "--markdown" => o.markdown = Some(val()?.into()),
                "-h" | "--help" => {
                    println!("see the top of bench/src/bin/harness.rs for the options");
                    std::process::exit(0);
                }
                other => bail!("unknown option {other:?} (try --help)"),
            }
        }
        Ok(o)
    }

    fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

/// One line of the table.
struct Row {
    what: String,
    figure: String,
    goal: String,
    verdict: &'static str,
}

fn row(what: impl Into<String>, figure: impl Into<String>, goal: &str, met: Option<bool>) -> Row {
    Row {
        what: what.into(),
        figure: figure.into(),
        goal: goal.into(),
        verdict: match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        },
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let opts = Opts::parse()?;
    let mut rows = Vec::new();
    let parts: [(&str, &str); 7] = [
        ("merge", "search merge throughput"),
        ("first", "time to first merged item"),
        ("download", "download throughput per network"),
        ("swarm", "one transfer over three networks"),
        ("hashing", "hash on download: every hash in one read"),
        ("read", "ReadContent throughput"),
        ("rss", "gateway RSS"),
    ];
    for (part, title) in parts {
        if !opts.wants(part) {
            continue;
        }
        eprintln!("== {title} (load average {})", load_average());
        let r = match part {
            "merge" => merge::merge_rows().await,
            "first" => first_item::first_item_rows(opts.searches).await,
            "download" => download::download_rows(opts.dl_mib * MIB).await,
            "swarm" => swarm::swarm_rows(opts.swarm_mib, opts.swarm_cap_mib).await,
            "hashing" => hashing::hashing_rows(opts.hash_mib).await,
            "read" => read::read_rows(opts.read_mib * MIB).await,
            _ => rss::rss_rows(&opts).await,
        };
        match r {
            Ok(mut r) => rows.append(&mut r),
            Err(e) => {
                eprintln!("{title} failed: {e:#}");
                rows.push(row(title, format!("FAILED: {e}"), "", Some(false)));
            }
        }
    }
    let table = render(&rows);
    println!("\n{}", machine_line());
    println!("{table}");
    if let Some(path) = &opts.markdown {
        std::fs::write(path, format!("{}\n\n{table}", machine_line()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn machine_line() -> String {
    format!(
        "{} cores ({}), {} MiB RAM; load average at the end: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        mem_total_mib(),
        load_average()
    )
}

/// The 1, 5 and 15 minute load averages: how busy the machine was besides us.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from("| benchmark | measured | goal | |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.what, r.figure, r.goal, r.verdict
        ));
    }
    out
}

/// CPU time (user + system) this process has used, in seconds.
fn cpu_secs() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

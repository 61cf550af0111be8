//! Hash on download (issue 12): every hash a network names a file by, computed in one
//! read of a file in the page cache (`junction_core::hashing`, each kind on a thread of
//! its own), against the limits of the hash functions underneath measured in the same
//! run: `openssl speed` for SHA-1, MD4 and SHA-256, and RustCrypto's Tiger (through
//! core's Tiger tree) for Tiger.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use junction_bench::proc::content;
use junction_core::hashing::{FileHashes, Want, bt, hash_file};
use junction_core::tiger_tree;

use super::{MIB, Row, cpu_secs, row};

/// Timed runs of each measurement; the best counts.
const ROUNDS: usize = 3;
/// Buffer the Tiger reference hashes.
const TIGER_BUF: usize = 64 << 20;

/// One timed run: wall and process CPU seconds.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    cpu: f64,
}

/// The hash functions under the kinds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prim {
    Sha1,
    Md4,
    Sha256,
    Tiger,
}

/// A primitive's single-core rate in MB/s, and where the figure comes from.
struct Limit {
    prim: Prim,
    mbps: f64,
    how: String,
}

/// One kind of hash, as `Want` asks for it, and the primitives it runs over every byte.
struct Kind {
    name: &'static str,
    want: Want,
    prims: &'static [Prim],
}

fn kinds(size: u64) -> Vec<Kind> {
    let none = Want::default();
    vec![
        Kind {
            name: "SHA-1 (whole file)",
            want: Want { sha1: true, ..none },
            prims: &[Prim::Sha1],
        },
        Kind {
            name: "ed2k MD4 hashset",
            want: Want { ed2k: true, ..none },
            prims: &[Prim::Md4],
        },
        Kind {
            name: "AICH SHA-1 tree",
            want: Want { aich: true, ..none },
            prims: &[Prim::Sha1],
        },
        Kind {
            name: "Tiger tree (TTH)",
            want: Want { tth: true, ..none },
            prims: &[Prim::Tiger],
        },
        Kind {
            name: "BitTorrent v1 pieces + v2 tree",
            want: Want {
                bt_piece_len: Some(bt::piece_len_for(size)),
                ..none
            },
            prims: &[Prim::Sha1, Prim::Sha256],
        },
    ]
}

pub async fn hashing_rows(mib: u64) -> Result<Vec<Row>> {
    tokio::task::spawn_blocking(move || rows(mib)).await?
}

/// The timed runs over one file: every kind in one read, the read alone, and each kind
/// alone (in [`kinds`] order).
struct Measured {
    all: Run,
    read: Run,
    alone: Vec<Run>,
}

fn rows(mib: u64) -> Result<Vec<Row>> {
    let size = mib * MIB;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("download.bin");
    std::fs::write(&path, content(size as usize, 12))?;
    // Once through, so every timed read comes from the page cache.
    std::io::copy(&mut std::fs::File::open(&path)?, &mut std::io::sink())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mb = size as f64 / 1e6;

    let kinds = kinds(size);
    let m = measure(&path, size, &kinds)?;
    let limits = limits();
    let limit_of = |p: Prim| limits.iter().find(|l| l.prim == p).map(|l| l.mbps);
    // Seconds per MB of file for each kind at its primitives' limits (None: one missing).
    let kind_limits: Option<Vec<f64>> = kinds
        .iter()
        .map(|k| k.prims.iter().map(|&p| limit_of(p).map(|r| 1.0 / r)).sum())
        .collect();

    let mut out = vec![one_read_row(mib, mb, cores, &m, kind_limits.as_deref())];
    out.extend(kind_rows(mb, &kinds, &m.alone, kind_limits.as_deref()));
    out.push(row(
        "  the read alone (no hash wanted): page cache to the hashers' buffers",
        format!("{:.0} MB/s; {:.2} CPU-s", mb / m.read.secs, m.read.cpu),
        "-",
        None,
    ));
    out.push(row(
        "  limits, one core each (MB/s)",
        limits
            .iter()
            .map(|l| format!("{} {:.0} ({})", prim_name(l.prim), l.mbps, l.how))
            .collect::<Vec<_>>()
            .join("; "),
        "-",
        None,
    ));
    Ok(out)
}

/// Times every kind in one read of `path` (`size` bytes), the read alone, and each of
/// `kinds` alone; fails if the kinds alone give other hashes than the one read.
fn measure(path: &Path, size: u64, kinds: &[Kind]) -> Result<Measured> {
    let mb = size as f64 / 1e6;
    let (all, all_hashes) = best_of(path, Want::all(size))?;
    eprintln!(
        "   all kinds in one read: {:.0} MB/s, {:.2} CPU-s",
        mb / all.secs,
        all.cpu
    );
    let (read, _) = best_of(path, Want::default())?;
    eprintln!("   the read alone: {:.0} MB/s", mb / read.secs);
    let mut alone = Vec::new();
    let mut combined = FileHashes {
        size,
        ..FileHashes::default()
    };
    for k in kinds {
        let (r, h) = best_of(path, k.want)?;
        eprintln!(
            "   {} alone: {:.0} MB/s, {:.2} CPU-s",
            k.name,
            mb / r.secs,
            r.cpu
        );
        combined.sha1 = combined.sha1.or(h.sha1);
        combined.ed2k = combined.ed2k.or(h.ed2k);
        combined.aich = combined.aich.or(h.aich);
        combined.tth = combined.tth.or(h.tth);
        combined.bt = combined.bt.or(h.bt);
        alone.push(r);
    }
    if combined != all_hashes {
        bail!("one read of every kind gave other hashes than each kind alone");
    }
    Ok(Measured { all, read, alone })
}

/// The primitives' limits: `openssl speed`'s, and Tiger's through core's Tiger tree.
fn limits() -> Vec<Limit> {
    let mut limits = openssl_limits();
    limits.push(tiger_limit());
    for l in &limits {
        eprintln!(
            "   limit {}: {:.0} MB/s ({})",
            prim_name(l.prim),
            l.mbps,
            l.how
        );
    }
    limits
}

/// The headline row: every kind in one read of `mb` MB, against the limits one after the
/// other and their ideal on `cores` cores (`kind_limits`: seconds per MB of each kind at
/// its limits), and against the kinds measured alone.
fn one_read_row(mib: u64, mb: f64, cores: f64, m: &Measured, kind_limits: Option<&[f64]>) -> Row {
    let (all, read, alone) = (m.all, m.read, &m.alone);
    let all_rate = mb / all.secs;
    let mut refs = Vec::new();
    let mut verdict = None;
    if let Some(per_mb) = kind_limits {
        let serial = 1.0 / per_mb.iter().sum::<f64>();
        let slowest = per_mb.iter().copied().fold(0.0, f64::max);
        let ideal = 1.0 / (per_mb.iter().sum::<f64>() / cores).max(slowest);
        verdict = Some(all_rate > serial);
        refs.push(format!(
            "{:.3} x the limits one after the other ({serial:.0} MB/s), {:.3} x their ideal on {cores} cores ({ideal:.0} MB/s)",
            all_rate / serial,
            all_rate / ideal
        ));
    }
    // The same references from each kind measured alone through the same machinery: the
    // CPU of a kind is its run's CPU less the read's, which the one read pays once.
    let serial_m = 1.0 / alone.iter().map(|r| r.secs / mb).sum::<f64>();
    let kind_cpu: f64 = alone.iter().map(|r| (r.cpu - read.cpu).max(0.0)).sum();
    let slowest_m = alone.iter().map(|r| r.secs).fold(0.0, f64::max);
    let ideal_m = mb / ((kind_cpu + read.cpu) / cores).max(slowest_m);
    refs.push(format!(
        "{:.3} x the kinds alone one after the other ({serial_m:.0} MB/s), {:.3} x their ideal ({ideal_m:.0} MB/s)",
        all_rate / serial_m,
        all_rate / ideal_m
    ));
    row(
        format!(
            "hash on download: every kind (SHA-1, ed2k, AICH, TTH, BT v1+v2) in one read of a {mib} MiB file in the page cache, best of {ROUNDS}"
        ),
        format!(
            "{all_rate:.0} MB/s, {:.2} CPU-s ({:.2} cores busy) = {}",
            all.cpu,
            all.cpu / all.secs,
            refs.join("; ")
        ),
        "> 1 x the limits one after the other",
        verdict,
    )
}

/// One row per kind measured alone, against its primitives' limit where known.
fn kind_rows(mb: f64, kinds: &[Kind], alone: &[Run], kind_limits: Option<&[f64]>) -> Vec<Row> {
    let mut out = Vec::new();
    for ((k, r), lim) in
        kinds
            .iter()
            .zip(alone)
            .zip(kind_limits.map_or(vec![None; kinds.len()], |v| {
                v.iter().map(|&s| Some(1.0 / s)).collect()
            }))
    {
        let rate = mb / r.secs;
        let against = lim.map_or(String::new(), |l| {
            let names: Vec<&str> = k.prims.iter().map(|&p| prim_name(p)).collect();
            format!(
                " = {:.3} x its limit ({l:.0} MB/s: {})",
                rate / l,
                names.join(" then ")
            )
        });
        out.push(row(
            format!("  {} alone, same one-read machinery", k.name),
            format!("{rate:.0} MB/s{against}; {:.2} CPU-s", r.cpu),
            "-",
            None,
        ));
    }
    out
}

fn best_of(path: &Path, want: Want) -> Result<(Run, FileHashes)> {
    let mut best: Option<(Run, FileHashes)> = None;
    for _ in 0..ROUNDS {
        let cpu = cpu_secs();
        let t = Instant::now();
        let h = hash_file(path, want).with_context(|| format!("hashing {}", path.display()))?;
        let run = Run {
            secs: t.elapsed().as_secs_f64(),
            cpu: cpu_secs() - cpu,
        };
        if best.as_ref().is_none_or(|(b, _)| run.secs < b.secs) {
            best = Some((run, h));
        }
    }
    Ok(best.expect("at least one round"))
}

fn prim_name(p: Prim) -> &'static str {
    match p {
        Prim::Sha1 => "SHA-1",
        Prim::Md4 => "MD4",
        Prim::Sha256 => "SHA-256",
        Prim::Tiger => "Tiger",
    }
}

const OPENSSL_ARGS: [&str; 4] = ["-bytes", "1048576", "-seconds", "2"];

/// `openssl speed` for SHA-1, MD4 and SHA-256 in 1 MiB blocks: by plain names first, then
/// with the legacy provider loaded (OpenSSL 3 keeps MD4 there), then through EVP.
fn openssl_limits() -> Vec<Limit> {
    let want = [
        (Prim::Sha1, "sha1"),
        (Prim::Md4, "md4"),
        (Prim::Sha256, "sha256"),
    ];
    let legacy = ["-provider", "legacy", "-provider", "default"];
    let mut got: Vec<Limit> = Vec::new();
    let attempts: [(&[&str], bool, &str); 3] = [
        (&[], false, "openssl speed"),
        (&legacy, false, "openssl speed -provider legacy"),
        (&legacy, true, "openssl speed -evp, legacy provider"),
    ];
    for (extra, evp, how) in attempts {
        let missing: Vec<(Prim, &str)> = want
            .iter()
            .copied()
            .filter(|(p, _)| got.iter().all(|l| l.prim != *p))
            .collect();
        if missing.is_empty() {
            break;
        }
        // -evp takes one algorithm per run.
        let runs: Vec<Vec<(Prim, &str)>> = if evp {
            missing.iter().map(|&m| vec![m]).collect()
        } else {
            vec![missing]
        };
        for names in runs {
            let mut cmd = Command::new("openssl");
            cmd.arg("speed").args(extra).args(OPENSSL_ARGS);
            if evp {
                cmd.arg("-evp");
            }
            cmd.args(names.iter().map(|(_, n)| *n));
            let Ok(o) = cmd.output() else {
                eprintln!("   openssl not found: no SHA-1, MD4 or SHA-256 limit");
                return got;
            };
            let text = String::from_utf8_lossy(&o.stdout);
            for (prim, name) in names {
                match parse_speed(&text, name) {
                    Some(mbps) => got.push(Limit {
                        prim,
                        mbps,
                        how: how.into(),
                    }),
                    None => eprintln!("   `{how} {name}` gave no figure"),
                }
            }
        }
    }
    got
}

/// The figure `openssl speed` prints for `name`, in 1000s of bytes per second, as MB/s
/// (a zero, as for an algorithm the providers lack, is no figure).
fn parse_speed(out: &str, name: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        if f.next()? != name {
            return None;
        }
        let v: f64 = f.next()?.strip_suffix('k')?.parse().ok()?;
        (v > 0.0).then_some(v / 1000.0)
    })
}

/// Plain Tiger over a buffer, through core (the bench has no `tiger` of its own): the
/// Tiger tree's leaves alone (`tiger_tree::level(buf, 1024)`) are plain Tiger over
/// 1025-byte messages (0x00 and a 1 KiB leaf), 17 compressions where plain Tiger over
/// the same KiB does 16. So plain Tiger is that rate times 17/16 (the per-message
/// set-up is counted as compression, which makes the figure slightly low).
fn tiger_limit() -> Limit {
    let buf = content(TIGER_BUF, 16);
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let leaves = tiger_tree::level(&buf, tiger_tree::LEAF_LEN);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(leaves.len(), TIGER_BUF / tiger_tree::LEAF_LEN);
    }
    let leaves = TIGER_BUF as f64 / best / 1e6;
    Limit {
        prim: Prim::Tiger,
        mbps: leaves * 17.0 / 16.0,
        how: format!("RustCrypto tiger via core: TTH leaves {leaves:.0} MB/s x 17/16"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_speed() {
        let out = "type        1048576 bytes\nmd4                  0.00 \nsha1           2051561.74k\nsha256         1809058.39k\n";
        assert_eq!(parse_speed(out, "md4"), None);
        assert!((parse_speed(out, "sha1").unwrap() - 2051.56174).abs() < 1e-6);
        assert!(parse_speed(out, "sha256").is_some());
        assert_eq!(parse_speed(out, "sha512"), None);
    }
}

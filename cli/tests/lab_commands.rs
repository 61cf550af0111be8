//! `junction lab` as a newcomer uses it: start it, then run the three commands it prints,
//! exactly as printed (with this build's binary in place of `junction`).

mod common;

use std::process::Command;

use common::{BIN, Lab};

fn run_printed(command: &str, cwd: &std::path::Path) -> String {
    let line = command
        .strip_prefix("junction")
        .unwrap_or_else(|| panic!("not a junction command: {command}"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{BIN}'{line}"))
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn same_bytes(got: &std::path::Path, want: &std::path::Path) {
    let (a, b) = (std::fs::read(got).unwrap(), std::fs::read(want).unwrap());
    let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a == b,
        "{} differs from {}: {} vs {} bytes, first difference at {first_difference:?}",
        got.display(),
        want.display(),
        a.len(),
        b.len()
    );
}

#[test]
fn the_three_printed_commands_work_as_printed() {
    let lab = Lab::start(12, 8);
    let printed = &lab.commands;
    assert!(printed[0].contains(" search "), "{printed:?}");
    assert!(printed[1].contains(" get "), "{printed:?}");
    assert!(printed[2].contains(" cat "), "{printed:?}");

    // The search finds the lab's files (BitTorrent's index may take a moment to fill,
    // eD2k and Gnutella answer at once).
    let out = run_printed(&printed[0], lab.dir.path());
    assert!(out.contains("Lab Sunrise Timelapse 1080p.mkv"), "{out}");

    let out = run_printed(&printed[1], lab.dir.path());
    assert!(out.contains("complete: "), "{out}");
    let got = out
        .lines()
        .find_map(|l| l.strip_prefix("complete: "))
        .unwrap();
    same_bytes(
        got.as_ref(),
        &lab.world().join("Lab Sunrise Timelapse 1080p.mkv"),
    );

    run_printed(&printed[2], lab.dir.path());
    same_bytes(
        &lab.dir.path().join("lab-large.mkv"),
        &lab.world().join("Lab Deep Space Documentary 2160p.mkv"),
    );
}

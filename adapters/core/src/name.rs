//! File names that come from the network, made safe to use on disk, and a finished file
//! moved into its folder without replacing one that is there.

use std::io;
use std::path::{Path, PathBuf};

/// Longest name kept, in bytes; common file systems allow 255.
const MAX_NAME: usize = 200;

/// Device names Windows reserves in any folder, with or without an extension: also the
/// `0` and superscript-digit ports, and the console's input and output.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Slashes and backslashes in look: harmless to the file system, but they make a name
/// read as a path to the person who sees it.
const LOOK_ALIKE_SLASHES: &[char] = &[
    '\u{2044}', // fraction slash
    '\u{2215}', // division slash
    '\u{2216}', // set minus
    '\u{2571}', // box drawings light diagonal upper right to lower left
    '\u{2572}', // box drawings light diagonal upper left to lower right
    '\u{27CB}', // mathematical rising diagonal
    '\u{27CD}', // mathematical falling diagonal
    '\u{29F5}', // reverse solidus operator
    '\u{29F8}', // big solidus
    '\u{29F9}', // big reverse solidus
    '\u{FE68}', // small reverse solidus
    '\u{FF0F}', // fullwidth solidus
    '\u{FF3C}', // fullwidth reverse solidus
];

/// Turns a name from a peer into one plain file name: no directories, no `..`, no
/// control, reserved or invisible characters, not empty, not hidden, not a Windows
/// device name, bounded in length. A sanitized name is kept as it is.
pub fn sanitize_file_name(name: &str) -> String {
    let mut out = sanitize_once(name);
    // A cut at the length bound can leave a trailing dot or space: a second pass ends it.
    for _ in 0..3 {
        let again = sanitize_once(&out);
        if again == out {
            break;
        }
        out = again;
    }
    out
}

fn sanitize_once(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(|c| !is_invisible(*c))
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if LOOK_ALIKE_SLASHES.contains(&c) => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    // Windows drops trailing dots and spaces, so "a.txt." and "a.txt" would be one file.
    out = out
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim()
        .to_owned();
    let stem = out.split('.').next().unwrap_or_default().trim_end();
    if WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem))
    {
        out.insert(0, '_');
    }
    if out.len() > MAX_NAME {
        // Keep the extension, cut the stem on a character boundary.
        let ext = out
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.len() <= 10)
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let mut cut = MAX_NAME - ext.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}{ext}", &out[..cut]);
    }
    if out.is_empty() {
        out = "unnamed".into();
    }
    out
}

/// Characters that change how a name reads without showing: bidirectional overrides
/// (which can make `exe.mp4` read as `mp4.exe`), zero-width joiners and the BOM.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Moves the file at `from` into `dir` as `name` (already sanitized), or as
/// `name (1)`, `name (2)`… when that is taken: a file already there is never replaced,
/// even one that appears while this runs. Returns where the file went.
pub fn move_without_replacing(from: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let source = std::fs::metadata(from)?;
    // A folder's name has no extension: `Show.S01 (1)`, not `Show (1).S01`.
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && !source.is_dir() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    for n in 0..10_000u32 {
        let to = match n {
            0 => dir.join(name),
            n => dir.join(format!("{stem} ({n}){ext}")),
        };
        // A folder (a multi-file torrent) cannot be hard-linked: it is renamed, which
        // fails if the name exists.
        if source.is_dir() {
            match rename_no_replace(from, &to) {
                Ok(()) => return Ok(to),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        // A crash between the link and the unlink below left the file under both names:
        // the move is done but for the unlink.
        if source.nlink() > 1
            && std::fs::metadata(&to)
                .is_ok_and(|m| m.ino() == source.ino() && m.dev() == source.dev())
        {
            std::fs::remove_file(from)?;
            return Ok(to);
        }
        // A hard link fails if the name exists, atomically; rename would replace it.
        match std::fs::hard_link(from, &to) {
            Ok(()) => {
                std::fs::remove_file(from)?;
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            // No hard links here (another file system, or one without them): check, then
            // rename, which leaves only a narrow window.
            Err(_) if !to.exists() => {
                std::fs::rename(from, &to)?;
                return Ok(to);
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} and 9999 numbered names are all taken",
            dir.join(name).display()
        ),
    ))
}

/// Renames `from` to `to` unless `to` exists, atomically where the file system can.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // A file system without it: check, then rename, which leaves a narrow window.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if !to.exists() => {
            std::fs::rename(from, to)
        }
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            Err(io::ErrorKind::AlreadyExists.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_path_traversal_survives() {
        for evil in [
            "../../etc/passwd",
            "..",
            "/abs/path",
            "a\\..\\b",
            "C:\\x",
            ".hidden",
            "a\0b",
            "  ",
        ] {
            let s = sanitize_file_name(evil);
            assert!(
                !s.contains('/') && !s.contains('\\') && !s.starts_with('.') && !s.is_empty(),
                "{evil:?} → {s:?}"
            );
            assert!(!s.contains('\0'));
        }
        assert_eq!(sanitize_file_name("Ubuntu 24.04.iso"), "Ubuntu 24.04.iso");
        let long = format!("{}.mkv", "é".repeat(300));
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_NAME && s.ends_with(".mkv"));
    }

    #[test]
    fn windows_devices_bidi_tricks_and_look_alike_slashes_are_defused() {
        assert_eq!(sanitize_file_name("CON"), "_CON");
        assert_eq!(sanitize_file_name("nul.txt"), "_nul.txt");
        assert_eq!(sanitize_file_name("com1 .tar.gz"), "_com1 .tar.gz");
        assert_eq!(sanitize_file_name("CONSOLE.txt"), "CONSOLE.txt");
        // "holiday\u{202E}4pm.exe" shows as "holidayexe.mp4".
        assert_eq!(
            sanitize_file_name("holiday\u{202E}4pm.exe"),
            "holiday4pm.exe"
        );
        assert_eq!(sanitize_file_name("a\u{200B}b\u{FEFF}.txt"), "ab.txt");
        assert_eq!(sanitize_file_name("..\u{2215}..\u{FF0F}etc"), "_.._etc");
        assert_eq!(sanitize_file_name("movie.avi. . "), "movie.avi");
        assert_eq!(sanitize_file_name("\u{202E}"), "unnamed");
    }

    #[test]
    fn every_windows_device_name_and_look_alike_slash_is_defused() {
        for (name, safe) in [
            ("COM0", "_COM0"),
            ("lpt0.txt", "_lpt0.txt"),
            ("CONIN$", "_CONIN$"),
            ("conout$.log", "_conout$.log"),
            ("COM\u{B9}", "_COM\u{B9}"),
            ("lpt\u{B3}.bin", "_lpt\u{B3}.bin"),
            ("COM10", "COM10"),
            ("CONIN", "CONIN"),
            ("LPT", "LPT"),
        ] {
            assert_eq!(sanitize_file_name(name), safe, "{name:?}");
        }
        for &c in LOOK_ALIKE_SLASHES {
            assert_eq!(sanitize_file_name(&format!("a{c}b")), "a_b", "{c:?}");
        }
        assert_eq!(
            sanitize_file_name("..\u{2571}..\u{27CB}etc\u{FE68}x"),
            "_.._etc_x"
        );
    }

    proptest! {
        #[test]
        fn any_name_stays_one_plain_file_in_its_folder(name in "\\PC{0,300}|[./\\\\ \u{202E}\u{2571}\u{FE68}a]{0,20}") {
            let s = sanitize_file_name(&name);
            let dir = Path::new("/data/downloads");
            let p = dir.join(&s);
            prop_assert_eq!(p.parent(), Some(dir));
            prop_assert!(!s.is_empty() && s.len() <= MAX_NAME);
            prop_assert!(s != "." && s != ".." && !s.starts_with('.'));
            prop_assert!(!s.chars().any(|c| c.is_control() || is_invisible(c) || c == '/' || c == '\\' || LOOK_ALIKE_SLASHES.contains(&c)));
            // Sanitizing is idempotent: a sanitized name read back is kept as it is.
            prop_assert_eq!(sanitize_file_name(&s), s);
        }
    }

    #[test]
    fn a_finished_file_never_replaces_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let src = |n: &str, body: &str| {
            let p = dir.path().join(format!("{n}.part"));
            std::fs::write(&p, body).unwrap();
            p
        };
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let a = move_without_replacing(&src("a", "first"), &out, "movie.avi").unwrap();
        let b = move_without_replacing(&src("b", "second"), &out, "movie.avi").unwrap();
        let c = move_without_replacing(&src("c", "third"), &out, "README").unwrap();
        let d = move_without_replacing(&src("d", "fourth"), &out, "README").unwrap();
        assert_eq!(a, out.join("movie.avi"));
        assert_eq!(b, out.join("movie (1).avi"));
        assert_eq!(d, out.join("README (1)"));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "first");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "second");
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "third");
        assert!(!dir.path().join("a.part").exists());
        // Interrupted after the link, before the unlink: done again, no second copy.
        let e = src("e", "fifth");
        std::fs::hard_link(&e, out.join("song (2).mp3")).unwrap();
        let again = move_without_replacing(&e, &out, "song (2).mp3").unwrap();
        assert_eq!(again, out.join("song (2).mp3"));
        assert!(!e.exists() && !out.join("song (2) (1).mp3").exists());
    }

    #[test]
    fn a_finished_folder_never_replaces_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("Show.S01")).unwrap();
        let from = dir.path().join("abc");
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("sub/e1.mkv"), "one").unwrap();
        let to = move_without_replacing(&from, &out, "Show.S01").unwrap();
        assert_eq!(to, out.join("Show.S01 (1)"));
        assert_eq!(
            std::fs::read_to_string(to.join("sub/e1.mkv")).unwrap(),
            "one"
        );
        assert!(!from.exists());
        assert_eq!(std::fs::read_dir(out.join("Show.S01")).unwrap().count(), 0);
    }
}

//! File names that come from the network, made safe to use on disk.

/// Longest name kept, in bytes; common file systems allow 255.
const MAX_NAME: usize = 200;

/// Turns a name from a peer into one plain file name: no directories, no `..`,
/// no control or reserved characters, not empty, not hidden, bounded in length.
pub fn sanitize_file_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    out = out.trim().trim_start_matches('.').trim().to_owned();
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! File metadata as eD2k carries it: the type strings, extension, and the tags of a published
//! or found file.

use junction_core::query::FileType;

use crate::wire::tag::ft;
use crate::wire::{Tag, TagValue};

/// eD2k's file type string for a name (`Audio`, `Video`, `Image`, `Doc`, `Pro`, `Arc`, `Iso`).
pub fn ed2k_type_of(name: &str) -> Option<&'static str> {
    let ext = extension(name)?.to_ascii_lowercase();
    if matches!(ext.as_str(), "iso" | "bin" | "cue" | "nrg" | "img" | "mdf") {
        return Some("Iso");
    }
    Some(match FileType::of_name(name)? {
        FileType::Audio => "Audio",
        FileType::Video => "Video",
        FileType::Image => "Image",
        FileType::Doc => "Doc",
        FileType::Archive => "Arc",
        FileType::Program => "Pro",
    })
}

/// The type string a search sends for a user-facing file type (servers search archives and CD
/// images as `Pro`).
pub fn search_type(t: FileType) -> &'static str {
    match t {
        FileType::Audio => "Audio",
        FileType::Video => "Video",
        FileType::Image => "Image",
        FileType::Doc => "Doc",
        FileType::Archive | FileType::Program => "Pro",
    }
}

/// Does an offered type string satisfy a searched one? `Pro` also matches `Arc` and `Iso`.
pub fn type_matches(offered: &str, searched: &str) -> bool {
    offered.eq_ignore_ascii_case(searched)
        || (searched.eq_ignore_ascii_case("Pro")
            && ["Arc", "Iso", "Pro"]
                .iter()
                .any(|t| offered.eq_ignore_ascii_case(t)))
}

/// The extension without its dot.
pub fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && ext.len() <= 16).then_some(ext)
}

/// Tags describing a file: name, size (split into `FILESIZE` + `FILESIZE_HI` beyond 4 GiB,
/// as servers expect), type and extension.
pub fn file_tags(name: &str, size: u64) -> Vec<Tag> {
    let mut tags = vec![Tag::string(ft::FILENAME, name)];
    match u32::try_from(size) {
        Ok(s) => tags.push(Tag::u32(ft::FILESIZE, s)),
        Err(_) => {
            tags.push(Tag::u32(ft::FILESIZE, size as u32));
            tags.push(Tag::u32(ft::FILESIZE_HI, (size >> 32) as u32));
        }
    }
    if let Some(t) = ed2k_type_of(name) {
        tags.push(Tag::string(ft::FILETYPE, t));
    }
    if let Some(e) = extension(name) {
        tags.push(Tag::string(ft::FILEFORMAT, e.to_ascii_lowercase()));
    }
    tags
}

/// A `UINT32` tag with a count.
pub fn count_tag(id: u8, n: usize) -> Tag {
    Tag::id(id, TagValue::U32(u32::try_from(n).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TagsExt;

    #[test]
    fn types() {
        assert_eq!(ed2k_type_of("a.mkv"), Some("Video"));
        assert_eq!(ed2k_type_of("a.zip"), Some("Arc"));
        assert_eq!(ed2k_type_of("a.iso"), Some("Iso"));
        assert_eq!(ed2k_type_of("noext"), None);
        assert!(type_matches("Arc", "Pro"));
        assert!(type_matches("video", "Video"));
        assert!(!type_matches("Audio", "Video"));
    }

    #[test]
    fn large_size_split() {
        let t = file_tags("x.bin", 5 << 32 | 7);
        assert_eq!(t.file_size(), Some(5 << 32 | 7));
        let t = file_tags("x.bin", 1234);
        assert_eq!(t.file_size(), Some(1234));
    }
}

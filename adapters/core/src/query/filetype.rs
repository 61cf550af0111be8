//! File types as users search for them, derived from the extension.

use super::extension;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Video,
    Audio,
    Image,
    Doc,
    Archive,
    Program,
}

const TABLE: &[(FileType, &[&str])] = &[
    (
        FileType::Video,
        &[
            "avi", "mkv", "mp4", "m4v", "mov", "wmv", "mpg", "mpeg", "webm", "flv", "ogv", "ts",
            "vob", "divx", "3gp",
        ],
    ),
    (
        FileType::Audio,
        &[
            "mp3", "flac", "ogg", "oga", "wav", "m4a", "aac", "wma", "opus", "ape", "mka", "mid",
        ],
    ),
    (
        FileType::Image,
        &[
            "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "svg", "heic",
        ],
    ),
    (
        FileType::Doc,
        &[
            "pdf", "doc", "docx", "txt", "odt", "rtf", "epub", "mobi", "djvu", "xls", "xlsx",
            "ppt", "pptx", "ods", "md", "chm",
        ],
    ),
    (
        FileType::Archive,
        &[
            "zip", "rar", "7z", "tar", "gz", "bz2", "xz", "tgz", "zst", "iso", "img", "cab",
        ],
    ),
    (
        FileType::Program,
        &[
            "exe", "msi", "dmg", "deb", "rpm", "apk", "appimage", "sh", "bat", "jar", "com",
        ],
    ),
];

impl FileType {
    pub const ALL: [FileType; 6] = [
        FileType::Video,
        FileType::Audio,
        FileType::Image,
        FileType::Doc,
        FileType::Archive,
        FileType::Program,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FileType::Video => "video",
            FileType::Audio => "audio",
            FileType::Image => "image",
            FileType::Doc => "doc",
            FileType::Archive => "archive",
            FileType::Program => "program",
        }
    }

    /// Parses a type name, with the synonyms users type.
    pub fn from_name(s: &str) -> Option<FileType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "video" | "videos" | "movie" | "movies" => FileType::Video,
            "audio" | "music" | "sound" => FileType::Audio,
            "image" | "images" | "picture" | "pictures" | "pic" => FileType::Image,
            "doc" | "docs" | "document" | "documents" | "text" | "book" => FileType::Doc,
            "archive" | "archives" | "iso" | "cd" => FileType::Archive,
            "program" | "programs" | "pro" | "app" | "software" => FileType::Program,
            _ => return None,
        })
    }

    /// The type of a file, by its extension.
    pub fn of_name(name: &str) -> Option<FileType> {
        let ext = extension(name)?.to_ascii_lowercase();
        TABLE
            .iter()
            .find(|(_, exts)| exts.contains(&ext.as_str()))
            .map(|(t, _)| *t)
    }

    /// The extensions that make a file this type.
    pub fn extensions(self) -> &'static [&'static str] {
        TABLE
            .iter()
            .find(|(t, _)| *t == self)
            .map_or(&[], |(_, e)| e)
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

//! The server's file index: who offers what, and the search-expression evaluator.

use std::collections::{BTreeMap, HashMap};

use crate::wire::file_info;
use crate::wire::server::{FileEntry, offer_magic};
use crate::wire::tag::ft;
use crate::wire::{ClientId, Comparison, Hash16, SearchExpr, TagName, TagsExt};

/// One file as the index knows it.
#[derive(Debug, Clone)]
pub struct IndexedFile {
    pub name: String,
    /// Lower-cased name for matching.
    lower: String,
    pub size: u64,
    pub file_type: Option<String>,
    pub ext: Option<String>,
    /// Client key → (client id, port, complete).
    pub sources: BTreeMap<u64, (ClientId, u16, bool)>,
}

impl IndexedFile {
    fn complete_sources(&self) -> usize {
        self.sources.values().filter(|s| s.2).count()
    }
}

/// Files by hash, with a reverse map per client.
#[derive(Debug)]
pub struct FileIndex {
    files: HashMap<Hash16, IndexedFile>,
    by_client: HashMap<u64, Vec<Hash16>>,
    max_files: usize,
}

impl FileIndex {
    pub fn new(max_files: usize) -> Self {
        Self {
            files: HashMap::new(),
            by_client: HashMap::new(),
            max_files,
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn get(&self, hash: &Hash16) -> Option<&IndexedFile> {
        self.files.get(hash)
    }

    /// Adds a client's offered files; returns how many were new for it.
    pub fn offer(
        &mut self,
        key: u64,
        id: ClientId,
        port: u16,
        files: Vec<FileEntry>,
        max_per_client: usize,
    ) -> usize {
        let mut added = 0;
        for f in files {
            let have = self.by_client.get(&key).map_or(0, Vec::len);
            if have >= max_per_client {
                break;
            }
            let (Some(name), Some(size)) = (f.name(), f.size()) else {
                continue;
            };
            let name = name.to_string();
            if name.trim().is_empty() || size == 0 || size > crate::wire::hash::MAX_FILE_SIZE {
                continue;
            }
            let complete =
                !(f.client_id.0 == offer_magic::PARTIAL_ID && f.port == offer_magic::PARTIAL_PORT);
            if !self.files.contains_key(&f.hash) && self.files.len() >= self.max_files {
                continue;
            }
            let entry = self.files.entry(f.hash).or_insert_with(|| IndexedFile {
                lower: name.to_lowercase(),
                name: name.clone(),
                size,
                file_type: f
                    .tags
                    .string_of(ft::FILETYPE)
                    .map(|s| s.to_string())
                    .or_else(|| file_info::ed2k_type_of(&name).map(str::to_owned)),
                ext: f
                    .tags
                    .string_of(ft::FILEFORMAT)
                    .map(|s| s.to_string().to_ascii_lowercase())
                    .or_else(|| file_info::extension(&name).map(str::to_ascii_lowercase)),
                sources: BTreeMap::new(),
            });
            if entry.size != size {
                // Same hash, different size: ignore the conflicting offer.
                continue;
            }
            if entry.sources.insert(key, (id, port, complete)).is_none() {
                self.by_client.entry(key).or_default().push(f.hash);
                added += 1;
            }
        }
        added
    }

    /// Forgets everything a client offered.
    pub fn remove_client(&mut self, key: u64) {
        for h in self.by_client.remove(&key).unwrap_or_default() {
            if let Some(f) = self.files.get_mut(&h) {
                f.sources.remove(&key);
                if f.sources.is_empty() {
                    self.files.remove(&h);
                }
            }
        }
    }

    /// Evaluates a search; results carry one source's id and port and the availability tags.
    pub fn search(&self, expr: &SearchExpr, max: usize, _requester: u64) -> Vec<FileEntry> {
        let mut out: Vec<(&Hash16, &IndexedFile)> = self
            .files
            .iter()
            .filter(|(_, f)| matches(expr, f))
            .collect();
        out.sort_by(|a, b| {
            b.1.sources
                .len()
                .cmp(&a.1.sources.len())
                .then(a.1.name.cmp(&b.1.name))
        });
        out.into_iter()
            .take(max)
            .map(|(h, f)| entry(h, f))
            .collect()
    }

    /// Results for files the other networks have (bridging on demand), each with
    /// Junction's own client as its source, filtered by the whole expression. A file this
    /// index already has is left to the index's own result.
    pub fn bridged(
        &self,
        expr: &SearchExpr,
        items: &[(Hash16, junction_core::BridgedItem)],
        own: (u64, ClientId, u16),
        max: usize,
    ) -> Vec<FileEntry> {
        items
            .iter()
            .filter(|(h, _)| !self.files.contains_key(h))
            .filter_map(|(h, i)| {
                let size =
                    i.id.size
                        .filter(|&s| s > 0 && s <= crate::wire::hash::MAX_FILE_SIZE)?;
                let f = IndexedFile {
                    lower: i.name.to_lowercase(),
                    name: i.name.clone(),
                    size,
                    file_type: file_info::ed2k_type_of(&i.name).map(str::to_owned),
                    ext: file_info::extension(&i.name).map(str::to_ascii_lowercase),
                    sources: BTreeMap::from([(own.0, (own.1, own.2, true))]),
                };
                matches(expr, &f).then(|| entry(h, &f))
            })
            .take(max)
            .collect()
    }
}

/// One search result: one source's id and port, and the availability tags.
fn entry(h: &Hash16, f: &IndexedFile) -> FileEntry {
    let mut tags = file_info::file_tags(&f.name, f.size);
    tags.retain(|t| t.name != TagName::Id(ft::FILETYPE) && t.name != TagName::Id(ft::FILEFORMAT));
    if let Some(t) = &f.file_type {
        tags.push(crate::wire::Tag::string(ft::FILETYPE, t.as_str()));
    }
    if let Some(e) = &f.ext {
        tags.push(crate::wire::Tag::string(ft::FILEFORMAT, e.as_str()));
    }
    tags.push(file_info::count_tag(ft::SOURCES, f.sources.len()));
    tags.push(file_info::count_tag(
        ft::COMPLETE_SOURCES,
        f.complete_sources(),
    ));
    let (id, port) = f
        .sources
        .values()
        .next()
        .map_or((ClientId(0), 0), |s| (s.0, s.1));
    FileEntry {
        hash: *h,
        client_id: id,
        port,
        tags,
    }
}

fn cmp(value: u64, op: Comparison, bound: u64) -> bool {
    match op {
        Comparison::Equal => value == bound,
        Comparison::Greater => value > bound,
        Comparison::Less => value < bound,
        Comparison::GreaterOrEqual => value >= bound,
        Comparison::LessOrEqual => value <= bound,
        Comparison::NotEqual => value != bound,
    }
}

/// Does a file satisfy an expression? Keyword terms match when every whitespace-separated
/// word occurs in the name, case-insensitively; an unknown tag never matches.
pub fn matches(expr: &SearchExpr, f: &IndexedFile) -> bool {
    match expr {
        SearchExpr::And(a, b) => matches(a, f) && matches(b, f),
        SearchExpr::Or(a, b) => matches(a, f) || matches(b, f),
        SearchExpr::Not(a, b) => matches(a, f) && !matches(b, f),
        SearchExpr::Keywords(k) => {
            let k = k.to_string().to_lowercase();
            let mut words = k.split_whitespace().peekable();
            words.peek().is_some() && words.all(|w| f.lower.contains(w))
        }
        SearchExpr::MetaString { value, tag } => {
            let v = value.to_string();
            match tag {
                TagName::Id(ft::FILETYPE) => f
                    .file_type
                    .as_deref()
                    .is_some_and(|t| file_info::type_matches(t, &v)),
                TagName::Id(ft::FILEFORMAT) => f
                    .ext
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(v.trim_start_matches('.'))),
                TagName::Id(ft::FILENAME) => f.lower.contains(&v.to_lowercase()),
                _ => false,
            }
        }
        SearchExpr::Numeric { value, op, tag } => match tag {
            TagName::Id(ft::FILESIZE) => cmp(f.size, *op, *value),
            TagName::Id(ft::SOURCES) => cmp(f.sources.len() as u64, *op, *value),
            TagName::Id(ft::COMPLETE_SOURCES) => cmp(f.complete_sources() as u64, *op, *value),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Tag, WireString};

    fn entry(name: &str, size: u64, hash: u8) -> FileEntry {
        FileEntry {
            hash: [hash; 16],
            client_id: ClientId(offer_magic::COMPLETE_ID),
            port: offer_magic::COMPLETE_PORT,
            tags: file_info::file_tags(name, size),
        }
    }

    #[test]
    fn bridged_results_name_our_client_and_obey_the_expression() {
        let i = idx();
        let item = |name: &str, size: u64| junction_core::BridgedItem {
            name: name.into(),
            id: {
                let mut id = junction_core::ContentId::default();
                id.size = Some(size);
                id
            },
            sources: 3,
        };
        let items = vec![
            ([9; 16], item("Bunny trailer.mkv", 100_000_000)),
            ([8; 16], item("bunny tiny.txt", 10)),
            // Already in the index: its own result stands.
            ([1; 16], item("Big Buck Bunny.mkv", 700_000_000)),
            ([7; 16], item("no size", 0)),
        ];
        let expr = SearchExpr::And(
            Box::new(SearchExpr::Keywords("bunny".into())),
            Box::new(SearchExpr::Numeric {
                value: 1_000_000,
                op: Comparison::Greater,
                tag: TagName::Id(ft::FILESIZE),
            }),
        );
        let out = i.bridged(&expr, &items, (42, ClientId(7), 4662), 10);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].hash, [9; 16]);
        assert_eq!((out[0].client_id, out[0].port), (ClientId(7), 4662));
        assert_eq!(
            out[0].name().map(|n| n.to_string()),
            Some("Bunny trailer.mkv".into())
        );
        assert!(
            i.bridged(&expr, &items, (42, ClientId(7), 4662), 0)
                .is_empty()
        );
    }

    fn idx() -> FileIndex {
        let mut i = FileIndex::new(100);
        i.offer(
            1,
            ClientId(5),
            4662,
            vec![
                entry("Big Buck Bunny.mkv", 700_000_000, 1),
                entry("bunny song.mp3", 4_000_000, 2),
                entry("Linux distro.iso", 2_000_000_000, 3),
                entry("notes.txt", 100, 4),
            ],
            10,
        );
        i.offer(
            2,
            ClientId(6),
            4663,
            vec![entry("bunny song.mp3", 4_000_000, 2)],
            10,
        );
        i
    }

    fn names(i: &FileIndex, e: &SearchExpr) -> Vec<String> {
        let mut v: Vec<String> = i
            .search(e, 50, 0)
            .iter()
            .map(|f| f.name().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn expression_tree() {
        let i = idx();
        let kw = |s: &str| SearchExpr::keywords(s);
        assert_eq!(
            names(&i, &kw("BUNNY")),
            ["Big Buck Bunny.mkv", "bunny song.mp3"]
        );
        assert_eq!(names(&i, &kw("bunny song")), ["bunny song.mp3"]);
        assert_eq!(
            names(&i, &SearchExpr::not(kw("bunny"), kw("song"))),
            ["Big Buck Bunny.mkv"]
        );
        assert_eq!(
            names(&i, &SearchExpr::or(kw("notes"), kw("distro"))),
            ["Linux distro.iso", "notes.txt"]
        );
        let video = SearchExpr::MetaString {
            value: WireString::from("Video"),
            tag: TagName::Id(ft::FILETYPE),
        };
        assert_eq!(
            names(&i, &SearchExpr::and(kw("bunny"), video)),
            ["Big Buck Bunny.mkv"]
        );
        let pro = SearchExpr::MetaString {
            value: WireString::from("Pro"),
            tag: TagName::Id(ft::FILETYPE),
        };
        assert_eq!(
            names(&i, &SearchExpr::and(kw("linux"), pro)),
            ["Linux distro.iso"]
        );
        let ext = SearchExpr::MetaString {
            value: WireString::from("MP3"),
            tag: TagName::Id(ft::FILEFORMAT),
        };
        assert_eq!(
            names(&i, &SearchExpr::and(kw("bunny"), ext)),
            ["bunny song.mp3"]
        );
        let big = SearchExpr::Numeric {
            value: 1_000_000,
            op: Comparison::Greater,
            tag: TagName::Id(ft::FILESIZE),
        };
        assert_eq!(
            names(&i, &SearchExpr::and(kw("bunny"), big.clone())),
            ["Big Buck Bunny.mkv", "bunny song.mp3"]
        );
        let huge = SearchExpr::Numeric {
            value: 1 << 33,
            op: Comparison::Less,
            tag: TagName::Id(ft::FILESIZE),
        };
        assert_eq!(names(&i, &SearchExpr::and(kw("distro"), huge)).len(), 1);
        let srcs = SearchExpr::Numeric {
            value: 1,
            op: Comparison::Greater,
            tag: TagName::Id(ft::SOURCES),
        };
        assert_eq!(
            names(&i, &SearchExpr::and(kw("bunny"), srcs)),
            ["bunny song.mp3"]
        );
        let unknown = SearchExpr::Numeric {
            value: 1,
            op: Comparison::Greater,
            tag: TagName::Id(0x77),
        };
        assert!(names(&i, &SearchExpr::and(kw("bunny"), unknown)).is_empty());
        assert!(names(&i, &kw("   ")).is_empty());
    }

    #[test]
    fn results_carry_availability_and_clients_leave() {
        let mut i = idx();
        let r = i.search(&SearchExpr::keywords("song"), 10, 0);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].tags.u64_of(ft::SOURCES), Some(2));
        assert_eq!(r[0].tags.u64_of(ft::COMPLETE_SOURCES), Some(2));
        assert_eq!(r[0].size(), Some(4_000_000));
        i.remove_client(1);
        assert_eq!(i.len(), 1);
        i.remove_client(2);
        assert!(i.is_empty());
    }

    #[test]
    fn limits_and_bad_offers() {
        let mut i = FileIndex::new(2);
        let mut bad = entry("x", 5, 9);
        bad.tags = vec![Tag::string(ft::FILENAME, "nosize")];
        let n = i.offer(
            1,
            ClientId(1),
            1,
            vec![bad, entry("a", 1, 1), entry("b", 1, 2), entry("c", 1, 3)],
            10,
        );
        assert_eq!(n, 2);
        assert_eq!(i.len(), 2);
        let mut j = FileIndex::new(10);
        assert_eq!(
            j.offer(
                1,
                ClientId(1),
                1,
                vec![entry("a", 1, 1), entry("b", 1, 2)],
                1
            ),
            1
        );
    }
}

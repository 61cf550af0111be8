//! Doors to the HTTP fronts' private parsers and escapers for the fuzz targets
//! (`fuzz/replay`, target `gateway_http`): what a player, an *arr app or a network name
//! hands the fronts. Not an API.

use std::ops::Range;

use junction_core::ContentId;

/// The player front's `Range` header, for a content of `size` bytes; the error as the
/// client reads it.
pub fn parse_range(header: &str, size: u64) -> Result<Range<u64>, String> {
    super::content::parse_range(header, size).map_err(|e| e.to_string())
}

/// The contents a hash in a front's URL may name.
pub fn parse_hash(id: &str) -> Vec<ContentId> {
    super::content::parse_hash(id)
}

/// An app's Torznab query as plain words.
pub fn query_words(q: &str) -> String {
    super::torznab::query_words(q)
}

/// The season and episode tags of a file name.
pub fn episode_tags(name: &str) -> Vec<(u32, Option<u32>)> {
    super::torznab::episode_tags(name)
}

/// Whether a file name is of the season and episode asked for.
pub fn matches_episode(name: &str, season: Option<u32>, episode: Option<u32>) -> bool {
    super::torznab::matches_episode(name, season, episode)
}

/// The Torznab category of a file name.
pub fn category(name: &str) -> u32 {
    super::torznab::category(name)
}

/// Text escaped for the Torznab feed's XML.
pub fn xml(text: &str) -> String {
    super::torznab::xml(text)
}

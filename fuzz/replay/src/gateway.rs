//! Targets for `junction-gateway`: what its HTTP fronts read from players, *arr apps and
//! the names networks give files.

use junction_gateway::http::fuzzing as front;

/// The HTTP fronts' parsers and escapers: a served range lies inside the content; an app's
/// query becomes plain lowercase words (and stays them when cleaned again); episode tags
/// are numbers of at most four digits that the name matches; text escaped for the Torznab
/// feed holds only XML 1.0 characters and nothing a reader would take for markup.
pub fn http(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    for size in [0, 1, u64::from(data.len() as u32) * 7919, u64::MAX] {
        if let Ok(r) = front::parse_range(text, size) {
            assert!(
                r.start < r.end && r.end <= size,
                "{text:?} in {size}: {r:?}"
            );
        }
    }
    let _ = front::parse_hash(text);
    let words = front::query_words(text);
    assert_eq!(front::query_words(&words), words, "{text:?}");
    assert!(!words.starts_with(' ') && !words.ends_with(' ') && !words.contains("  "));
    assert!(
        words.chars().all(|c| c == ' ' || c.is_alphanumeric()),
        "{words:?}"
    );
    for (season, episode) in front::episode_tags(text) {
        assert!(season <= 9999 && episode.is_none_or(|e| e <= 9999));
        assert!(front::matches_episode(text, Some(season), episode));
    }
    let _ = front::category(text);
    let x = front::xml(text);
    assert!(x.chars().all(xml_char), "{x:?}");
    assert!(!x.contains(['<', '>', '"', '\'']), "{x:?}");
    let entities = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
    assert!(
        x.match_indices('&')
            .all(|(i, _)| entities.iter().any(|e| x[i..].starts_with(e))),
        "{x:?}"
    );
}

/// A character XML 1.0 allows (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

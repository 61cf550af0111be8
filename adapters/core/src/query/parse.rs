//! The query parser: text → [`Query`].
//!
//! ```text
//! query := or
//! or    := and ("OR" and)*
//! and   := unary+                       (juxtaposition; "AND" is allowed and ignored)
//! unary := ("-" | "NOT") atom | atom
//! atom  := "(" or ")" | "\"phrase\"" | filter | content-id | link | word
//! ```

use super::{Cmp, Expr, FileType, Query};
use crate::{ContentId, HashKind, link};

/// Longest query accepted, in bytes; a bound on work and memory per search.
pub const MAX_QUERY_LEN: usize = 4096;
const MAX_TERMS: usize = 64;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("the query is empty")]
    Empty,
    #[error("the query is {0} bytes long; the limit is {MAX_QUERY_LEN}")]
    TooLong(usize),
    #[error("the query has more than {MAX_TERMS} terms")]
    TooManyTerms,
    #[error("parentheses nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("unclosed quote starting at byte {0}")]
    UnclosedQuote(usize),
    #[error("unbalanced or empty parentheses at byte {0}")]
    Unbalanced(usize),
    #[error("{0:?} needs a term on both sides")]
    DanglingOperator(String),
    #[error("bad {what} in {token:?}: {why}")]
    BadFilter {
        what: &'static str,
        token: String,
        why: String,
    },
    #[error("net: applies to the whole query and cannot appear inside OR, NOT or parentheses")]
    NestedNet,
    #[error("the query has only exclusions or filters; add a word, a phrase or a content id")]
    NothingToFind,
    #[error(transparent)]
    Link(#[from] link::LinkError),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open(usize),
    Close(usize),
    Or,
    Not,
    Phrase(String),
    Bare(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            _ if c.is_ascii_whitespace() => i += 1,
            b'(' => {
                tokens.push(Token::Open(i));
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close(i));
                i += 1;
            }
            b'"' => {
                let end = text[i + 1..]
                    .find('"')
                    .ok_or(ParseError::UnclosedQuote(i))?;
                tokens.push(Token::Phrase(text[i + 1..i + 1 + end].to_lowercase()));
                i += end + 2;
            }
            // A `-` before white space, a `)` or the end is a word, not a NOT.
            b'-' if bytes
                .get(i + 1)
                .is_some_and(|n| !n.is_ascii_whitespace() && *n != b')') =>
            {
                tokens.push(Token::Not);
                i += 1;
            }
            _ => {
                let rest = &text[i..];
                // An ed2k link may hold spaces in its name: it runs to its closing "|/".
                let len = if rest.starts_with("ed2k://") {
                    link_end(rest)
                } else {
                    rest.find(|c: char| c.is_ascii_whitespace() || c == '(' || c == ')' || c == '"')
                        .unwrap_or(rest.len())
                };
                let word = &rest[..len];
                tokens.push(match word {
                    "OR" | "|" | "||" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Bare(word.to_owned()),
                });
                i += len;
            }
        }
        if tokens.len() > MAX_TERMS * 2 {
            return Err(ParseError::TooManyTerms);
        }
    }
    tokens.retain(|t| !matches!(t, Token::Bare(w) if w == "AND" || w == "&&"));
    Ok(tokens)
}

/// The length of an `ed2k://` link at the start of `s`: up to a `|/` followed by the
/// end or white space (a `/|sources,…|/` tail included).
fn link_end(s: &str) -> usize {
    let mut from = 0;
    while let Some(p) = s[from..].find("|/") {
        let end = from + p + 2;
        if s[end..].starts_with("|sources,") {
            from = end;
            continue;
        }
        if s[end..].chars().next().is_none_or(|c| c.is_whitespace()) {
            return end;
        }
        from = end;
    }
    s.find(char::is_whitespace).unwrap_or(s.len())
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    networks: Vec<String>,
    terms: usize,
}

/// Parses query text into a [`Query`].
pub fn parse(text: &str) -> Result<Query, ParseError> {
    if text.len() > MAX_QUERY_LEN {
        return Err(ParseError::TooLong(text.len()));
    }
    // The same white space as the tokenizer's: trimming more (a vertical tab, say) would
    // drop what the tokenizer keeps inside a word.
    let tokens = tokenize(text.trim_matches(|c: char| c.is_ascii_whitespace()))?;
    if tokens.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        networks: Vec::new(),
        terms: 0,
    };
    let expr = p.or(0)?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(match t {
            Token::Close(at) | Token::Open(at) => ParseError::Unbalanced(*at),
            _ => ParseError::Unbalanced(text.len()),
        });
    }
    let expr = expr.ok_or(ParseError::Empty)?;
    if !expr.names_something() {
        return Err(ParseError::NothingToFind);
    }
    Ok(Query {
        expr,
        networks: p.networks,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// `None` when the alternatives were only `net:` selections.
    fn or(&mut self, depth: usize) -> Result<Option<Expr>, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        let mut alts = Vec::new();
        loop {
            let before = self.pos;
            let and = self.and(depth)?;
            if self.peek() == Some(&Token::Or) {
                let and = and.ok_or_else(|| ParseError::DanglingOperator("OR".into()))?;
                alts.push(and);
                self.pos += 1;
                continue;
            }
            match and {
                Some(e) => alts.push(e),
                None if !alts.is_empty() || self.pos == before => {
                    return Err(ParseError::DanglingOperator("OR".into()));
                }
                None => {}
            }
            break;
        }
        Ok(match alts.len() {
            0 => None,
            1 => alts.pop(),
            _ => Some(Expr::Or(alts)),
        })
    }

    fn and(&mut self, depth: usize) -> Result<Option<Expr>, ParseError> {
        let mut parts = Vec::new();
        let mut saw_net = false;
        while let Some(t) = self.peek() {
            if matches!(t, Token::Or | Token::Close(_)) {
                break;
            }
            match self.unary(depth)? {
                Some(e) => parts.push(e),
                None => saw_net = true,
            }
        }
        if saw_net && (depth > 0 || self.peek() == Some(&Token::Or)) {
            return Err(ParseError::NestedNet);
        }
        Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Expr::And(parts)),
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Option<Expr>, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            if matches!(self.peek(), None | Some(Token::Or | Token::Close(_))) {
                return Err(ParseError::DanglingOperator("-".into()));
            }
            let inner = self.unary(depth + 1)?.ok_or(ParseError::NestedNet)?;
            return Ok(Some(match inner {
                Expr::Not(x) => *x,
                x => Expr::Not(Box::new(x)),
            }));
        }
        self.atom(depth)
    }

    fn atom(&mut self, depth: usize) -> Result<Option<Expr>, ParseError> {
        let Some(token) = self.tokens.get(self.pos).cloned() else {
            return Err(ParseError::DanglingOperator("-".into()));
        };
        self.pos += 1;
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(ParseError::TooManyTerms);
        }
        match token {
            Token::Open(at) => {
                if matches!(self.peek(), Some(Token::Close(_))) {
                    return Err(ParseError::Unbalanced(at));
                }
                let inner = self.or(depth + 1)?;
                match self.peek() {
                    Some(Token::Close(_)) => self.pos += 1,
                    _ => return Err(ParseError::Unbalanced(at)),
                }
                inner.map(Some).ok_or(ParseError::Unbalanced(at))
            }
            Token::Close(at) => Err(ParseError::Unbalanced(at)),
            Token::Phrase(p) if p.trim().is_empty() => Err(ParseError::BadFilter {
                what: "phrase",
                token: "\"\"".into(),
                why: "it is empty".into(),
            }),
            Token::Phrase(p) => Ok(Some(Expr::Phrase(p))),
            Token::Or | Token::Not => Err(ParseError::DanglingOperator("OR".into())),
            Token::Bare(word) => self.bare(&word),
        }
    }

    fn bare(&mut self, word: &str) -> Result<Option<Expr>, ParseError> {
        let lower = word.to_ascii_lowercase();
        if let Some(nets) = lower.strip_prefix("net:") {
            for n in nets.split(',').filter(|n| !n.is_empty()) {
                let id = network_alias(n).ok_or_else(|| ParseError::BadFilter {
                    what: "network",
                    token: word.into(),
                    why: format!("{n:?} is not one of ed2k, gnutella, bittorrent"),
                })?;
                if !self.networks.iter().any(|x| x == id) {
                    self.networks.push(id.to_owned());
                }
            }
            return Ok(None);
        }
        if let Some(rest) = lower.strip_prefix("size") {
            let (cmp, value) = comparison(rest)
                .ok_or_else(|| bad("size", word, "expected size>N, size>=N, size<N or size<=N"))?;
            let n = parse_size(value).map_err(|why| bad("size", word, &why))?;
            return Ok(Some(Expr::Size(cmp, n)));
        }
        for prefix in ["sources", "seeders", "availability"] {
            if let Some(rest) = lower.strip_prefix(prefix)
                && let Some((cmp, value)) = comparison(rest)
            {
                let n = value
                    .parse()
                    .map_err(|_| bad("source count", word, "expected a whole number"))?;
                return Ok(Some(Expr::Sources(cmp, n)));
            }
        }
        if let Some(types) = lower.strip_prefix("type:") {
            let alts = types
                .split(',')
                .map(|t| {
                    FileType::from_name(t).map(Expr::Type).ok_or_else(|| {
                        bad(
                            "type",
                            word,
                            "expected video, audio, image, doc, archive or program",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Some(one_or_any(alts)));
        }
        if let Some(exts) = lower.strip_prefix("ext:") {
            let alts: Vec<Expr> = exts
                .split(',')
                .map(|e| e.trim_start_matches('.'))
                .filter(|e| !e.is_empty())
                .map(|e| Expr::Ext(e.to_owned()))
                .collect();
            if alts.is_empty() {
                return Err(bad("extension", word, "expected ext:mkv or ext:mkv,avi"));
            }
            return Ok(Some(one_or_any(alts)));
        }
        if lower.starts_with("urn:") {
            let id = ContentId::from_urns(None, [word])
                .map_err(|e| bad("content id", word, &e.to_string()))?;
            return Ok(Some(Expr::Id(id)));
        }
        if lower.starts_with("magnet:") || lower.starts_with("ed2k://") {
            let target = link::parse_link(word)?;
            return Ok(Some(Expr::Id(target.id)));
        }
        if let Some(id) = bare_hash(word) {
            return Ok(Some(Expr::Id(id)));
        }
        Ok(Some(Expr::Word(word.to_lowercase())))
    }
}

fn bad(what: &'static str, token: &str, why: &str) -> ParseError {
    ParseError::BadFilter {
        what,
        token: token.into(),
        why: why.into(),
    }
}

fn one_or_any(mut alts: Vec<Expr>) -> Expr {
    if alts.len() == 1 {
        alts.remove(0)
    } else {
        Expr::Or(alts)
    }
}

fn comparison(s: &str) -> Option<(Cmp, &str)> {
    [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ]
    .into_iter()
    .find_map(|(sym, cmp)| s.strip_prefix(sym).map(|rest| (cmp, rest)))
}

/// Network ids and the short names users type for them.
pub fn network_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "ed2k" | "edonkey" | "emule" | "amule" => "ed2k",
        "gnutella" | "gnut" | "gnet" => "gnutella",
        "bittorrent" | "bt" | "torrent" => "bittorrent",
        _ => return None,
    })
}

/// `700MB`, `2GiB`, `1.5G`, `123` (bytes). Decimal units are powers of 1000,
/// binary units (KiB, MiB…) powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{num:?} is not a number"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        u => {
            return Err(format!(
                "unknown unit {u:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("the size is too large".into());
    }
    Ok(bytes.round() as u64)
}

/// A bare hash typed as a word: 32 hex digits are an ed2k hash, 40 a BitTorrent info-hash.
fn bare_hash(word: &str) -> Option<ContentId> {
    let kind = match word.len() {
        32 => HashKind::Ed2k,
        40 => HashKind::Btih,
        _ => return None,
    };
    if !word.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digest = kind.parse_digest(word).ok()?;
    Some(ContentId::new(None).with(kind, &digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Expr::*;

    fn w(s: &str) -> Expr {
        Word(s.into())
    }

    #[test]
    fn golden_parses() {
        let cases: Vec<(&str, Expr)> = vec![
            ("ubuntu", w("ubuntu")),
            ("Ubuntu ISO", And(vec![w("ubuntu"), w("iso")])),
            ("a AND b", And(vec![w("a"), w("b")])),
            ("a OR b", Or(vec![w("a"), w("b")])),
            ("a b OR c", Or(vec![And(vec![w("a"), w("b")]), w("c")])),
            ("a (b OR c)", And(vec![w("a"), Or(vec![w("b"), w("c")])])),
            ("a -b", And(vec![w("a"), Not(Box::new(w("b")))])),
            ("a NOT b", And(vec![w("a"), Not(Box::new(w("b")))])),
            (
                "a -(b OR c)",
                And(vec![w("a"), Not(Box::new(Or(vec![w("b"), w("c")])))]),
            ),
            (
                "\"Big Buck\" bunny",
                And(vec![Phrase("big buck".into()), w("bunny")]),
            ),
            (
                "x size>700MB",
                And(vec![w("x"), Size(Cmp::Gt, 700_000_000)]),
            ),
            ("x size<2GiB", And(vec![w("x"), Size(Cmp::Lt, 2 << 30)])),
            (
                "x size>=1.5g",
                And(vec![w("x"), Size(Cmp::Ge, 1_500_000_000)]),
            ),
            ("x type:video", And(vec![w("x"), Type(FileType::Video)])),
            (
                "x type:music,doc",
                And(vec![
                    w("x"),
                    Or(vec![Type(FileType::Audio), Type(FileType::Doc)]),
                ]),
            ),
            ("x ext:.mkv", And(vec![w("x"), Ext("mkv".into())])),
            (
                "x ext:mkv,avi",
                And(vec![w("x"), Or(vec![Ext("mkv".into()), Ext("avi".into())])]),
            ),
            ("x sources>=3", And(vec![w("x"), Sources(Cmp::Ge, 3)])),
            ("x-men", w("x-men")),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap().expr, want, "{text}");
        }
    }

    #[test]
    fn networks_are_lifted_out() {
        let q = parse("ubuntu net:ed2k,bt").unwrap();
        assert_eq!(q.expr, w("ubuntu"));
        assert_eq!(q.networks, vec!["ed2k", "bittorrent"]);
        assert_eq!(parse("(a net:bt) OR b"), Err(ParseError::NestedNet));
        assert!(matches!(
            parse("a net:kad"),
            Err(ParseError::BadFilter {
                what: "network",
                ..
            })
        ));
    }

    #[test]
    fn content_ids_and_links() {
        let sha1 = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";
        let Id(id) = parse(sha1).unwrap().expr else {
            panic!()
        };
        assert!(id.get(HashKind::Sha1).is_some());
        let Id(id) = parse("31D6CFE0D16AE931B73C59D7E0C089C0").unwrap().expr else {
            panic!()
        };
        assert!(id.get(HashKind::Ed2k).is_some());
        let Id(id) = parse("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
            .unwrap()
            .expr
        else {
            panic!()
        };
        assert!(id.get(HashKind::Btih).is_some());
        let link = "ed2k://|file|My File.avi|1234|31D6CFE0D16AE931B73C59D7E0C089C0|/";
        let Id(id) = parse(link).unwrap().expr else {
            panic!()
        };
        assert_eq!(id.size, Some(1234));
        let magnet = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=x";
        assert!(matches!(parse(magnet).unwrap().expr, Id(_)));
    }

    /// Fuzz finding (query_parse): an id with a size, or with several hashes, printed as
    /// its first URN alone and reparsed to a different id.
    #[test]
    fn printed_ids_keep_their_size_and_every_hash() {
        for text in [
            "ed2k://|file|x|5|01010101010101010101010101010101|/",
            "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a\
             &xt=urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB&xl=7",
            "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB",
        ] {
            let q = parse(text).unwrap();
            assert_eq!(parse(&q.expr.to_string()).unwrap().expr, q.expr, "{text}");
        }
        let q = parse("urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB").unwrap();
        assert_eq!(
            q.expr.to_string(),
            "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB"
        );
    }

    /// Fuzz finding (query_parse): a word starting with a vertical tab (kept by the
    /// tokenizer, which splits at ASCII white space) lost it when printed and reparsed,
    /// as the whole text was trimmed of Unicode white space first.
    /// Fuzz finding (query_parse): a lone `-` word inside a group printed as `-)`, which
    /// parsed as a NOT with nothing to negate.
    #[test]
    fn a_lone_dash_before_a_closing_parenthesis_is_a_word() {
        let q = parse(" ~-dersb OR c  - ` - ").unwrap();
        assert_eq!(parse(&q.expr.to_string()).unwrap().expr, q.expr);
        assert!(parse("(a -)").is_ok());
    }

    #[test]
    fn printed_words_keep_a_leading_vertical_tab() {
        let q = parse("--\u{b}abc linj").unwrap();
        assert_eq!(parse(&q.expr.to_string()).unwrap().expr, q.expr);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("   ", "empty"),
            ("(a b", "unbalanced"),
            ("a b)", "unbalanced"),
            ("()", "unbalanced"),
            ("a OR", "\"OR\""),
            ("OR a", "\"OR\""),
            ("a OR OR b", "\"OR\""),
            ("\"open", "quote"),
            ("x size>10QB", "unknown unit"),
            ("x size=10", "size"),
            ("x type:movies2", "type"),
            ("x sources>=many", "source count"),
            ("-a", "only exclusions"),
            ("size>1GB", "only exclusions"),
            ("urn:sha1:XYZ", "content id"),
            ("magnet:?dn=nothing", "magnet"),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(
                err.to_lowercase().contains(&needle.to_lowercase()),
                "{text:?} → {err}"
            );
        }
        assert!(matches!(
            parse(&"a ".repeat(3000)),
            Err(ParseError::TooLong(_))
        ));
        assert!(matches!(
            parse(&"a ".repeat(100)),
            Err(ParseError::TooManyTerms)
        ));
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(
            parse(&deep),
            Err(ParseError::TooDeep | ParseError::TooManyTerms)
        ));
    }

    #[test]
    fn display_reparses_to_the_same_expression() {
        for text in [
            "a (b OR c) -d size>10 ext:mkv",
            "\"x y\" OR z -(a b) type:video",
            "a sources>=2",
        ] {
            let q = parse(text).unwrap();
            assert_eq!(parse(&q.expr.to_string()).unwrap().expr, q.expr, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[ a-z()\"|:<>=.,-]{0,60}") {
            let _ = parse(&s);
        }
    }
}

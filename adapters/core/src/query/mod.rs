//! The query language every network is searched with, as an AST.
//!
//! `parse` turns the text a user types into a [`Query`]; networks evaluate what their
//! [`Capabilities`](crate::Capabilities) allow, and the gateway checks the rest with
//! [`Expr::matches`].

mod filetype;
mod parse;

pub use filetype::FileType;
pub use parse::{ParseError, parse};

use crate::ContentId;

/// A parsed query: a boolean expression plus the networks it is limited to.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub expr: Expr,
    /// From `net:`; empty means every network.
    pub networks: Vec<String>,
}

impl Query {
    pub fn new(expr: Expr) -> Self {
        Query {
            expr,
            networks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    pub fn test(self, value: u64, bound: u64) -> bool {
        match self {
            Cmp::Gt => value > bound,
            Cmp::Ge => value >= bound,
            Cmp::Lt => value < bound,
            Cmp::Le => value <= bound,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        }
    }
}

/// One node of a query. Words and phrases are kept lower-case.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Word(String),
    Phrase(String),
    Size(Cmp, u64),
    Type(FileType),
    Ext(String),
    Sources(Cmp, u32),
    /// A content id (a URN, a bare hash, or the id a link names).
    Id(ContentId),
}

/// What a hit looks like to a filter.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sources: u32,
    pub id: &'a ContentId,
}

impl Expr {
    /// Evaluates the whole expression locally.
    pub fn matches(&self, c: &Candidate<'_>) -> bool {
        match self {
            Expr::And(xs) => xs.iter().all(|x| x.matches(c)),
            Expr::Or(xs) => xs.iter().any(|x| x.matches(c)),
            Expr::Not(x) => !x.matches(c),
            Expr::Word(w) | Expr::Phrase(w) => text_contains(c.name, w),
            Expr::Size(cmp, n) => cmp.test(c.size, *n),
            Expr::Type(t) => FileType::of_name(c.name) == Some(*t),
            Expr::Ext(e) => extension(c.name).is_some_and(|x| x.eq_ignore_ascii_case(e)),
            Expr::Sources(cmp, n) => cmp.test(u64::from(c.sources), u64::from(*n)),
            Expr::Id(id) => id.relation(c.id) == crate::Identity::Same,
        }
    }

    /// Whether every match must contain a word, a phrase or a content id: what a network
    /// needs to search at all (filters and exclusions alone would mean "everything").
    pub fn names_something(&self) -> bool {
        match self {
            Expr::And(xs) => xs.iter().any(Expr::names_something),
            Expr::Or(xs) => xs.iter().all(Expr::names_something),
            Expr::Word(_) | Expr::Phrase(_) | Expr::Id(_) => true,
            _ => false,
        }
    }

    /// The words and phrases a hit should contain, for relevance ranking
    /// (those under a NOT are not wanted and left out).
    pub fn positive_terms(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_terms(&mut out);
        out
    }

    fn collect_terms<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| x.collect_terms(out)),
            Expr::Word(w) | Expr::Phrase(w) => out.push(w),
            _ => {}
        }
    }
}

impl std::fmt::Display for Expr {
    /// Writes the expression back in query syntax (parseable again).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, xs: &[Expr], sep: &str| {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                match x {
                    Expr::And(_) | Expr::Or(_) => write!(f, "({x})")?,
                    _ => write!(f, "{x}")?,
                }
            }
            Ok(())
        };
        match self {
            Expr::And(xs) => join(f, xs, " "),
            Expr::Or(xs) => join(f, xs, " OR "),
            Expr::Not(x) => match **x {
                Expr::And(_) | Expr::Or(_) => write!(f, "-({x})"),
                _ => write!(f, "-{x}"),
            },
            Expr::Word(w) => f.write_str(w),
            Expr::Phrase(p) => write!(f, "\"{p}\""),
            Expr::Size(c, n) => write!(f, "size{}{n}", c.symbol()),
            Expr::Type(t) => write!(f, "type:{}", t.name()),
            Expr::Ext(e) => write!(f, "ext:{e}"),
            Expr::Sources(c, n) => write!(f, "sources{}{n}", c.symbol()),
            // One hash alone prints as its URN; several, or a size, as a magnet link, so
            // the printed query parses back to the same id.
            Expr::Id(id) => match (id.urns().as_slice(), id.size) {
                ([], _) => Ok(()),
                ([urn], None) => f.write_str(urn),
                (urns, size) => {
                    f.write_str("magnet:?")?;
                    for (i, urn) in urns.iter().enumerate() {
                        let sep = if i == 0 { "" } else { "&" };
                        write!(f, "{sep}xt={urn}")?;
                    }
                    size.map_or(Ok(()), |n| write!(f, "&xl={n}"))
                }
            },
        }
    }
}

/// Lower-cases and turns everything but letters and digits into single spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for ch in text.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Whether `term` occurs in `name` starting at a word boundary, so `ubu` finds
/// `Ubuntu-24.04.iso` but `buntu` does not, and `24 04` finds it too.
pub fn text_contains(name: &str, term: &str) -> bool {
    let term = normalize(term);
    if term.is_empty() {
        return true;
    }
    let name = format!(" {}", normalize(name));
    name.contains(&format!(" {term}"))
}

/// The extension of a file name, without the dot.
pub fn extension(name: &str) -> Option<&str> {
    name.rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, size: u64) -> (String, u64, ContentId) {
        (name.to_owned(), size, ContentId::new(Some(size)))
    }

    #[test]
    fn local_evaluation() {
        let q = parse("(ubuntu OR debian) -beta size>1MB ext:iso").unwrap();
        let check = |name: &str, size: u64| {
            let (n, s, id) = cand(name, size);
            q.expr.matches(&Candidate {
                name: &n,
                size: s,
                sources: 1,
                id: &id,
            })
        };
        assert!(check("Ubuntu-24.04-desktop.iso", 5_000_000));
        assert!(check("debian netinst.iso", 2_000_000));
        assert!(!check("debian netinst beta.iso", 2_000_000));
        assert!(!check("debian netinst.iso", 1_000));
        assert!(!check("debian netinst.img", 2_000_000));
        assert!(!check("fedora.iso", 2_000_000));
    }

    #[test]
    fn word_boundaries() {
        assert!(text_contains("Ubuntu-24.04.iso", "ubu"));
        assert!(!text_contains("Ubuntu-24.04.iso", "buntu"));
        assert!(text_contains("Ubuntu-24.04.iso", "24.04"));
        assert!(text_contains("The_Big Show", "big show"));
    }
}

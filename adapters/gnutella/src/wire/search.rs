//! Turning the contract's query AST into what Gnutella can evaluate:
//! keywords (ANDed) and `urn:sha1`.

use junction_core::{Expr, HashKind, Query as CoreQuery};

use crate::wire::message::{Query, QueryFlags};
use crate::wire::urn::{Sha1Hash, Urn};

/// Longest criteria string we send.
pub const MAX_CRITERIA: usize = 200;

/// What a Gnutella query can carry of an AST.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchTerms {
    /// Keywords every hit must contain (lower-case).
    pub keywords: Vec<String>,
    /// A SHA-1 the query names.
    pub sha1: Option<Sha1Hash>,
}

impl SearchTerms {
    /// Keywords and SHA-1 found on the AND spine of `q`; OR branches, NOT,
    /// size, type, extension and source filters are left to the gateway.
    pub fn from_query(q: &CoreQuery) -> Self {
        let mut p = SearchTerms::default();
        p.collect(&q.expr);
        p
    }

    fn collect(&mut self, e: &Expr) {
        match e {
            Expr::And(xs) => xs.iter().for_each(|x| self.collect(x)),
            Expr::Word(w) | Expr::Phrase(w) => {
                for k in w
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|k| !k.is_empty())
                {
                    let k = k.to_lowercase();
                    if !self.keywords.contains(&k) {
                        self.keywords.push(k);
                    }
                }
            }
            Expr::Id(id) => {
                if self.sha1.is_none()
                    && let Some(d) = id.get(HashKind::Sha1)
                    && let Ok(a) = <[u8; 20]>::try_from(d)
                {
                    self.sha1 = Some(Sha1Hash(a));
                }
            }
            _ => {}
        }
    }

    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.sha1.is_none() && self.keywords.is_empty()
    }

    /// The wire query: by URN when a SHA-1 is named, else the keywords.
    /// `firewalled` sets the querier-firewalled flag. Bit 0x8000 is always set.
    pub fn to_wire(&self, firewalled: bool) -> Query {
        let mut q = match self.sha1 {
            Some(h) => Query::by_urn(&Urn::Sha1(h)),
            None => {
                let mut text = String::new();
                for k in &self.keywords {
                    if text.len() + k.len() + 1 > MAX_CRITERIA {
                        break;
                    }
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(k);
                }
                Query::keywords(&text)
            }
        };
        q.flags.0 |= QueryFlags::MARK;
        if firewalled {
            q.flags.0 |= QueryFlags::FIREWALLED;
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::query::parse;

    #[test]
    fn keywords_from_the_and_spine_only() {
        let p = SearchTerms::from_query(
            &parse("Ubuntu \"desktop iso\" -beta size>1MB (a OR b)").unwrap(),
        );
        assert_eq!(p.keywords, vec!["ubuntu", "desktop", "iso"]);
        let q = p.to_wire(true);
        assert_eq!(q.text(), "ubuntu desktop iso");
        assert!(q.flags.has(QueryFlags::MARK) && q.flags.has(QueryFlags::FIREWALLED));
    }

    #[test]
    fn sha1_queries_go_by_urn() {
        let p =
            SearchTerms::from_query(&parse("urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ").unwrap());
        assert_eq!(p.sha1, Some(Sha1Hash::digest(b"")));
        let q = p.to_wire(false);
        assert!(q.criteria.is_empty());
        assert_eq!(q.urns(), vec![Urn::Sha1(Sha1Hash::digest(b""))]);
        let only_size = CoreQuery::new(Expr::Size(junction_core::query::Cmp::Gt, 1));
        assert!(SearchTerms::from_query(&only_size).is_empty());
    }
}

//! Planning: the part of a query each network can evaluate itself.
//!
//! A network gets a *relaxation* of the query: an expression that matches at least
//! everything the full query matches. Whatever was relaxed away is listed as ignored, and
//! the gateway then checks the full query against each hit itself. A network without OR
//! gets one query per OR branch (bounded), so `(a OR b) c` still finds both.

use junction_core::{Capabilities, Expr, Query};

/// Most sub-queries one search sends to a network that lacks OR.
const MAX_BRANCHES: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlan {
    /// What to send; usually one query.
    pub queries: Vec<Query>,
    /// Query parts the network cannot evaluate, as the user wrote them.
    pub ignored: Vec<String>,
    /// Whether hits must be checked against the full query.
    pub filter_locally: bool,
}

/// Plans `expr` for a network, or says why it cannot search it at all.
pub fn plan(expr: &Expr, caps: &Capabilities) -> Result<SearchPlan, String> {
    let mut ignored = Vec::new();
    let branches = if !caps.or && contains_or(expr) {
        match dnf(expr) {
            Some(b) => b.into_iter().map(Expr::And).collect(),
            None => vec![expr.clone()],
        }
    } else {
        vec![expr.clone()]
    };
    let split = branches.len() > 1;
    let mut queries = Vec::new();
    let mut exact = !split;
    for branch in &branches {
        let (pushed, ok) = push(branch, caps, &mut ignored);
        exact &= ok;
        match pushed {
            Some(e) if e.names_something() => {
                let e = flatten(e);
                if !queries.iter().any(|q: &Query| q.expr == e) {
                    queries.push(Query::new(e));
                }
            }
            // A branch with nothing searchable would mean "everything": give up on it.
            _ => exact = false,
        }
    }
    if queries.is_empty() {
        return Err(format!(
            "cannot search for {expr} here: it evaluates {}",
            describe(caps)
        ));
    }
    ignored.dedup();
    Ok(SearchPlan {
        queries,
        ignored,
        filter_locally: !exact,
    })
}

/// Returns the relaxed expression (None = "anything") and whether it is exact.
fn push(e: &Expr, caps: &Capabilities, ignored: &mut Vec<String>) -> (Option<Expr>, bool) {
    let keep = |ok: bool, ignored: &mut Vec<String>| {
        if ok {
            (Some(e.clone()), true)
        } else {
            ignored.push(e.to_string());
            (None, false)
        }
    };
    match e {
        Expr::Word(_) => keep(caps.keywords, ignored),
        Expr::Phrase(p) if !caps.phrases && caps.keywords => {
            // Words of the phrase, in any order: a superset the gateway narrows down.
            ignored.push(e.to_string());
            let words: Vec<Expr> = p.split_whitespace().map(|w| Expr::Word(w.into())).collect();
            (Some(Expr::And(words)), false)
        }
        Expr::Phrase(_) => keep(caps.phrases, ignored),
        Expr::Size(..) => keep(caps.size, ignored),
        Expr::Type(_) => keep(caps.file_type, ignored),
        Expr::Ext(_) => keep(caps.extension, ignored),
        Expr::Sources(..) => keep(caps.sources, ignored),
        Expr::Id(id) => keep(id.hashes().any(|(k, _)| caps.searches(k)), ignored),
        Expr::And(xs) => {
            let mut exact = true;
            let parts: Vec<Expr> = xs
                .iter()
                .filter_map(|x| {
                    let (p, ok) = push(x, caps, ignored);
                    exact &= ok;
                    p
                })
                .collect();
            match parts.len() {
                0 => (None, false),
                _ => (Some(Expr::And(parts)), exact),
            }
        }
        Expr::Or(xs) => {
            if !caps.or {
                return keep(false, ignored);
            }
            let mut scratch = Vec::new();
            let mut exact = true;
            let mut parts = Vec::new();
            for x in xs {
                match push(x, caps, &mut scratch) {
                    (Some(p), ok) => {
                        exact &= ok;
                        parts.push(p);
                    }
                    // One branch that matches anything makes the whole OR match anything.
                    (None, _) => return keep(false, ignored),
                }
            }
            ignored.extend(scratch);
            (Some(Expr::Or(parts)), exact)
        }
        Expr::Not(x) => {
            // Relaxing inside a NOT would narrow the result, so push it only when exact.
            let mut scratch = Vec::new();
            match push(x, caps, &mut scratch) {
                (Some(p), true) if caps.not => (Some(Expr::Not(Box::new(p))), true),
                _ => keep(false, ignored),
            }
        }
    }
}

fn contains_or(e: &Expr) -> bool {
    match e {
        Expr::Or(_) => true,
        Expr::And(xs) => xs.iter().any(contains_or),
        _ => false,
    }
}

/// Disjunctive normal form of the AND/OR skeleton (NOT subtrees stay whole), or None when
/// it has more than [`MAX_BRANCHES`] conjunctions.
fn dnf(e: &Expr) -> Option<Vec<Vec<Expr>>> {
    match e {
        Expr::Or(xs) => {
            let mut out = Vec::new();
            for x in xs {
                out.extend(dnf(x)?);
                if out.len() > MAX_BRANCHES {
                    return None;
                }
            }
            Some(out)
        }
        Expr::And(xs) => {
            let mut acc: Vec<Vec<Expr>> = vec![Vec::new()];
            for x in xs {
                let alts = dnf(x)?;
                if acc.len() * alts.len() > MAX_BRANCHES {
                    return None;
                }
                acc = acc
                    .iter()
                    .flat_map(|a| {
                        alts.iter()
                            .map(move |b| [a.as_slice(), b.as_slice()].concat())
                    })
                    .collect();
            }
            Some(acc)
        }
        leaf => Some(vec![vec![leaf.clone()]]),
    }
}

/// Removes one-element ANDs and nested ANDs.
fn flatten(e: Expr) -> Expr {
    match e {
        Expr::And(xs) => {
            let mut out = Vec::new();
            for x in xs.into_iter().map(flatten) {
                match x {
                    Expr::And(inner) => out.extend(inner),
                    x => out.push(x),
                }
            }
            if out.len() == 1 {
                out.remove(0)
            } else {
                Expr::And(out)
            }
        }
        Expr::Or(xs) => Expr::Or(xs.into_iter().map(flatten).collect()),
        Expr::Not(x) => Expr::Not(Box::new(flatten(*x))),
        e => e,
    }
}

fn describe(caps: &Capabilities) -> String {
    let mut parts = Vec::new();
    if caps.keywords {
        parts.push("keywords".to_owned());
    }
    if !caps.ids.is_empty() || !caps.search_ids.is_empty() {
        let kinds: Vec<String> = caps
            .ids
            .iter()
            .chain(&caps.search_ids)
            .map(|k| format!("urn:{k}"))
            .collect();
        parts.push(kinds.join("/"));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::HashKind;
    use junction_core::query::parse;

    fn keywords_only() -> Capabilities {
        Capabilities {
            keywords: true,
            ids: vec![HashKind::Sha1],
            ..Default::default()
        }
    }

    fn everything() -> Capabilities {
        Capabilities::all()
    }

    fn texts(p: &SearchPlan) -> Vec<String> {
        p.queries.iter().map(|q| q.expr.to_string()).collect()
    }

    #[test]
    fn a_capable_network_gets_the_whole_query() {
        let q = parse("(a OR b) -c size>10 ext:mkv").unwrap();
        let p = plan(&q.expr, &everything()).unwrap();
        assert_eq!(p.queries, vec![Query::new(q.expr.clone())]);
        assert!(!p.filter_locally && p.ignored.is_empty());
    }

    #[test]
    fn a_keyword_network_gets_one_query_per_or_branch_and_the_gateway_filters() {
        let q = parse("(ubuntu OR debian) iso -beta size>700MB").unwrap();
        let p = plan(&q.expr, &keywords_only()).unwrap();
        assert_eq!(texts(&p), vec!["ubuntu iso", "debian iso"]);
        assert!(p.filter_locally);
        assert!(p.ignored.contains(&"-beta".to_owned()));
        assert!(p.ignored.contains(&"size>700000000".to_owned()));
    }

    #[test]
    fn phrases_relax_to_their_words() {
        let q = parse("\"big buck bunny\"").unwrap();
        let p = plan(&q.expr, &keywords_only()).unwrap();
        assert_eq!(texts(&p), vec!["big buck bunny"]);
        assert!(p.filter_locally);
    }

    #[test]
    fn a_network_that_cannot_search_says_why() {
        let q = parse("urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a").unwrap();
        let e = plan(&q.expr, &keywords_only()).unwrap_err();
        assert!(e.contains("keywords and urn:sha1"), "{e}");
    }

    #[test]
    fn too_many_branches_fall_back_to_relaxing() {
        let q = parse("(a OR b OR c) (d OR e OR f) (g OR h)").unwrap();
        let e = plan(&q.expr, &keywords_only()).unwrap_err();
        assert!(e.contains("cannot search"), "{e}");
        let q = parse("x (a OR b OR c) (d OR e OR f) (g OR h)").unwrap();
        let p = plan(&q.expr, &keywords_only()).unwrap();
        assert_eq!(texts(&p), vec!["x"]);
    }
}

//! The loopback lab (issue 6): filled in next.

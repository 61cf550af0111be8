//! An ordered, case-insensitive header list (HTTP heads, and Gnutella's handshake).
//!
//! Order, the sender's spelling of names and repeated headers are kept, so a
//! decoded head re-encodes to the same bytes when the sender used the usual
//! `Name: value` form.

use bytes::BufMut;

use super::HeadError;

/// Ordered header list with case-insensitive lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse header lines (without their line endings). A line starting with
    /// a space or tab continues the previous header (RFC 822 folding, allowed
    /// by the Gnutella 0.6 handshake spec); its text is joined with one space.
    pub fn parse_lines(lines: &[&[u8]]) -> Result<Self, HeadError> {
        let mut entries: Vec<(String, String)> = Vec::with_capacity(lines.len());
        for raw in lines {
            let line = String::from_utf8_lossy(raw);
            if line.starts_with([' ', '\t']) {
                let Some(last) = entries.last_mut() else {
                    return Err(HeadError::invalid(
                        "header",
                        "continuation line before any header",
                    ));
                };
                let more = line.trim();
                if !more.is_empty() {
                    if !last.1.is_empty() {
                        last.1.push(' ');
                    }
                    last.1.push_str(more);
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(HeadError::invalid(
                    "header",
                    format!("line without ':' : {:?}", truncate(&line)),
                ));
            };
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(HeadError::invalid(
                    "header",
                    format!("bad header name {:?}", truncate(name)),
                ));
            }
            entries.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(Headers { entries })
    }

    /// Append a header (repeats allowed).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.push((name.into(), value.into()));
        self
    }

    /// Builder form of [`Headers::push`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// Replace every header called `name` by one with `value` (kept at the
    /// position of the first one, appended otherwise).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(i) = self.position(name) {
            self.entries[i].1 = value;
            let mut n = 0;
            self.entries.retain(|(k, _)| {
                !k.eq_ignore_ascii_case(name) || {
                    n += 1;
                    n == 1
                }
            });
        } else {
            self.entries.push((name.to_owned(), value));
        }
    }

    /// Remove every header called `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.entries[i].1.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The comma-separated items of every `name` header, trimmed.
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Whether the comma-separated list in `name` holds `token` (ignoring
    /// case and `;parameters`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name).any(|item| {
            item.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(token))
        })
    }

    /// `True`/`False` (any case). `None` if absent or not a boolean.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        let v = self.get(name)?;
        if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    }

    /// A decimal number. `None` if absent or not a number.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.trim().parse().ok()
    }

    /// All entries in order, as sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No header at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write `Name: value\r\n` lines (not the terminating empty line).
    pub fn encode(&self, dst: &mut impl BufMut) {
        for (k, v) in &self.entries {
            dst.put_slice(k.as_bytes());
            dst.put_slice(b": ");
            dst.put_slice(v.as_bytes());
            dst.put_slice(b"\r\n");
        }
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_repeated_and_folded() {
        let lines: Vec<&[u8]> = vec![
            b"x-try: 1.2.3.4:5, 6.7.8.9",
            b"X-Try: 10.0.0.1:99",
            b"User-Agent: foo",
            b"\tbar",
        ];
        let h = Headers::parse_lines(&lines).unwrap();
        assert_eq!(h.get("USER-AGENT"), Some("foo bar"));
        assert_eq!(
            h.list("X-Try").collect::<Vec<_>>(),
            ["1.2.3.4:5", "6.7.8.9", "10.0.0.1:99"]
        );
        assert!(Headers::parse_lines(&[b" orphan" as &[u8]]).is_err());
        assert!(Headers::parse_lines(&[b"no colon" as &[u8]]).is_err());
    }

    #[test]
    fn set_replaces_all() {
        let mut h = Headers::new().with("A", "1").with("b", "2").with("a", "3");
        h.set("a", "9");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![("A", "9"), ("b", "2")]);
        assert!(h.has_token("b", "2"));
    }
}

//! PARQ, the upload queue: the `X-Queued` header.

use std::fmt;

/// PARQ `X-Queued: position=…; length=…; ETA=…; lifetime=…; ID=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queued {
    /// Position in the queue.
    pub position: Option<u64>,
    /// Queue length.
    pub length: Option<u64>,
    /// Estimated seconds until a slot.
    pub eta: Option<u64>,
    /// Seconds the slot is kept without a retry.
    pub lifetime: Option<u64>,
    /// Queue id (hex).
    pub id: Option<String>,
}

impl Queued {
    /// Parse the header value (unknown keys ignored, case-insensitive).
    pub fn parse(v: &str) -> Self {
        let mut q = Queued::default();
        for kv in v.split([';', ',']) {
            let Some((k, val)) = kv.split_once('=') else {
                continue;
            };
            let (k, val) = (k.trim(), val.trim());
            let num = val.parse().ok();
            match k.to_ascii_lowercase().as_str() {
                "position" => q.position = num,
                "length" => q.length = num,
                "eta" => q.eta = num,
                "lifetime" => q.lifetime = num,
                "id" => q.id = Some(val.to_owned()),
                _ => {}
            }
        }
        q
    }
}

impl fmt::Display for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.position {
            parts.push(format!("position={p}"));
        }
        if let Some(l) = self.length {
            parts.push(format!("length={l}"));
        }
        if let Some(e) = self.eta {
            parts.push(format!("ETA={e}"));
        }
        if let Some(l) = self.lifetime {
            parts.push(format!("lifetime={l}"));
        }
        if let Some(id) = &self.id {
            parts.push(format!("ID={id}"));
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued() {
        let q = Queued::parse("position=1503; length=1840; ETA=4200; lifetime=3600; ID=abc");
        assert_eq!(
            (q.position, q.eta, q.id.as_deref()),
            (Some(1503), Some(4200), Some("abc"))
        );
        assert_eq!(Queued::parse(&q.to_string()), q);
    }
}

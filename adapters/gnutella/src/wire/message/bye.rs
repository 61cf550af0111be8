//! Bye (0x02): `<code u16 LE><reason NUL>`; the reason may carry HTTP-style
//! header lines after a CRLF (gtk-gnutella adds `Server:` for codes ≠ 200).

use bytes::{BufMut, Bytes};

use super::take;
use crate::error::Result;
use junction_core::http::Headers;

/// Bye.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye {
    /// 2xx normal, 4xx the peer's fault, 5xx our error.
    pub code: u16,
    /// Reason bytes (without the NUL).
    pub reason: Bytes,
    /// Whether the reason was NUL-terminated (it should be).
    pub nul_terminated: bool,
    /// Anything after the NUL (normally nothing).
    pub trailing: Bytes,
}

impl Bye {
    /// A Bye with a plain reason.
    pub fn new(code: u16, reason: &str) -> Self {
        Bye {
            code,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
            nul_terminated: true,
            trailing: Bytes::new(),
        }
    }

    /// Decode the payload.
    pub fn decode(mut p: Bytes) -> Result<Self> {
        let code = u16::from_le_bytes(take(&mut p, "bye")?);
        let (reason, nul_terminated, trailing) = match p.iter().position(|&b| b == 0) {
            Some(n) => {
                let reason = p.split_to(n);
                let trailing = p.split_off(1);
                (reason, true, trailing)
            }
            None => (p, false, Bytes::new()),
        };
        Ok(Bye {
            code,
            reason,
            nul_terminated,
            trailing,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u16_le(self.code);
        dst.put_slice(&self.reason);
        if self.nul_terminated {
            dst.put_u8(0);
        }
        dst.put_slice(&self.trailing);
    }

    /// The first line of the reason.
    pub fn reason_line(&self) -> String {
        let s = String::from_utf8_lossy(&self.reason);
        s.split("\r\n").next().unwrap_or("").to_owned()
    }

    /// Header lines after the first CRLF (e.g. `Server:`); malformed lines
    /// give an empty list.
    pub fn headers(&self) -> Headers {
        let s = String::from_utf8_lossy(&self.reason);
        let lines: Vec<&[u8]> = s
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect();
        Headers::parse_lines(&lines).unwrap_or_default()
    }
}

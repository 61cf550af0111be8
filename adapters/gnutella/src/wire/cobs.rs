//! Consistent Overhead Byte Stuffing, as used by GGEP to keep NUL bytes out of
//! extension data (QueryHit result areas are NUL-terminated).
//!
//! Encoding: runs of up to 254 non-zero bytes, each preceded by a code byte
//! `run length + 1`; a code below 0xFF implies a zero after its run, except
//! the implicit trailing one, which the decoder drops.

use crate::error::{Error, Result};

/// COBS-encode `data` (output never contains 0x00).
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 254 + 1);
    let mut code_at = out.len();
    out.push(0);
    let mut code: u8 = 1;
    for (i, &b) in data.iter().enumerate() {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code = 1;
                // A full run ending the data needs no further code byte.
                if i + 1 == data.len() {
                    return out;
                }
                code_at = out.len();
                out.push(0);
            }
        }
    }
    out[code_at] = code;
    out
}

/// Decode COBS data. Fails on a 0x00 code byte or a run that overruns the
/// input, which a correct encoder never produces.
pub fn decode(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut pos = 0;
    while pos < data.len() {
        let code = data[pos];
        if code == 0 {
            return Err(Error::invalid(
                "COBS data",
                format!("zero code byte at offset {pos}"),
            ));
        }
        let run = usize::from(code) - 1;
        let start = pos + 1;
        let Some(chunk) = data.get(start..start + run) else {
            return Err(Error::invalid(
                "COBS data",
                format!("run of {run} bytes at offset {pos} overruns the data"),
            ));
        };
        if chunk.contains(&0) {
            return Err(Error::invalid("COBS data", "NUL byte inside a run"));
        }
        out.extend_from_slice(chunk);
        pos = start + run;
        if code != 0xFF && pos < data.len() {
            out.push(0);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Examples from Cheshire & Baker / Wikipedia (without the frame delimiter).
    #[test]
    fn golden() {
        let cases: &[(&[u8], &[u8])] = &[
            (&[], &[0x01]),
            (&[0x00], &[0x01, 0x01]),
            (&[0x00, 0x00], &[0x01, 0x01, 0x01]),
            (&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33]),
            (&[0x11, 0x22, 0x33, 0x44], &[0x05, 0x11, 0x22, 0x33, 0x44]),
            (&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01]),
        ];
        for (raw, enc) in cases {
            assert_eq!(&encode(raw), enc, "encode {raw:02x?}");
            assert_eq!(&decode(enc).unwrap(), raw, "decode {enc:02x?}");
        }
        // 254 non-zero bytes: one full block, no trailing code.
        let run: Vec<u8> = (1..=254).collect();
        let enc = encode(&run);
        assert_eq!(enc.len(), 255);
        assert_eq!(enc[0], 0xFF);
        assert_eq!(decode(&enc).unwrap(), run);
        // 255 bytes 01..FF: FF block then 02 FF.
        let run: Vec<u8> = (1..=255).collect();
        let enc = encode(&run);
        assert_eq!(&enc[255..], &[0x02, 0xFF]);
        assert_eq!(decode(&enc).unwrap(), run);
        // The encoder gtk-gnutella uses for GGEP "TT" (capture 04a).
        let tt = hex::decode("aedc8608560093002922509f79f62cdc15616713f0bf2304").unwrap();
        assert_eq!(
            hex::encode(encode(&tt)),
            "06aedc860856029311292250 9f79f62cdc15616713f0bf2304".replace(' ', "")
        );
    }

    #[test]
    fn bad_cobs() {
        assert!(decode(&[0x00]).is_err());
        assert!(decode(&[0x05, 1, 2]).is_err());
        assert!(decode(&[0x03, 1, 0]).is_err());
    }
}

use super::*;

#[test]
fn golden_lengths() {
    for (n, enc) in [
        (0usize, &[0x40u8][..]),
        (63, &[0x7F]),
        (64, &[0x81, 0x40]),
        (4095, &[0xBF, 0x7F]),
        (4096, &[0x81, 0x80, 0x40]),
        (262_143, &[0xBF, 0xBF, 0x7F]),
    ] {
        let mut v = Vec::new();
        encode_length(n, &mut v);
        assert_eq!(v, enc, "encode {n}");
        assert_eq!(decode_length(&mut &enc[..]).unwrap(), n);
    }
    assert!(decode_length(&mut &[0x81u8][..]).is_err());
    assert!(decode_length(&mut &[0x01u8][..]).is_err());
    assert!(
        decode_length(&mut &[0xF9u8][..]).is_err(),
        "more and last both set"
    );
    assert!(decode_length(&mut &[0x81u8, 0x81, 0x81, 0x40][..]).is_err());
}

#[test]
fn non_minimal_length_reencodes_exactly() {
    let raw = [0xC3, 0x81, b'X', 0x80, 0x80, 0x41, 0xAA];
    let b = Block::parse(&raw).unwrap();
    assert_eq!(&b.extensions[0].raw()[..], &[0xAA]);
    let mut v = Vec::new();
    b.encode(&mut v);
    assert_eq!(v, raw);
    assert_eq!(b.encoded_len(), raw.len());
}

#[test]
fn captured_query_h_block() {
    // Capture 04d: GGEP H (SHA-1 of gnutcap-bravo.txt) in a Query.
    let raw = hex::decode("c3814855 01e03850af97b058ca4f24a8b51a4ac1bfe8f4391f".replace(' ', ""))
        .unwrap();
    let b = Block::parse(&raw).unwrap();
    let h = b.hash().unwrap().unwrap();
    assert_eq!(
        h.sha1().unwrap().to_base32(),
        "4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7"
    );
    let mut v = Vec::new();
    b.encode(&mut v);
    assert_eq!(v, raw);
}

#[test]
fn cobs_and_deflate_round_trip() {
    let data = b"\x00\x01hello\x00world".repeat(50);
    for (c, d) in [(true, false), (false, true), (true, true)] {
        let e = Extension::with_encoding("X", &data, c, d).unwrap();
        if c {
            assert!(!e.raw().contains(&0));
        }
        assert_eq!(&*e.data().unwrap(), &data[..]);
        let mut v = Vec::new();
        Block::new(vec![e.clone()]).encode(&mut v);
        assert_eq!(Block::parse(&v).unwrap().extensions, vec![e]);
    }
}

#[test]
fn malformed_blocks() {
    // truncated data
    assert!(Block::parse(&[0xC3, 0x81, b'H', 0x45, 1, 2]).is_err());
    // reserved bit
    assert!(Block::parse(&[0xC3, 0x91, b'H', 0x40]).is_err());
    // id length 0
    assert!(Block::parse(&[0xC3, 0x80, 0x40]).is_err());
    // NUL id
    assert!(Block::parse(&[0xC3, 0x81, 0x00, 0x40]).is_err());
    // no last flag and nothing after
    assert!(Block::parse(&[0xC3, 0x01, b'H', 0x40]).is_err());
    // bad COBS inside is only seen when data() is asked for
    let b = Block::parse(&[0xC3, 0xC1, b'H', 0x42, 0x05, 0x01]).unwrap();
    assert!(b.extensions[0].data().is_err());
    // deflate bomb is bounded
    let bomb =
        Extension::with_encoding("Z", &vec![0u8; MAX_INFLATED_LEN + 1], false, true).unwrap();
    assert!(matches!(bomb.data(), Err(Error::TooLarge { .. })));
    // garbage deflate
    let bad = Block::parse(&[0xC3, 0xA1, b'Z', 0x42, 0x12, 0x34]).unwrap();
    assert!(bad.extensions[0].data().is_err());
}

#[test]
fn typed_helpers() {
    assert_eq!(
        parse_vlint(&[0x00, 0x00, 0x00, 0x00, 0x01], "LF").unwrap(),
        1 << 32
    );
    assert_eq!(encode_vlint(1 << 32), vec![0, 0, 0, 0, 1]);
    assert_eq!(encode_vlint(0), vec![0]);
    assert!(parse_vlint(&[0; 9], "LF").is_err());
    let addrs = vec!["127.0.0.61:6461".parse().unwrap()];
    let enc = encode_ip_ports(&addrs);
    assert_eq!(enc, [127, 0, 0, 61, 0x3d, 0x19]);
    assert_eq!(parse_ip_ports(&enc, "ALT").unwrap(), addrs);
    assert!(parse_ip_ports(&enc[..5], "ALT").is_err());
}

use super::*;

fn dest(s: &str) -> Destination {
    s.parse().unwrap()
}

/// Golden vectors: these bytes are the protocol; changing them breaks deployed peers.
#[test]
fn golden_vectors() {
    let cases: [(&str, &[u8]); 3] = [
        ("10.1.2.3:443", b"wdst\x01\x04\x01\xbb\x0a\x01\x02\x03"),
        (
            "[fd00::1]:8080",
            b"wdst\x01\x06\x1f\x90\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01",
        ),
        ("api.example.com:80", b"wdst\x01d\x00\x50api.example.com"),
    ];
    for (text, bytes) in cases {
        assert_eq!(encode(&dest(text)).unwrap(), bytes, "encode {text}");
        assert_eq!(decode(bytes).unwrap(), dest(text), "decode {text}");
    }
}

#[test]
fn round_trips_longest_name() {
    let label = "a".repeat(63);
    let mut host = [label.as_str(); 4].join(".");
    host.truncate(MAX_NAME_LEN);
    let host = host.trim_end_matches('.').to_string();
    let d = Destination::Name { host, port: 65535 };
    let token = encode(&d).unwrap();
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(decode(&token).unwrap(), d);
}

#[test]
fn rejects_malformed_tokens() {
    let cases: [(&[u8], TokenError); 9] = [
        (b"h2", TokenError::NotAToken),
        (b"wdst", TokenError::BadLength { len: 4 }),
        (
            b"wdst\x02\x04\x01\xbb\x0a\x01\x02\x03",
            TokenError::UnsupportedVersion(2),
        ),
        (
            b"wdst\x01\x05\x01\xbb\x0a\x01\x02\x03",
            TokenError::UnknownKind(5),
        ),
        (
            b"wdst\x01\x04\x01\xbb\x0a\x01\x02",
            TokenError::BadLength { len: 11 },
        ),
        (
            b"wdst\x01\x04\x01\xbb\x0a\x01\x02\x03\x04",
            TokenError::BadLength { len: 13 },
        ),
        (
            b"wdst\x01\x04\x00\x00\x0a\x01\x02\x03",
            TokenError::ZeroPort,
        ),
        (b"wdst\x01d\x00\x50", TokenError::InvalidName("empty name")),
        (
            b"wdst\x01d\x00\x50Bad.Name",
            TokenError::InvalidName("characters other than a-z, 0-9, '-' and '_'"),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(decode(bytes), Err(want.clone()), "{bytes:?}");
    }
}

#[test]
fn rejects_oversized_tokens() {
    let mut token = b"wdst\x01d\x00\x50".to_vec();
    token.extend(std::iter::repeat_n(b'a', 300));
    assert_eq!(decode(&token), Err(TokenError::BadLength { len: 308 }));
    let long = Destination::Name {
        host: "a".repeat(MAX_NAME_LEN + 1),
        port: 80,
    };
    assert_eq!(
        encode(&long),
        Err(TokenError::NameTooLong {
            len: MAX_NAME_LEN + 1
        })
    );
}

#[test]
fn finds_the_token_among_alpn_entries() {
    let token = encode(&dest("10.0.0.1:80")).unwrap();
    let entries: Vec<&[u8]> = vec![b"h2", &token, ALPN_PROTOCOL];
    assert_eq!(find_in_alpn(entries).unwrap(), Some(dest("10.0.0.1:80")));
    assert_eq!(find_in_alpn(vec![&b"h2"[..]]).unwrap(), None);
    assert_eq!(find_in_alpn(Vec::<&[u8]>::new()).unwrap(), None);
    assert_eq!(
        find_in_alpn(vec![&token[..], &token[..], ALPN_PROTOCOL]),
        Err(TokenError::Duplicate)
    );
    assert_eq!(
        find_in_alpn(vec![&token[..]]),
        Err(TokenError::MissingProtocolId)
    );
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    // A cheap deterministic sweep; the cargo-fuzz target explores further.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for len in 0..300 {
        let mut bytes = b"wdst\x01".to_vec();
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        let _ = decode(&bytes);
        let _ = decode(&bytes[5..]);
    }
}

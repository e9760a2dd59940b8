use std::sync::Arc;

use super::*;

/// The first flight of a real rustls client offering `versions`: its ClientHello record(s).
fn rustls_hello(versions: &[&'static rustls::SupportedProtocolVersion]) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("radius.example.org").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

fn names(v: Vec<Cow<'static, str>>) -> Vec<String> {
    v.into_iter().map(Cow::into_owned).collect()
}

#[test]
fn a_rustls_tls13_client_hello() {
    let bytes = rustls_hello(&[&rustls::version::TLS13, &rustls::version::TLS12]);
    let hello = ClientHello::parse(&bytes).unwrap();
    assert_eq!(names(hello.version_names()), ["TLSv1.3", "TLSv1.2"]);
    let suites = names(hello.cipher_suite_names());
    assert!(
        suites.contains(&"TLS_AES_128_GCM_SHA256".to_string()),
        "{suites:?}"
    );
    assert!(
        suites.contains(&"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string()),
        "{suites:?}"
    );
    let sigs = names(hello.signature_scheme_names());
    for s in [
        "rsa_pss_rsae_sha256",
        "ecdsa_secp256r1_sha256",
        "rsa_pkcs1_sha256",
    ] {
        assert!(sigs.contains(&s.to_string()), "{s} not in {sigs:?}");
    }
    let groups = names(hello.group_names());
    assert!(groups.contains(&"x25519".to_string()), "{groups:?}");
    assert!(groups.contains(&"secp256r1".to_string()), "{groups:?}");
    // Nothing unnamed in what rustls offers.
    assert!(!hello.one_line().contains("0x"), "{}", hello.one_line());
    assert_eq!(hello.cipher_suites.omitted(), 0);
}

#[test]
fn a_tls12_only_client_offers_no_tls13() {
    let bytes = rustls_hello(&[&rustls::version::TLS12]);
    let hello = ClientHello::parse(&bytes).unwrap();
    // rustls sends no supported_versions when it offers 1.2 only: the legacy version speaks.
    assert_eq!(names(hello.version_names()), ["TLSv1.2"]);
    // (rustls still lists its TLS 1.3 suites: the versions are what tells.)
    let line = hello.one_line();
    assert!(line.starts_with("versions=TLSv1.2 suites=TLS_"), "{line}");
}

#[test]
fn split_over_records_is_read_in_place() {
    let bytes = rustls_hello(&[&rustls::version::TLS13]);
    let one = ClientHello::parse(&bytes).unwrap();
    // The same handshake message cut into three records of the same type (RFC 8446 §5.1).
    let body = &bytes[5..];
    let mut split = Vec::new();
    for chunk in [&body[..7], &body[7..100], &body[100..]] {
        split.extend_from_slice(&[22, 3, 1]);
        split.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        split.extend_from_slice(chunk);
    }
    assert_eq!(ClientHello::parse(&split).unwrap(), one);
}

/// A hand-made hello: `exts` are (type, data) pairs.
fn hello_with(suites: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut e = Vec::new();
    for (t, d) in exts {
        e.extend_from_slice(&t.to_be_bytes());
        e.extend_from_slice(&(d.len() as u16).to_be_bytes());
        e.extend_from_slice(d);
    }
    body.extend_from_slice(&(e.len() as u16).to_be_bytes());
    body.extend_from_slice(&e);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

fn u16_list(codes: &[u16]) -> Vec<u8> {
    let mut v = ((codes.len() * 2) as u16).to_be_bytes().to_vec();
    for c in codes {
        v.extend_from_slice(&c.to_be_bytes());
    }
    v
}

#[test]
fn lists_are_capped_and_the_rest_counted() {
    let suites: Vec<u16> = (0..1000u16).map(|i| 0xf000 + i).collect();
    let hello = ClientHello::parse(&hello_with(&suites, &[])).unwrap();
    assert_eq!(hello.cipher_suites.as_slice().len(), MAX_ENTRIES);
    assert_eq!(hello.cipher_suites.omitted(), 1000 - MAX_ENTRIES);
    assert!(
        hello
            .one_line()
            .contains(&format!(",+{}", 1000 - MAX_ENTRIES))
    );
    // The summary is a fixed size whatever was sent.
    assert!(std::mem::size_of::<ClientHello>() <= 4 * (MAX_ENTRIES * 2 + 4));
}

#[test]
fn unknown_codes_print_as_hex_and_grease_too() {
    let exts = [
        (43, vec![4, 0x0a, 0x0a, 0x03, 0x04]),
        (13, u16_list(&[0x0804, 0x1234])),
        (10, u16_list(&[0x001d, 0x11ec, 0x9999])),
    ];
    let hello = ClientHello::parse(&hello_with(&[0x1301, 0x00ff, 0xabcd], &exts)).unwrap();
    assert_eq!(names(hello.version_names()), ["0x0a0a", "TLSv1.3"]);
    assert_eq!(
        names(hello.cipher_suite_names()),
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
            "0xabcd"
        ]
    );
    assert_eq!(
        names(hello.signature_scheme_names()),
        ["rsa_pss_rsae_sha256", "0x1234"]
    );
    assert_eq!(
        names(hello.group_names()),
        ["x25519", "X25519MLKEM768", "0x9999"]
    );
}

#[test]
fn a_repeated_extension_counts_once() {
    let exts = [(10, u16_list(&[0x001d])), (10, u16_list(&[0x0017]))];
    let hello = ClientHello::parse(&hello_with(&[0x1301], &exts)).unwrap();
    assert_eq!(names(hello.group_names()), ["x25519"]);
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let good = rustls_hello(&[&rustls::version::TLS13]);
    assert_eq!(ClientHello::parse(&[]), Err(ClientHelloError::NotHandshake));
    assert_eq!(
        ClientHello::parse(&[23, 3, 3, 0, 1, 0]),
        Err(ClientHelloError::NotHandshake)
    );
    assert_eq!(
        ClientHello::parse(&[22, 3]),
        Err(ClientHelloError::Truncated)
    );
    // A ServerHello is not a ClientHello.
    let mut server_hello = good.clone();
    server_hello[5] = 2;
    assert_eq!(
        ClientHello::parse(&server_hello),
        Err(ClientHelloError::NotClientHello)
    );
    // Every truncation of a real hello is refused or read: never a panic.
    for n in 0..good.len() {
        let _ = ClientHello::parse(&good[..n]);
    }
    assert!(ClientHello::parse(&good[..good.len() - 1]).is_err());
    // Every single-octet change, likewise.
    for i in 0..good.len() {
        for v in [0x00, 0x01, 0x7f, 0xff] {
            let mut m = good.clone();
            m[i] = v;
            let _ = ClientHello::parse(&m);
        }
    }
    // A list length running past its extension.
    let bad = hello_with(&[0x1301], &[(13, vec![0, 8, 4, 1])]);
    assert_eq!(ClientHello::parse(&bad), Err(ClientHelloError::BadLength));
    // An odd list length.
    let odd = hello_with(&[0x1301], &[(10, vec![0, 3, 0, 0x1d, 0])]);
    assert_eq!(ClientHello::parse(&odd), Err(ClientHelloError::Truncated));
}

#[test]
fn a_tls12_hello_without_extensions() {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&[0, 0, 2, 0xc0, 0x2f, 1, 0]);
    let mut rec = vec![
        22,
        3,
        1,
        0,
        (body.len() + 4) as u8,
        1,
        0,
        0,
        body.len() as u8,
    ];
    rec.extend_from_slice(&body);
    let hello = ClientHello::parse(&rec).unwrap();
    assert_eq!(names(hello.version_names()), ["TLSv1.2"]);
    assert_eq!(
        names(hello.cipher_suite_names()),
        ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    );
    assert_eq!(
        hello.one_line(),
        "versions=TLSv1.2 suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 sigs=- groups=-"
    );
}

/// Writes the `client_hello` fuzz target's seeds (real rustls hellos, split, hand-made, cut):
/// `cargo test --lib write_client_hello_seeds -- --ignored`.
#[test]
#[ignore = "writes files: run by hand to regenerate the seed corpus"]
fn write_client_hello_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/fuzz/corpus/client_hello");
    std::fs::create_dir_all(&dir).unwrap();
    let tls13 = rustls_hello(&[&rustls::version::TLS13, &rustls::version::TLS12]);
    let tls12 = rustls_hello(&[&rustls::version::TLS12]);
    let mut split = Vec::new();
    let body = &tls13[5..];
    for chunk in [&body[..40], &body[40..]] {
        split.extend_from_slice(&[22, 3, 1]);
        split.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        split.extend_from_slice(chunk);
    }
    let grease = hello_with(
        &[0x0a0a, 0x1301, 0xc02b],
        &[
            (43, vec![4, 0x0a, 0x0a, 0x03, 0x04]),
            (13, u16_list(&[0x0804, 0x0403, 0x0401])),
            (10, u16_list(&[0x1a1a, 0x11ec, 0x001d])),
        ],
    );
    let seeds = [
        ("rustls-tls13", tls13.clone()),
        ("rustls-tls12", tls12),
        ("rustls-split", split),
        ("grease", grease),
        ("cut", tls13[..tls13.len() / 2].to_vec()),
    ];
    for (name, data) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

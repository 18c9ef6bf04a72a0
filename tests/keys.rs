//! Key import and export: keys made by `openssl genpkey` load, ours load in
//! `openssl pkey`, refused kinds and sizes get their own errors, and the key id is the
//! one FORMAT.md specifies (SHA-256 of the SubjectPublicKeyInfo DER, first 16 bytes).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use pin_recovery::{Error, KeyError, KeyId, ServicePrivateKey, ServicePublicKey, Suite};

fn pem(name: &str) -> String {
    std::fs::read_to_string(common::vectors_dir().join("keys").join(name)).unwrap()
}

/// Runs `openssl` with `input` on stdin. CI installs openssl; elsewhere its absence is a
/// test failure rather than a silent skip.
fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed for the interop tests");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn openssl_generated_keys_load_with_the_right_suite() {
    for (name, suite) in [
        ("p256-service.pem", Suite::HpkeP256Sha256Aes256Gcm),
        ("rsa2048-service.pem", Suite::RsaOaepSha256Aes256Gcm),
        ("rsa3072-service.pem", Suite::RsaOaepSha256Aes256Gcm),
        ("rsa4096-service.pem", Suite::RsaOaepSha256Aes256Gcm),
    ] {
        let k = ServicePrivateKey::from_pkcs8_pem(&pem(name)).unwrap();
        assert_eq!(k.suite(), suite, "{name}");
        // The public half openssl derives is the one we derive, byte for byte.
        let spki = openssl(
            &["pkey", "-pubout", "-outform", "DER"],
            pem(name).as_bytes(),
        );
        assert_eq!(k.public_key().to_spki_der(), &spki[..], "{name}");
        assert_eq!(k.key_id(), KeyId::of_spki_der(&spki));
        let digest = openssl(&["dgst", "-sha256", "-binary"], &spki);
        assert_eq!(
            k.key_id().as_bytes(),
            &digest[..16],
            "key id is the SPKI digest prefix"
        );
    }
}

#[test]
fn refused_key_kinds_and_sizes_get_their_own_errors() {
    assert_eq!(
        ServicePrivateKey::from_pkcs8_pem(&pem("rsa1024-refused.pem")).unwrap_err(),
        Error::Key(KeyError::UnsupportedRsaSize { bits: 1024 })
    );
    assert_eq!(
        ServicePrivateKey::from_pkcs8_pem(&pem("p384-refused.pem")).unwrap_err(),
        Error::Key(KeyError::UnsupportedAlgorithm)
    );
    assert_eq!(
        ServicePrivateKey::from_pkcs8_pem(&pem("ed25519-refused.pem")).unwrap_err(),
        Error::Key(KeyError::UnsupportedAlgorithm)
    );
    assert_eq!(
        ServicePrivateKey::generate_rsa(1024).unwrap_err(),
        Error::Key(KeyError::UnsupportedRsaSize { bits: 1024 })
    );
    let spki = openssl(
        &["pkey", "-pubout", "-outform", "DER"],
        pem("p384-refused.pem").as_bytes(),
    );
    assert_eq!(
        ServicePublicKey::from_spki_der(&spki).unwrap_err(),
        KeyError::UnsupportedAlgorithm
    );
    let spki = openssl(
        &["pkey", "-pubout", "-outform", "DER"],
        pem("rsa1024-refused.pem").as_bytes(),
    );
    assert_eq!(
        ServicePublicKey::from_spki_der(&spki).unwrap_err(),
        KeyError::UnsupportedRsaSize { bits: 1024 }
    );
}

#[test]
fn malformed_documents_are_refused_without_panicking() {
    assert_eq!(
        ServicePrivateKey::from_pkcs8_der(b"").unwrap_err(),
        Error::Key(KeyError::Malformed)
    );
    assert_eq!(
        ServicePrivateKey::from_pkcs8_der(&[0x30; 5000]).unwrap_err(),
        Error::Key(KeyError::Malformed)
    );
    assert_eq!(
        ServicePrivateKey::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\n").unwrap_err(),
        Error::Key(KeyError::Malformed)
    );
    // A public key where a private key belongs, and the reverse.
    let k = ServicePrivateKey::from_pkcs8_pem(&pem("p256-service.pem")).unwrap();
    assert_eq!(
        ServicePrivateKey::from_pkcs8_pem(&k.public_key().to_pem()).unwrap_err(),
        Error::Key(KeyError::Malformed)
    );
    assert_eq!(
        ServicePublicKey::from_pem(&pem("p256-service.pem")).unwrap_err(),
        KeyError::Malformed
    );
    let der = k.to_pkcs8_der().unwrap();
    for n in 0..der.len() {
        assert!(ServicePrivateKey::from_pkcs8_der(&der[..n]).is_err());
    }
}

#[test]
fn compressed_points_are_refused_as_non_canonical() {
    let spki = openssl(
        &[
            "pkey",
            "-pubout",
            "-outform",
            "DER",
            "-ec_conv_form",
            "compressed",
        ],
        pem("p256-service.pem").as_bytes(),
    );
    assert_eq!(
        ServicePublicKey::from_spki_der(&spki).unwrap_err(),
        KeyError::NonCanonical
    );
}

#[test]
fn our_keys_load_in_openssl_and_round_trip() {
    for k in [
        ServicePrivateKey::generate_p256().unwrap(),
        ServicePrivateKey::generate_rsa(2048).unwrap(),
    ] {
        let pem = k.to_pkcs8_pem().unwrap();
        let text =
            String::from_utf8(openssl(&["pkey", "-text", "-noout"], pem.as_bytes())).unwrap();
        assert!(text.contains("Private-Key"), "{text}");
        let spki = openssl(&["pkey", "-pubout", "-outform", "DER"], pem.as_bytes());
        assert_eq!(k.public_key().to_spki_der(), &spki[..]);
        let public_pem = k.public_key().to_pem();
        openssl(&["pkey", "-pubin", "-noout"], public_pem.as_bytes());

        let again = ServicePrivateKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.key_id(), k.key_id());
        assert_eq!(&*again.to_pkcs8_der().unwrap(), &*k.to_pkcs8_der().unwrap());
        let public = ServicePublicKey::from_pem(&public_pem).unwrap();
        assert_eq!(&public, k.public_key());
        assert_eq!(
            ServicePublicKey::from_spki_der(k.public_key().to_spki_der()).unwrap(),
            public
        );
    }
}

#[test]
fn private_key_debug_is_redacted() {
    let k = ServicePrivateKey::from_pkcs8_pem(&pem("p256-service.pem")).unwrap();
    let shown = format!("{k:?}");
    assert_eq!(
        shown,
        format!(
            "ServicePrivateKey {{ suite: hpke-p256, key_id: {}, secret: [redacted] }}",
            k.key_id()
        )
    );
}

/// X-Wing keys: `id-XWing`, no parameters, the raw 1216-byte key in the SPKI and the raw
/// 32-byte seed in the PKCS#8 (as draft-connolly-cfrg-xwing-kem and its users encode
/// them); one encoding each, and every other refused with a named error.
#[test]
fn xwing_keys_have_one_encoding_each() {
    let k = ServicePrivateKey::generate_xwing().unwrap();
    assert_eq!(k.suite(), Suite::HpkeXWingSha256Aes256Gcm);
    let der = k.to_pkcs8_der().unwrap();
    assert_eq!(der.len(), 54);
    assert_eq!(
        &der[..22],
        &[
            0x30, 0x34, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x0b, 0x2b, 0x06, 0x01, 0x04, 0x01,
            0x83, 0xe6, 0x2d, 0x81, 0xc8, 0x7a, 0x04, 0x20
        ][..]
    );
    let spki = k.public_key().to_spki_der();
    assert_eq!(spki.len(), 1240);
    assert_eq!(
        &spki[..24],
        &[
            0x30, 0x82, 0x04, 0xd4, 0x30, 0x0d, 0x06, 0x0b, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83,
            0xe6, 0x2d, 0x81, 0xc8, 0x7a, 0x03, 0x82, 0x04, 0xc1, 0x00
        ][..]
    );
    let again = ServicePrivateKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(again.key_id(), k.key_id());
    assert_eq!(again.public_key(), k.public_key());
    let public = ServicePublicKey::from_pem(&k.public_key().to_pem()).unwrap();
    assert_eq!(&public, k.public_key());
    assert_eq!(public.suite(), Suite::HpkeXWingSha256Aes256Gcm);
    assert!(format!("{k:?}").contains("[redacted]"));

    // Every truncation of either document is refused as malformed.
    for n in 0..der.len() {
        assert_eq!(
            ServicePrivateKey::from_pkcs8_der(&der[..n]).unwrap_err(),
            Error::Key(KeyError::Malformed),
            "PKCS#8 cut at {n}"
        );
    }
    for n in 0..spki.len() {
        assert_eq!(
            ServicePublicKey::from_spki_der(&spki[..n]).unwrap_err(),
            KeyError::Malformed,
            "SPKI cut at {n}"
        );
    }
    // A seed of another length.
    let mut short = der[..53].to_vec();
    short[1] = 0x33;
    short[21] = 0x1f;
    assert_eq!(
        ServicePrivateKey::from_pkcs8_der(&short).unwrap_err(),
        Error::Key(KeyError::Malformed)
    );
    // NULL parameters where none belong: valid DER, another encoding.
    let mut with_null = spki.to_vec();
    with_null.splice(19..19, [0x05, 0x00]);
    with_null[3] += 2;
    with_null[5] += 2;
    assert_eq!(
        ServicePublicKey::from_spki_der(&with_null).unwrap_err(),
        KeyError::NonCanonical
    );
    // An ML-KEM key with a coefficient of q (3329) or more is not a key.
    let mut bad = spki.to_vec();
    bad[24] = 0xff;
    bad[25] |= 0x0f;
    assert_eq!(
        ServicePublicKey::from_spki_der(&bad).unwrap_err(),
        KeyError::InvalidPoint
    );
}

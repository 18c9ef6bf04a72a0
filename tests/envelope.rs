//! Envelope properties: round trips in every encoding, one opaque failure for a wrong key,
//! a wrong binding or tampering, and every single-bit flip and truncation rejected.

mod common;

use pin_recovery::{
    Binding, DecodeError, Envelope, Error, RecoverySecret, ServicePrivateKey, Suite, Unsupported,
    MAX_ENVELOPE_LEN,
};

use common::service_key as key;

fn binding() -> Binding {
    Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3K").unwrap()
}

fn secret() -> RecoverySecret {
    RecoverySecret::from_bytes(&mut [0x5a; 32])
}

fn rsa_opens() -> bool {
    let k = key("rsa2048-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    match k.open(&env, &binding()) {
        Ok(_) => true,
        Err(Error::Unsupported(Unsupported::RsaDecryption)) => false,
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[test]
fn can_round_trip_hpke_in_binary_text_and_json() {
    let k = key("p256-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    assert_eq!(env.suite(), Suite::HpkeP256Sha256Aes256Gcm);
    assert_eq!(env.key_id(), k.key_id());
    assert_eq!(env.binding(), &binding());
    assert_eq!(env.version(), 1);

    let bytes = env.to_bytes();
    assert_eq!(Envelope::from_bytes(&bytes).unwrap(), env);
    let text = env.to_text();
    assert!(text.starts_with("pinrec1."));
    assert_eq!(text.parse::<Envelope>().unwrap(), env);
    let json = serde_json::to_string(&env).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);

    assert_eq!(k.open(&env, &binding()).unwrap(), secret());
}

/// Two seals of the same secret, each drawing from a generator seeded with `seed`.
fn seal_twice_from_seed(k: &ServicePrivateKey, seed: [u8; 32]) -> (Envelope, Envelope) {
    use rand_core::SeedableRng;
    let seal = || {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        k.public_key()
            .seal_with_rng(&secret(), &binding(), 1_700_000_000, &mut rng)
            .unwrap()
    };
    (seal(), seal())
}

#[test]
fn seal_is_randomised_and_with_rng_is_deterministic() {
    let k = key("p256-service.pem");
    let a = k.public_key().seal(&secret(), &binding()).unwrap();
    let b = k.public_key().seal(&secret(), &binding()).unwrap();
    assert_ne!(a.to_bytes(), b.to_bytes());
    assert_ne!(a.envelope_id(), b.envelope_id());
    let (c, d) = seal_twice_from_seed(&k, [1; 32]);
    assert_eq!(c.to_bytes(), d.to_bytes());
    assert_eq!(c.created_at(), 1_700_000_000);
    assert_eq!(k.open(&c, &binding()).unwrap(), secret());
}

#[test]
fn wrong_key_and_wrong_binding_fail_alike() {
    let k = key("p256-service.pem");
    let other = key("p256-other.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    assert_eq!(other.open(&env, &binding()), Err(Error::OpenFailed));
    for wrong in [
        Binding::new("fabrikam.example", "alice@contoso.example", "LAPTOP-7F3K").unwrap(),
        Binding::new("contoso.example", "bob@contoso.example", "LAPTOP-7F3K").unwrap(),
        Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3L").unwrap(),
    ] {
        assert_eq!(k.open(&env, &wrong), Err(Error::OpenFailed));
    }
    // An RSA key cannot open a P-256 envelope, and says so the same way.
    assert_eq!(
        key("rsa2048-service.pem").open(&env, &binding()),
        Err(Error::OpenFailed)
    );
}

/// Flips every bit of `env` in turn: each must fail to decode or fail to open.
fn assert_every_bit_flip_rejected(k: &ServicePrivateKey, env: &Envelope) -> (usize, usize) {
    let bytes = env.to_bytes();
    let (mut decode_errors, mut open_errors) = (0, 0);
    for i in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        match Envelope::from_bytes(&flipped) {
            Err(_) => decode_errors += 1,
            Ok(e) => {
                assert_eq!(
                    k.open(&e, &binding()),
                    Err(Error::OpenFailed),
                    "bit {i} flipped was accepted"
                );
                open_errors += 1;
            }
        }
    }
    assert_eq!(decode_errors + open_errors, bytes.len() * 8);
    (decode_errors, open_errors)
}

#[test]
fn every_bit_flip_of_an_hpke_envelope_is_rejected() {
    let k = key("p256-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    let (d, o) = assert_every_bit_flip_rejected(&k, &env);
    println!(
        "hpke envelope of {} bytes: {d} flips refused by the decoder, {o} by open",
        env.as_bytes().len()
    );
}

#[test]
fn xwing_envelopes_round_trip_and_fail_alike() {
    let k = key("xwing-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    assert_eq!(env.suite(), Suite::HpkeXWingSha256Aes256Gcm);
    assert_eq!(env.key_id(), k.key_id());
    assert_eq!(env.as_bytes().len(), 50 + 15 + 21 + 11 + 2 + 1120 + 2 + 48);
    assert_eq!(env.to_text().parse::<Envelope>().unwrap(), env);
    assert_eq!(k.open(&env, &binding()).unwrap(), secret());
    // Another X-Wing key, the P-256 key, a wrong binding: one answer.
    assert_eq!(
        key("xwing-other.pem").open(&env, &binding()),
        Err(Error::OpenFailed)
    );
    assert_eq!(
        key("p256-service.pem").open(&env, &binding()),
        Err(Error::OpenFailed)
    );
    let wrong = Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3L").unwrap();
    assert_eq!(k.open(&env, &wrong), Err(Error::OpenFailed));
    // And an X-Wing key cannot open a P-256 envelope.
    let p256 = key("p256-service.pem")
        .public_key()
        .seal(&secret(), &binding())
        .unwrap();
    assert_eq!(k.open(&p256, &binding()), Err(Error::OpenFailed));
    // Seals are randomised; seal_with_rng is reproducible.
    let other = k.public_key().seal(&secret(), &binding()).unwrap();
    assert_ne!(env.as_bytes()[..], other.as_bytes()[..]);
    let (c, d) = seal_twice_from_seed(&k, [2; 32]);
    assert_eq!(c.to_bytes(), d.to_bytes());
    assert_eq!(k.open(&c, &binding()).unwrap(), secret());
}

#[test]
fn every_bit_flip_of_an_xwing_envelope_is_rejected() {
    let k = key("xwing-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    let (d, o) = assert_every_bit_flip_rejected(&k, &env);
    println!(
        "hpke-xwing envelope of {} bytes: {d} flips refused by the decoder, {o} by open",
        env.as_bytes().len()
    );
    // Most of the envelope is the encapsulation: those flips reach decapsulation.
    assert!(o > 1120 * 8, "only {o} flips reached open");
}

#[test]
fn every_bit_flip_of_an_rsa_envelope_is_rejected() {
    let k = key("rsa2048-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    if !rsa_opens() {
        // The default provider cannot open RSA envelopes at all; the flips are tested
        // under `--features aws-lc`. Here: it refuses with the actionable error.
        assert_eq!(
            k.open(&env, &binding()),
            Err(Error::Unsupported(Unsupported::RsaDecryption))
        );
        return;
    }
    assert_eq!(k.open(&env, &binding()).unwrap(), secret());
    let (d, o) = assert_every_bit_flip_rejected(&k, &env);
    println!(
        "rsa-2048 envelope of {} bytes: {d} flips refused by the decoder, {o} by open",
        env.as_bytes().len()
    );
}

#[test]
fn rsa_envelopes_round_trip_for_every_key_size() {
    for bits in [2048, 3072, 4096] {
        let k = key(&format!("rsa{bits}-service.pem"));
        let env = k.public_key().seal(&secret(), &binding()).unwrap();
        assert_eq!(env.suite(), Suite::RsaOaepSha256Aes256Gcm);
        assert_eq!(Envelope::from_bytes(env.as_bytes()).unwrap(), env);
        if rsa_opens() {
            assert_eq!(k.open(&env, &binding()).unwrap(), secret());
            assert_eq!(
                k.open(&env, &Binding::new("t", "u", "d").unwrap()),
                Err(Error::OpenFailed)
            );
        }
    }
}

#[test]
fn every_truncation_and_any_trailing_byte_is_rejected() {
    let k = key("p256-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    let bytes = env.to_bytes();
    for n in 0..bytes.len() {
        assert!(
            Envelope::from_bytes(&bytes[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Envelope::from_bytes(&longer),
        Err(DecodeError::TrailingBytes)
    );
    assert_eq!(
        Envelope::from_bytes(&vec![0u8; MAX_ENVELOPE_LEN + 1]),
        Err(DecodeError::TooLong {
            max: MAX_ENVELOPE_LEN
        })
    );
}

#[test]
fn decoder_names_what_is_wrong() {
    let k = key("p256-service.pem");
    let bytes = k
        .public_key()
        .seal(&secret(), &binding())
        .unwrap()
        .to_bytes();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(Envelope::from_bytes(&b), Err(DecodeError::BadMagic));
    let mut b = bytes.clone();
    b[4] = 2;
    assert_eq!(
        Envelope::from_bytes(&b),
        Err(DecodeError::UnsupportedVersion(2))
    );
    let mut b = bytes.clone();
    b[5..7].copy_from_slice(&0x0003u16.to_be_bytes());
    assert_eq!(Envelope::from_bytes(&b), Err(DecodeError::UnknownSuite(3)));
    // The tenant length byte follows magic, version, suite, key id and envelope id.
    let mut b = bytes.clone();
    b[39] = 0;
    assert_eq!(
        Envelope::from_bytes(&b),
        Err(DecodeError::BadLength {
            field: "tenant",
            found: 0
        })
    );
}

#[test]
fn text_form_refuses_non_canonical_base64() {
    let k = key("p256-service.pem");
    let env = k.public_key().seal(&secret(), &binding()).unwrap();
    let text = env.to_text();
    assert_eq!(
        Envelope::from_text(&format!("{text}=")),
        Err(DecodeError::BadBase64)
    );
    assert_eq!(
        Envelope::from_text(&format!(" {text}")),
        Err(DecodeError::BadMagic)
    );
    assert_eq!(
        Envelope::from_text(&text.replacen("pinrec1.", "PINREC1.", 1)),
        Err(DecodeError::BadMagic)
    );
    assert_eq!(
        Envelope::from_text(&format!("{text}\n")),
        Err(DecodeError::BadBase64)
    );
    let std_alphabet = text.replace('-', "+").replace('_', "/");
    if std_alphabet != text {
        assert_eq!(
            Envelope::from_text(&std_alphabet),
            Err(DecodeError::BadBase64)
        );
    }
    // Non-zero trailing bits: the last character encodes bits past the end of the data.
    let last = text.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.find(last).unwrap();
    let bits_used = match env.as_bytes().len() % 3 {
        1 => 2,
        2 => 4,
        _ => 6,
    };
    if bits_used < 6 {
        let tweaked = alphabet.as_bytes()[pos | 1] as char;
        let bad = format!("{}{}", &text[..text.len() - 1], tweaked);
        assert_eq!(Envelope::from_text(&bad), Err(DecodeError::BadBase64));
    }
}

#[test]
fn envelope_sizes_per_suite() {
    let b = Binding::new(
        "8f3c1a52-7d3e-4b5f-9a61-0c2d4e6f8a10",
        "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "3e4f5a6b-7c8d-9eaf-b0c1-d2e3f4a5b6c7",
    )
    .unwrap();
    for (name, expected) in [
        ("p256-service.pem", 50 + 3 * 36 + 2 + 65 + 2 + 48),
        ("rsa2048-service.pem", 50 + 3 * 36 + 2 + 256 + 2 + 48),
        ("rsa3072-service.pem", 50 + 3 * 36 + 2 + 384 + 2 + 48),
        ("rsa4096-service.pem", 50 + 3 * 36 + 2 + 512 + 2 + 48),
        ("xwing-service.pem", 50 + 3 * 36 + 2 + 1120 + 2 + 48),
    ] {
        let env = key(name).public_key().seal(&secret(), &b).unwrap();
        println!(
            "{name}: {} bytes binary, {} characters as text (GUID ids)",
            env.as_bytes().len(),
            env.to_text().len()
        );
        assert_eq!(env.as_bytes().len(), expected);
    }
}

//! Our own envelope vectors (test-vectors/envelopes/): every case is run and its outcome
//! class checked; the valid case is also re-sealed from its seed and must match byte for
//! byte.

mod common;

use common::{read_json, unhex, Tally};
use pin_recovery::{
    Binding, DecodeError, Envelope, Error, RecoverySecret, ServicePrivateKey, Unsupported,
};
use rand_core::SeedableRng;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "description")]
    _description: String,
    suite: String,
    suite_id: u16,
    service_key: String,
    service_key_spki: String,
    key_id: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    expect: String,
    binding: Binding,
    envelope: Option<String>,
    text: Option<String>,
    secret: Option<String>,
    seed: Option<String>,
    created_at: Option<u64>,
}

fn decode_class(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated => "decode:truncated",
        DecodeError::TrailingBytes => "decode:trailing-bytes",
        DecodeError::BadMagic => "decode:bad-magic",
        DecodeError::UnsupportedVersion(_) => "decode:unsupported-version",
        DecodeError::UnknownSuite(_) => "decode:unknown-suite",
        DecodeError::BadLength { .. } => "decode:bad-length",
        DecodeError::BadBase64 => "decode:bad-base64",
        DecodeError::TooLong { .. } => "decode:too-long",
        DecodeError::BadText { .. } => "decode:bad-text",
        _ => "decode:other",
    }
}

fn run(file_name: &str) {
    let file: File = read_json(&format!("envelopes/{file_name}"));
    let pem = std::fs::read_to_string(common::vectors_dir().join("keys").join(&file.service_key))
        .unwrap();
    let key = ServicePrivateKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(key.suite().name(), file.suite);
    assert_eq!(key.suite().id(), file.suite_id);
    assert_eq!(
        key.public_key().to_spki_der(),
        &unhex(&file.service_key_spki)[..]
    );
    assert_eq!(key.key_id().to_string(), file.key_id);

    let mut tally = Tally::new(&format!("envelopes/{file_name}"));
    let total = file.cases.len();
    for c in &file.cases {
        let decoded = match (&c.envelope, &c.text) {
            (Some(hex), text) => {
                let d = Envelope::from_bytes(&unhex(hex));
                if let (Some(text), Ok(env)) = (text, &d) {
                    assert_eq!(
                        &Envelope::from_text(text).unwrap(),
                        env,
                        "{}: text and binary differ",
                        c.name
                    );
                }
                d
            }
            (None, Some(text)) => Envelope::from_text(text),
            (None, None) => panic!("{}: no envelope", c.name),
        };
        let outcome = match decoded {
            Err(e) => decode_class(&e).to_owned(),
            Ok(env) => match key.open(&env, &c.binding) {
                Ok(secret) => {
                    let want = RecoverySecret::from_bytes(
                        &mut unhex(c.secret.as_ref().unwrap()).try_into().unwrap(),
                    );
                    assert_eq!(secret, want, "{}: wrong secret", c.name);
                    if let (Some(seed), Some(at)) = (&c.seed, c.created_at) {
                        let mut rng =
                            rand_chacha::ChaCha20Rng::from_seed(unhex(seed).try_into().unwrap());
                        let s = RecoverySecret::generate_with_rng(&mut rng);
                        let again = key
                            .public_key()
                            .seal_with_rng(&s, &c.binding, at, &mut rng)
                            .unwrap();
                        assert_eq!(
                            again, env,
                            "{}: re-sealing from the seed gave other bytes",
                            c.name
                        );
                    }
                    "ok".to_owned()
                }
                Err(Error::OpenFailed) => "open:failed".to_owned(),
                Err(Error::Unsupported(Unsupported::RsaDecryption)) => {
                    tally.not_run("opening RSA needs --features aws-lc (no constant-time RSA in the default provider)");
                    continue;
                }
                Err(e) => format!("other: {e:?}"),
            },
        };
        tally.check(
            outcome == c.expect,
            &c.name,
            &format!("expected {}, got {outcome}", c.expect),
        );
    }
    tally.finish(total);
}

#[test]
fn hpke_p256_envelope_vectors() {
    run("hpke-p256.json");
}

#[test]
fn rsa_oaep_2048_envelope_vectors() {
    run("rsa-oaep-2048.json");
}

#[test]
fn hpke_xwing_envelope_vectors() {
    run("hpke-xwing.json");
}

/// Every vector file is run by a test above: a new suite's file cannot be skipped.
#[test]
fn every_vector_file_is_run() {
    let mut files: Vec<String> = std::fs::read_dir(common::vectors_dir().join("envelopes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["hpke-p256.json", "hpke-xwing.json", "rsa-oaep-2048.json"]
    );
}

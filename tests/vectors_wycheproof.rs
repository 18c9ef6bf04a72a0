//! Wycheproof vectors through the code paths the crate uses: the provider's AES-256-GCM
//! and HKDF, static ECDH with peers imported as envelopes (raw points) and service keys
//! (SubjectPublicKeyInfo) are, RSA-OAEP with keys imported as service keys are, and
//! ECDSA P-256 verification as device signatures use it.

mod common;

use common::{read_json, unhex, Tally};
use pin_recovery::__internal as internal;
use pin_recovery::{Error, Unsupported};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File<G> {
    algorithm: String,
    #[serde(rename = "schema")]
    _schema: String,
    number_of_tests: usize,
    #[serde(rename = "header")]
    _header: Vec<String>,
    #[serde(rename = "notes")]
    _notes: serde_json::Value,
    test_groups: Vec<G>,
}

#[derive(Deserialize, PartialEq, Eq, Debug, Clone, Copy)]
enum Outcome {
    #[serde(rename = "valid")]
    Valid,
    #[serde(rename = "invalid")]
    Invalid,
    #[serde(rename = "acceptable")]
    Acceptable,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AeadGroup {
    #[serde(rename = "type")]
    _type: String,
    #[serde(rename = "source")]
    _source: serde_json::Value,
    key_size: usize,
    iv_size: usize,
    tag_size: usize,
    tests: Vec<AeadCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AeadCase {
    tc_id: usize,
    #[serde(rename = "comment")]
    _comment: String,
    #[serde(rename = "flags")]
    _flags: Vec<String>,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: Outcome,
}

#[test]
fn wycheproof_aes_gcm() {
    let file: File<AeadGroup> = read_json("wycheproof/aes_gcm_test.json");
    assert_eq!(file.algorithm, "AES-GCM");
    let mut tally = Tally::new("wycheproof/aes_gcm_test.json");
    for g in &file.test_groups {
        for t in &g.tests {
            if g.key_size != 256 {
                tally.not_run("AES-128/192: every suite uses AES-256; the provider's AEAD takes only a 32-byte key");
                continue;
            }
            if g.iv_size != 96 {
                tally.not_run("nonce not 96 bits: HPKE and our RSA suite use 96-bit nonces; the API takes [u8; 12]");
                continue;
            }
            assert_eq!(g.tag_size, 128);
            let key: [u8; 32] = unhex(&t.key).try_into().unwrap();
            let nonce: [u8; 12] = unhex(&t.iv).try_into().unwrap();
            let (aad, msg) = (unhex(&t.aad), unhex(&t.msg));
            let mut ct = unhex(&t.ct);
            ct.extend(unhex(&t.tag));
            let opened = internal::aes256gcm_open(&key, &nonce, &aad, &ct);
            match t.result {
                Outcome::Valid => {
                    let sealed = internal::aes256gcm_seal(&key, &nonce, &aad, &msg);
                    tally.check(
                        opened.as_deref() == Some(&msg[..]) && sealed.as_deref() == Some(&ct[..]),
                        t.tc_id,
                        "valid case did not round-trip",
                    );
                }
                Outcome::Invalid => tally.check(opened.is_none(), t.tc_id, "invalid case opened"),
                Outcome::Acceptable => unreachable!("no acceptable AES-GCM cases"),
            }
        }
    }
    tally.finish(file.number_of_tests);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HkdfGroup {
    #[serde(rename = "type")]
    _type: String,
    #[serde(rename = "source")]
    _source: serde_json::Value,
    #[serde(rename = "keySize")]
    _key_size: usize,
    tests: Vec<HkdfCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HkdfCase {
    tc_id: usize,
    #[serde(rename = "comment")]
    _comment: String,
    #[serde(rename = "flags")]
    _flags: Vec<String>,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: Outcome,
}

#[test]
fn wycheproof_hkdf_sha256() {
    let file: File<HkdfGroup> = read_json("wycheproof/hkdf_sha256_test.json");
    assert_eq!(file.algorithm, "HKDF-SHA-256");
    let mut tally = Tally::new("wycheproof/hkdf_sha256_test.json");
    for g in &file.test_groups {
        for t in &g.tests {
            let out =
                internal::hkdf_sha256(&unhex(&t.salt), &unhex(&t.ikm), &unhex(&t.info), t.size);
            match t.result {
                Outcome::Valid => tally.check(out == Some(unhex(&t.okm)), t.tc_id, "wrong okm"),
                Outcome::Invalid => {
                    tally.check(out.is_none(), t.tc_id, "oversized output accepted")
                }
                Outcome::Acceptable => unreachable!("no acceptable HKDF cases"),
            }
        }
    }
    tally.finish(file.number_of_tests);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EcdhGroup {
    #[serde(rename = "type")]
    _type: String,
    #[serde(rename = "source")]
    _source: serde_json::Value,
    curve: String,
    encoding: String,
    tests: Vec<EcdhCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EcdhCase {
    tc_id: usize,
    comment: String,
    flags: Vec<String>,
    public: String,
    private: String,
    shared: String,
    result: Outcome,
}

/// Wycheproof writes private keys as big-endian integers, sometimes with a sign byte.
fn scalar(hex: &str) -> [u8; 32] {
    let raw = unhex(hex);
    let trimmed: Vec<u8> = raw.iter().copied().skip_while(|b| *b == 0).collect();
    assert!(trimmed.len() <= 32, "private key longer than 32 bytes");
    let mut out = [0u8; 32];
    out[32 - trimmed.len()..].copy_from_slice(&trimmed);
    out
}

fn run_ecdh(file_name: &str, agree: fn(&[u8; 32], &[u8]) -> Option<[u8; 32]>) {
    let file: File<EcdhGroup> = read_json(file_name);
    assert_eq!(file.algorithm, "ECDH");
    let mut tally = Tally::new(file_name);
    for g in &file.test_groups {
        assert_eq!(g.curve, "secp256r1");
        let _ = &g.encoding;
        for t in &g.tests {
            let got = agree(&scalar(&t.private), &unhex(&t.public));
            let want = unhex(&t.shared);
            match t.result {
                Outcome::Valid => tally.check(
                    got.map(|s| s.to_vec()) == Some(want),
                    t.tc_id,
                    &format!("valid case failed ({})", t.comment),
                ),
                Outcome::Invalid => tally.check(got.is_none(), t.tc_id, &format!("invalid key accepted ({})", t.comment)),
                Outcome::Acceptable => match got {
                    // An acceptable case may be refused; if accepted, the result must be right.
                    Some(s) => tally.check(s.to_vec() == want, t.tc_id, "acceptable case gave a wrong secret"),
                    None => tally.not_run(&format!(
                        "acceptable, refused by design (only DER with the named P-256 curve and an uncompressed point): {}",
                        t.flags.join(",")
                    )),
                },
            }
        }
    }
    tally.finish(file.number_of_tests);
}

#[test]
fn wycheproof_ecdh_p256_spki() {
    run_ecdh(
        "wycheproof/ecdh_secp256r1_test.json",
        internal::ecdh_p256_spki,
    );
}

#[test]
fn wycheproof_ecdh_p256_ecpoint() {
    run_ecdh(
        "wycheproof/ecdh_secp256r1_ecpoint_test.json",
        internal::ecdh_p256_raw,
    );
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OaepGroup {
    #[serde(rename = "type")]
    _type: String,
    #[serde(rename = "source")]
    _source: serde_json::Value,
    key_size: usize,
    sha: String,
    mgf: String,
    mgf_sha: String,
    #[serde(rename = "privateKey")]
    _private_key: serde_json::Value,
    private_key_pkcs8: String,
    #[serde(rename = "privateKeyPem")]
    _private_key_pem: String,
    #[serde(rename = "privateKeyJwk")]
    _private_key_jwk: serde_json::Value,
    tests: Vec<OaepCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OaepCase {
    tc_id: usize,
    comment: String,
    #[serde(rename = "flags")]
    _flags: Vec<String>,
    msg: String,
    ct: String,
    label: String,
    result: Outcome,
}

fn run_oaep(bits: usize) {
    let name = format!("wycheproof/rsa_oaep_{bits}_sha256_mgf1sha256_test.json");
    let file: File<OaepGroup> = read_json(&name);
    let mut tally = Tally::new(&name);
    for g in &file.test_groups {
        assert_eq!(
            (
                g.key_size,
                g.sha.as_str(),
                g.mgf.as_str(),
                g.mgf_sha.as_str()
            ),
            (bits, "SHA-256", "MGF1", "SHA-256")
        );
        let key = unhex(&g.private_key_pkcs8);
        for t in &g.tests {
            let got = internal::rsa_oaep_decrypt(&key, &unhex(&t.ct), &unhex(&t.label));
            if got == Err(Error::Unsupported(Unsupported::RsaDecryption)) {
                tally.not_run(&format!(
                    "provider {} has no constant-time RSA decryption (rsa crate: RUSTSEC-2023-0071); run with --features aws-lc",
                    internal::provider_name()
                ));
                continue;
            }
            match t.result {
                Outcome::Valid => tally.check(
                    got == Ok(unhex(&t.msg)),
                    t.tc_id,
                    &format!("valid case failed ({})", t.comment),
                ),
                Outcome::Invalid => tally.check(
                    got == Err(Error::OpenFailed),
                    t.tc_id,
                    &format!("invalid case accepted ({})", t.comment),
                ),
                Outcome::Acceptable => unreachable!("no acceptable OAEP cases"),
            }
        }
    }
    tally.finish(file.number_of_tests);
}

#[test]
fn wycheproof_rsa_oaep_2048_sha256() {
    run_oaep(2048);
}

#[test]
fn wycheproof_rsa_oaep_3072_sha256() {
    run_oaep(3072);
}

#[test]
fn wycheproof_rsa_oaep_4096_sha256() {
    run_oaep(4096);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EcdsaGroup {
    #[serde(rename = "type")]
    _type: String,
    #[serde(rename = "source")]
    _source: serde_json::Value,
    public_key: EcdsaPublic,
    #[serde(rename = "publicKeyDer")]
    _public_key_der: String,
    #[serde(rename = "publicKeyPem")]
    _public_key_pem: String,
    #[serde(rename = "publicKeyJwk")]
    _public_key_jwk: Option<serde_json::Value>,
    sha: String,
    tests: Vec<EcdsaCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EcdsaPublic {
    #[serde(rename = "type")]
    _type: String,
    curve: String,
    #[serde(rename = "keySize")]
    _key_size: usize,
    uncompressed: String,
    #[serde(rename = "wx")]
    _wx: String,
    #[serde(rename = "wy")]
    _wy: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EcdsaCase {
    tc_id: usize,
    comment: String,
    #[serde(rename = "flags")]
    _flags: Vec<String>,
    msg: String,
    sig: String,
    result: Outcome,
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    let name = "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json";
    let file: File<EcdsaGroup> = read_json(name);
    let mut tally = Tally::new(name);
    for g in &file.test_groups {
        assert_eq!(
            (g.public_key.curve.as_str(), g.sha.as_str()),
            ("secp256r1", "SHA-256")
        );
        let public: [u8; 65] = unhex(&g.public_key.uncompressed).try_into().unwrap();
        for t in &g.tests {
            let sig = unhex(&t.sig);
            let ok = <[u8; 64]>::try_from(sig.as_slice())
                .map(|sig| internal::ecdsa_p256_verify(&public, &unhex(&t.msg), &sig))
                .unwrap_or(false);
            match t.result {
                Outcome::Valid => tally.check(
                    ok,
                    t.tc_id,
                    &format!("valid signature refused ({})", t.comment),
                ),
                Outcome::Invalid => tally.check(
                    !ok,
                    t.tc_id,
                    &format!("invalid signature accepted ({})", t.comment),
                ),
                Outcome::Acceptable => unreachable!("no acceptable P1363 cases"),
            }
        }
    }
    tally.finish(file.number_of_tests);
}

//! Writes the envelope test vectors in `test-vectors/envelopes/` from the fixed keys in
//! `test-vectors/keys/` and fixed seeds: the same inputs always give the same files, so
//! CI regenerates them and fails on any difference.
//!
//! Run: `cargo run --example gen-vectors` (writes the files) or
//! `cargo run --example gen-vectors -- --check` (fails if a file would change).

use std::path::{Path, PathBuf};

use pin_recovery::{Binding, Envelope, RecoverySecret, ServicePrivateKey};
use rand_core::SeedableRng;
use serde_json::{json, Value};

const CREATED_AT: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

fn load(dir: &Path, name: &str) -> ServicePrivateKey {
    let pem = std::fs::read_to_string(dir.join("keys").join(name)).expect("fixed key");
    ServicePrivateKey::from_pkcs8_pem(&pem).expect("fixed key loads")
}

fn binding_json(b: &Binding) -> Value {
    json!({"tenant": b.tenant(), "user": b.user(), "device": b.device()})
}

fn case(name: &str, expect: &str, binding: &Binding, envelope: &[u8]) -> Value {
    json!({"name": name, "expect": expect, "binding": binding_json(binding), "envelope": hex(envelope)})
}

fn vectors(dir: &Path, suite_name: &str, key_file: &str, other_key_file: &str) -> Value {
    let key = load(dir, key_file);
    let other = load(dir, other_key_file);
    let binding =
        Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3K").expect("binding");
    let seed = [0x42u8; 32];
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let secret = RecoverySecret::generate_with_rng(&mut rng);
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let _ = RecoverySecret::generate_with_rng(&mut rng);
    let env = key
        .public_key()
        .seal_with_rng(&secret, &binding, CREATED_AT, &mut rng)
        .expect("seal");
    let good = env.to_bytes();

    let mut cases = vec![json!({
        "name": "valid",
        "expect": "ok",
        "binding": binding_json(&binding),
        "secret": hex(secret.expose_secret()),
        "seed": hex(&seed),
        "created_at": CREATED_AT,
        "envelope": hex(&good),
        "text": env.to_text(),
    })];

    cases.push(case(
        "truncated by one byte",
        "decode:truncated",
        &binding,
        &good[..good.len() - 1],
    ));
    cases.push(case(
        "header only",
        "decode:truncated",
        &binding,
        &good[..good.len() - env_body_len(&env)],
    ));
    let mut trailing = good.clone();
    trailing.push(0);
    cases.push(case(
        "one trailing byte",
        "decode:trailing-bytes",
        &binding,
        &trailing,
    ));
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"PINX");
    cases.push(case("bad magic", "decode:bad-magic", &binding, &magic));
    let mut version = good.clone();
    version[4] = 2;
    cases.push(case(
        "unknown version",
        "decode:unsupported-version",
        &binding,
        &version,
    ));
    let mut suite = good.clone();
    suite[5..7].copy_from_slice(&0x7fffu16.to_be_bytes());
    cases.push(case(
        "unknown suite",
        "decode:unknown-suite",
        &binding,
        &suite,
    ));
    let mut empty_tenant = good[..39].to_vec();
    empty_tenant.push(0);
    empty_tenant.extend_from_slice(&good[40 + binding.tenant().len()..]);
    cases.push(case(
        "empty tenant id",
        "decode:bad-length",
        &binding,
        &empty_tenant,
    ));
    let mut control = good.clone();
    control[40] = 0x07; // the tenant's first character becomes BEL, a Cc code point
    cases.push(case(
        "tenant with a control character",
        "decode:bad-text",
        &binding,
        &control,
    ));
    let mut oversized = good.clone();
    oversized.resize(pin_recovery::MAX_ENVELOPE_LEN + 1, 0);
    cases.push(case(
        "one byte over the size limit",
        "decode:too-long",
        &binding,
        &oversized,
    ));

    let wrong =
        Binding::new("contoso.example", "mallory@contoso.example", "LAPTOP-7F3K").expect("binding");
    cases.push(case(
        "opened for another user",
        "open:failed",
        &wrong,
        &good,
    ));
    let wrong =
        Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-0000").expect("binding");
    cases.push(case(
        "opened for another device",
        "open:failed",
        &wrong,
        &good,
    ));
    let mut tag = good.clone();
    let last = tag.len() - 1;
    tag[last] ^= 0x01;
    cases.push(case("bad tag", "open:failed", &binding, &tag));
    let mut header = good.clone();
    let created =
        40 + binding.tenant().len() + 1 + binding.user().len() + 1 + binding.device().len();
    header[created + 7] ^= 0x01;
    cases.push(case(
        "creation time changed",
        "open:failed",
        &binding,
        &header,
    ));

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([0x43; 32]);
    let to_other = other
        .public_key()
        .seal_with_rng(&secret, &binding, CREATED_AT, &mut rng)
        .expect("seal");
    cases.push(case(
        "sealed to another key",
        "open:failed",
        &binding,
        to_other.as_bytes(),
    ));
    let mut relabelled = to_other.to_bytes();
    relabelled[7..23].copy_from_slice(key.key_id().as_bytes());
    cases.push(case(
        "sealed to another key, relabelled with this key's id",
        "open:failed",
        &binding,
        &relabelled,
    ));

    let text = env.to_text();
    let mut text_cases = vec![
        json!({"name": "text with padding", "expect": "decode:bad-base64", "text": format!("{text}=")}),
        json!({"name": "text with a newline", "expect": "decode:bad-base64", "text": format!("{text}\n")}),
        json!({"name": "text without prefix", "expect": "decode:bad-magic", "text": text.trim_start_matches("pinrec1.")}),
        json!({"name": "text body longer than 4096 bytes encode to", "expect": "decode:too-long", "text": format!("pinrec1.{}", "A".repeat(5463))}),
    ];
    let std_alphabet = text.replace('-', "+").replace('_', "/");
    if std_alphabet != text {
        text_cases.push(json!({"name": "text in the standard alphabet", "expect": "decode:bad-base64", "text": std_alphabet}));
    }
    for c in text_cases {
        let mut c = c;
        c["binding"] = binding_json(&binding);
        cases.push(c);
    }

    json!({
        "description": format!("pin-recovery envelope vectors, suite {suite_name}. Each case is headed by its expected outcome: ok, decode:<class> or open:failed. Generated by examples/gen-vectors.rs; do not edit."),
        "suite": suite_name,
        "suite_id": key.suite().id(),
        "service_key": key_file,
        "service_key_spki": hex(key.public_key().to_spki_der()),
        "key_id": key.key_id().to_string(),
        "cases": cases,
    })
}

/// Bytes after the header: both length-prefixed fields.
fn env_body_len(env: &Envelope) -> usize {
    let header = 4
        + 1
        + 2
        + 16
        + 16
        + 3
        + env.binding().tenant().len()
        + env.binding().user().len()
        + env.binding().device().len()
        + 8;
    env.as_bytes().len() - header
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let mut stale = Vec::new();
    for (file, suite, key, other) in [
        (
            "hpke-p256.json",
            "hpke-p256",
            "p256-service.pem",
            "p256-other.pem",
        ),
        (
            "rsa-oaep-2048.json",
            "rsa-oaep",
            "rsa2048-service.pem",
            "rsa3072-service.pem",
        ),
        (
            "hpke-xwing.json",
            "hpke-xwing",
            "xwing-service.pem",
            "xwing-other.pem",
        ),
    ] {
        let path = dir.join("envelopes").join(file);
        let text =
            serde_json::to_string_pretty(&vectors(&dir, suite, key, other)).expect("json") + "\n";
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::write(&path, text).expect("write vectors");
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        eprintln!(
            "vectors differ from what the generator produces: {}",
            stale.join(", ")
        );
        std::process::exit(1);
    }
}

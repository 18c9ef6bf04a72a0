//! Property tests: decode(encode(x)) == x for envelopes, requests, responses and stored
//! containers, and encode(decode(b)) == b for every accepted b (inputs mutated from
//! valid encodings). Envelopes are built by an encoder written here from FORMAT.md, not
//! by the crate's.

mod common;

use base64::Engine;
use pin_recovery::client::ContainerStore;
use pin_recovery::{Envelope, EnvelopeRegistration, RecoveryRequest, RecoveryResponse, Suite};
use proptest::prelude::*;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[derive(Debug, Clone)]
struct Parts {
    rsa: bool,
    key_id: [u8; 16],
    envelope_id: [u8; 16],
    ids: [String; 3],
    created_at: u64,
    encapsulated: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn id() -> impl Strategy<Value = String> {
    prop::string::string_regex("[A-Za-z0-9@._ é€-]{1,60}").unwrap()
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        [id(), id(), id()],
        any::<u64>(),
        0..3usize,
        any::<u64>(),
    )
        .prop_map(|(rsa, key_id, envelope_id, ids, created_at, size, fill)| {
            let enc_len = if rsa { [256, 384, 512][size] } else { 65 };
            let byte = |i: usize| (fill.rotate_left(i as u32 % 64) as u8) ^ (i as u8);
            Parts {
                rsa,
                key_id,
                envelope_id,
                ids,
                created_at,
                encapsulated: (0..enc_len).map(byte).collect(),
                ciphertext: (0..48).map(|i| byte(i + 7)).collect(),
            }
        })
}

/// FORMAT.md §2, written independently of the crate's encoder.
fn encode(p: &Parts) -> Vec<u8> {
    let mut out = b"PINR".to_vec();
    out.push(1);
    out.extend_from_slice(&(if p.rsa { 2u16 } else { 1u16 }).to_be_bytes());
    out.extend_from_slice(&p.key_id);
    out.extend_from_slice(&p.envelope_id);
    for s in &p.ids {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&p.created_at.to_be_bytes());
    out.extend_from_slice(&(p.encapsulated.len() as u16).to_be_bytes());
    out.extend_from_slice(&p.encapsulated);
    out.extend_from_slice(&(p.ciphertext.len() as u16).to_be_bytes());
    out.extend_from_slice(&p.ciphertext);
    out
}

fn mutate(mut b: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>, extra: &[u8]) -> Vec<u8> {
    for (i, x) in edits {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] ^= x;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b.extend_from_slice(extra);
    b
}

fn request_json(p: &Parts, eph: &[u8; 65], assertion: &str, sig: &[u8; 64]) -> String {
    let env = Envelope::from_bytes(&encode(p)).unwrap();
    format!(
        r#"{{"version":1,"envelope":"{}","ephemeral_key":"{}","assertion":"{}","device_signature":"{}"}}"#,
        env.to_text(),
        b64(eph),
        assertion,
        b64(sig)
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn envelope_decode_of_encode_is_identity(p in parts()) {
        let bytes = encode(&p);
        let env = Envelope::from_bytes(&bytes).unwrap();
        prop_assert_eq!(env.suite(), if p.rsa { Suite::RsaOaepSha256Aes256Gcm } else { Suite::HpkeP256Sha256Aes256Gcm });
        prop_assert_eq!(*env.key_id().as_bytes(), p.key_id);
        prop_assert_eq!(*env.envelope_id().as_bytes(), p.envelope_id);
        prop_assert_eq!(env.binding().tenant(), p.ids[0].as_str());
        prop_assert_eq!(env.binding().user(), p.ids[1].as_str());
        prop_assert_eq!(env.binding().device(), p.ids[2].as_str());
        prop_assert_eq!(env.created_at(), p.created_at);
        prop_assert_eq!(env.as_bytes(), &bytes[..]);
        prop_assert_eq!(&Envelope::from_text(&env.to_text()).unwrap(), &env);
        let json = serde_json::to_string(&env).unwrap();
        prop_assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
    }

    #[test]
    fn accepted_envelope_bytes_reencode_identically(
        p in parts(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<usize>()),
        extra in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        let b = mutate(encode(&p), &edits, cut, &extra);
        if let Ok(e) = Envelope::from_bytes(&b) {
            prop_assert_eq!(e.as_bytes(), &b[..]);
        }
    }

    #[test]
    fn accepted_envelope_text_reencodes_identically(p in parts(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3)) {
        let text = Envelope::from_bytes(&encode(&p)).unwrap().to_text();
        let mutated = mutate(text.into_bytes(), &edits, None, &[]);
        if let Ok(s) = std::str::from_utf8(&mutated) {
            if let Ok(e) = Envelope::from_text(s) {
                prop_assert_eq!(e.to_text(), s);
            }
        }
    }

    #[test]
    fn request_decode_of_encode_is_identity(
        p in parts(),
        eph in any::<[u8; 32]>(),
        assertion in "[A-Za-z0-9_.-]{0,300}",
        sig in any::<[u8; 32]>(),
    ) {
        let mut e = [4u8; 65];
        e[1..33].copy_from_slice(&eph);
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&sig);
        let json = request_json(&p, &e, &assertion, &s);
        let r = RecoveryRequest::from_json(json.as_bytes()).unwrap();
        prop_assert_eq!(r.envelope().as_bytes(), &encode(&p)[..]);
        prop_assert_eq!(r.ephemeral_key(), &e);
        prop_assert_eq!(r.assertion(), assertion.as_str());
        prop_assert_eq!(r.device_signature(), &s);
        prop_assert_eq!(r.to_json(), json.into_bytes());
    }

    #[test]
    fn accepted_request_bytes_reencode_identically(
        p in parts(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        cut in prop::option::of(any::<usize>()),
    ) {
        let json = request_json(&p, &[4; 65], "a.b.c", &[9; 64]);
        let b = mutate(json.into_bytes(), &edits, cut, &[]);
        if let Ok(r) = RecoveryRequest::from_json(&b) {
            prop_assert_eq!(r.to_json(), b);
        }
    }

    #[test]
    fn response_and_registration_round_trip(
        id in any::<[u8; 16]>(),
        sealed in prop::collection::vec(any::<u8>(), 113),
        p in parts(),
        previous in prop::option::of(any::<[u8; 16]>()),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let hex = base16ct::lower::encode_string(&id);
        let json = format!(r#"{{"version":1,"envelope_id":"{hex}","sealed_secret":"{}"}}"#, b64(&sealed));
        let r = RecoveryResponse::from_json(json.as_bytes()).unwrap();
        prop_assert_eq!(*r.envelope_id().as_bytes(), id);
        prop_assert_eq!(r.to_json(), json.as_bytes().to_vec());
        let m = mutate(json.into_bytes(), &edits, None, &[]);
        if let Ok(r) = RecoveryResponse::from_json(&m) {
            prop_assert_eq!(r.to_json(), m);
        }

        let env = Envelope::from_bytes(&encode(&p)).unwrap();
        let prev = previous.map_or("null".to_owned(), |p| format!("\"{}\"", base16ct::lower::encode_string(&p)));
        let proof = previous.map_or("null".to_owned(), |_| format!("\"{}\"", b64(&[5; 32])));
        let json = format!(r#"{{"version":1,"envelope":"{}","previous":{prev},"proof":{proof},"device_signature":"{}"}}"#, env.to_text(), b64(&[3; 64]));
        let reg = EnvelopeRegistration::from_json(json.as_bytes()).unwrap();
        prop_assert_eq!(reg.previous().map(|p| *p.as_bytes()), previous);
        prop_assert_eq!(reg.proof().is_some(), previous.is_some());
        prop_assert_eq!(reg.to_json(), json.into_bytes());
        // A proof without a previous envelope, or the reverse, is refused.
        let flipped = if previous.is_some() {
            json_str_replace(&reg.to_json(), &format!(r#""proof":"{}""#, b64(&[5; 32])), r#""proof":null"#)
        } else {
            json_str_replace(&reg.to_json(), r#""proof":null"#, &format!(r#""proof":"{}""#, b64(&[5; 32])))
        };
        prop_assert!(EnvelopeRegistration::from_json(&flipped).is_err());
    }
}

fn json_str_replace(json: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(json.to_vec())
        .unwrap()
        .replace(from, to)
        .into_bytes()
}

/// Stored containers: every accepted mutation of real states re-encodes identically, and
/// real states of every shape decode and re-encode.
#[test]
fn container_states_round_trip_and_accepted_mutations_reencode() {
    let w = common::world::World::new();
    let mut states = vec![w.store.load().unwrap().unwrap()];
    w.container
        .change_pin(
            &common::world::pin(common::world::PIN),
            &common::world::pin("111222"),
        )
        .unwrap();
    states.push(w.store.load().unwrap().unwrap());
    let _ = w
        .container
        .sign_in(&common::world::pin("000000"), b"c", None);
    states.push(w.store.load().unwrap().unwrap());
    for s in &states {
        assert_eq!(&pin_recovery::client::__decode_state(s).unwrap(), s);
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2048,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(
                0..states.len(),
                prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
                prop::option::of(any::<usize>()),
            ),
            |(i, edits, cut)| {
                let b = mutate(states[i].clone(), &edits, cut, &[]);
                if let Ok(again) = pin_recovery::client::__decode_state(&b) {
                    prop_assert_eq!(again, b);
                }
                Ok(())
            },
        )
        .unwrap();
}

//! The post-quantum hybrid suite end to end: an `hpke-xwing` envelope is answered with an
//! X-Wing one-time key, so the answer is as strong as the envelope; the kinds never mix,
//! and each refusal names what is wrong and changes nothing.

mod common;

use base64::Engine;
use common::world::{pin, World, AUDIENCE};
use pin_recovery::client::ClientError;
use pin_recovery::service::ServiceError;
use pin_recovery::{
    Clock, DecodeError, RecoveryRequest, RecoveryResponse, Suite, SEALED_SECRET_LEN,
    SEALED_SECRET_LEN_XWING,
};

use common::service_key as key;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// `json` (canonical: fields in the wire order) with the string value of `field`
/// replaced; the values edited here never contain quotes or escapes.
fn with_field(json: &[u8], field: &str, value: &str) -> Vec<u8> {
    let text = std::str::from_utf8(json).unwrap();
    let key = format!("\"{field}\":\"");
    let start = text.find(&key).unwrap() + key.len();
    let end = start + text[start..].find('"').unwrap();
    format!("{}{value}{}", &text[..start], &text[end..]).into_bytes()
}

/// The request's JSON with its `ephemeral_key` replaced.
fn with_ephemeral_key(req: &RecoveryRequest, key: &[u8]) -> Vec<u8> {
    with_field(&req.to_json(), "ephemeral_key", &b64(key))
}

#[test]
fn an_xwing_envelope_is_answered_with_xwing_and_recovers() {
    let w = World::with_tenant_key(key("xwing-service.pem"));
    let credential = w.container.status().unwrap().credential_public_key;
    let (req, pending) = w.request();
    assert_eq!(req.envelope().suite(), Suite::HpkeXWingSha256Aes256Gcm);
    assert_eq!(req.ephemeral_key().len(), 1216);
    assert_eq!(pending.ephemeral_public_key(), req.ephemeral_key());
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    let sealed = unb64(json(&resp.to_json())["sealed_secret"].as_str().unwrap());
    assert_eq!(sealed.len(), SEALED_SECRET_LEN_XWING);
    assert_eq!(RecoveryResponse::from_json(&resp.to_json()).unwrap(), resp);

    let reset = w
        .container
        .complete_recovery(pending, &resp, &pin("730145"), &w.keys)
        .unwrap();
    assert_eq!(reset.credential_public_key, credential);
    assert_eq!(reset.envelope.suite(), Suite::HpkeXWingSha256Aes256Gcm);
    w.register_pending();
    // The new envelope recovers the same way.
    let (req, pending) = w.request();
    assert_eq!(req.ephemeral_key().len(), 1216);
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    assert!(pending.open(&resp).is_ok());
}

#[test]
fn a_p256_envelope_is_still_answered_with_p256() {
    let w = World::new();
    let (req, pending) = w.request();
    assert_eq!(req.ephemeral_key().len(), 65);
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    let sealed = unb64(json(&resp.to_json())["sealed_secret"].as_str().unwrap());
    assert_eq!(sealed.len(), SEALED_SECRET_LEN);
    assert!(pending.open(&resp).is_ok());
}

/// A one-time key of the wrong KEM or length for the envelope is a decoding error; an
/// X-Wing key that is not a key is refused by the service; neither changes anything.
#[test]
fn one_time_keys_of_the_wrong_kind_are_refused_by_name() {
    let w = World::with_tenant_key(key("xwing-service.pem"));
    let (req, _pending) = w.request();
    let before = w.snapshot();
    for (len, expected) in [
        (
            65,
            DecodeError::BadLength {
                field: "ephemeral key",
                found: 65,
            },
        ),
        (
            1215,
            DecodeError::BadLength {
                field: "ephemeral key",
                found: 1215,
            },
        ),
        (1217, DecodeError::TooLong { max: 1216 }),
    ] {
        let bytes = with_ephemeral_key(&req, &vec![4u8; len]);
        assert_eq!(
            RecoveryRequest::from_json(&bytes).unwrap_err(),
            expected,
            "{len}"
        );
        assert_eq!(
            w.service.handle_json(&bytes, &World::ctx()),
            Err(ServiceError::MalformedRequest(expected))
        );
    }
    // 1216 bytes whose ML-KEM part has a coefficient of 4095 (>= q): not a key. The
    // request is well-formed and correctly signed, so it is the service that refuses it.
    let mut bad = req.ephemeral_key().to_vec();
    bad[0] = 0xff;
    bad[1] |= 0x0f;
    let signed_bad = {
        // Build the request the device would send with this key: sign it properly.
        let device_key = w.container.__device_key().unwrap();
        let assertion = w
            .idp
            .mfa_assertion(
                AUDIENCE,
                &w.binding,
                &pin_recovery::mfa_nonce(&req.envelope().envelope_id(), &bad),
                w.clock.now(),
            )
            .unwrap();
        let unsigned = with_field(&with_ephemeral_key(&req, &bad), "assertion", &assertion);
        let signed = RecoveryRequest::from_json(&unsigned).unwrap();
        let signature = device_key.sign(signed.signed_bytes()).unwrap();
        with_field(&unsigned, "device_signature", &b64(&signature))
    };
    assert_eq!(
        w.service.handle_json(&signed_bad, &World::ctx()),
        Err(ServiceError::MalformedRequest(DecodeError::BadDocument {
            reason: "ephemeral key is not a key of the envelope's KEM"
        }))
    );
    assert_eq!(w.snapshot(), before, "refused one-time keys changed state");

    // And a P-256 envelope's request cannot carry an X-Wing key.
    let p = World::new();
    let (req, _pending) = p.request();
    let bytes = with_ephemeral_key(&req, &vec![4u8; 1216]);
    assert_eq!(
        RecoveryRequest::from_json(&bytes).unwrap_err(),
        DecodeError::TooLong { max: 65 }
    );
}

/// The device refuses an answer sealed with the other KEM (it has the other length), as
/// it refuses any answer not for its request.
#[test]
fn an_answer_of_the_other_kind_does_not_open() {
    let x = World::with_tenant_key(key("xwing-service.pem"));
    let p = World::new();
    let (xreq, xpending) = x.request();
    let (preq, ppending) = p.request();
    let xresp = x.service.handle(&xreq, &World::ctx()).unwrap();
    let presp = p.service.handle(&preq, &World::ctx()).unwrap();
    // Relabel each answer with the other's envelope id, so that only the sealed secret
    // differs in kind.
    let relabel = |resp: &RecoveryResponse, id: pin_recovery::EnvelopeId| {
        let relabelled = with_field(&resp.to_json(), "envelope_id", &id.to_string());
        RecoveryResponse::from_json(&relabelled).unwrap()
    };
    assert_eq!(
        xpending
            .__open_response(&relabel(&presp, xreq.envelope().envelope_id()))
            .unwrap_err(),
        ClientError::ResponseMismatch
    );
    assert_eq!(
        ppending
            .__open_response(&relabel(&xresp, preq.envelope().envelope_id()))
            .unwrap_err(),
        ClientError::ResponseMismatch
    );
    // The right answers still open.
    assert!(xpending.open(&xresp).is_ok());
    assert!(ppending.open(&presp).is_ok());
}

#[test]
fn a_sealed_secret_of_any_other_length_is_refused() {
    let id = "00".repeat(16);
    for len in [0, 1, 112, 114, 1167, 1169] {
        let body = format!(
            r#"{{"version":1,"envelope_id":"{id}","sealed_secret":"{}"}}"#,
            b64(&vec![7u8; len])
        );
        let err = RecoveryResponse::from_json(body.as_bytes()).unwrap_err();
        let expected = if len > SEALED_SECRET_LEN_XWING {
            DecodeError::TooLong {
                max: SEALED_SECRET_LEN_XWING,
            }
        } else {
            DecodeError::BadLength {
                field: "sealed secret",
                found: len,
            }
        };
        assert_eq!(err, expected, "{len}");
    }
}

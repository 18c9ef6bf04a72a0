//! Exhaustive negatives, for one valid envelope, request and response of each suite:
//! every single-bit flip and every truncation is rejected, and rejected without touching
//! service state (replay cache, registry, rate counters) or client state. Also the fixed
//! check order on open: input refused on its suite, key id or lengths never reaches the
//! private-key operation or the AEAD.

mod common;

use common::world::{pin, World, AUDIENCE};
use pin_recovery::__internal::open_probe_counts;
use pin_recovery::client::PendingRecovery;
use pin_recovery::service::ServiceError;
use pin_recovery::{Binding, Clock, Envelope, Error, RecoveryResponse, ServicePrivateKey};

fn key(name: &str) -> ServicePrivateKey {
    let pem = std::fs::read_to_string(common::vectors_dir().join("keys").join(name)).unwrap();
    ServicePrivateKey::from_pkcs8_pem(&pem).unwrap()
}

fn flips(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..bytes.len() * 8).map(move |i| {
        let mut b = bytes.to_vec();
        b[i / 8] ^= 1 << (i % 8);
        (i, b)
    })
}

/// Every flip and truncation of a valid request's JSON is refused by the service, and
/// the service and the container are exactly as before.
fn request_negatives(w: &World) -> usize {
    let (req, _pending) = w.request();
    let json = req.to_json();
    let before = w.snapshot();
    let mut refused = 0;
    for (i, b) in flips(&json) {
        assert!(
            w.service.handle_json(&b, &World::ctx()).is_err(),
            "request bit {i} flipped was accepted"
        );
        refused += 1;
    }
    for n in 0..json.len() {
        assert!(
            w.service.handle_json(&json[..n], &World::ctx()).is_err(),
            "request prefix {n} accepted"
        );
        refused += 1;
    }
    assert_eq!(w.snapshot(), before, "refused requests changed state");
    refused
}

/// Every flip of the envelope inside a request (re-signed by the device, with fresh MFA
/// bound to it) is refused, without touching state.
fn envelope_in_request_negatives(w: &World) -> usize {
    let env = w.container.begin_recovery().unwrap().envelope().clone();
    let before = w.snapshot();
    let mut refused = 0;
    for (i, b) in flips(env.as_bytes()) {
        let Ok(flipped) = Envelope::from_bytes(&b) else {
            refused += 1;
            continue;
        };
        let mut pending = PendingRecovery::for_envelope(flipped.clone()).unwrap();
        let binding = flipped.binding().clone();
        let a = w
            .idp
            .mfa_assertion(AUDIENCE, &binding, pending.mfa_nonce(), w.clock.now())
            .unwrap();
        let req = pending.request(&a, &w.device_key).unwrap();
        assert!(
            w.service.handle(&req, &World::ctx()).is_err(),
            "envelope bit {i} flipped was released"
        );
        refused += 1;
    }
    assert_eq!(w.snapshot(), before, "refused envelopes changed state");
    refused
}

/// Every flip and truncation of a valid response is refused by the client, and the
/// container is unchanged.
fn response_negatives(w: &World) -> usize {
    let (req, pending) = w.request();
    let resp = match w.service.handle(&req, &World::ctx()) {
        Ok(r) => r,
        Err(ServiceError::Unsupported) => return 0,
        Err(e) => panic!("{e:?}"),
    };
    let json = resp.to_json();
    let before = w.snapshot();
    let mut refused = 0;
    for (i, b) in flips(&json) {
        if let Ok(r) = RecoveryResponse::from_json(&b) {
            assert!(
                pending.__open_response(&r).is_err(),
                "response bit {i} flipped opened"
            );
        }
        refused += 1;
    }
    for n in 0..json.len() {
        assert!(RecoveryResponse::from_json(&json[..n]).is_err());
        refused += 1;
    }
    // And through the container, for a sample: nothing is stored.
    let r = RecoveryResponse::from_json(&flips(&json).nth(json.len() * 4).unwrap().1);
    if let Ok(r) = r {
        assert!(w
            .container
            .complete_recovery(pending, &r, &pin("730145"), &w.keys)
            .is_err());
    }
    assert_eq!(w.snapshot(), before, "refused responses changed state");
    refused
}

#[test]
fn hpke_request_envelope_and_response_flips_and_truncations_are_rejected() {
    let w = World::new();
    let r = request_negatives(&w);
    let e = envelope_in_request_negatives(&w);
    let s = response_negatives(&w);
    println!(
        "hpke-p256: {r} request, {e} envelope, {s} response mutations refused; state unchanged"
    );
    assert!(s > 0);
}

#[test]
fn rsa_request_envelope_and_response_flips_and_truncations_are_rejected() {
    let w = World::with_tenant_key(key("rsa2048-service.pem"));
    let r = request_negatives(&w);
    let e = envelope_in_request_negatives(&w);
    let s = response_negatives(&w);
    println!(
        "rsa-oaep-2048 ({}): {r} request, {e} envelope, {s} response mutations refused; state unchanged",
        pin_recovery::__internal::provider_name()
    );
}

#[test]
fn check_order_wrong_suite_key_or_length_never_reaches_the_crypto() {
    let binding = Binding::new("t", "u", "d").unwrap();
    let secret = || pin_recovery::RecoverySecret::from_bytes(&mut [1; 32]);
    let p256 = key("p256-service.pem");
    let other = key("p256-other.pem");
    let rsa2048 = key("rsa2048-service.pem");
    let rsa3072 = key("rsa3072-service.pem");

    let env = p256.public_key().seal(&secret(), &binding).unwrap();
    let start = open_probe_counts();
    assert_eq!(
        other.open(&env, &binding),
        Err(Error::OpenFailed),
        "wrong key id"
    );
    assert_eq!(
        rsa2048.open(&env, &binding),
        Err(Error::OpenFailed),
        "wrong suite"
    );
    assert_eq!(open_probe_counts(), start, "refused before any crypto");

    // An RSA envelope naming the 2048-bit key but carrying a 3072-bit wrap: the length
    // check stops it before the private-key operation.
    let long = rsa3072.public_key().seal(&secret(), &binding).unwrap();
    let mut bytes = long.to_bytes();
    bytes[7..23].copy_from_slice(rsa2048.key_id().as_bytes());
    let relabelled = Envelope::from_bytes(&bytes).unwrap();
    let start = open_probe_counts();
    let refused = rsa2048.open(&relabelled, &binding);
    assert!(matches!(
        refused,
        Err(Error::OpenFailed) | Err(Error::Unsupported(_))
    ));
    assert_eq!(
        open_probe_counts(),
        start,
        "wrong-length wrap never reaches RSA or the AEAD"
    );

    // A valid envelope reaches each exactly once; a wrong binding also goes all the way
    // (so that it costs the same time) and still fails.
    let start = open_probe_counts();
    assert!(p256.open(&env, &binding).is_ok());
    assert_eq!(open_probe_counts(), (start.0 + 1, start.1 + 1));
    let wrong = Binding::new("t", "u", "x").unwrap();
    assert_eq!(p256.open(&env, &wrong), Err(Error::OpenFailed));
    assert_eq!(open_probe_counts(), (start.0 + 2, start.1 + 2));
    // An invalid point stops at the private-key step, before the AEAD.
    let mut bad_point = env.to_bytes();
    let enc_at = env.as_bytes().len() - 48 - 2 - 65;
    bad_point[enc_at + 64] ^= 1;
    let bad = Envelope::from_bytes(&bad_point).unwrap();
    let start = open_probe_counts();
    assert_eq!(p256.open(&bad, &binding), Err(Error::OpenFailed));
    assert_eq!(open_probe_counts(), (start.0 + 1, start.1));
}

//! Exhaustive negatives, for one valid envelope, request and response of each suite:
//! every single-bit flip and every truncation is rejected, and rejected without touching
//! service state (replay cache, registry, rate counters) or client state. Also the fixed
//! check order on open: input refused on its suite, key id or lengths never reaches the
//! private-key operation or the AEAD.

mod common;

use common::world::{pin, World, AUDIENCE};
use pin_recovery::__internal::open_probe_counts;
use pin_recovery::client::ClientError;
use pin_recovery::service::ServiceError;
use pin_recovery::{Binding, Clock, Envelope, Error, RecoveryResponse};

use common::service_key as key;

fn flips(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..bytes.len() * 8).map(move |i| {
        let mut b = bytes.to_vec();
        b[i / 8] ^= 1 << (i % 8);
        (i, b)
    })
}

/// Every flip and truncation of a valid request's JSON is refused by the service, and
/// the service and the container are exactly as before. Every field is covered by the
/// device signature, which is checked before anything else that could differ, so a
/// mutation either does not decode or is refused as an unauthenticated device.
fn request_negatives(w: &World) -> usize {
    let (req, _pending) = w.request();
    let json = req.to_json();
    let before = w.snapshot();
    let mut refused = 0;
    let mut classes = std::collections::BTreeMap::<&str, usize>::new();
    let inputs = flips(&json)
        .map(|(i, b)| (format!("bit {i} flipped"), b))
        .chain((0..json.len()).map(|n| (format!("prefix {n}"), json[..n].to_vec())));
    for (what, b) in inputs {
        match w.service.handle_json(&b, &World::ctx()) {
            Err(e @ (ServiceError::MalformedRequest(_) | ServiceError::DeviceNotAuthenticated)) => {
                *classes.entry(e.reason()).or_default() += 1;
            }
            other => panic!("request {what}: expected a refusal before any check that could leak, got {other:?}"),
        }
        refused += 1;
    }
    println!("  request mutations by class: {classes:?}");
    assert_eq!(w.snapshot(), before, "refused requests changed state");
    refused
}

/// Every flip of the envelope inside a request (re-signed by the device, with fresh MFA
/// bound to it) is refused, without touching state: as another device's (its tenant or
/// device id changed), another user's, or not the registered envelope.
fn envelope_in_request_negatives(w: &World) -> usize {
    let env = w.container.begin_recovery().unwrap().envelope().clone();
    let before = w.snapshot();
    let mut refused = 0;
    let mut classes = std::collections::BTreeMap::<&str, usize>::new();
    for (i, b) in flips(env.as_bytes()) {
        let Ok(flipped) = Envelope::from_bytes(&b) else {
            *classes.entry("does not decode").or_default() += 1;
            refused += 1;
            continue;
        };
        let mut pending = w.pending_for(flipped.clone());
        let binding = flipped.binding().clone();
        let a = w
            .idp
            .mfa_assertion(AUDIENCE, &binding, pending.mfa_nonce(), w.clock.now())
            .unwrap();
        let req = pending.request(&a).unwrap();
        match w.service.handle(&req, &World::ctx()) {
            Err(
                e @ (ServiceError::DeviceNotAuthenticated
                | ServiceError::WrongUser
                | ServiceError::StaleEnvelope),
            ) => *classes.entry(e.reason()).or_default() += 1,
            other => panic!("envelope bit {i} flipped: {other:?}"),
        }
        refused += 1;
    }
    println!("  envelope mutations by class: {classes:?}");
    assert_eq!(w.snapshot(), before, "refused envelopes changed state");
    refused
}

/// Every flip and truncation of a valid response is refused by the client, and the
/// container is unchanged.
fn response_negatives(w: &World) -> usize {
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    let json = resp.to_json();
    let before = w.snapshot();
    let mut refused = 0;
    for (i, b) in flips(&json) {
        if let Ok(r) = RecoveryResponse::from_json(&b) {
            assert_eq!(
                pending.__open_response(&r).unwrap_err(),
                ClientError::ResponseMismatch,
                "response bit {i} flipped"
            );
        }
        refused += 1;
    }
    for n in 0..json.len() {
        assert!(
            RecoveryResponse::from_json(&json[..n]).is_err(),
            "prefix {n}"
        );
        refused += 1;
    }
    // And through the container: a sealed secret with one base64 character changed
    // (always a valid encoding) is refused, and nothing is stored.
    let text = String::from_utf8(json).unwrap();
    let at = text.find("sealed_secret").unwrap() + "sealed_secret\":\"".len() + 10;
    let mut chars: Vec<char> = text.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let changed = RecoveryResponse::from_json(chars.iter().collect::<String>().as_bytes())
        .expect("still a canonical response");
    let incomplete = w
        .container
        .complete_recovery(pending, &changed, &pin("730145"), &w.keys)
        .unwrap_err();
    assert_eq!(incomplete.error(), &ClientError::ResponseMismatch);
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
}

#[test]
fn xwing_request_envelope_and_response_flips_and_truncations_are_rejected() {
    let w = World::with_tenant_key(key("xwing-service.pem"));
    let r = request_negatives(&w);
    let e = envelope_in_request_negatives(&w);
    let s = response_negatives(&w);
    println!(
        "hpke-xwing: {r} request, {e} envelope, {s} response mutations refused; state unchanged"
    );
}

// A service without constant-time RSA cannot open RSA envelopes, so it refuses to
// register them and this world cannot be built: not run, and counted as such.
#[test]
#[cfg_attr(
    not(feature = "aws-lc"),
    ignore = "not run: this provider has no RSA decryption (enable aws-lc)"
)]
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

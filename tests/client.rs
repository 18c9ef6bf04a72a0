//! The client container: each operation's success and every failure, each failure a
//! typed error that changes nothing stored (a wrong PIN changes exactly the counter).
//! DESIGN.md properties 4 and 6 (client side) are named below.

mod common;

use std::sync::Arc;

use common::world::{pin, single_key_document, test_policy, World, PIN, T0};
use pin_recovery::client::{
    CharClass, ClientError, Container, ContainerPolicy, ContainerStore, MemoryStore, PinPolicy,
    PinPolicyViolation, ServiceTrust,
};
use pin_recovery::{
    Binding, KeyDocumentError, KeyDocumentSigner, ManualClock, RecoverySecret, ServicePrivateKey,
    SignedKeyDocument, SigningKey,
};

/// The stored bytes, to compare before and after a refused operation.
fn stored(store: &MemoryStore) -> Vec<u8> {
    store.load().unwrap().unwrap()
}

/// Runs a full recovery exchange and applies it as a reset to `new_pin`.
fn recover(w: &World, new_pin: &str) -> pin_recovery::client::Reset {
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    w.container
        .complete_recovery(pending, &resp, &pin(new_pin), &w.keys)
        .unwrap()
}

#[test]
fn enrol_then_sign_in() {
    let w = World::new();
    let status = w.container.status().unwrap();
    assert!(status.recoverable);
    assert!(!status.registration_pending);
    assert_eq!(status.identity, w.binding);
    let s = w.container.sign_in(&pin(PIN), b"challenge", None).unwrap();
    assert!(status
        .credential_public_key
        .verify(b"challenge", &s.signature));
    assert!(s.resealed.is_none());
    assert_eq!(
        w.container
            .enrol(&w.binding, &pin(PIN), Some(&w.keys))
            .unwrap_err(),
        ClientError::AlreadyEnrolled
    );
}

#[test]
fn wrong_pin_counts_then_locks_out() {
    let w = World::new();
    let before = stored(&w.store);
    for left in (0..5).rev() {
        assert_eq!(
            w.container.sign_in(&pin("000000"), b"c", None).unwrap_err(),
            ClientError::WrongPin {
                attempts_left: left
            }
        );
    }
    assert_eq!(w.container.status().unwrap().failed_attempts, 5);
    assert!(w.container.status().unwrap().locked_out);
    // Locked out: even the right PIN is refused, and nothing more is counted.
    let locked = stored(&w.store);
    assert_eq!(
        w.container.sign_in(&pin(PIN), b"c", None).unwrap_err(),
        ClientError::LockedOut
    );
    assert_eq!(
        w.container
            .change_pin(&pin(PIN), &pin("111222"))
            .unwrap_err(),
        ClientError::LockedOut
    );
    assert_eq!(stored(&w.store), locked);
    // The counter is the only thing that changed.
    assert_ne!(before, locked);
    // A reset opens it.
    recover(&w, "730145");
    assert_eq!(w.container.status().unwrap().failed_attempts, 0);
    assert!(w.container.sign_in(&pin("730145"), b"c", None).is_ok());
}

#[test]
fn correct_pin_resets_the_counter() {
    let w = World::new();
    let _ = w.container.sign_in(&pin("000000"), b"c", None);
    assert_eq!(w.container.status().unwrap().failed_attempts, 1);
    w.container.sign_in(&pin(PIN), b"c", None).unwrap();
    assert_eq!(w.container.status().unwrap().failed_attempts, 0);
}

#[test]
fn change_pin_success_and_failures_change_nothing() {
    let w = World::new();
    let before = stored(&w.store);
    assert_eq!(
        w.container.change_pin(&pin(PIN), &pin("12")).unwrap_err(),
        ClientError::PinPolicy(PinPolicyViolation::TooShort { min: 6 })
    );
    assert_eq!(
        w.container
            .change_pin(&pin(PIN), &pin("12345a"))
            .unwrap_err(),
        ClientError::PinPolicy(PinPolicyViolation::Blocked(CharClass::Lowercase))
    );
    assert_eq!(stored(&w.store), before, "policy refusal stores nothing");
    assert_eq!(
        w.container.change_pin(&pin(PIN), &pin(PIN)).unwrap_err(),
        ClientError::PinReused
    );
    assert_eq!(stored(&w.store), before, "history refusal stores nothing");
    w.container.change_pin(&pin(PIN), &pin("111222")).unwrap();
    assert!(w.container.sign_in(&pin("111222"), b"c", None).is_ok());
    assert!(matches!(
        w.container.sign_in(&pin(PIN), b"c", None),
        Err(ClientError::WrongPin { .. })
    ));
}

#[test]
fn pin_history_blocks_the_last_n_pins_only() {
    let w = World::new(); // history 3
    w.container.change_pin(&pin(PIN), &pin("111111")).unwrap();
    w.container
        .change_pin(&pin("111111"), &pin("222222"))
        .unwrap();
    assert_eq!(
        w.container
            .change_pin(&pin("222222"), &pin(PIN))
            .unwrap_err(),
        ClientError::PinReused
    );
    w.container
        .change_pin(&pin("222222"), &pin("333333"))
        .unwrap();
    // PIN is now four changes back: allowed again.
    w.container.change_pin(&pin("333333"), &pin(PIN)).unwrap();
    // A reset honours the history too.
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    let before = stored(&w.store);
    let incomplete = w
        .container
        .complete_recovery(pending, &resp, &pin("333333"), &w.keys)
        .unwrap_err();
    assert_eq!(incomplete.error(), &ClientError::PinReused);
    assert_eq!(stored(&w.store), before);
}

#[test]
fn expired_pin_must_be_changed() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = MemoryStore::new();
    let mut policy = test_policy(false);
    policy.pin = PinPolicy {
        expiry_days: Some(30),
        ..PinPolicy::default()
    };
    let c = Container::with_clock(store.clone(), policy, None, clock.clone());
    let b = Binding::new("t", "u", "d").unwrap();
    c.enrol(&b, &pin(PIN), None).unwrap();
    clock.advance(29 * 86_400);
    c.sign_in(&pin(PIN), b"c", None).unwrap();
    clock.advance(86_400);
    assert_eq!(
        c.sign_in(&pin(PIN), b"c", None).unwrap_err(),
        ClientError::PinExpired
    );
    assert_eq!(
        c.status().unwrap().failed_attempts,
        0,
        "an expired but correct PIN is not a failed attempt"
    );
    c.change_pin(&pin(PIN), &pin("555666")).unwrap();
    c.sign_in(&pin("555666"), b"c", None).unwrap();
}

#[test]
fn property_4_reset_keeps_the_credential_and_retires_old_pin_and_secret() {
    let w = World::new();
    let credential = w.container.status().unwrap().credential_public_key;
    let (req, reset) = w.recover("730145");
    assert_eq!(
        reset.credential_public_key, credential,
        "credential key unchanged"
    );
    assert_ne!(
        reset.envelope.envelope_id(),
        req.envelope().envelope_id(),
        "a new envelope"
    );
    assert!(
        matches!(
            w.container.sign_in(&pin(PIN), b"c", None),
            Err(ClientError::WrongPin { .. })
        ),
        "old PIN fails"
    );
    let s = w.container.sign_in(&pin("730145"), b"c", None).unwrap();
    assert!(
        credential.verify(b"c", &s.signature),
        "new PIN works with the same credential"
    );
    assert!(w.container.status().unwrap().registration_pending);
}

#[test]
fn property_4_old_secret_no_longer_unlocks() {
    // A world whose service key the test holds, to see the secrets themselves.
    let clock = Arc::new(ManualClock::new(T0));
    let service_key = ServicePrivateKey::generate_p256().unwrap();
    let signer = KeyDocumentSigner::new(SigningKey::generate().unwrap());
    let keys = single_key_document(&signer, &service_key, 1);
    let store = MemoryStore::new();
    let c = Container::with_clock(
        store.clone(),
        test_policy(true),
        Some(ServiceTrust {
            key_document_key: *signer.verifying_key(),
        }),
        clock,
    );
    let b = Binding::new("t", "u", "d").unwrap();
    let env = c
        .enrol(&b, &pin(PIN), Some(&keys))
        .unwrap()
        .envelope
        .unwrap();
    let old_secret = service_key.open(&env, &b).unwrap();
    let reset = c
        .reset_with_secret(&old_secret, &pin("730145"), &keys)
        .unwrap();
    // Once the service confirms the new envelope, the old protector is gone.
    c.confirm_registration(reset.envelope.envelope_id())
        .unwrap();
    let before = stored(&store);
    assert_eq!(
        c.reset_with_secret(&old_secret, &pin("999888"), &keys)
            .unwrap_err(),
        ClientError::WrongRecoverySecret
    );
    assert_eq!(
        c.reset_with_secret(&RecoverySecret::generate().unwrap(), &pin("999888"), &keys)
            .unwrap_err(),
        ClientError::WrongRecoverySecret
    );
    assert_eq!(stored(&store), before);
    c.sign_in(&pin("730145"), b"c", None).unwrap();
    // The new envelope's secret is the one that works now.
    let new_secret = service_key.open(&reset.envelope, &b).unwrap();
    c.reset_with_secret(&new_secret, &pin("999888"), &keys)
        .unwrap();
}

#[test]
fn recovery_disabled_by_default_means_destructive_reset() {
    let store = MemoryStore::new();
    let c = Container::new(
        store.clone(),
        ContainerPolicy {
            argon2: test_policy(false).argon2,
            ..ContainerPolicy::default()
        },
        None,
    );
    let b = Binding::new("t", "u", "d").unwrap();
    let e = c.enrol(&b, &pin(PIN), None).unwrap();
    assert!(e.envelope.is_none());
    assert!(!c.status().unwrap().recoverable);
    assert_eq!(
        c.begin_recovery().unwrap_err(),
        ClientError::RecoveryDisabled
    );
    let r = c.destructive_reset(&b, &pin("246810"), None).unwrap();
    assert_ne!(
        r.credential_public_key, e.credential_public_key,
        "a new credential key"
    );
    assert!(c.sign_in(&pin("246810"), b"c", None).is_ok());
    assert!(matches!(
        c.sign_in(&pin(PIN), b"c", None),
        Err(ClientError::WrongPin { .. })
    ));
}

#[test]
fn enrolment_with_recovery_needs_trust_and_a_key_document() {
    let w = World::new();
    let b = Binding::new("contoso", "bob", "d2").unwrap();
    let no_trust = Container::new(MemoryStore::new(), test_policy(true), None);
    assert_eq!(
        no_trust.enrol(&b, &pin(PIN), Some(&w.keys)).unwrap_err(),
        ClientError::NoServiceTrust
    );
    let no_doc = Container::new(MemoryStore::new(), test_policy(true), Some(w.trust.clone()));
    assert_eq!(
        no_doc.enrol(&b, &pin(PIN), None).unwrap_err(),
        ClientError::KeyDocumentRequired
    );
    assert_eq!(no_doc.status().unwrap_err(), ClientError::NotEnrolled);
}

#[test]
fn key_documents_unsigned_expired_wrong_tenant_and_rolled_back_are_refused() {
    let w = World::new();
    let clock = Arc::new(ManualClock::new(T0));
    let b = Binding::new("contoso", "bob", "d2").unwrap();
    let store = MemoryStore::new();
    let c = Container::with_clock(
        store.clone(),
        test_policy(true),
        Some(w.trust.clone()),
        clock.clone(),
    );

    // Signed by another key.
    let rogue = KeyDocumentSigner::new(SigningKey::generate().unwrap());
    let forged = rogue
        .sign(&pin_recovery::KeyDocument {
            issuer: "x".into(),
            tenant: "contoso".into(),
            serial: 9,
            issued_at: T0,
            expires_at: T0 + 100,
            keys: vec![pin_recovery::PublishedKey {
                key: ServicePrivateKey::generate_p256()
                    .unwrap()
                    .public_key()
                    .clone(),
                status: pin_recovery::PublishedStatus::Current,
            }],
        })
        .unwrap();
    assert_eq!(
        c.enrol(&b, &pin(PIN), Some(&forged)).unwrap_err(),
        ClientError::KeyDocument(KeyDocumentError::BadSignature)
    );

    // Unsigned: alg none.
    let parts: Vec<&str> = w.keys.as_str().split('.').collect();
    let none_header = base64url(br#"{"alg":"none","typ":"pin-recovery-keys+jwt"}"#);
    let unsigned = SignedKeyDocument::new(format!("{none_header}.{}.", parts[1]));
    assert_eq!(
        c.enrol(&b, &pin(PIN), Some(&unsigned)).unwrap_err(),
        ClientError::KeyDocument(KeyDocumentError::BadSignature)
    );
    // Tampered payload.
    let tampered = SignedKeyDocument::new(format!("{}.{}x.{}", parts[0], parts[1], parts[2]));
    assert!(matches!(
        c.enrol(&b, &pin(PIN), Some(&tampered)).unwrap_err(),
        ClientError::KeyDocument(_)
    ));

    // Wrong tenant.
    let other = Binding::new("fabrikam", "bob", "d2").unwrap();
    assert_eq!(
        c.enrol(&other, &pin(PIN), Some(&w.keys)).unwrap_err(),
        ClientError::KeyDocument(KeyDocumentError::WrongTenant)
    );

    // Expired.
    clock.advance(86_400 + 1);
    assert_eq!(
        c.enrol(&b, &pin(PIN), Some(&w.keys)).unwrap_err(),
        ClientError::KeyDocument(KeyDocumentError::Expired)
    );
    clock.set(T0);
    assert!(
        store.load().unwrap().is_none(),
        "no refusal stored anything"
    );

    // Rolled back: enrol with serial 2, then offer serial 1.
    let newer = {
        w.service
            .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
            .unwrap();
        w.service.key_document("contoso").unwrap()
    };
    c.enrol(&b, &pin(PIN), Some(&newer)).unwrap();
    let before = stored(&store);
    let rolled_back = ClientError::KeyDocument(KeyDocumentError::RolledBack {
        serial: 1,
        last_seen: 2,
    });
    assert_eq!(c.check_key_document(&w.keys).unwrap_err(), rolled_back);
    // The PIN still works; the refused document is reported beside the signature.
    let signed = c.sign_in(&pin(PIN), b"c", Some(&w.keys)).unwrap();
    assert_eq!(signed.key_document_refused, Some(rolled_back));
    assert!(signed.resealed.is_none());
    assert_eq!(
        stored(&store),
        before,
        "a refused key document changes nothing"
    );
    assert!(c.check_key_document(&newer).is_ok());
}

fn base64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn sign_in_reseals_after_key_rotation() {
    let w = World::new();
    let old = w.container.begin_recovery().unwrap().envelope().key_id();
    w.service
        .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
        .unwrap();
    let keys = w.service.key_document("contoso").unwrap();
    let s = w.container.sign_in(&pin(PIN), b"c", Some(&keys)).unwrap();
    let resealed = s.resealed.expect("resealed to the new key");
    assert_ne!(resealed.key_id(), old);
    assert!(w.container.status().unwrap().registration_pending);
    w.register_pending();
    // Nothing to do the next time.
    assert!(w
        .container
        .sign_in(&pin(PIN), b"c", Some(&keys))
        .unwrap()
        .resealed
        .is_none());
    // And recovery works with the resealed envelope.
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    w.container
        .complete_recovery(pending, &resp, &pin("730145"), &keys)
        .unwrap();
}

#[test]
fn tampered_or_truncated_state_is_a_typed_error() {
    let w = World::new();
    let good = stored(&w.store);
    let envelope_len = w
        .container
        .begin_recovery()
        .unwrap()
        .envelope()
        .as_bytes()
        .len();
    for n in [0, 1, 10, good.len() / 2, good.len() - 1] {
        w.store.replace(&good[..n]).unwrap();
        assert!(
            matches!(
                w.container.sign_in(&pin(PIN), b"c", None).unwrap_err(),
                ClientError::CorruptState(_)
            ),
            "prefix {n}"
        );
        assert_eq!(
            stored(&w.store),
            good[..n].to_vec(),
            "nothing written over a corrupt state"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    w.store.replace(&longer).unwrap();
    assert!(matches!(
        w.container.status().unwrap_err(),
        ClientError::CorruptState(_)
    ));
    // Flip the last byte of the key-document serial (inside the MAC'd body, outside every
    // AEAD): the PIN unlocks, the MAC refuses.
    let mut flipped = good.clone();
    // Layout from the end: failed attempts (4), no next envelope (1), the current
    // protector (flag, 136 bytes, the envelope), the MAC (32); the serial ends there.
    let serial_end = good.len() - 4 - 1 - (1 + 136 + 2 + envelope_len) - 32;
    flipped[serial_end - 1] ^= 1;
    w.store.replace(&flipped).unwrap();
    assert_eq!(
        w.container.sign_in(&pin(PIN), b"c", None).unwrap_err(),
        ClientError::Tampered
    );
    // Every other single-bit flip: refused one way or another, never a panic or success
    // with a changed credential.
    let credential = {
        w.store.replace(&good).unwrap();
        w.container.status().unwrap().credential_public_key
    };
    let mut refused = 0;
    for i in (0..good.len() * 8).step_by(7) {
        let mut b = good.clone();
        b[i / 8] ^= 1 << (i % 8);
        w.store.replace(&b).unwrap();
        match w.container.sign_in(&pin(PIN), b"c", None) {
            Ok(s) => assert!(
                credential.verify(b"c", &s.signature),
                "bit {i}: signed with another key"
            ),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0);
}

#[test]
fn registration_confirmation_only_for_the_current_envelope() {
    let w = World::new();
    assert!(w.container.pending_registration().unwrap().is_none());
    let before = stored(&w.store);
    assert_eq!(
        w.container
            .confirm_registration(pin_recovery::EnvelopeId::from_bytes([7; 16]))
            .unwrap_err(),
        ClientError::ResponseMismatch
    );
    assert_eq!(stored(&w.store), before);
}

#[test]
fn reset_with_wrong_response_changes_nothing() {
    let w = World::new();
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    let json = String::from_utf8(resp.to_json()).unwrap();
    // Flip one character of the sealed secret.
    let idx = json.find("sealed_secret").unwrap() + 20;
    let mut chars: Vec<char> = json.chars().collect();
    chars[idx] = if chars[idx] == 'A' { 'B' } else { 'A' };
    let bad =
        pin_recovery::RecoveryResponse::from_json(chars.iter().collect::<String>().as_bytes())
            .unwrap();
    let before = stored(&w.store);
    let incomplete = w
        .container
        .complete_recovery(pending, &bad, &pin("730145"), &w.keys)
        .unwrap_err();
    assert_eq!(incomplete.error(), &ClientError::ResponseMismatch);
    assert!(
        incomplete.into_secret().is_none(),
        "nothing released to retry with"
    );
    assert_eq!(stored(&w.store), before);
}

/// A container sealed by a TPM (a fixture made on a swtpm that no longer exists): its
/// status reads without any TPM; opening it is refused by name, whatever the build, and
/// changes nothing. Without the `tpm` feature the build says it has no TPM support; with
/// it, the default transport finds no TPM here, or (on a machine with one) the wrong one.
#[test]
fn a_tpm_container_decodes_everywhere_and_opens_nowhere_else() {
    let bytes = std::fs::read(common::vectors_dir().join("containers/tpm-sealed.bin")).unwrap();
    let store = MemoryStore::new();
    store.replace(&bytes).unwrap();
    let c = Container::new(store.clone(), test_policy(false), None);
    let status = c.status().unwrap();
    assert_eq!(
        status.protector,
        pin_recovery::client::PinProtectorKind::Tpm
    );
    assert_eq!(status.identity.user(), "alice@contoso.example");
    assert_eq!(status.failed_attempts, 0);
    let got = c.sign_in(&pin("482913"), b"c", None);
    #[cfg(not(feature = "tpm"))]
    assert_eq!(
        got.map(|_| ()),
        Err(ClientError::Tpm(
            pin_recovery::client::TpmError::NotCompiled
        ))
    );
    #[cfg(feature = "tpm")]
    assert!(
        matches!(
            got,
            Err(ClientError::Tpm(
                pin_recovery::client::TpmError::Unavailable { .. }
                    | pin_recovery::client::TpmError::WrongTpm
            ))
        ),
        "{got:?}"
    );
    assert!(c.change_pin(&pin("482913"), &pin("739155")).is_err());
    assert_eq!(stored(&store), bytes);
}

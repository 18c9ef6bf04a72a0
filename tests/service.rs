//! The recovery service: one success path, and every negative path with its own typed
//! error, one audit event, and no change on either side (service state and the stored
//! container). DESIGN.md properties 2, 3 and 6 are named below.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::world::{pin, World, AUDIENCE, PIN};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pin_recovery::service::ServiceStore;
use pin_recovery::service::{
    AuditEvent, AuditOutcome, IssuerTrust, RateLimit, RatePolicy, RateScope, ResetNotifier,
    ServiceError, SinkError,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{
    mfa_nonce, Clock, RecoveryRequest, RecoveryResponse, ServicePrivateKey, SigningKey,
};

/// Runs `request`, expecting `expected`; checks that exactly one audit event says so and
/// that nothing changed anywhere.
fn assert_refused(w: &World, request: &RecoveryRequest, expected: ServiceError) {
    let reason = expected.reason();
    assert_refused_as(w, request, expected, reason);
}

/// As `assert_refused`, where the audit event records `audit_reason`.
fn assert_refused_as(
    w: &World,
    request: &RecoveryRequest,
    expected: ServiceError,
    audit_reason: &str,
) {
    let before = w.snapshot();
    let events = w.events().len();
    assert_eq!(
        w.service.handle(request, &World::ctx()),
        Err(expected.clone())
    );
    assert_eq!(
        w.snapshot(),
        before,
        "a refusal ({expected:?}) changed state"
    );
    let log = w.events();
    assert_eq!(log.len(), events + 1, "one audit event per request");
    let last = log.last().unwrap();
    assert_eq!(
        (last.outcome, last.reason.as_str()),
        (AuditOutcome::Refused, audit_reason)
    );
}

/// A request whose assertion carries `edit`ed claims, correctly signed by the device.
fn request_with(
    w: &World,
    edit: impl FnOnce(&mut pin_recovery::service::AssertionClaims),
) -> RecoveryRequest {
    let mut pending = w.container.begin_recovery().unwrap();
    let mut claims = w
        .idp
        .mfa_claims(AUDIENCE, &w.binding, pending.mfa_nonce(), w.clock.now());
    edit(&mut claims);
    let assertion = w.idp.sign(&claims).unwrap();
    pending.request(&assertion).unwrap()
}

#[test]
fn property_2_and_3_release_only_sealed_to_the_ephemeral_key() {
    let w = World::new();
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    let event = w.events().pop().unwrap();
    assert_eq!(
        (event.outcome, event.reason.as_str()),
        (AuditOutcome::Released, "ok")
    );
    assert_eq!(event.envelope_id, Some(req.envelope().envelope_id()));
    // The answer is not the secret in the clear: it is 113 bytes of HPKE output, and the
    // container opens it only through the pending recovery's one-time key.
    let json = resp.to_json();
    assert!(String::from_utf8(json.clone())
        .unwrap()
        .contains("sealed_secret"));
    assert_eq!(RecoveryResponse::from_json(&json).unwrap(), resp);
    let reset = w
        .container
        .complete_recovery(pending, &resp, &pin("730145"), &w.keys)
        .unwrap();
    assert_eq!(
        reset.credential_public_key,
        w.container.status().unwrap().credential_public_key
    );
}

#[test]
fn property_3_another_ephemeral_key_cannot_open_the_answer() {
    let w = World::new();
    let (req, _pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    // A second pending recovery has its own one-time key; the answer does not open with it.
    let mut other = w.container.begin_recovery().unwrap();
    let assertion = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, other.mfa_nonce(), w.clock.now())
        .unwrap();
    other.request(&assertion).unwrap();
    let before = w.snapshot();
    assert_eq!(
        w.container
            .complete_recovery(other, &resp, &pin("730145"), &w.keys)
            .unwrap_err()
            .error(),
        &pin_recovery::client::ClientError::ResponseMismatch
    );
    assert_eq!(w.snapshot(), before);
}

#[test]
fn wrong_user_wrong_device_wrong_tenant() {
    let w = World::new();
    assert_refused(
        &w,
        &request_with(&w, |c| c.sub = "mallory@contoso.test".into()),
        ServiceError::WrongUser,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| c.deviceid = "LAPTOP-2".into()),
        ServiceError::WrongDevice,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| c.tid = "fabrikam".into()),
        ServiceError::WrongTenant,
    );
}

#[test]
fn expired_early_and_overlong_assertions() {
    let w = World::new();
    let now = w.clock.now();
    assert_refused(
        &w,
        &request_with(&w, |c| {
            c.iat = now - 600;
            c.exp = now - 61;
        }),
        ServiceError::AssertionExpired,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| {
            c.iat = now + 120;
            c.exp = now + 300;
        }),
        ServiceError::AssertionNotYetValid,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| c.exp = c.iat + 3600),
        ServiceError::AssertionInvalid,
    );
    // Within the skew is fine.
    let ok = request_with(&w, |c| {
        c.iat = now - 200;
        c.exp = now - 30;
    });
    assert!(w.service.handle(&ok, &World::ctx()).is_ok());
}

#[test]
fn no_mfa_wrong_audience_nonce_and_issuer() {
    let w = World::new();
    assert_refused(
        &w,
        &request_with(&w, |c| c.amr = vec!["pwd".into()]),
        ServiceError::MfaMissing,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| {
            c.aud = pin_recovery::service::Audience::One("other".into())
        }),
        ServiceError::WrongAudience,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| {
            c.nonce = mfa_nonce(&pin_recovery::EnvelopeId::from_bytes([0; 16]), &[4; 65])
        }),
        ServiceError::NonceMismatch,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| c.iss = "https://evil.test".into()),
        ServiceError::UntrustedIssuer,
    );
    assert_refused(
        &w,
        &request_with(&w, |c| c.jti = String::new()),
        ServiceError::AssertionInvalid,
    );
}

/// Builds a request around an arbitrary token (properly signed by the device).
fn request_with_token(w: &World, token: &str) -> RecoveryRequest {
    let mut pending = w.container.begin_recovery().unwrap();
    pending.request(token).unwrap()
}

#[test]
fn alg_none_hmac_and_untrusted_keys_are_refused() {
    let w = World::new();
    let pending = w.container.begin_recovery().unwrap();
    let claims = w
        .idp
        .mfa_claims(AUDIENCE, &w.binding, pending.mfa_nonce(), w.clock.now());
    let payload = base64url(&serde_json::to_vec(&claims).unwrap());

    // alg: none, no signature.
    let none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT","kid":"test-key-1"}"#),
        payload
    );
    assert_refused(
        &w,
        &request_with_token(&w, &none),
        ServiceError::AssertionInvalid,
    );

    // HS256 keyed with the issuer's public key bytes: the classic key-confusion attack.
    let public = *w.idp.verifying_key();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("test-key-1".into());
    let hmac =
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(public.to_sec1())).unwrap();
    assert_refused(
        &w,
        &request_with_token(&w, &hmac),
        ServiceError::AssertionInvalid,
    );

    // A well-formed assertion from an identity provider nobody trusts, with a known kid.
    let rogue = TestIdentityProvider::new("https://idp.test").unwrap();
    let forged = rogue.sign(&claims).unwrap();
    assert_refused(
        &w,
        &request_with_token(&w, &forged),
        ServiceError::AssertionInvalid,
    );

    // A kid the service does not know.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("unknown".into());
    let der = SigningKey::generate().unwrap().to_pkcs8_der().unwrap();
    let unknown = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ec_der(&der)).unwrap();
    assert_refused(
        &w,
        &request_with_token(&w, &unknown),
        ServiceError::UntrustedIssuer,
    );

    // Garbage.
    assert_refused(
        &w,
        &request_with_token(&w, "a.b.c"),
        ServiceError::AssertionInvalid,
    );
}

fn jti_of(req: &RecoveryRequest) -> String {
    use base64::Engine;
    let payload = req.assertion().split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

fn base64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn replayed_assertion_is_refused_and_first_use_succeeds() {
    let w = World::new();
    let (req, _) = w.request();
    assert!(w.service.handle(&req, &World::ctx()).is_ok());
    assert_refused(&w, &req, ServiceError::AssertionReplayed);
}

#[test]
fn tampered_requests_and_bad_device_signatures() {
    let w = World::new();
    let (req, _) = w.request();
    let json = String::from_utf8(req.to_json()).unwrap();
    // Swap in another assertion, keeping the device signature: the signature breaks.
    let other = request_with(&w, |_| {});
    let swapped = json.replace(req.assertion(), other.assertion());
    let tampered = RecoveryRequest::from_json(swapped.as_bytes()).unwrap();
    assert_refused_as(
        &w,
        &tampered,
        ServiceError::DeviceNotAuthenticated,
        "bad-device-signature",
    );

    // Signed by a key that is not the registered device key.
    let envelope = w.container.begin_recovery().unwrap().envelope().clone();
    let mut pending = pin_recovery::client::PendingRecovery::for_envelope(
        envelope,
        SigningKey::generate().unwrap(),
    )
    .unwrap();
    let assertion = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, pending.mfa_nonce(), w.clock.now())
        .unwrap();
    let forged = pending.request(&assertion).unwrap();
    assert_refused_as(
        &w,
        &forged,
        ServiceError::DeviceNotAuthenticated,
        "bad-device-signature",
    );

    // Malformed JSON, via the JSON door.
    let before = w.snapshot();
    assert!(matches!(
        w.service.handle_json(b"{\"version\":1}", &World::ctx()),
        Err(ServiceError::MalformedRequest(_))
    ));
    assert_eq!(w.snapshot(), before);
    assert_eq!(w.events().last().unwrap().reason, "malformed-request");
}

#[test]
fn unknown_device() {
    let w = World::new();
    let other = pin_recovery::Binding::new("contoso", "alice@contoso.test", "LAPTOP-9").unwrap();
    let key = ServicePrivateKey::generate_p256().unwrap();
    let env = key
        .public_key()
        .seal(&pin_recovery::RecoverySecret::generate().unwrap(), &other)
        .unwrap();
    let mut pending = w.pending_for(env);
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &other, pending.mfa_nonce(), w.clock.now())
        .unwrap();
    let req = pending.request(&a).unwrap();
    assert_refused_as(
        &w,
        &req,
        ServiceError::DeviceNotAuthenticated,
        "unknown-device",
    );
}

#[test]
fn stale_envelope_after_rotation_is_refused_even_with_fresh_mfa() {
    let w = World::new();
    let old = w.container.begin_recovery().unwrap().envelope().clone();
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    w.container
        .complete_recovery(pending, &resp, &pin("730145"), &w.keys)
        .unwrap();
    w.register_pending();
    let mut again = w.pending_for(old);
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, again.mfa_nonce(), w.clock.now())
        .unwrap();
    let stale = again.request(&a).unwrap();
    assert_refused(&w, &stale, ServiceError::StaleEnvelope);
    // The request that was answered, sent again: its assertion is spent, and that is
    // what it is told (a spent assertion answers first, as the store's commit orders it).
    assert_refused(&w, &req, ServiceError::AssertionReplayed);
}

#[test]
fn retired_and_unknown_keys_get_clear_errors() {
    let w = World::new();
    let (req, _) = w.request();
    let key_id = req.envelope().key_id();
    w.service
        .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
        .unwrap();
    // The previous key is active: its envelopes still open.
    let (ok, _) = w.request();
    assert!(w.service.handle(&ok, &World::ctx()).is_ok());
    assert!(w.service.retire_key("contoso", key_id).unwrap());
    assert_refused(&w, &req, ServiceError::RetiredKey { key_id });

    // An envelope naming a key the tenant never had (registered beforehand to get past
    // the registry check would need that key; the registry refuses it too).
    let stranger = ServicePrivateKey::generate_p256().unwrap();
    let env = stranger
        .public_key()
        .seal(
            &pin_recovery::RecoverySecret::generate().unwrap(),
            &w.binding,
        )
        .unwrap();
    let reg_before = w.snapshot();
    let mut pending = w.pending_for(env);
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, pending.mfa_nonce(), w.clock.now())
        .unwrap();
    let req = pending.request(&a).unwrap();
    assert_refused(&w, &req, ServiceError::StaleEnvelope);
    assert_eq!(w.snapshot(), reg_before);
}

#[test]
fn a_tampered_envelope_is_refused_at_registration_and_release() {
    let w = World::new();
    let (req, _) = w.request();
    // The device itself flips a ciphertext bit and signs. Registration opens every new
    // envelope, so it refuses this one; a release compares the whole envelope with the
    // registered one, so it never gets as far as opening.
    let mut bytes = req.envelope().to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let env = pin_recovery::Envelope::from_bytes(&bytes).unwrap();
    let before = w.snapshot();
    let reg = common::world::signed_registration(&env, None, None, &w.device_key);
    assert_eq!(
        w.service.register_envelope(&reg, &World::ctx()),
        Err(ServiceError::RegistrationConflict),
        "a first registration while one is registered"
    );
    let pending_reg = w.container.pending_registration().unwrap();
    assert!(pending_reg.is_none());
    let mut pending = w.pending_for(env);
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, pending.mfa_nonce(), w.clock.now())
        .unwrap();
    let tampered = pending.request(&a).unwrap();
    assert_refused(&w, &tampered, ServiceError::StaleEnvelope);
    assert_eq!(w.snapshot(), before);
}

#[test]
fn an_envelope_that_does_not_open_is_never_registered() {
    // A device with no envelope registered yet: its first registration is checked by
    // opening it.
    let w = World::new();
    let (dev, binding) = w.second_device("LAPTOP-2");
    let key = w.keys_current_public();
    let env = key
        .seal(&pin_recovery::RecoverySecret::generate().unwrap(), &binding)
        .unwrap();
    let mut bytes = env.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = pin_recovery::Envelope::from_bytes(&bytes).unwrap();
    let reg = common::world::signed_registration(&tampered, None, None, &dev);
    assert_eq!(
        w.service.register_envelope(&reg, &World::ctx()),
        Err(ServiceError::OpenFailed)
    );
    assert_eq!(w.events().last().unwrap().reason, "open-failed");
    let reg = common::world::signed_registration(&env, None, None, &dev);
    assert_eq!(w.service.register_envelope(&reg, &World::ctx()), Ok(()));
}

#[test]
fn rate_limits_per_user_and_device_with_retry_after() {
    let w = World::with_rates(RatePolicy {
        per_user: RateLimit {
            max: 5,
            window: 3600,
        },
        per_device: RateLimit {
            max: 1,
            window: 3600,
        },
    });
    let (first, _) = w.request();
    assert!(w.service.handle(&first, &World::ctx()).is_ok());
    let (second, _) = w.request();
    assert_refused(
        &w,
        &second,
        ServiceError::RateLimited {
            scope: RateScope::Device,
            retry_after: 3600,
        },
    );
    // The refused assertion was not spent.
    assert!(!w
        .service
        .block_on(w.db.token_spent("https://idp.test", &jti_of(&second), u64::MAX))
        .unwrap());
    w.clock.advance(1800);
    let (later, _) = w.request();
    assert_refused(
        &w,
        &later,
        ServiceError::RateLimited {
            scope: RateScope::Device,
            retry_after: 1800,
        },
    );
    w.clock.advance(1800);
    let (third, _) = w.request();
    assert!(w.service.handle(&third, &World::ctx()).is_ok());
}

#[test]
fn property_2_concurrent_double_spend_succeeds_exactly_once() {
    let w = Arc::new(World::with_rates(RatePolicy {
        per_user: RateLimit {
            max: 100,
            window: 60,
        },
        per_device: RateLimit {
            max: 100,
            window: 60,
        },
    }));
    let (req, _) = w.request();
    let req = Arc::new(req);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (w, req) = (w.clone(), req.clone());
            std::thread::spawn(move || w.service.handle(&req, &World::ctx()))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter(|r| r.is_err())
        .all(|r| r == &Err(ServiceError::AssertionReplayed)));
    assert_eq!(
        w.events().len(),
        2 + 16,
        "the device's and the envelope's registrations, plus one event per request"
    );
}

#[test]
fn registration_is_compare_and_swap_and_idempotent() {
    let w = World::new();
    let (req, pending) = w.request();
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    w.container
        .complete_recovery(pending, &resp, &pin("730145"), &w.keys)
        .unwrap();
    let reg = w.container.pending_registration().unwrap().unwrap();
    assert_eq!(reg.previous(), Some(req.envelope().envelope_id()));
    w.service.register_envelope(&reg, &World::ctx()).unwrap();
    // A retry after a lost acknowledgement succeeds and changes nothing.
    let before = w.snapshot();
    w.service.register_envelope(&reg, &World::ctx()).unwrap();
    assert_eq!(w.snapshot(), before);
    let again = w.container.pending_registration().unwrap().unwrap();
    assert_eq!(
        (again.envelope(), again.previous()),
        (reg.envelope(), reg.previous())
    );
    w.container
        .confirm_registration(reg.envelope().envelope_id())
        .unwrap();
    assert!(w.container.pending_registration().unwrap().is_none());
    // A registration signed by another key is refused.
    let json = String::from_utf8(reg.to_json()).unwrap();
    let other_sig = base64url(
        &SigningKey::generate()
            .unwrap()
            .sign(reg.signed_bytes())
            .unwrap(),
    );
    let original_sig = base64url(reg.device_signature());
    let forged = pin_recovery::EnvelopeRegistration::from_json(
        json.replace(&original_sig, &other_sig).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        w.service.register_envelope(&forged, &World::ctx()),
        Err(ServiceError::DeviceNotAuthenticated)
    );
}

#[test]
fn notifier_fires_on_each_release_and_audit_holds_no_secret() {
    struct Notes(Mutex<Vec<AuditEvent>>);
    impl ResetNotifier for Notes {
        fn secret_released(&self, e: &AuditEvent) -> Result<(), SinkError> {
            self.0.lock().unwrap().push(e.clone());
            Ok(())
        }
    }
    let notes = Arc::new(Notes(Mutex::new(Vec::new())));
    let clock = Arc::new(pin_recovery::ManualClock::new(common::world::T0));
    let sink = Arc::new(pin_recovery::service::JsonLinesAuditSink::new(
        Vec::<u8>::new(),
    ));
    let idp = TestIdentityProvider::new("https://idp.test").unwrap();
    let (mirror, notifier, c2) = (sink.clone(), notes.clone(), clock.clone());
    let trust_idp = idp.trusted_issuer().unwrap();
    let service = pin_recovery::service::blocking::RecoveryService::start(|| async move {
        pin_recovery::service::RecoveryService::builder(
            common::world::service_config(),
            pin_recovery::KeyDocumentSigner::new(SigningKey::generate().unwrap()),
            IssuerTrust::new().trust("contoso", trust_idp),
            Arc::new(pin_recovery::service::MemoryStore::new()),
            pin_recovery::service::KeyEncryptionKey::generate().unwrap(),
        )
        .audit_mirror(mirror)
        .notifier(notifier)
        .clock(c2)
        .build()
        .await
    })
    .unwrap();
    let key = ServicePrivateKey::generate_p256().unwrap();
    service.add_current_key("contoso", key).unwrap();
    let binding = pin_recovery::Binding::new("contoso", "alice", "dev").unwrap();
    let trust = pin_recovery::client::ServiceTrust {
        key_document_key: *service.key_document_key(),
    };
    let keys = service.key_document("contoso").unwrap();
    let c = pin_recovery::client::Container::with_clock(
        pin_recovery::client::MemoryStore::new(),
        common::world::test_policy(true),
        Some(trust),
        clock.clone(),
    );
    let enrolment = c.enrol(&binding, &pin(PIN), Some(&keys)).unwrap();
    service
        .register_device(&binding, enrolment.device_public_key, &World::ctx())
        .unwrap();
    let reg = c.pending_registration().unwrap().unwrap();
    service.register_envelope(&reg, &World::ctx()).unwrap();
    let mut pending = c.begin_recovery().unwrap();
    let a = idp
        .mfa_assertion(AUDIENCE, &binding, pending.mfa_nonce(), clock.now())
        .unwrap();
    let req = pending.request(&a).unwrap();
    service.handle(&req, &World::ctx()).unwrap();
    assert_eq!(notes.0.lock().unwrap().len(), 1);
    let _ = service.handle(&req, &World::ctx());
    assert_eq!(notes.0.lock().unwrap().len(), 1, "refusals do not notify");

    drop(service);
    let log = String::from_utf8(Arc::try_unwrap(sink).ok().unwrap().into_inner().unwrap()).unwrap();
    let lines: Vec<HashMap<String, serde_json::Value>> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "device and envelope registrations, release, refusal"
    );
    for l in &lines {
        for field in [
            "time",
            "action",
            "tenant",
            "user",
            "device",
            "client_ip",
            "client_type",
            "key_id",
            "envelope_id",
            "outcome",
            "reason",
        ] {
            assert!(l.contains_key(field), "audit event lacks {field}");
        }
    }
    assert!(
        !log.contains(req.assertion()),
        "the assertion is not logged"
    );
    assert!(
        !log.contains(&req.envelope().to_text()),
        "the envelope is not logged"
    );
}

#[test]
fn device_registration_is_explicit_and_audited() {
    let w = World::new();
    let b = w.binding.clone();
    let current = w.device_record("LAPTOP-1").unwrap();
    // The same registration again: nothing changes.
    w.service
        .register_device(&b, current.device_key, &World::ctx())
        .unwrap();
    assert_eq!(w.device_record("LAPTOP-1").unwrap(), current);
    assert_eq!(w.events().last().unwrap().reason, "unchanged");
    // Another key, without saying so: refused, nothing changes.
    let new_key = *SigningKey::generate().unwrap().verifying_key();
    let before = w.snapshot();
    assert_eq!(
        w.service.register_device(&b, new_key, &World::ctx()),
        Err(ServiceError::DeviceAlreadyRegistered)
    );
    assert_eq!(
        w.service
            .reregister_device(&b, current.device_key, &World::ctx()),
        Err(ServiceError::DeviceKeyUnchanged),
        "re-registering needs a new key"
    );
    assert_eq!(w.snapshot(), before);
    // Re-registration, said explicitly (here as the JSON message): the envelope goes,
    // and the old key no longer authenticates.
    let message = pin_recovery::DeviceRegistration::new(&b, new_key, true);
    w.service
        .register_device_json(&message.to_json(), &World::ctx())
        .unwrap();
    let record = w.device_record("LAPTOP-1").unwrap();
    assert_eq!((record.device_key, record.envelope), (new_key, None));
    let last = w.events().last().unwrap().clone();
    assert_eq!(
        (last.action, last.outcome, last.reason.as_str()),
        (
            pin_recovery::service::AuditAction::DeviceRegistration,
            AuditOutcome::Registered,
            "replaced"
        )
    );
    assert_eq!(last.device.as_deref(), Some("LAPTOP-1"));
    let (req, _) = w.request();
    assert_eq!(
        w.service.handle(&req, &World::ctx()),
        Err(ServiceError::DeviceNotAuthenticated)
    );
}

#[test]
fn refusals_cross_the_wire_as_typed_values() {
    use pin_recovery::{Advice, Refusal, RefusalCode};
    let w = World::with_rates(RatePolicy {
        per_user: RateLimit {
            max: 1,
            window: 600,
        },
        per_device: RateLimit {
            max: 1,
            window: 600,
        },
    });
    let (first, _) = w.request();
    w.service.handle(&first, &World::ctx()).unwrap();
    let (second, _) = w.request();
    let error = w.service.handle(&second, &World::ctx()).unwrap_err();
    // The service's HTTP layer sends this body (and the status, and Retry-After)...
    let wire = error.refusal();
    assert_eq!((wire.http_status(), wire.retry_after()), (429, Some(600)));
    // ...and the device reads back a typed value it can act on.
    let read = Refusal::from_json(&wire.to_json()).unwrap();
    assert_eq!(read.code(), &RefusalCode::RateLimited);
    assert_eq!(read.advice(), Advice::RestartAfter(600));
    // A replay says: authenticate again. A stale envelope: send the registration.
    assert_eq!(
        w.service
            .handle(&first, &World::ctx())
            .unwrap_err()
            .refusal()
            .advice(),
        Advice::Reauthenticate
    );
    // An outage's refusal carries no internals: not the store's own error.
    let outage = ServiceError::Unavailable(pin_recovery::service::StorageFailure::with_source(
        "commit the release",
        "connection to 10.0.0.5:5432 refused (password for user svc)",
    ));
    let body = String::from_utf8(outage.refusal().to_json()).unwrap();
    assert!(
        !body.contains("10.0.0.5") && !body.contains("password"),
        "{body}"
    );
    assert_eq!(outage.refusal().http_status(), 503);
}

#[test]
fn malformed_json_reports_the_parser_position_never_the_bytes() {
    use pin_recovery::{DecodeError, JsonProblem};
    let w = World::new();
    let refused = |body: &[u8]| w.service.handle_json(body, &World::ctx()).unwrap_err();
    let err = refused(b"{\"version\":1,\n  \"envelope\": tru");
    assert_eq!(
        err,
        ServiceError::MalformedRequest(DecodeError::BadJson {
            problem: JsonProblem::Truncated,
            line: 2,
            column: 17
        })
    );
    // The whole chain, as a log would print it, names the problem and never the bytes.
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert_eq!(
        chain,
        "malformed request: the JSON ends early (line 2, column 17)"
    );
    assert!(matches!(
        refused(b"{\"version\":1,\"envelope\":\"secretvalue\"}"),
        ServiceError::MalformedRequest(DecodeError::BadJson {
            problem: JsonProblem::Shape,
            ..
        })
    ));
    let err = refused(b"{\"version\" 1}");
    assert!(matches!(
        err,
        ServiceError::MalformedRequest(DecodeError::BadJson {
            problem: JsonProblem::Syntax,
            line: 1,
            ..
        })
    ));
}

#[test]
fn a_key_for_a_tenant_no_issuer_is_trusted_for_is_refused_and_not_stored() {
    // The newcomer's mistake: trust the provider under its GUID, add keys under a name.
    let w = World::new();
    let refused = w
        .service
        .add_current_key("fabrikam", ServicePrivateKey::generate_p256().unwrap())
        .unwrap_err();
    assert_eq!(
        refused,
        ServiceError::NoTrustedIssuer {
            tenant: "fabrikam".into()
        }
    );
    assert!(refused.to_string().contains("\"fabrikam\""), "{refused}");
    assert_eq!(
        w.service.keys("fabrikam").unwrap_err(),
        ServiceError::UnknownTenant
    );
    // The trusted tenant is unaffected.
    assert_eq!(
        w.service
            .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
            .unwrap(),
        2
    );
}

#[test]
fn store_failures_name_the_operation_and_chain_the_driver_error_once() {
    let driver = "connection to 10.0.0.5:5432 refused";
    let e = ServiceError::Unavailable(pin_recovery::service::StorageFailure::with_source(
        "commit the release",
        driver,
    ));
    assert_eq!(
        e.to_string(),
        "service storage failed to commit the release"
    );
    let cause = std::error::Error::source(&e).expect("the driver's error is the source");
    assert_eq!(cause.to_string(), driver);
    assert!(!e.refusal().to_json().windows(7).any(|w| w == b"10.0.0."));
}

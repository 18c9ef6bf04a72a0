//! The outside audit's findings on the service, one or more tests each, named by the
//! finding's number in the issue. Each failed (or did not compile) on the code before the
//! fix. The device-side findings are in `tests/recovery_faults.rs` (8, 9) and
//! `tests/concurrency.rs` (10).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use common::world::{pin, signed_registration, World, AUDIENCE, T0};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pin_recovery::client::{ClientError, Container, MemoryStore};
use pin_recovery::service::{
    AssertionAlgorithm, AuditEvent, AuditOutcome, AuditSink, ClaimNames, IssuerTrust, RatePolicy,
    ResetNotifier, ServiceError, SinkError, TrustedIssuer,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{
    Binding, Clock, DecodeError, Envelope, RecoverySecret, ServicePrivateKey, SigningKey,
};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Runs `request`, expecting `expected`, and checks that nothing changed.
fn refused(w: &World, request: &pin_recovery::RecoveryRequest, expected: ServiceError) {
    let before = w.snapshot();
    assert_eq!(w.service.handle(request, &World::ctx()), Err(expected));
    assert_eq!(w.snapshot(), before, "a refusal changed state");
}

/// A second identity provider named `issuer`, signing with kid `test-key-1` like the
/// world's own.
fn other_idp(issuer: &str) -> TestIdentityProvider {
    TestIdentityProvider::new(issuer).unwrap()
}

/// Makes the world's service trust exactly these (tenant, identity provider) pairs.
fn trust(w: &World, pairs: &[(&str, &TestIdentityProvider)]) {
    let trust = pairs.iter().fold(IssuerTrust::new(), |t, (tenant, idp)| {
        t.trust(*tenant, idp.trusted_issuer().unwrap())
    });
    w.service.replace_issuer_trust(trust).unwrap();
}

// ---------------------------------------------------------------------------------------
// 1. Trust per tenant, JWKS, RS256 and claim names.

#[test]
fn finding_1_an_issuer_trusted_by_one_tenant_cannot_vouch_for_another() {
    let w = World::new();
    let fabrikam_idp = other_idp("https://login.fabrikam.test");
    trust(&w, &[("contoso", &w.idp), ("fabrikam", &fabrikam_idp)]);
    // Fabrikam's identity provider writes contoso's tenant id into its token: refused.
    let (req, _) = w.request_with_assertion(|nonce| {
        fabrikam_idp
            .mfa_assertion(AUDIENCE, &w.binding, nonce, w.clock.now())
            .unwrap()
    });
    refused(&w, &req, ServiceError::UntrustedIssuer);
    // Contoso's own identity provider still works.
    let (req, _) = w.request();
    assert!(w.service.handle(&req, &World::ctx()).is_ok());
}

#[test]
fn finding_1_kid_is_looked_up_inside_the_issuer_named_by_iss() {
    let w = World::new();
    // Two issuers trusted by contoso, both with kid "test-key-1".
    let second = other_idp("https://second-idp.test");
    trust(&w, &[("contoso", &w.idp), ("contoso", &second)]);
    // Signed by the second issuer's key but claiming the first: refused.
    let (req, _) = w.request_with_assertion(|nonce| {
        let mut claims = w.idp.mfa_claims(AUDIENCE, &w.binding, nonce, w.clock.now());
        claims.iss = w.idp.issuer().to_owned();
        second.sign(&claims).unwrap()
    });
    refused(&w, &req, ServiceError::AssertionInvalid);
    // The second issuer's own assertion, with the shared kid, is verified under its key.
    let (req, _) = w.request_with_assertion(|nonce| {
        second
            .mfa_assertion(AUDIENCE, &w.binding, nonce, w.clock.now())
            .unwrap()
    });
    assert!(w.service.handle(&req, &World::ctx()).is_ok());
}

/// An identity provider shaped like Microsoft Entra ID: RS256 only, a JWKS whose entries
/// carry `x5c`, `x5t` and `issuer`, and tokens naming the user `oid` and the token `uti`.
struct EntraLike {
    tenant_id: String,
    kid: String,
    der: Vec<u8>,
    jwks: String,
}

impl EntraLike {
    fn new(tenant_id: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let dir = common::vectors_dir().join("keys");
        let pem = std::fs::read_to_string(dir.join("rsa2048-idp.pem")).unwrap();
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        let cert: String = std::fs::read_to_string(dir.join("rsa2048-idp.crt.pem"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let kid = "KQ2tAcrE7lBaVVGBmc5FobgdJo4".to_owned();
        let issuer = format!("https://login.microsoftonline.com/{tenant_id}/v2.0");
        let jwks = serde_json::json!({"keys": [
            // A key for another purpose, as Entra's JWKS has several: skipped or unused.
            {"kty": "RSA", "use": "enc", "kid": "other", "n": b64(&key.n().to_bytes_be()), "e": "AQAB"},
            {"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
             "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
             "x5c": [cert], "issuer": issuer},
        ]})
        .to_string();
        EntraLike {
            tenant_id: tenant_id.to_owned(),
            kid,
            der: key.to_pkcs1_der().unwrap().as_bytes().to_vec(),
            jwks,
        }
    }

    fn issuer(&self) -> String {
        format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id)
    }

    fn trusted(&self) -> Arc<TrustedIssuer> {
        let issuer = TrustedIssuer::from_jwks(
            self.issuer(),
            self.jwks.as_bytes(),
            &[AssertionAlgorithm::Rs256],
        )
        .unwrap()
        .with_claim_names(ClaimNames::entra_id());
        assert_eq!(issuer.key_ids(), vec![self.kid.as_str()]);
        assert_eq!(issuer.skipped().len(), 1, "the encryption key is skipped");
        Arc::new(issuer)
    }

    fn token(&self, alg: Algorithm, claims: &serde_json::Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(self.kid.clone());
        header.x5t = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&self.der)).unwrap()
    }

    fn claims(&self, binding: &Binding, nonce: &str, now: u64) -> serde_json::Value {
        serde_json::json!({
            "aud": AUDIENCE,
            "iss": self.issuer(),
            "iat": now, "nbf": now, "exp": now + 3599 / 6,
            "aio": "AWQAm/8YAAAA",
            "amr": ["pwd", "mfa"],
            "deviceid": binding.device(),
            "name": "Alice Example",
            "nonce": nonce,
            "oid": binding.user(),
            "preferred_username": "alice@contoso.example",
            "rh": "0.AXoA",
            "sub": "pairwise-subject-not-the-user-id",
            "tid": binding.tenant(),
            "uti": "fl2ZUjQbGkWkx1dX3wIAAA",
            "ver": "2.0",
        })
    }
}

fn entra_world() -> (World, EntraLike) {
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let binding = Binding::new(tid, "00000000-0000-0000-66f3-3332eca7ea81", "LAPTOP-7F3K").unwrap();
    let w = World::build_for(
        binding,
        RatePolicy::default(),
        ServicePrivateKey::generate_p256().unwrap(),
    );
    let entra = EntraLike::new(tid);
    w.service
        .replace_issuer_trust(IssuerTrust::new().trust(tid, entra.trusted()))
        .unwrap();
    (w, entra)
}

#[test]
fn finding_1_an_entra_id_shaped_rs256_assertion_is_accepted() {
    let (w, entra) = entra_world();
    let (req, pending) = w.request_with_assertion(|nonce| {
        entra.token(
            Algorithm::RS256,
            &entra.claims(&w.binding, nonce, w.clock.now()),
        )
    });
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    // Spent under the configured token-id claim (`uti`): a replay is refused.
    refused(&w, &req, ServiceError::AssertionReplayed);
    w.container
        .complete_recovery(pending, &resp, &pin("730145"), &w.keys)
        .unwrap();
}

#[test]
fn finding_1_entra_claim_names_and_algorithms_are_enforced() {
    let (w, entra) = entra_world();
    // `sub` is not the user id for this issuer: a token whose oid is another user fails
    // even though its sub matches.
    let (req, _) = w.request_with_assertion(|nonce| {
        let mut c = entra.claims(&w.binding, nonce, w.clock.now());
        c["oid"] = "someone-else".into();
        c["sub"] = w.binding.user().into();
        entra.token(Algorithm::RS256, &c)
    });
    refused(&w, &req, ServiceError::WrongUser);
    // No `uti`: nothing to spend.
    let (req, _) = w.request_with_assertion(|nonce| {
        let mut c = entra.claims(&w.binding, nonce, w.clock.now());
        c.as_object_mut().unwrap().remove("uti");
        entra.token(Algorithm::RS256, &c)
    });
    refused(&w, &req, ServiceError::AssertionInvalid);
    // PS256 with the same key: not an algorithm this issuer may use.
    let (req, _) = w.request_with_assertion(|nonce| {
        entra.token(
            Algorithm::PS256,
            &entra.claims(&w.binding, nonce, w.clock.now()),
        )
    });
    refused(&w, &req, ServiceError::AssertionInvalid);
    // Another tenant's Entra issuer (same keys, its own tid in iss): untrusted here.
    let (req, _) = w.request_with_assertion(|nonce| {
        let mut c = entra.claims(&w.binding, nonce, w.clock.now());
        c["iss"] = "https://login.microsoftonline.com/another-tenant/v2.0".into();
        entra.token(Algorithm::RS256, &c)
    });
    refused(&w, &req, ServiceError::UntrustedIssuer);
}

// ---------------------------------------------------------------------------------------
// 2. `nbf`, `crit` and header parameters that change how a token is read.

/// The world's identity provider re-keyed with a key the test holds, so that tokens with
/// any header can be signed by hand.
fn hand_signing_world() -> (World, SigningKey) {
    let w = World::new();
    let key = SigningKey::generate().unwrap();
    let copy = SigningKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
    let idp = TestIdentityProvider::from_key(w.idp.issuer(), "test-key-1", copy);
    w.service
        .replace_issuer_trust(IssuerTrust::new().trust("contoso", idp.trusted_issuer().unwrap()))
        .unwrap();
    (w, key)
}

fn hand_signed(key: &SigningKey, header: &str, claims: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = key.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&sig))
}

fn claims_json(w: &World, nonce: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut c =
        serde_json::to_value(w.idp.mfa_claims(AUDIENCE, &w.binding, nonce, w.clock.now())).unwrap();
    edit(&mut c);
    c.to_string()
}

#[test]
fn finding_2_nbf_is_honoured_with_the_same_skew() {
    let (w, key) = hand_signing_world();
    let header = r#"{"alg":"ES256","kid":"test-key-1"}"#;
    let now = w.clock.now();
    let (req, _) = w.request_with_assertion(|nonce| {
        hand_signed(
            &key,
            header,
            &claims_json(&w, nonce, |c| c["nbf"] = (now + 61).into()),
        )
    });
    refused(&w, &req, ServiceError::AssertionNotYetValid);
    let (req, _) = w.request_with_assertion(|nonce| {
        hand_signed(
            &key,
            header,
            &claims_json(&w, nonce, |c| c["nbf"] = (now + 60).into()),
        )
    });
    assert!(
        w.service.handle(&req, &World::ctx()).is_ok(),
        "within the skew"
    );
}

#[test]
fn finding_2_crit_and_parameters_that_change_how_a_token_is_read_are_refused() {
    let (w, key) = hand_signing_world();
    let extras = [
        r#""crit":["exp"]"#,
        r#""crit":["b64"],"b64":false"#,
        r#""b64":true"#,
        r#""jwk":{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
        r#""jku":"https://evil.test/jwks""#,
        r#""x5u":"https://evil.test/cert""#,
        r#""x5c":["MIIB"]"#,
    ];
    for extra in extras {
        let header = format!(r#"{{"alg":"ES256","kid":"test-key-1",{extra}}}"#);
        let (req, _) = w.request_with_assertion(|nonce| {
            hand_signed(&key, &header, &claims_json(&w, nonce, |_| {}))
        });
        refused(&w, &req, ServiceError::AssertionInvalid);
    }
    // A duplicate member in the header or the claims: one parser could read it one way
    // and another the other way.
    let header = r#"{"alg":"ES256","kid":"test-key-1","kid":"test-key-1"}"#;
    let (req, _) = w
        .request_with_assertion(|nonce| hand_signed(&key, header, &claims_json(&w, nonce, |_| {})));
    refused(&w, &req, ServiceError::AssertionInvalid);
    let (req, _) = w.request_with_assertion(|nonce| {
        let claims = claims_json(&w, nonce, |_| {});
        let doubled = format!(r#"{},"sub":"mallory"}}"#, claims.trim_end_matches('}'));
        hand_signed(&key, r#"{"alg":"ES256","kid":"test-key-1"}"#, &doubled)
    });
    refused(&w, &req, ServiceError::AssertionInvalid);
    // x5t is only a hint: allowed.
    let (req, _) = w.request_with_assertion(|nonce| {
        hand_signed(
            &key,
            r#"{"typ":"JWT","alg":"ES256","kid":"test-key-1","x5t":"abc"}"#,
            &claims_json(&w, nonce, |_| {}),
        )
    });
    assert!(w.service.handle(&req, &World::ctx()).is_ok());
}

// ---------------------------------------------------------------------------------------
// 3. A stale backup.

#[test]
fn finding_3_a_full_old_backup_with_fresh_mfa_can_neither_reregister_nor_recover() {
    let w = World::new();
    // The backup: the whole container (its envelope is registered) and the device key.
    let backup = pin_recovery::client::ContainerStore::load(&w.store)
        .unwrap()
        .unwrap();
    let old = w.container.begin_recovery().unwrap().envelope().clone();
    // Today: the user recovers; a new envelope replaces the old one.
    let (_, reset) = w.recover("730145");
    w.register_pending();
    let current = reset.envelope.envelope_id(); // printed in every audit event
    let before = w.snapshot();
    let releases = w.releases();

    // The attacker restores the backup and has the user's MFA on demand.
    let stolen = MemoryStore::new();
    pin_recovery::client::ContainerStore::replace(&stolen, &backup).unwrap();
    let attacker = Container::with_clock(
        stolen,
        common::world::test_policy(true),
        Some(w.trust.clone()),
        w.clock.clone(),
    );
    // 1. Recover with the backup's envelope: not the registered one.
    let mut p = attacker.begin_recovery().unwrap();
    assert_eq!(p.envelope(), &old);
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, p.mfa_nonce(), w.clock.now())
        .unwrap();
    let req = p.request(&a).unwrap();
    assert_eq!(
        w.service.handle(&req, &World::ctx()),
        Err(ServiceError::StaleEnvelope)
    );
    // 2. Re-register the old envelope over the current one: the proof is missing.
    for proof in [[0u8; 32], [0xa5; 32]] {
        let forged = signed_registration(&old, Some(current), Some(proof), &w.device_key);
        assert_eq!(
            w.service.register_envelope(&forged, &World::ctx()),
            Err(ServiceError::RegistrationProofInvalid)
        );
    }
    // 3. Register an envelope of the attacker's own (its secret known to them).
    let own = w
        .keys_current_public()
        .seal(&RecoverySecret::generate().unwrap(), &w.binding)
        .unwrap();
    let forged = signed_registration(&own, Some(current), Some([7; 32]), &w.device_key);
    assert_eq!(
        w.service.register_envelope(&forged, &World::ctx()),
        Err(ServiceError::RegistrationProofInvalid)
    );
    // 4. As a first registration, or naming the old envelope as previous: conflicts.
    let forged = signed_registration(&old, None, None, &w.device_key);
    assert_eq!(
        w.service.register_envelope(&forged, &World::ctx()),
        Err(ServiceError::RegistrationConflict)
    );
    // 5. Without a proof the registration does not even decode.
    assert!(matches!(
        w.service.register_envelope_json(
            String::from_utf8(forged.to_json())
                .unwrap()
                .replace("\"previous\":null", &format!("\"previous\":\"{current}\""))
                .as_bytes(),
            &World::ctx()
        ),
        Err(ServiceError::MalformedRequest(_))
    ));
    // 6. Still the old envelope, fresh MFA: refused again; nothing was released.
    let mut p = attacker.begin_recovery().unwrap();
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &w.binding, p.mfa_nonce(), w.clock.now())
        .unwrap();
    let req = p.request(&a).unwrap();
    assert_eq!(
        w.service.handle(&req, &World::ctx()),
        Err(ServiceError::StaleEnvelope)
    );
    assert_eq!(
        w.device_record("LAPTOP-1")
            .unwrap()
            .envelope
            .map(|e| e.envelope_id()),
        Some(current),
        "the registry holds today's envelope"
    );
    assert_eq!(w.snapshot().service, before.service, "nothing changed");
    assert_eq!(w.releases(), releases, "no secret released to the backup");
}

#[test]
fn finding_3_the_device_proves_the_current_secret_when_it_reseals() {
    let w = World::new();
    // Key rotation: sign-in reseals to the new key; its registration carries the proof.
    w.service
        .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
        .unwrap();
    let keys = w.service.key_document("contoso").unwrap();
    let signed = w
        .container
        .sign_in(&pin(common::world::PIN), b"c", Some(&keys))
        .unwrap();
    let resealed = signed.resealed.unwrap();
    let reg = w.container.pending_registration().unwrap().unwrap();
    assert!(reg.proof().is_some());
    // The proof covers exactly this registration: moved onto another envelope, it fails.
    let other = w
        .keys_current_public()
        .seal(&RecoverySecret::generate().unwrap(), &w.binding)
        .unwrap();
    let moved = signed_registration(&other, reg.previous(), reg.proof().copied(), &w.device_key);
    assert_eq!(
        w.service.register_envelope(&moved, &World::ctx()),
        Err(ServiceError::RegistrationProofInvalid)
    );
    w.service.register_envelope(&reg, &World::ctx()).unwrap();
    w.container
        .confirm_registration(resealed.envelope_id())
        .unwrap();
    let (req, _) = w.request();
    assert_eq!(req.envelope(), &resealed);
    assert!(w.service.handle(&req, &World::ctx()).is_ok());
}

// ---------------------------------------------------------------------------------------
// 4. One answer before the device is authenticated.

#[test]
fn finding_4_unknown_devices_and_bad_signatures_look_alike() {
    let w = World::new();
    // A bad signature from a registered device.
    let (req, _) = w.request_with_assertion(|nonce| {
        w.idp
            .mfa_assertion(AUDIENCE, &w.binding, nonce, w.clock.now())
            .unwrap()
    });
    let mut forged_sig = *req.device_signature();
    forged_sig[10] ^= 1;
    let json = String::from_utf8(req.to_json())
        .unwrap()
        .replace(&b64(req.device_signature()), &b64(&forged_sig));
    let bad = w
        .service
        .handle_json(json.as_bytes(), &World::ctx())
        .unwrap_err();
    let bad_reason = w.events().last().unwrap().reason.clone();
    // A device nobody registered.
    let ghost = Binding::new("contoso", "alice@contoso.test", "NO-SUCH-DEVICE").unwrap();
    let env = w
        .keys_current_public()
        .seal(&RecoverySecret::generate().unwrap(), &ghost)
        .unwrap();
    let mut p = w.pending_for(env);
    let a = w
        .idp
        .mfa_assertion(AUDIENCE, &ghost, p.mfa_nonce(), w.clock.now())
        .unwrap();
    let unknown = w
        .service
        .handle(&p.request(&a).unwrap(), &World::ctx())
        .unwrap_err();
    let unknown_reason = w.events().last().unwrap().reason.clone();
    assert_eq!(bad, ServiceError::DeviceNotAuthenticated);
    assert_eq!(unknown, bad, "one answer to the caller");
    assert_eq!(unknown.to_string(), bad.to_string());
    assert_eq!(
        (bad_reason.as_str(), unknown_reason.as_str()),
        ("bad-device-signature", "unknown-device"),
        "the audit keeps the exact reason"
    );
    // Registration answers alike.
    let reg = signed_registration(
        &w.keys_current_public()
            .seal(&RecoverySecret::generate().unwrap(), &ghost)
            .unwrap(),
        None,
        None,
        &w.device_key,
    );
    assert_eq!(
        w.service.register_envelope(&reg, &World::ctx()),
        Err(ServiceError::DeviceNotAuthenticated)
    );
}

// ---------------------------------------------------------------------------------------
// 5. No release without a recorded audit event.

struct FailingNotifier(AtomicUsize);

impl ResetNotifier for FailingNotifier {
    fn secret_released(&self, _: &AuditEvent) -> Result<(), SinkError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(SinkError::new("mail server down"))
    }
}

#[test]
fn finding_5_no_release_and_no_registration_unless_the_store_records_it_with_its_event() {
    let w = World::new();
    let (req, pending) = w.request();
    // The store's commit (token, rate slots and audit event in one step) fails.
    w.db.fail_write(Some("commit the release"));
    let before = w.snapshot();
    let events = w.events().len();
    assert!(matches!(
        w.service.handle(&req, &World::ctx()),
        Err(ServiceError::Unavailable(f)) if f.operation() == "commit the release"
    ));
    assert_eq!(w.snapshot(), before, "nothing spent, no rate slot taken");
    assert_eq!(w.events().len(), events + 1, "only the refusal is recorded");
    assert_eq!(w.releases(), 0);
    // Once the store works again, the very same request is answered.
    w.db.fail_write(None);
    let resp = w.service.handle(&req, &World::ctx()).unwrap();
    assert_eq!(w.releases(), 1);
    let reset = w
        .container
        .complete_recovery(pending, &resp, &pin("730145"), &w.keys)
        .unwrap();
    // A registration whose swap and event cannot be recorded changes nothing.
    w.db.fail_write(Some("swap the registered envelope"));
    let reg = w.container.pending_registration().unwrap().unwrap();
    let before = w.snapshot();
    assert!(matches!(
        w.service.register_envelope(&reg, &World::ctx()),
        Err(ServiceError::Unavailable(_))
    ));
    assert_eq!(w.snapshot(), before, "the registry is as it was");
    w.db.fail_write(None);
    w.service.register_envelope(&reg, &World::ctx()).unwrap();
    w.container
        .confirm_registration(reset.envelope.envelope_id())
        .unwrap();
    // A refusal whose event cannot be recorded stands, and is counted.
    w.db.fail_writes(true);
    let (req, _) = w.request();
    let bad = pin_recovery::RecoveryRequest::from_json(
        &String::from_utf8(req.to_json())
            .unwrap()
            .replace(&b64(req.device_signature()), &b64(&[1; 64]))
            .into_bytes(),
    )
    .unwrap();
    assert_eq!(
        w.service.handle(&bad, &World::ctx()),
        Err(ServiceError::DeviceNotAuthenticated)
    );
    assert_eq!(w.service.audit_failures(), 1);
    w.db.fail_writes(false);
}

#[test]
fn finding_5_a_failing_notifier_or_mirror_does_not_block_a_release_but_is_counted_and_audited() {
    struct BrokenMirror;
    impl AuditSink for BrokenMirror {
        fn record(&self, _: &AuditEvent) -> Result<(), SinkError> {
            Err(SinkError::new("log collector down"))
        }
    }
    let w = World::new();
    let notifier = Arc::new(FailingNotifier(AtomicUsize::new(0)));
    let n = notifier.clone();
    let s = w.replica(|b| b.notifier(n).audit_mirror(Arc::new(BrokenMirror)));
    let (req, _) = w.request();
    assert!(s.handle(&req, &World::ctx()).is_ok(), "the release stands");
    assert_eq!(notifier.0.load(Ordering::SeqCst), 1);
    assert_eq!(s.notifier_failures(), 1);
    assert_eq!(
        s.mirror_failures(),
        2,
        "the release and the failed notification, not copied"
    );
    let outcomes: Vec<_> = w
        .events()
        .iter()
        .skip(2) // the world's own device and envelope registrations
        .map(|e| (e.outcome, e.reason.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (AuditOutcome::Released, "ok".to_owned()),
            (
                AuditOutcome::NotificationFailed,
                "notifier-failed".to_owned()
            )
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 6. A clock stepping backwards.

#[test]
fn finding_6_a_clock_stepping_back_after_a_purge_does_not_revive_a_spent_assertion() {
    let w = World::with_rates(RatePolicy {
        per_user: pin_recovery::service::RateLimit {
            max: 100,
            window: 60,
        },
        per_device: pin_recovery::service::RateLimit {
            max: 100,
            window: 60,
        },
    });
    let (first, _) = w.request();
    w.service.handle(&first, &World::ctx()).unwrap();
    // The clock jumps far ahead (a bad NTP step): the next release purges the first id.
    w.clock.advance(100_000);
    let (second, _) = w.request();
    w.service.handle(&second, &World::ctx()).unwrap();
    assert_eq!(
        w.db.spent_len(),
        1,
        "the first assertion's id was forgotten"
    );
    // The clock steps back to when the first assertion was valid: still refused.
    w.clock.set(T0 + 10);
    refused(&w, &first, ServiceError::AssertionReplayed);
}

// ---------------------------------------------------------------------------------------
// 7. Suites that do not match their key; over-long assertions.

#[test]
fn finding_7_registration_refuses_an_envelope_whose_suite_does_not_match_its_key() {
    let w = World::new();
    let (dev, binding) = w.second_device("LAPTOP-2");
    // An RSA envelope relabelled with the tenant's P-256 key id: suite 0x0002, key id of
    // a P-256 key.
    let rsa = ServicePrivateKey::from_pkcs8_pem(
        &std::fs::read_to_string(common::vectors_dir().join("keys/rsa2048-service.pem")).unwrap(),
    )
    .unwrap();
    let env = rsa
        .public_key()
        .seal(&RecoverySecret::generate().unwrap(), &binding)
        .unwrap();
    let mut bytes = env.to_bytes();
    bytes[7..23].copy_from_slice(w.keys_current_public().key_id().as_bytes());
    let relabelled = Envelope::from_bytes(&bytes).unwrap();
    let reg = signed_registration(&relabelled, None, None, &dev);
    assert_eq!(
        w.service.register_envelope(&reg, &World::ctx()),
        Err(ServiceError::SuiteMismatch)
    );
    assert_eq!(w.events().last().unwrap().reason, "suite-mismatch");
    assert_eq!(w.device_record("LAPTOP-2").unwrap().envelope, None);
}

#[test]
fn finding_7_an_overlong_assertion_is_a_typed_error_not_a_panic() {
    let w = World::new();
    let mut p = w.container.begin_recovery().unwrap();
    for len in [8 * 1024 + 1, 70_000] {
        assert_eq!(
            p.request(&"a".repeat(len)).unwrap_err(),
            ClientError::BadAssertion(DecodeError::TooLong { max: 8 * 1024 })
        );
    }
    assert!(matches!(
        p.request("not a jws!").unwrap_err(),
        ClientError::BadAssertion(DecodeError::BadDocument { .. })
    ));
}

//! The whole story, end to end: a recovery service and a device, a forgotten PIN, an MFA
//! assertion, and a non-destructive reset that keeps the credential key, followed by the
//! destructive reset a device without recovery must use.
//!
//! Run: `cargo run --example recovery`

use std::sync::Arc;

use pin_recovery::client::{ClientError, Container, ContainerPolicy, FileStore, Pin, ServiceTrust};
use pin_recovery::service::{
    blocking, AuditEvent, AuditSink, IssuerTrust, KeyEncryptionKey, MfaPolicy, RecoveryService,
    RequestContext, ServiceConfig, ServiceError, SinkError, SqliteStore,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{Binding, Clock, ServicePrivateKey, SigningKey, SystemClock};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const AUDIENCE: &str = "https://recovery.contoso.example";

fn step(n: u32, title: &str) {
    println!("\n[{n:>2}] {title}");
}

fn say(line: impl AsRef<str>) {
    println!("     {}", line.as_ref());
}

fn short(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + "…"
}

fn main() -> Result<()> {
    println!("pin-recovery: non-destructive PIN reset, end to end");
    println!("(every secret stays sealed; only ids, key fingerprints and decisions are printed)");
    let clock = SystemClock;
    let dir = std::env::temp_dir().join(format!("pin-recovery-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    step(
        1,
        "Recovery service: its database, a tenant key, a key-document signing key, an audit log",
    );
    let idp = TestIdentityProvider::new("https://login.contoso.example")?;
    // What the operator keeps outside the database: the key-encryption key under which
    // tenant private keys are stored, and the key-document signing key devices pin.
    let kek = KeyEncryptionKey::generate()?.to_hex();
    let signer = SigningKey::generate()?.to_pkcs8_der()?;
    let db = dir.join("service.db");
    let service = start_service(&db, &kek, &signer, &idp)?;
    say(format!(
        "state in {} (SQLite, WAL, synchronous=FULL); tenant keys wrapped under the key-encryption key",
        db.display()
    ));
    let tenant_key = ServicePrivateKey::generate_p256()?;
    let key_id = tenant_key.key_id();
    say(format!(
        "tenant contoso, key v{} (hpke-p256), key id {key_id}",
        service.add_current_key("contoso", tenant_key)?
    ));
    let keys = service.key_document("contoso")?;
    let trust = ServiceTrust {
        key_document_key: *service.key_document_key(),
    };
    say(format!(
        "signed key document: {} bytes of ES256 JWS; devices pin its verifying key {}",
        keys.as_str().len(),
        short(trust.key_document_key.to_sec1())
    ));

    step(2, "Enrolment with PIN recovery enabled by policy");
    let alice = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K")?;
    let policy = ContainerPolicy {
        recovery_enabled: true,
        ..ContainerPolicy::default()
    };
    let container_file = dir.join("alice.container");
    let container = Container::new(
        FileStore::new(&container_file),
        policy.clone(),
        Some(trust.clone()),
    );
    let enrolment = container.enrol(&alice, &Pin::new("482913"), Some(&keys))?;
    let credential = enrolment.credential_public_key;
    say(format!(
        "credential key created; its public key {} is registered with the identity provider",
        short(credential.to_sec1())
    ));
    say(format!(
        "device key created with the container: {} (it signs the device's recovery requests)",
        short(enrolment.device_public_key.to_sec1())
    ));
    let envelope = enrolment
        .envelope
        .ok_or("recovery enabled, so an envelope exists")?;
    say(format!(
        "recovery secret sealed to the service key: envelope {} ({} bytes), key {}",
        envelope.envelope_id(),
        envelope.as_bytes().len(),
        envelope.key_id()
    ));
    say("the device keeps only the envelope; the secret itself was wiped after wrapping the container key");

    step(
        3,
        "Device registration with the service, then the envelope's registration",
    );
    service.register_device(&alice, enrolment.device_public_key, &ctx())?;
    say(format!(
        "device {} of {} registered (by the identity provider's provisioning) with its device key",
        alice.device(),
        alice.user()
    ));
    let registration = container
        .pending_registration()?
        .ok_or("registration is pending")?;
    service.register_envelope(&registration, &ctx())?;
    container.confirm_registration(envelope.envelope_id())?;
    say("envelope registered with the service");
    let backup = dir.join("alice.container.backup");
    std::fs::copy(&container_file, &backup)?;
    say("(a disk backup of the device is taken now)");

    step(4, "Sign-in with the PIN");
    let challenge = b"identity-provider nonce 1";
    let signed = container.sign_in(&Pin::new("482913"), challenge, Some(&keys))?;
    say(format!(
        "challenge signed; verifies under the credential key: {}",
        credential.verify(challenge, &signed.signature)
    ));

    step(5, "The PIN is forgotten");
    for guess in ["111111", "123456"] {
        match container.sign_in(&Pin::new(guess), challenge, None) {
            Err(ClientError::WrongPin { attempts_left }) => {
                say(format!("PIN {guess}: wrong, {attempts_left} attempts left"))
            }
            other => return Err(format!("expected a wrong PIN, got {other:?}").into()),
        }
    }

    step(
        6,
        "MFA with the identity provider, bound to this recovery request",
    );
    let new_pin = Pin::new("730145");
    container.check_new_pin(&new_pin)?;
    say("the new PIN passes the policy, checked before any secret is released");
    let mut pending = container.begin_recovery()?;
    say(format!(
        "device made a one-time P-256 key; MFA nonce = SHA-256(envelope id, one-time key) = {}",
        pending.mfa_nonce()
    ));
    let assertion = idp.mfa_assertion(AUDIENCE, &alice, pending.mfa_nonce(), clock.now())?;
    say(format!(
        "identity provider issued an ES256 assertion (amr: pwd, mfa), {} bytes",
        assertion.len()
    ));
    let request = pending.request(&assertion)?;
    let request_json = request.to_json();
    say(format!("request signed by the device key: {} bytes of JSON (envelope, one-time key, assertion, signature)", request_json.len()));

    step(7, "Service decision");
    let response_json = service.handle_json(&request_json, &ctx())?;
    say("checked: device signature, issuer, audience, expiry, amr=mfa, tenant/user/device, nonce, jti unspent,");
    say("         envelope is the registered one, key current, rate limits; then opened the envelope");
    say(format!("released: the secret sealed to the one-time key ({} bytes of JSON, never the secret in clear)", response_json.len()));
    let response = pin_recovery::RecoveryResponse::from_json(&response_json)?;

    step(
        8,
        "The device resets the PIN and rotates the recovery secret",
    );
    let reset = container.complete_recovery(pending, &response, &new_pin, &keys)?;
    say("opened the answer with the one-time key (then wiped it), unwrapped the container key,");
    say("set the new PIN, sealed a NEW recovery secret to the current key, wiped the old one");
    say(format!("new envelope {}", reset.envelope.envelope_id()));
    let registration = container
        .pending_registration()?
        .ok_or("registration is pending")?;
    service.register_envelope(&registration, &ctx())?;
    container.confirm_registration(reset.envelope.envelope_id())?;
    say("new envelope registered, replacing the old one atomically; only now does the");
    say("device drop the old envelope's protector: until then either secret would do");

    step(9, "Sign-in with the new PIN");
    let signed = container.sign_in(&Pin::new("730145"), challenge, Some(&keys))?;
    say(format!(
        "new PIN works; signature verifies under the SAME credential key: {}",
        credential.verify(challenge, &signed.signature)
    ));
    say(format!(
        "credential public key unchanged: {} (nothing to re-enrol)",
        reset.credential_public_key == credential
    ));
    match container.sign_in(&Pin::new("482913"), challenge, None) {
        Err(ClientError::WrongPin { .. }) => say("old PIN refused"),
        other => return Err(format!("old PIN should fail: {other:?}").into()),
    }

    step(10, "Attacks the service refuses");
    match service.handle_json(&request_json, &ctx()) {
        Err(ServiceError::AssertionReplayed) => {
            say("the same request again: refused, assertion already spent")
        }
        other => return Err(format!("replay should fail: {other:?}").into()),
    }
    // Someone restores the backup (with its device key) and has the user's MFA.
    let restored = Container::new(FileStore::new(&backup), policy.clone(), Some(trust.clone()));
    let mut stale = restored.begin_recovery()?;
    let fresh = idp.mfa_assertion(AUDIENCE, &alice, stale.mfa_nonce(), clock.now())?;
    match service.handle(&stale.request(&fresh)?, &ctx()) {
        Err(ServiceError::StaleEnvelope) => {
            say("the backup's OLD envelope, signed by the backup's device key, with fresh MFA: refused");
            say("(nor can the backup register it again: replacing the registered envelope needs a proof of its secret)");
        }
        other => return Err(format!("stale envelope should fail: {other:?}").into()),
    }

    step(11, "The service restarts: nothing is forgotten");
    drop(service);
    let service = start_service(&db, &kek, &signer, &idp)?;
    match service.handle_json(&request_json, &ctx()) {
        Err(ServiceError::AssertionReplayed) => {
            say("reopened the database: the spent assertion is still spent, the registered envelope still registered")
        }
        other => return Err(format!("replay after restart should fail: {other:?}").into()),
    }
    let wrong = KeyEncryptionKey::generate()?.to_hex();
    match start_service(&db, &wrong, &signer, &idp) {
        Err(e) => say(format!(
            "started with another key-encryption key: refused ({e})"
        )),
        Ok(_) => return Err("a wrong key-encryption key must not start".into()),
    }

    step(12, "Key rotation: the next sign-in reseals to the new key");
    service.add_current_key("contoso", ServicePrivateKey::generate_p256()?)?;
    let keys = service.key_document("contoso")?;
    let signed = container.sign_in(&Pin::new("730145"), challenge, Some(&keys))?;
    let resealed = signed.resealed.ok_or("a rotated key triggers a reseal")?;
    say(format!(
        "service rotated its key; sign-in resealed a fresh secret to {} (envelope {})",
        resealed.key_id(),
        resealed.envelope_id()
    ));
    let registration = container
        .pending_registration()?
        .ok_or("registration is pending")?;
    service.register_envelope(&registration, &ctx())?;
    container.confirm_registration(resealed.envelope_id())?;

    step(
        13,
        "Without recovery (the default policy): the destructive reset",
    );
    let bob = Binding::new("contoso", "bob@contoso.example", "DESKTOP-2Q9M")?;
    let container = Container::new(
        FileStore::new(dir.join("bob.container")),
        ContainerPolicy::default(),
        Some(trust),
    );
    let enrolled = container.enrol(&bob, &Pin::new("246810"), None)?;
    say(format!(
        "bob enrolled with recovery off: no secret, no envelope ({})",
        enrolled.envelope.is_none()
    ));
    match container.begin_recovery() {
        Err(ClientError::RecoveryDisabled) => {
            say("PIN forgotten: non-destructive reset unavailable (recovery disabled)")
        }
        other => return Err(format!("expected RecoveryDisabled: {other:?}").into()),
    }
    let fresh = container.destructive_reset(&bob, &Pin::new("135790"), None)?;
    say(format!(
        "destructive reset: a NEW credential key {} (was {})",
        short(fresh.credential_public_key.to_sec1()),
        short(enrolled.credential_public_key.to_sec1())
    ));
    say("its public key must be registered with the identity provider again");

    std::fs::remove_dir_all(&dir)?;
    println!("\ndone. The audit lines are the service's events: identities, ids and decisions, never a secret.");
    Ok(())
}

/// Starts the service over the database at `db` (creating it on first use).
fn start_service(
    db: &std::path::Path,
    kek: &str,
    signer: &[u8],
    idp: &TestIdentityProvider,
) -> Result<blocking::RecoveryService> {
    let kek = KeyEncryptionKey::from_text(kek)?;
    let signer = pin_recovery::KeyDocumentSigner::new(SigningKey::from_pkcs8_der(signer)?);
    // Trust is per tenant: contoso's identity provider vouches for contoso's users only.
    let trust = IssuerTrust::new().trust("contoso", idp.trusted_issuer()?);
    let db = db.to_owned();
    Ok(blocking::RecoveryService::start(|| async move {
        let store = Arc::new(SqliteStore::open(&db).await?);
        let config = ServiceConfig {
            issuer: AUDIENCE.to_owned(),
            mfa: MfaPolicy::new(AUDIENCE),
            key_document_lifetime: 7 * 86_400,
        };
        RecoveryService::builder(config, signer, trust, store, kek)
            .audit_mirror(Arc::new(PrintedAudit))
            .build()
            .await
    })?)
}

/// Prints each audit event, as JSON, in line with the story.
struct PrintedAudit;

impl AuditSink for PrintedAudit {
    fn record(&self, event: &AuditEvent) -> std::result::Result<(), SinkError> {
        println!(
            "     audit: {}",
            serde_json::to_string(event).map_err(SinkError::new)?
        );
        Ok(())
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        client_ip: "203.0.113.7".to_owned(),
        client_type: "pin-recovery-demo/1.0".to_owned(),
    }
}

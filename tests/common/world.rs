//! A small world for protocol tests: a service with one tenant key, a test identity
//! provider, a registered device, and an enrolled container whose envelope is registered.

use std::sync::Arc;

use pin_recovery::client::{
    Argon2Profile, Container, ContainerPolicy, MemoryStore, Pin, PinPolicy, ServiceTrust,
};
use pin_recovery::service::{
    blocking, AuditEvent, DeviceRecord, IssuerTrust, KeyEncryptionKey, MemorySnapshot, MfaPolicy,
    RatePolicy, RecoveryService, RequestContext, ServiceConfig, ServiceStore,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{
    Binding, Clock, KeyDocumentSigner, ManualClock, RecoveryRequest, ServicePrivateKey,
    SignedKeyDocument, SigningKey,
};

pub const AUDIENCE: &str = "https://recovery.test";
pub const T0: u64 = 1_790_000_000;
pub const PIN: &str = "482913";

pub fn test_policy(recovery: bool) -> ContainerPolicy {
    ContainerPolicy {
        recovery_enabled: recovery,
        pin: PinPolicy {
            history: 3,
            ..PinPolicy::default()
        },
        attempt_limit: 5,
        argon2: Argon2Profile::INSECURE_TEST_ONLY,
        ..ContainerPolicy::default()
    }
}

/// The service settings every test world uses.
pub fn service_config() -> ServiceConfig {
    ServiceConfig {
        issuer: AUDIENCE.into(),
        mfa: MfaPolicy::new(AUDIENCE),
        key_document_lifetime: 86_400,
    }
}

/// A blocking service over `store` with the world's settings, trusting `idp` for
/// `tenant`, on `clock`.
pub fn start_service(
    store: Arc<dyn ServiceStore>,
    kek: KeyEncryptionKey,
    rates: RatePolicy,
    trust: IssuerTrust,
    signer: KeyDocumentSigner,
    clock: Arc<ManualClock>,
) -> blocking::RecoveryService {
    blocking::RecoveryService::start(|| async move {
        RecoveryService::builder(service_config(), signer, trust, store, kek)
            .rate_policy(rates)
            .clock(clock)
            .build()
            .await
    })
    .unwrap()
}

pub struct World {
    /// The key-encryption key, as text: a replica is given the same one.
    pub kek: String,
    pub clock: Arc<ManualClock>,
    pub service: blocking::RecoveryService,
    /// The service's state.
    pub db: Arc<pin_recovery::service::MemoryStore>,
    pub idp: TestIdentityProvider,
    pub trust: ServiceTrust,
    pub keys: SignedKeyDocument,
    pub binding: Binding,
    pub device_key: SigningKey,
    pub store: MemoryStore,
    pub container: Container<MemoryStore>,
}

impl World {
    pub fn new() -> Self {
        Self::with_rates(RatePolicy::default())
    }

    pub fn with_rates(rates: RatePolicy) -> Self {
        Self::build(rates, ServicePrivateKey::generate_p256().unwrap())
    }

    /// A world whose tenant key is `tenant_key` (of either suite).
    pub fn with_tenant_key(tenant_key: ServicePrivateKey) -> Self {
        Self::build(RatePolicy::default(), tenant_key)
    }

    pub fn build(rates: RatePolicy, tenant_key: ServicePrivateKey) -> Self {
        let binding = Binding::new("contoso", "alice@contoso.test", "LAPTOP-1").unwrap();
        Self::build_for(binding, rates, tenant_key)
    }

    /// A world for `binding`'s tenant, user and device.
    pub fn build_for(binding: Binding, rates: RatePolicy, tenant_key: ServicePrivateKey) -> Self {
        let tenant = binding.tenant().to_owned();
        let clock = Arc::new(ManualClock::new(T0));
        let db = Arc::new(pin_recovery::service::MemoryStore::new());
        let idp = TestIdentityProvider::new("https://idp.test").unwrap();
        let kek = KeyEncryptionKey::generate().unwrap().to_hex().to_string();
        let service = start_service(
            db.clone(),
            KeyEncryptionKey::from_text(&kek).unwrap(),
            rates,
            IssuerTrust::new().trust(tenant.clone(), idp.trusted_issuer().unwrap()),
            KeyDocumentSigner::new(SigningKey::generate().unwrap()),
            clock.clone(),
        );
        service.add_current_key(&tenant, tenant_key).unwrap();
        let keys = service.key_document(&tenant).unwrap();
        let trust = ServiceTrust {
            key_document_key: *service.key_document_key(),
        };
        let store = MemoryStore::new();
        let container = Container::with_clock(
            store.clone(),
            test_policy(true),
            Some(trust.clone()),
            clock.clone(),
        );
        let enrolment = container
            .enrol(&binding, &Pin::new(PIN), Some(&keys))
            .unwrap();
        service
            .register_device(&binding, enrolment.device_public_key, &Self::ctx())
            .unwrap();
        // The device key lives in the container; tests that play someone holding a copy
        // of it (a backup) sign with this.
        let device_key = container.__device_key().unwrap();
        let w = World {
            kek,
            clock,
            service,
            db,
            idp,
            trust,
            keys,
            binding,
            device_key,
            store,
            container,
        };
        w.register_pending();
        w
    }

    pub fn ctx() -> RequestContext {
        RequestContext {
            client_ip: "198.51.100.4".into(),
            client_type: "test".into(),
        }
    }

    /// Registers the container's pending envelope with the service and confirms it.
    pub fn register_pending(&self) {
        let reg = self
            .container
            .pending_registration()
            .unwrap()
            .expect("pending");
        self.service.register_envelope(&reg, &Self::ctx()).unwrap();
        self.container
            .confirm_registration(reg.envelope().envelope_id())
            .unwrap();
    }

    /// A second device of the world's user, registered with the service (no envelope).
    pub fn second_device(&self, device: &str) -> (SigningKey, Binding) {
        let key = SigningKey::generate().unwrap();
        let b = Binding::new(self.binding.tenant(), self.binding.user(), device).unwrap();
        self.service
            .register_device(&b, *key.verifying_key(), &Self::ctx())
            .unwrap();
        (key, b)
    }

    /// A pending recovery for `envelope` signed by the world's device key.
    pub fn pending_for(
        &self,
        envelope: pin_recovery::Envelope,
    ) -> pin_recovery::client::PendingRecovery {
        pin_recovery::client::PendingRecovery::for_envelope(
            envelope,
            self.container.__device_key().unwrap(),
        )
        .unwrap()
    }

    /// A whole recovery: request, release, reset to `new_pin`; the request and the reset.
    pub fn recover(&self, new_pin: &str) -> (RecoveryRequest, pin_recovery::client::Reset) {
        let (req, pending) = self.request();
        let resp = self.service.handle(&req, &Self::ctx()).unwrap();
        let reset = self
            .container
            .complete_recovery(pending, &resp, &pin(new_pin), &self.keys)
            .unwrap();
        (req, reset)
    }

    /// A second service over the same store (a replica), built by `edit`.
    pub fn replica(
        &self,
        edit: impl FnOnce(
            pin_recovery::service::RecoveryServiceBuilder,
        ) -> pin_recovery::service::RecoveryServiceBuilder,
    ) -> blocking::RecoveryService {
        let (db, kek, clock) = (self.db.clone(), self.kek.clone(), self.clock.clone());
        let trust =
            IssuerTrust::new().trust(self.binding.tenant(), self.idp.trusted_issuer().unwrap());
        blocking::RecoveryService::start(|| async move {
            let b = RecoveryService::builder(
                service_config(),
                KeyDocumentSigner::new(SigningKey::generate().unwrap()),
                trust,
                db,
                KeyEncryptionKey::from_text(&kek).unwrap(),
            )
            .clock(clock);
            edit(b).build().await
        })
        .unwrap()
    }

    /// The service's audit log.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.db.events()
    }

    /// The service's record of `device` of the world's tenant.
    pub fn device_record(&self, device: &str) -> Option<DeviceRecord> {
        self.service
            .block_on(self.db.device(self.binding.tenant(), device))
            .unwrap()
    }

    /// How many secrets the service has released so far (from its audit log).
    pub fn releases(&self) -> usize {
        self.db
            .events()
            .iter()
            .filter(|e| e.outcome == pin_recovery::service::AuditOutcome::Released)
            .count()
    }

    /// A request for the container's envelope carrying `assertion`.
    pub fn request_with_assertion(
        &self,
        assertion: impl FnOnce(&str) -> String,
    ) -> (RecoveryRequest, pin_recovery::client::PendingRecovery) {
        let mut pending = self.container.begin_recovery().unwrap();
        let a = assertion(pending.mfa_nonce());
        let req = pending.request(&a).unwrap();
        (req, pending)
    }

    /// A valid request for the container's envelope, and the pending recovery to open
    /// the answer with.
    pub fn request(&self) -> (RecoveryRequest, pin_recovery::client::PendingRecovery) {
        let mut pending = self.container.begin_recovery().unwrap();
        let assertion = self
            .idp
            .mfa_assertion(
                AUDIENCE,
                &self.binding,
                pending.mfa_nonce(),
                self.clock.now(),
            )
            .unwrap();
        let req = pending.request(&assertion).unwrap();
        (req, pending)
    }

    /// The tenant's current public key, from the key document.
    pub fn keys_current_public(&self) -> pin_recovery::ServicePublicKey {
        self.keys
            .verify(
                &self.trust.key_document_key,
                self.binding.tenant(),
                self.clock.now(),
                0,
            )
            .unwrap()
            .current()
            .unwrap()
            .clone()
    }

    /// Everything a refusal must leave untouched, on both sides.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            service: self.db.snapshot(),
            container: pin_recovery::client::ContainerStore::load(&self.store).unwrap(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub service: MemorySnapshot,
    pub container: Option<Vec<u8>>,
}

/// A key document for tenant `t`, valid for a day from `T0`, listing `key` as current.
pub fn single_key_document(
    signer: &KeyDocumentSigner,
    key: &ServicePrivateKey,
    serial: u64,
) -> SignedKeyDocument {
    signer
        .sign(&pin_recovery::KeyDocument {
            issuer: "svc".into(),
            tenant: "t".into(),
            serial,
            issued_at: T0,
            expires_at: T0 + 86_400,
            keys: vec![pin_recovery::PublishedKey {
                key: key.public_key().clone(),
                status: pin_recovery::PublishedStatus::Current,
            }],
        })
        .unwrap()
}

pub fn pin(s: &str) -> Pin {
    Pin::new(s)
}

/// A registration of `envelope` replacing `previous`, with `proof`, signed by `key`: built
/// through the JSON form, as an attacker (or another implementation) would.
pub fn signed_registration(
    envelope: &pin_recovery::Envelope,
    previous: Option<pin_recovery::EnvelopeId>,
    proof: Option<[u8; 32]>,
    key: &SigningKey,
) -> pin_recovery::EnvelopeRegistration {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let quoted = |s: Option<String>| s.map_or("null".to_owned(), |s| format!("\"{s}\""));
    let json = |sig: &[u8]| {
        format!(
            r#"{{"version":1,"envelope":"{}","previous":{},"proof":{},"device_signature":"{}"}}"#,
            envelope.to_text(),
            quoted(previous.map(|p| base16ct::lower::encode_string(p.as_bytes()))),
            quoted(proof.map(|p| b64(&p))),
            b64(sig)
        )
        .into_bytes()
    };
    let unsigned = pin_recovery::EnvelopeRegistration::from_json(&json(&[0; 64])).unwrap();
    let signature = key.sign(unsigned.signed_bytes()).unwrap();
    pin_recovery::EnvelopeRegistration::from_json(&json(&signature)).unwrap()
}

//! A small world for protocol tests: a service with one tenant key, a test identity
//! provider, a registered device, and an enrolled container whose envelope is registered.

use std::sync::Arc;

use pin_recovery::client::{
    Argon2Profile, Container, ContainerPolicy, MemoryStore, Pin, PinPolicy, ServiceTrust,
};
use pin_recovery::service::{
    MemoryAuditSink, MemoryDeviceRegistry, MemoryRateLimiter, MemoryReplayCache, MfaPolicy,
    RatePolicy, RecoveryService, RequestContext, ServiceConfig,
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
    }
}

pub struct World {
    pub clock: Arc<ManualClock>,
    pub service: RecoveryService,
    pub audit: Arc<MemoryAuditSink>,
    pub replay: Arc<MemoryReplayCache>,
    pub registry: Arc<MemoryDeviceRegistry>,
    pub rate: Arc<MemoryRateLimiter>,
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
        let clock = Arc::new(ManualClock::new(T0));
        let audit = Arc::new(MemoryAuditSink::new());
        let replay = Arc::new(MemoryReplayCache::new());
        let registry = Arc::new(MemoryDeviceRegistry::new());
        let rate = Arc::new(MemoryRateLimiter::new(rates));
        let idp = TestIdentityProvider::new("https://idp.test").unwrap();
        let service = RecoveryService::builder(
            ServiceConfig {
                issuer: AUDIENCE.into(),
                mfa: MfaPolicy::new(AUDIENCE),
                key_document_lifetime: 86_400,
            },
            KeyDocumentSigner::new(SigningKey::generate().unwrap()),
            vec![idp.trusted_issuer()],
            audit.clone(),
        )
        .replay_cache(replay.clone())
        .registry(registry.clone())
        .rate_limiter(rate.clone())
        .clock(clock.clone())
        .build();
        service.add_current_key("contoso", tenant_key).unwrap();
        let keys = service.key_document("contoso").unwrap();
        let trust = ServiceTrust {
            signing_key: *service.signing_key(),
        };
        let binding = Binding::new("contoso", "alice@contoso.test", "LAPTOP-1").unwrap();
        let device_key = SigningKey::generate().unwrap();
        service
            .register_device(
                "contoso",
                "LAPTOP-1",
                "alice@contoso.test",
                *device_key.verifying_key(),
            )
            .unwrap();
        let store = MemoryStore::new();
        let container = Container::with_clock(
            store.clone(),
            test_policy(true),
            Some(trust.clone()),
            clock.clone(),
        );
        container
            .enrol(&binding, &Pin::new(PIN), Some(&keys))
            .unwrap();
        let w = World {
            clock,
            service,
            audit,
            replay,
            registry,
            rate,
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
            .pending_registration(&self.device_key)
            .unwrap()
            .expect("pending");
        self.service.register_envelope(&reg, &Self::ctx()).unwrap();
        self.container
            .confirm_registration(reg.envelope().envelope_id())
            .unwrap();
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
        let req = pending.request(&assertion, &self.device_key).unwrap();
        (req, pending)
    }

    /// Everything a refusal must leave untouched, on both sides.
    pub fn snapshot(&self) -> Snapshot {
        use pin_recovery::service::{DeviceRegistry, RateLimiter};
        use pin_recovery::service::{RateKey, RateScope};
        let keys = [
            RateKey {
                scope: RateScope::User,
                tenant: "contoso".into(),
                id: "alice@contoso.test".into(),
            },
            RateKey {
                scope: RateScope::Device,
                tenant: "contoso".into(),
                id: "LAPTOP-1".into(),
            },
        ];
        Snapshot {
            replay_len: self.replay.len(),
            record: self.registry.get("contoso", "LAPTOP-1").unwrap(),
            rate: self.rate.check(&keys, self.clock.now()).unwrap(),
            container: pin_recovery::client::ContainerStore::load(&self.store).unwrap(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub replay_len: usize,
    pub record: Option<pin_recovery::service::DeviceRecord>,
    pub rate: Option<(pin_recovery::service::RateScope, u64)>,
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

#![no_main]
//! Any input as a recovery request and as an envelope registration, through the decoders
//! and the whole service handler (a fixed tenant key, registered device and trusted test
//! issuer, over an in-memory store). The store keeps only the last few audit events, so
//! that nothing the target holds grows with the number of inputs: a campaign can run for
//! hours.

use std::sync::{Arc, OnceLock};

use pin_recovery::service::{
    blocking, IssuerTrust, KeyEncryptionKey, MemoryStore, MfaPolicy, RecoveryService,
    ServiceConfig,
};
use pin_recovery::{KeyDocumentSigner, ServicePrivateKey, SigningKey};

fn service() -> &'static blocking::RecoveryService {
    static SERVICE: OnceLock<blocking::RecoveryService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let idp = pin_recovery::testkit::TestIdentityProvider::new("https://idp.test").expect("idp");
        let trust = IssuerTrust::new().trust("contoso.example", idp.trusted_issuer().expect("issuer"));
        let service = blocking::RecoveryService::start(|| async {
            RecoveryService::builder(
                ServiceConfig { issuer: "svc".into(), mfa: MfaPolicy::new("svc"), key_document_lifetime: 3600 },
                KeyDocumentSigner::new(SigningKey::generate().expect("key")),
                trust,
                Arc::new(MemoryStore::with_audit_limit(16)),
                KeyEncryptionKey::generate().expect("kek"),
            )
            .build()
            .await
        })
        .expect("service");
        let key = ServicePrivateKey::from_pkcs8_pem(include_str!("../../test-vectors/keys/p256-service.pem"));
        service.add_current_key("contoso.example", key.expect("test key")).expect("keyring");
        let device = SigningKey::from_pkcs8_pem(include_str!("../../test-vectors/keys/p256-other.pem")).expect("key");
        let binding = pin_recovery::Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3K")
            .expect("binding");
        service
            .register_device(&binding, *device.verifying_key(), &Default::default())
            .expect("registry");
        service
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| pin_recovery::__internal::fuzz::request_json(service(), data));

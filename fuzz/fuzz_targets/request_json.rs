#![no_main]
//! Any input as a recovery request JSON, through the decoder and the whole service
//! handler (a fixed tenant key, registered device and trusted test issuer).

use std::sync::{Arc, OnceLock};

use pin_recovery::service::{MemoryAuditSink, MfaPolicy, RecoveryService, ServiceConfig};
use pin_recovery::{KeyDocumentSigner, ServicePrivateKey, SigningKey};

fn service() -> &'static RecoveryService {
    static SERVICE: OnceLock<RecoveryService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let idp = pin_recovery::testkit::TestIdentityProvider::new("https://idp.test").expect("idp");
        let service = RecoveryService::builder(
            ServiceConfig { issuer: "svc".into(), mfa: MfaPolicy::new("svc"), key_document_lifetime: 3600 },
            KeyDocumentSigner::new(SigningKey::generate().expect("key")),
            vec![idp.trusted_issuer()],
            Arc::new(MemoryAuditSink::new()),
        )
        .build();
        let key = ServicePrivateKey::from_pkcs8_pem(include_str!("../../test-vectors/keys/p256-service.pem"));
        service.add_current_key("contoso.example", key.expect("test key")).expect("keyring");
        let device = SigningKey::from_pkcs8_pem(include_str!("../../test-vectors/keys/p256-other.pem")).expect("key");
        service
            .register_device("contoso.example", "LAPTOP-7F3K", "alice@contoso.example", *device.verifying_key())
            .expect("registry");
        service
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| pin_recovery::__internal::fuzz::request_json(service(), data));

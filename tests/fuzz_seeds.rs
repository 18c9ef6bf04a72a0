//! Writes the fuzz seed corpus (fuzz/corpus/<target>/seed-*) from the test vectors and
//! the fixed test keys. Run once, by hand, when formats change:
//! `cargo test --test fuzz_seeds -- --ignored`.

mod common;

use std::path::Path;

use common::{read_json, unhex, vectors_dir};
use pin_recovery::client::{Container, ContainerStore, MemoryStore, Pin, ServiceTrust};
use pin_recovery::{
    Binding, KeyDocument, KeyDocumentSigner, PublishedKey, PublishedStatus, RecoveryRequest,
    ServicePrivateKey, SigningKey,
};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(vectors_dir().join("keys").join(name)).unwrap()
}

#[test]
#[ignore = "writes the fuzz seed corpus; run by hand"]
fn write_fuzz_seeds() {
    for suite in ["hpke-p256", "hpke-xwing", "rsa-oaep-2048"] {
        let doc: serde_json::Value = read_json(&format!("envelopes/{suite}.json"));
        for (i, case) in doc["cases"].as_array().unwrap().iter().enumerate() {
            if let Some(hex) = case["envelope"].as_str() {
                write("envelope_binary", &format!("{suite}-{i}"), &unhex(hex));
                write("service_open", &format!("{suite}-{i}"), &unhex(hex));
            }
            if let Some(text) = case["text"].as_str() {
                write("envelope_text", &format!("{suite}-{i}"), text.as_bytes());
            }
        }
    }
    for name in [
        "p256-service.pem",
        "xwing-service.pem",
        "rsa2048-service.pem",
        "p384-refused.pem",
        "ed25519-refused.pem",
    ] {
        let p = pem(name);
        write("key_import", name, p.as_bytes());
        if let Ok(k) = ServicePrivateKey::from_pkcs8_pem(&p) {
            write(
                "key_import",
                &format!("{name}.der"),
                &k.to_pkcs8_der().unwrap(),
            );
            write(
                "key_import",
                &format!("{name}.spki"),
                k.public_key().to_spki_der(),
            );
            write(
                "key_import",
                &format!("{name}.pub"),
                k.public_key().to_pem().as_bytes(),
            );
        }
    }

    // The fuzz targets' fixed world: tenant key p256-service, device and pinned key
    // p256-other.
    let tenant_key = ServicePrivateKey::from_pkcs8_pem(&pem("p256-service.pem")).unwrap();
    let other = SigningKey::from_pkcs8_pem(&pem("p256-other.pem")).unwrap();
    let signer =
        KeyDocumentSigner::new(SigningKey::from_pkcs8_pem(&pem("p256-other.pem")).unwrap());
    let keys = signer
        .sign(&KeyDocument {
            issuer: "svc".into(),
            tenant: "contoso".into(),
            serial: 1,
            issued_at: 1_789_990_000,
            expires_at: 1_790_090_000,
            keys: vec![PublishedKey {
                key: tenant_key.public_key().clone(),
                status: PublishedStatus::Current,
            }],
        })
        .unwrap();
    write("key_document", "valid", keys.as_str().as_bytes());

    let binding = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K").unwrap();
    let store = MemoryStore::new();
    let clock = std::sync::Arc::new(pin_recovery::ManualClock::new(1_790_000_000));
    let c = Container::with_clock(
        store.clone(),
        common::world::test_policy(true),
        Some(ServiceTrust {
            key_document_key: *other.verifying_key(),
        }),
        clock,
    );
    c.enrol(&binding, &Pin::new("482913"), Some(&keys)).unwrap();
    write(
        "container_state",
        "recoverable",
        &store.load().unwrap().unwrap(),
    );
    let plain = MemoryStore::new();
    let c2 = Container::new(plain.clone(), common::world::test_policy(false), None);
    c2.enrol(&binding, &Pin::new("482913"), None).unwrap();
    write("container_state", "plain", &plain.load().unwrap().unwrap());
    // A version 3 container (TPM-sealed PIN protector), made on a software TPM.
    #[cfg(feature = "tpm")]
    if common::swtpm::not_run().is_none() {
        let tpm = common::swtpm::SwTpm::start();
        let sealed = MemoryStore::new();
        let mut policy = common::world::test_policy(false);
        policy.protector =
            pin_recovery::client::PinProtectorChoice::Tpm(pin_recovery::client::TpmConfig {
                tcti: tpm.tcti(),
                ..Default::default()
            });
        let c3 = Container::new(sealed.clone(), policy, None);
        c3.enrol(&binding, &Pin::new("482913"), None).unwrap();
        write("container_state", "tpm", &sealed.load().unwrap().unwrap());
    }

    let reg = c.pending_registration().unwrap().unwrap();
    write("response_json", "registration", &reg.to_json());
    let fuzz_binding =
        Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3K").unwrap();
    let env = tenant_key
        .public_key()
        .seal(
            &pin_recovery::RecoverySecret::generate().unwrap(),
            &fuzz_binding,
        )
        .unwrap();
    let mut pending = pin_recovery::client::PendingRecovery::for_envelope(env, other).unwrap();
    let idp = pin_recovery::testkit::TestIdentityProvider::new("https://idp.test").unwrap();
    let assertion = idp
        .mfa_assertion("svc", &fuzz_binding, pending.mfa_nonce(), 1_790_000_000)
        .unwrap();
    let request: RecoveryRequest = pending.request(&assertion).unwrap();
    write(
        "request_json",
        "signed-by-registered-device",
        &request.to_json(),
    );

    // A response: run a tiny service for one release.
    let w = common::world::World::new();
    let (req, _pending) = w.request();
    let resp = w
        .service
        .handle(&req, &common::world::World::ctx())
        .unwrap();
    write("response_json", "response", &resp.to_json());
    write("request_json", "other-world", &req.to_json());
}

#![no_main]
//! Any input as a signed key document, verified under a fixed pinned key.

use std::sync::OnceLock;

use pin_recovery::VerifyingKey;

fn pinned() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = include_str!("../../test-vectors/keys/p256-other.pem");
        *pin_recovery::SigningKey::from_pkcs8_pem(pem).expect("test key").verifying_key()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| pin_recovery::__internal::fuzz::key_document(pinned(), data));

#![no_main]
//! Any input, opened with fixed test keys (P-256, X-Wing and RSA-2048): an input that
//! decodes as an hpke-xwing envelope naming the X-Wing key reaches decapsulation (the
//! seeds from its vectors start there).

use std::sync::OnceLock;

use pin_recovery::{Binding, ServicePrivateKey};

fn keys() -> &'static (Vec<ServicePrivateKey>, Binding) {
    static KEYS: OnceLock<(Vec<ServicePrivateKey>, Binding)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let load = |pem: &str| ServicePrivateKey::from_pkcs8_pem(pem).expect("test key");
        let keys = vec![
            load(include_str!("../../test-vectors/keys/p256-service.pem")),
            load(include_str!("../../test-vectors/keys/xwing-service.pem")),
            load(include_str!("../../test-vectors/keys/rsa2048-service.pem")),
        ];
        (keys, Binding::new("contoso.example", "alice@contoso.example", "LAPTOP-7F3K").expect("binding"))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (keys, binding) = keys();
    pin_recovery::__internal::fuzz::service_open(keys, binding, data);
});

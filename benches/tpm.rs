//! Issue 11: what the TPM-sealed PIN protector costs against the Argon2id protector at
//! its default profile (64 MiB, 3 passes), on a real software TPM (swtpm on loopback):
//! a PIN sign-in, a PIN change, and a non-destructive reset (the new PIN's protector
//! and a new recovery envelope). Each TPM operation connects, derives the storage key,
//! starts a salted session, loads and uses the object, and flushes everything, as a
//! device does.
//!
//! `cargo bench --features tpm --bench tpm`. Without swtpm it says so and measures only
//! the Argon2id side. swtpm is software: a hardware TPM is slower per command.

// The tests' software-TPM harness; the bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/common/swtpm.rs"]
mod swtpm;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pin_recovery::client::{
    Argon2Profile, Container, ContainerPolicy, FileStore, Pin, PinProtectorChoice, ServiceTrust,
    TpmConfig,
};
use pin_recovery::{
    Binding, KeyDocument, KeyDocumentSigner, ManualClock, PublishedKey, PublishedStatus,
    ServicePrivateKey, SignedKeyDocument, SigningKey,
};

const T0: u64 = 1_790_000_000;

struct Device {
    container: Container<FileStore>,
    keys: SignedKeyDocument,
    service_key: ServicePrivateKey,
    binding: Binding,
    _dir: tempfile::TempDir,
}

fn device(protector: PinProtectorChoice) -> Device {
    let service_key = ServicePrivateKey::generate_p256().unwrap();
    let signer = KeyDocumentSigner::new(SigningKey::generate().unwrap());
    let binding = Binding::new("t", "u", "d").unwrap();
    let keys = signer
        .sign(&KeyDocument {
            issuer: "svc".into(),
            tenant: "t".into(),
            serial: 1,
            issued_at: T0,
            expires_at: T0 + 86_400,
            keys: vec![PublishedKey {
                key: service_key.public_key().clone(),
                status: PublishedStatus::Current,
            }],
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = ContainerPolicy {
        recovery_enabled: true,
        argon2: Argon2Profile::DEFAULT,
        protector,
        ..ContainerPolicy::default()
    };
    let container = Container::with_clock(
        FileStore::new(dir.path().join("container")),
        policy,
        Some(ServiceTrust {
            key_document_key: *signer.verifying_key(),
        }),
        Arc::new(ManualClock::new(T0)),
    );
    container
        .enrol(&binding, &Pin::new("482913"), Some(&keys))
        .unwrap();
    Device {
        container,
        keys,
        service_key,
        binding,
        _dir: dir,
    }
}

fn protector_cost(c: &mut Criterion) {
    std::env::set_var("TSS2_LOG", "all+NONE");
    let tpm = match swtpm::not_run() {
        Some(reason) => {
            println!("tpm: {reason}");
            None
        }
        None => Some(swtpm::SwTpm::start()),
    };
    let mut devices = vec![("argon2id-default", device(PinProtectorChoice::Argon2id))];
    if let Some(tpm) = &tpm {
        let config = TpmConfig {
            tcti: tpm.tcti(),
            ..TpmConfig::default()
        };
        devices.push(("tpm-swtpm", device(PinProtectorChoice::Tpm(config))));
    }
    let mut g = c.benchmark_group("pin_protector");
    g.sample_size(10);
    for (name, d) in &devices {
        g.bench_function(BenchmarkId::new("sign_in", name), |b| {
            b.iter(|| {
                d.container
                    .sign_in(&Pin::new("482913"), b"challenge", None)
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("change_pin", name), |b| {
            let mut pins = ["482913", "739155"];
            b.iter(|| {
                d.container
                    .change_pin(&Pin::new(pins[0]), &Pin::new(pins[1]))
                    .unwrap();
                pins.swap(0, 1);
            });
            // Leave the PIN the other benches use.
            if pins[0] != "482913" {
                d.container
                    .change_pin(&Pin::new(pins[0]), &Pin::new(pins[1]))
                    .unwrap();
            }
        });
        let reg = d.container.pending_registration().unwrap().unwrap();
        let secret = d.service_key.open(reg.envelope(), &d.binding).unwrap();
        g.bench_function(BenchmarkId::new("non_destructive_reset", name), |b| {
            b.iter(|| {
                d.container
                    .reset_with_secret(&secret, &Pin::new("482913"), &d.keys)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, protector_cost);
criterion_main!(benches);

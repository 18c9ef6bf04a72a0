//! criterion benches of the hot paths, per suite, for the provider this build uses (run
//! once without and once with `--features aws-lc`; `scripts/compare` does both):
//! key generation, sealing, opening, parsing, the full service recovery request, the
//! client reset, and, on the same inputs, the `hpke` crate's single-shot seal and open
//! for the same suite.
//!
//! Results land in `target/criterion/<group>/<name>/<provider>/`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use hpke::{Deserializable, Kem as _, Serializable};
use pin_recovery::client::Pin;
use pin_recovery::service::{RateLimit, RatePolicy, RequestContext};
use pin_recovery::{
    Binding, Envelope, RecoveryRequest, RecoveryResponse, RecoverySecret, ServicePrivateKey,
};

fn provider() -> &'static str {
    pin_recovery::__internal::provider_name()
}

fn key(name: &str) -> ServicePrivateKey {
    let path = format!("{}/test-vectors/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    ServicePrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// GUID-sized ids, as a directory service would use.
fn binding() -> Binding {
    Binding::new(
        "8f3c1a52-7d3e-4b5f-9a61-0c2d4e6f8a10",
        "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "3e4f5a6b-7c8d-9eaf-b0c1-d2e3f4a5b6c7",
    )
    .unwrap()
}

fn rsa_opens(k: &ServicePrivateKey) -> bool {
    let env = k
        .public_key()
        .seal(&RecoverySecret::generate().unwrap(), &binding())
        .unwrap();
    k.open(&env, &binding()).is_ok()
}

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("keygen");
    g.bench_function(BenchmarkId::new("hpke-p256", provider()), |b| {
        b.iter(|| ServicePrivateKey::generate_p256().unwrap())
    });
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("rsa-2048", provider()), |b| {
        b.iter(|| ServicePrivateKey::generate_rsa(2048).unwrap())
    });
    g.finish();
}

fn seal_open(c: &mut Criterion) {
    let b = binding();
    let secret = RecoverySecret::generate().unwrap();
    let keys = [
        ("hpke-p256", key("p256-service.pem")),
        ("hpke-xwing", key("xwing-service.pem")),
        ("rsa-2048", key("rsa2048-service.pem")),
        ("rsa-3072", key("rsa3072-service.pem")),
    ];
    let mut g = c.benchmark_group("seal");
    for (name, k) in &keys {
        g.bench_function(BenchmarkId::new(*name, provider()), |bench| {
            bench.iter(|| k.public_key().seal(&secret, &b).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("open");
    for (name, k) in &keys {
        if name.starts_with("rsa") && !rsa_opens(k) {
            continue;
        }
        let env = k.public_key().seal(&secret, &b).unwrap();
        g.bench_function(BenchmarkId::new(*name, provider()), |bench| {
            bench.iter(|| k.open(&env, &b).unwrap())
        });
    }
    g.finish();
}

/// The `hpke` crate (RustCrypto, p256 0.13), single-shot, same suite and same input
/// sizes as an envelope.
fn peer_hpke(c: &mut Criterion) {
    type Kem = hpke::kem::DhP256HkdfSha256;
    type Kdf = hpke::kdf::HkdfSha256;
    type Aead = hpke::aead::AesGcm256;
    let mut rng = OsRng09;
    let (sk, pk) = Kem::gen_keypair(&mut rng);
    let env = key("p256-service.pem")
        .public_key()
        .seal(&RecoverySecret::generate().unwrap(), &binding())
        .unwrap();
    let info = vec![0x5a; env.as_bytes().len() - 117 + 24];
    let pt = [7u8; 32];
    let mut g = c.benchmark_group("peer-hpke-crate");
    g.bench_function("seal", |b| {
        b.iter(|| {
            hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
                &hpke::OpModeS::Base,
                &pk,
                &info,
                &pt,
                b"",
                &mut rng,
            )
            .unwrap()
        })
    });
    let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &hpke::OpModeS::Base,
        &pk,
        &info,
        &pt,
        b"",
        &mut rng,
    )
    .unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc.to_bytes()).unwrap();
    g.bench_function("open", |b| {
        b.iter(|| {
            hpke::single_shot_open::<Aead, Kdf, Kem>(
                &hpke::OpModeR::Base,
                &sk,
                &enc,
                &info,
                &ct,
                b"",
            )
            .unwrap()
        })
    });
    g.finish();
}

/// The operating system's generator behind the `hpke` crate's rand_core traits (0.9).
struct OsRng09;

impl hpke::rand_core::RngCore for OsRng09 {
    fn next_u32(&mut self) -> u32 {
        rand_core::RngCore::next_u32(&mut rand_core::OsRng)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::RngCore::next_u64(&mut rand_core::OsRng)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, dest)
    }
}

impl hpke::rand_core::CryptoRng for OsRng09 {}

/// The protocol tests' world (service, identity provider, device, enrolled container),
/// with rate limits out of the way.
#[path = "../tests/common/world.rs"]
#[allow(dead_code)]
mod world;

fn rig(tenant_key: ServicePrivateKey) -> world::World {
    let unlimited = RateLimit {
        max: u32::MAX,
        window: 1,
    };
    world::World::build(
        RatePolicy {
            per_user: unlimited,
            per_device: unlimited,
        },
        tenant_key,
    )
}

/// The whole service request: JSON decode, device signature, assertion verification,
/// replay, registry and rate checks, open, reseal to the one-time key, commit.
fn service_request(c: &mut Criterion) {
    let mut g = c.benchmark_group("service-request");
    for (name, k) in [
        ("hpke-p256", key("p256-service.pem")),
        ("rsa-2048", key("rsa2048-service.pem")),
    ] {
        if name.starts_with("rsa") && !rsa_opens(&k) {
            continue;
        }
        let rig = rig(k);
        g.bench_function(BenchmarkId::new(name, provider()), |b| {
            b.iter_batched(
                || rig.request().0.to_json(),
                |json| {
                    rig.service
                        .handle_json(&json, &RequestContext::default())
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// The client's reset: open the answer with the one-time key, unwrap the container key,
/// new PIN protector (test Argon2 profile), new secret sealed to the service, write.
fn client_reset(c: &mut Criterion) {
    let rig = rig(key("p256-service.pem"));
    // More PINs than the policy's history, so that cycling through them is allowed.
    let pins = ["730145", "590216", "364871", "105938", "821604"];
    let mut i = 0usize;
    let mut g = c.benchmark_group("client-reset");
    g.bench_function(BenchmarkId::new("hpke-p256", provider()), |b| {
        b.iter_batched(
            || {
                if rig.container.status().unwrap().registration_pending {
                    rig.register_pending();
                }
                let (req, pending) = rig.request();
                let resp = rig
                    .service
                    .handle(&req, &RequestContext::default())
                    .unwrap();
                i += 1;
                (pending, resp, Pin::new(pins[i % pins.len()]))
            },
            |(pending, resp, pin)| {
                rig.container
                    .complete_recovery(pending, &resp, &pin, &rig.keys)
                    .unwrap()
            },
            // Each reset changes the container: one set-up per measured reset.
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let rig = rig(key("p256-service.pem"));
    let (req, _) = rig.request();
    let env = req.envelope().clone();
    let (bytes, text, json) = (env.to_bytes(), env.to_text(), req.to_json());
    let resp = rig
        .service
        .handle(&req, &RequestContext::default())
        .unwrap()
        .to_json();
    let mut g = c.benchmark_group("parse");
    g.bench_function("envelope-binary", |b| {
        b.iter(|| Envelope::from_bytes(&bytes).unwrap())
    });
    g.bench_function("envelope-text", |b| {
        b.iter(|| Envelope::from_text(&text).unwrap())
    });
    g.bench_function("request-json", |b| {
        b.iter(|| RecoveryRequest::from_json(&json).unwrap())
    });
    g.bench_function("response-json", |b| {
        b.iter(|| RecoveryResponse::from_json(&resp).unwrap())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal_open, peer_hpke, service_request, client_reset, parse, keygen
}
criterion_main!(benches);

//! dudect-style timing tests (Reparaz, Balasch, Verbauwhede 2016) of the service open
//! path: for each pair of input classes, Welch's t-test on cropped runtime distributions.
//! |t| above about 5 suggests a leak; CI fails only above 10 (the machine is shared and
//! noisy). Classes per suite and provider:
//! - hpke_tag:      valid envelope  vs  one flipped tag bit
//! - hpke_binding:  right binding   vs  wrong binding (one character of the device id)
//! - xwing_decap:   valid X-Wing envelope  vs  one flipped bit in its ML-KEM ciphertext
//!   (ML-KEM's implicit rejection: decapsulation must take the same time either way)
//! - rsa_padding:   valid envelope  vs  a wrap whose OAEP padding is invalid (aws-lc only:
//!   the default provider has no RSA decryption, so there it prints "not run: reason"
//!   instead of timing anything)
//!
//! Short pass (CI): `cargo bench --bench timing`; samples per test with
//! `DUDECT_SAMPLES` (default 20000). Long run: `DUDECT_SAMPLES=1000000 cargo bench
//! --features aws-lc --bench timing`, or continuously:
//! `cargo bench --features aws-lc --bench timing -- --continuous hpke_tag`.

use std::sync::OnceLock;

use dudect_bencher::ctbench::{run_benches_console, BenchMetadata, BenchName, BenchOpts};
use dudect_bencher::rand::RngExt;
use dudect_bencher::{BenchRng, Class, CtRunner};
use pin_recovery::{Binding, Envelope, RecoverySecret, ServicePrivateKey};

struct Fixture {
    p256: ServicePrivateKey,
    xwing: ServicePrivateKey,
    rsa: ServicePrivateKey,
    binding: Binding,
    wrong: Binding,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let load = |name: &str| {
            let path = format!("{}/test-vectors/keys/{name}", env!("CARGO_MANIFEST_DIR"));
            ServicePrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        Fixture {
            p256: load("p256-service.pem"),
            xwing: load("xwing-service.pem"),
            rsa: load("rsa2048-service.pem"),
            binding: Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K").unwrap(),
            wrong: Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3L").unwrap(),
        }
    })
}

fn samples() -> usize {
    // `cargo bench -- --test` (criterion's test mode, run in CI for every bench) only
    // checks that the harness runs.
    if std::env::args().any(|a| a == "--test") {
        return 500;
    }
    std::env::var("DUDECT_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// A pool of distinct envelopes, so that no class is a single cached input.
fn pool(key: &ServicePrivateKey, binding: &Binding, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|_| {
            key.public_key()
                .seal(&RecoverySecret::generate().unwrap(), binding)
                .unwrap()
        })
        .collect()
}

fn flip_last(env: &Envelope) -> Envelope {
    let mut b = env.to_bytes();
    let last = b.len() - 1;
    b[last] ^= 1;
    Envelope::from_bytes(&b).unwrap()
}

/// Runs `open` on Left/Right inputs in random order.
fn run(
    runner: &mut CtRunner,
    rng: &mut BenchRng,
    left: &[(Envelope, &Binding)],
    right: &[(Envelope, &Binding)],
    key: &ServicePrivateKey,
) {
    for i in 0..samples() {
        let (class, (env, binding)) = if rng.random::<bool>() {
            (Class::Left, &left[i % left.len()])
        } else {
            (Class::Right, &right[i % right.len()])
        };
        runner.run_one(class, || key.open(env, binding).is_ok());
    }
}

fn hpke_tag(runner: &mut CtRunner, rng: &mut BenchRng) {
    let f = fixture();
    let valid = pool(&f.p256, &f.binding, 64);
    let left: Vec<_> = valid.iter().map(|e| (e.clone(), &f.binding)).collect();
    let right: Vec<_> = valid.iter().map(|e| (flip_last(e), &f.binding)).collect();
    run(runner, rng, &left, &right, &f.p256);
}

fn hpke_binding(runner: &mut CtRunner, rng: &mut BenchRng) {
    let f = fixture();
    let valid = pool(&f.p256, &f.binding, 64);
    let left: Vec<_> = valid.iter().map(|e| (e.clone(), &f.binding)).collect();
    let right: Vec<_> = valid.iter().map(|e| (e.clone(), &f.wrong)).collect();
    run(runner, rng, &left, &right, &f.p256);
}

/// One bit flipped in the ML-KEM-768 ciphertext (the first 1088 of `encapsulated`).
fn flip_mlkem(env: &Envelope) -> Envelope {
    let mut b = env.to_bytes();
    let enc_at = b.len() - 2 - 48 - 1120;
    b[enc_at + 500] ^= 0x01;
    let flipped = Envelope::from_bytes(&b).unwrap();
    assert_ne!(&flipped, env);
    flipped
}

fn xwing_decap(runner: &mut CtRunner, rng: &mut BenchRng) {
    let f = fixture();
    let valid = pool(&f.xwing, &f.binding, 64);
    let left: Vec<_> = valid.iter().map(|e| (e.clone(), &f.binding)).collect();
    let right: Vec<_> = valid.iter().map(|e| (flip_mlkem(e), &f.binding)).collect();
    // Both classes must really run: the left opens, the right is refused.
    assert!(f.xwing.open(&left[0].0, &f.binding).is_ok());
    assert!(f.xwing.open(&right[0].0, &f.binding).is_err());
    run(runner, rng, &left, &right, &f.xwing);
}

/// A wrap whose RSA decryption succeeds but whose OAEP padding is invalid: a flipped byte
/// in the ciphertext decrypts to an unrelated integer.
fn bad_padding(env: &Envelope) -> Envelope {
    let mut b = env.to_bytes();
    let wrap_at = b.len() - 2 - 48 - 256;
    b[wrap_at + 100] ^= 0x40;
    Envelope::from_bytes(&b).unwrap()
}

fn rsa_padding(runner: &mut CtRunner, rng: &mut BenchRng) {
    let f = fixture();
    let valid = pool(&f.rsa, &f.binding, 64);
    let left: Vec<_> = valid.iter().map(|e| (e.clone(), &f.binding)).collect();
    let right: Vec<_> = valid.iter().map(|e| (bad_padding(e), &f.binding)).collect();
    run(runner, rng, &left, &right, &f.rsa);
}

/// Whether this provider can open RSA envelopes: `Err` with the reason if it cannot by
/// design. Any other failure is a bug and stops the run (it would time a no-op).
fn rsa_available() -> Result<(), &'static str> {
    let f = fixture();
    let probe = f
        .rsa
        .public_key()
        .seal(&RecoverySecret::generate().unwrap(), &f.binding)
        .unwrap();
    match f.rsa.open(&probe, &f.binding) {
        Ok(_) => Ok(()),
        Err(pin_recovery::Error::Unsupported(_)) => {
            Err("this provider has no RSA decryption (enable aws-lc)")
        }
        Err(e) => panic!("RSA open failed on a valid envelope: {e:?}"),
    }
}

fn main() {
    // Ignore the flags cargo passes to bench binaries (`--bench`); accept
    // `--continuous NAME` and `--filter NAME`.
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let continuous = value("--continuous");
    let opts = BenchOpts {
        continuous: continuous.is_some(),
        filter: continuous.or_else(|| value("--filter")),
        file_out: None,
    };
    println!(
        "provider: {}, samples per test: {}",
        pin_recovery::__internal::provider_name(),
        samples()
    );
    let mut benches = vec![
        BenchMetadata {
            name: BenchName("hpke_binding"),
            seed: None,
            benchfn: hpke_binding,
        },
        BenchMetadata {
            name: BenchName("hpke_tag"),
            seed: None,
            benchfn: hpke_tag,
        },
        BenchMetadata {
            name: BenchName("xwing_decap"),
            seed: None,
            benchfn: xwing_decap,
        },
    ];
    // A test that cannot measure anything here is reported as not run (scripts/timing
    // counts it so), never timed as a no-op.
    match rsa_available() {
        Ok(()) => benches.push(BenchMetadata {
            name: BenchName("rsa_padding"),
            seed: None,
            benchfn: rsa_padding,
        }),
        Err(reason) => println!("rsa_padding: not run: {reason}"),
    }
    run_benches_console(opts, benches).unwrap();
}

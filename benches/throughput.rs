//! Opening throughput with one thread and with two threads sharing one service key: the
//! service path holds no lock, so two threads should open close to twice as many
//! envelopes per second as one. Prints one JSON line per suite (read by
//! `scripts/compare`). `cargo bench --bench throughput [-- --test]`.

use std::sync::Barrier;
use std::time::Instant;

use pin_recovery::{Binding, Envelope, RecoverySecret, ServicePrivateKey};

fn key(name: &str) -> ServicePrivateKey {
    let path = format!("{}/test-vectors/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    ServicePrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Opens per second with `threads` threads each opening `n` envelopes.
fn rate(k: &ServicePrivateKey, envs: &[Envelope], b: &Binding, threads: usize, n: usize) -> f64 {
    let barrier = Barrier::new(threads + 1);
    let elapsed = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for i in 0..n {
                    assert!(k.open(&envs[i % envs.len()], b).is_ok());
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    });
    (threads * n) as f64 / elapsed.as_secs_f64()
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let b = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K").unwrap();
    for (suite, name, n) in [
        ("hpke-p256", "p256-service.pem", 5000),
        ("rsa-2048", "rsa2048-service.pem", 1000),
    ] {
        let k = key(name);
        let envs: Vec<Envelope> = (0..16)
            .map(|_| {
                k.public_key()
                    .seal(&RecoverySecret::generate().unwrap(), &b)
                    .unwrap()
            })
            .collect();
        if k.open(&envs[0], &b).is_err() {
            continue; // no RSA decryption in this provider
        }
        let n = if test_mode { 20 } else { n };
        let _ = rate(&k, &envs, &b, 1, n / 10);
        let one = rate(&k, &envs, &b, 1, n);
        let two = rate(&k, &envs, &b, 2, n);
        println!(
            "{{\"bench\":\"throughput\",\"provider\":\"{}\",\"suite\":\"{suite}\",\"one_thread_per_s\":{one:.1},\"two_threads_per_s\":{two:.1},\"ratio\":{:.3}}}",
            pin_recovery::__internal::provider_name(),
            two / one
        );
    }
}

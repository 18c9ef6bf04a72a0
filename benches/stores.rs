//! What each store costs, measured in one run on this machine: the release commit alone
//! (sequential commits per second, median and 99th-percentile latency, by hand over many
//! samples) and the full service request (criterion), for the in-memory store, SQLite
//! (a file, WAL, synchronous=FULL) and PostgreSQL (when `PIN_RECOVERY_TEST_POSTGRES`
//! names a server; otherwise reported as not run). Prints a table with each backend's
//! ratio to the in-memory store and writes it to `bench-results/stores.json`.
//!
//! `cargo bench --bench stores` (`-- --test`: a quick pass that only checks it runs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion};
use pin_recovery::client::{Container, MemoryStore, Pin, ServiceTrust};
use pin_recovery::service::{
    blocking, AuditAction, AuditEvent, AuditOutcome, IssuerTrust, KeyEncryptionKey, RateKey,
    RateLimit, RatePolicy, RateScope, RecoveryService, ReleaseCommit, RequestContext,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{Binding, Clock, KeyDocumentSigner, ManualClock, ServicePrivateKey, SigningKey};

#[path = "../tests/common/backends.rs"]
#[allow(dead_code)]
mod backends;
#[path = "../tests/common/world.rs"]
#[allow(dead_code)]
mod world;

use backends::{Backend, Scratch};

fn quick() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn unlimited() -> RatePolicy {
    let u = RateLimit {
        max: u32::MAX,
        window: 1,
    };
    RatePolicy {
        per_user: u,
        per_device: u,
    }
}

struct Rig {
    scratch: Option<Scratch>,
    service: blocking::RecoveryService,
    idp: TestIdentityProvider,
    clock: Arc<ManualClock>,
    binding: Binding,
    container: Container<MemoryStore>,
}

impl Rig {
    fn new(backend: Backend) -> Self {
        let scratch = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(Scratch::new(backend));
        let location = scratch.location();
        let clock = Arc::new(ManualClock::new(world::T0));
        let idp = TestIdentityProvider::new("https://idp.test").unwrap();
        let trust = IssuerTrust::new().trust("contoso", idp.trusted_issuer().unwrap());
        let c = clock.clone();
        let service = blocking::RecoveryService::start(|| async move {
            let store = backends::open_at(backend, &location).await;
            RecoveryService::builder(
                world::service_config(),
                KeyDocumentSigner::new(SigningKey::generate().unwrap()),
                trust,
                store,
                KeyEncryptionKey::generate().unwrap(),
            )
            .rate_policy(unlimited())
            .clock(c)
            .build()
            .await
        })
        .unwrap();
        service
            .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
            .unwrap();
        let binding = Binding::new("contoso", "alice", "LAPTOP-1").unwrap();
        let container = Container::with_clock(
            MemoryStore::new(),
            world::test_policy(true),
            Some(ServiceTrust {
                key_document_key: *service.key_document_key(),
            }),
            clock.clone(),
        );
        let keys = service.key_document("contoso").unwrap();
        let enrolment = container
            .enrol(&binding, &Pin::new(world::PIN), Some(&keys))
            .unwrap();
        service
            .register_device(
                &binding,
                enrolment.device_public_key,
                &RequestContext::default(),
            )
            .unwrap();
        let reg = container.pending_registration().unwrap().unwrap();
        service
            .register_envelope(&reg, &RequestContext::default())
            .unwrap();
        container
            .confirm_registration(reg.envelope().envelope_id())
            .unwrap();
        Rig {
            scratch: Some(scratch),
            service,
            idp,
            clock,
            binding,
            container,
        }
    }

    fn request_json(&self) -> Vec<u8> {
        let mut p = self.container.begin_recovery().unwrap();
        let a = self
            .idp
            .mfa_assertion(
                world::AUDIENCE,
                &self.binding,
                p.mfa_nonce(),
                self.clock.now(),
            )
            .unwrap();
        p.request(&a).unwrap().to_json()
    }

    /// `n` release commits one after another, each timed: the latencies, sorted.
    fn commit_latencies(&self, n: usize) -> Vec<Duration> {
        let store = self.service.store().clone();
        let record = self
            .service
            .block_on(store.device("contoso", "LAPTOP-1"))
            .unwrap()
            .unwrap();
        let env = record.envelope.unwrap();
        let keys = [
            RateKey {
                scope: RateScope::User,
                tenant: "contoso".into(),
                id: "alice".into(),
            },
            RateKey {
                scope: RateScope::Device,
                tenant: "contoso".into(),
                id: "LAPTOP-1".into(),
            },
        ];
        let policy = unlimited();
        let event = AuditEvent {
            time: world::T0,
            action: AuditAction::Recovery,
            tenant: Some("contoso".into()),
            user: Some("alice".into()),
            device: Some("LAPTOP-1".into()),
            client_ip: "192.0.2.1".into(),
            client_type: "bench".into(),
            key_id: Some(env.key_id()),
            envelope_id: Some(env.envelope_id()),
            outcome: AuditOutcome::Released,
            reason: "ok".into(),
        };
        let mut out: Vec<Duration> = (0..n)
            .map(|i| {
                let token = format!("bench-{i}");
                let commit = ReleaseCommit {
                    tenant: "contoso",
                    device: "LAPTOP-1",
                    envelope_id: env.envelope_id(),
                    key_id: env.key_id(),
                    issuer: "idp",
                    token_id: &token,
                    token_expires_at: world::T0 + 360,
                    rate_keys: &keys,
                    policy: &policy,
                    now: world::T0,
                    event: &event,
                };
                let start = Instant::now();
                self.service
                    .block_on(store.commit_release(&commit))
                    .unwrap();
                start.elapsed()
            })
            .collect();
        out.sort();
        out
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn criterion_median_us(backend: &str) -> Option<f64> {
    let path = format!(
        "{}/target/criterion/service-request-store/{backend}/new/estimates.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    Some(v["median"]["point_estimate"].as_f64()? / 1000.0)
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut rows = Vec::new();
    let mut group = criterion.benchmark_group("service-request-store");
    for backend in backends::ALL {
        if let Some(reason) = backend.not_run() {
            println!("{}: {reason}", backend.name());
            continue;
        }
        let mut rig = Rig::new(backend);
        group.bench_function(BenchmarkId::from_parameter(backend.name()), |b| {
            b.iter_batched(
                || rig.request_json(),
                |json| {
                    rig.service
                        .handle_json(&json, &RequestContext::default())
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        let n = if quick() { 20 } else { 3000 };
        let lat = rig.commit_latencies(n);
        let total: Duration = lat.iter().sum();
        let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
        rows.push((
            backend.name(),
            n as f64 / total.as_secs_f64(),
            micros(pick(0.5)),
            micros(pick(0.99)),
        ));
        let scratch = rig.scratch.take();
        drop(rig);
        if let Some(s) = scratch {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(s.cleanup());
        }
    }
    group.finish();
    criterion.final_summary();
    if quick() {
        return;
    }
    let memory_request = criterion_median_us("memory");
    println!(
        "\n{:10} {:>12} {:>12} {:>12} {:>16} {:>10}",
        "store", "commits/s", "median us", "p99 us", "request median", "vs memory"
    );
    let mut json = Vec::new();
    for (name, per_s, median, p99) in &rows {
        let request = criterion_median_us(name);
        let ratio = request.zip(memory_request).map(|(r, m)| r / m);
        println!(
            "{name:10} {per_s:>12.0} {median:>12.1} {p99:>12.1} {:>16} {:>10}",
            request.map_or("-".into(), |r| format!("{r:.1} us")),
            ratio.map_or("-".into(), |r| format!("{r:.2}"))
        );
        json.push(serde_json::json!({
            "store": name, "commits_per_s": per_s, "commit_median_us": median,
            "commit_p99_us": p99, "service_request_median_us": request,
            "service_request_vs_memory": ratio,
        }));
    }
    let dir = format!("{}/bench-results", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        format!("{dir}/stores.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
}

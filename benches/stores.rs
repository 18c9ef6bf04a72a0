//! What each store costs, measured in one run on this machine, for the in-memory store,
//! SQLite (a file, WAL, synchronous=FULL) and PostgreSQL (when `PIN_RECOVERY_TEST_POSTGRES`
//! names a server; otherwise reported as not run): the release commit alone (sequential
//! commits per second, median and 99th-percentile latency), a read, and the whole service
//! request (median and 99th percentile per request, and a criterion estimate); and the
//! disk's own durable-write latency, the floor under any commit. Prints a table with each
//! backend's ratio to the in-memory store and writes it to `bench-results/stores.json`.
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

/// No limit that a benchmark could reach, over a one-second window: with the clock moving
/// two seconds per request, each release finds its window empty, as a real subject's
/// window holds at most its few allowed releases.
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
        self.clock.advance(2);
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

    /// `n` whole service requests one after another (each built just before it is
    /// sent, untimed), each timed: the latencies, sorted.
    fn request_latencies(&self, n: usize) -> Vec<Duration> {
        let mut out: Vec<Duration> = (0..n)
            .map(|_| {
                let json = self.request_json();
                let start = Instant::now();
                self.service
                    .handle_json(&json, &RequestContext::default())
                    .unwrap();
                start.elapsed()
            })
            .collect();
        out.sort();
        out
    }

    /// `n` reads of the device record (one round trip to the store), each timed: the
    /// latencies, sorted.
    fn read_latencies(&self, n: usize) -> Vec<Duration> {
        let store = self.service.store().clone();
        let mut out: Vec<Duration> = (0..n)
            .map(|_| {
                let start = Instant::now();
                self.service
                    .block_on(store.device("contoso", "LAPTOP-1"))
                    .unwrap()
                    .unwrap();
                start.elapsed()
            })
            .collect();
        out.sort();
        out
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
        let start_at = self.clock.now();
        let mut out: Vec<Duration> = (0..n)
            .map(|i| {
                let now = start_at + 2 * i as u64;
                let event = AuditEvent {
                    time: now,
                    ..event.clone()
                };
                let token = format!("bench-{i}");
                let commit = ReleaseCommit {
                    tenant: "contoso",
                    device: "LAPTOP-1",
                    envelope_id: env.envelope_id(),
                    key_id: env.key_id(),
                    issuer: "idp",
                    token_id: &token,
                    token_expires_at: now + 360,
                    rate_keys: &keys,
                    policy: &policy,
                    now,
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

/// What one durable write costs on this machine's disk, the floor under any commit that
/// must survive power loss: `n` rewrites of one 4 KiB block, each followed by
/// `fdatasync`, in the temporary directory the SQLite store uses. Sorted latencies.
fn fsync_latencies(n: usize) -> Vec<Duration> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = tempfile::tempfile().unwrap();
    let block = [0x5a_u8; 4096];
    let mut out: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.write_all(&block).unwrap();
            file.sync_data().unwrap();
            start.elapsed()
        })
        .collect();
    out.sort();
    out
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One line of the table: latencies in microseconds.
struct Row {
    name: &'static str,
    commits_per_s: f64,
    commit: (f64, f64),
    read: Option<f64>,
    request: Option<(f64, f64)>,
}

fn median_p99(lat: &[Duration]) -> (f64, f64) {
    let pick = |q: f64| micros(lat[((lat.len() as f64 - 1.0) * q) as usize]);
    (pick(0.5), pick(0.99))
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut rows = Vec::new();
    let mut group = criterion.benchmark_group("service-request-store");
    let n = if quick() { 20 } else { 2000 };
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
                // One request made just before it is sent: the clock moves per request.
                BatchSize::PerIteration,
            )
        });
        // The table's numbers: per-operation medians and 99th percentiles, measured the
        // same way for every backend (criterion's estimates average within a sample).
        let requests = rig.request_latencies(n);
        let reads = rig.read_latencies(n);
        let commits = rig.commit_latencies(n);
        let total: Duration = commits.iter().sum();
        rows.push(Row {
            name: backend.name(),
            commits_per_s: commits.len() as f64 / total.as_secs_f64(),
            commit: median_p99(&commits),
            read: Some(median_p99(&reads).0),
            request: Some(median_p99(&requests)),
        });
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
    // The disk's floor under any durable commit; not a store.
    let syncs = fsync_latencies(if quick() { 20 } else { 1000 });
    let total: Duration = syncs.iter().sum();
    rows.push(Row {
        name: "fsync 4KiB",
        commits_per_s: syncs.len() as f64 / total.as_secs_f64(),
        commit: median_p99(&syncs),
        read: None,
        request: None,
    });
    if quick() {
        return;
    }
    let memory = rows
        .iter()
        .find(|r| r.name == "memory")
        .and_then(|r| r.request)
        .map(|r| r.0);
    let dash = || "-".to_string();
    println!(
        "\n{:10} {:>10} {:>11} {:>11} {:>9} {:>12} {:>11} {:>10}",
        "store",
        "commits/s",
        "commit p50",
        "commit p99",
        "read p50",
        "request p50",
        "request p99",
        "vs memory"
    );
    let mut json = Vec::new();
    for r in &rows {
        let ratio = r.request.zip(memory).map(|(q, m)| q.0 / m);
        println!(
            "{:10} {:>10.0} {:>11.1} {:>11.1} {:>9} {:>12} {:>11} {:>10}",
            r.name,
            r.commits_per_s,
            r.commit.0,
            r.commit.1,
            r.read.map_or_else(dash, |v| format!("{v:.1}")),
            r.request.map_or_else(dash, |v| format!("{:.1}", v.0)),
            r.request.map_or_else(dash, |v| format!("{:.1}", v.1)),
            ratio.map_or_else(dash, |v| format!("{v:.2}")),
        );
        json.push(serde_json::json!({
            "store": r.name, "commits_per_s": r.commits_per_s,
            "commit_median_us": r.commit.0, "commit_p99_us": r.commit.1,
            "read_median_us": r.read,
            "request_median_us": r.request.map(|v| v.0),
            "request_p99_us": r.request.map(|v| v.1),
            "request_vs_memory": ratio,
        }));
    }
    println!("(microseconds; one run; \"vs memory\" is the request median's ratio)");
    let dir = format!("{}/bench-results", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        format!("{dir}/stores.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
}

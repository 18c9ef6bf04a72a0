//! Issue 10's proofs with real service processes on one database: replicas (two
//! processes on one PostgreSQL, 8 threads each) racing one assertion release it exactly
//! once, and racing registrations keep the compare-and-swap; a key rotation on one
//! replica is used by the other; and a service process killed (SIGKILL) at random moments
//! under load, at least 20 times, never releases one assertion twice and never loses an
//! acknowledged registration (SQLite and PostgreSQL).
//!
//! The child processes are this test binary again, started with `PIN_RECOVERY_CHILD` set
//! to a work directory: it opens the store, starts a service and works through the
//! requests and registrations found there, printing one line per acknowledged result.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::backends::{self, Backend};
use common::world::{service_config, signed_registration, test_policy, AUDIENCE, PIN, T0};
use libtest_mimic::{Arguments, Trial};
use pin_recovery::client::{Container, MemoryStore, Pin, ServiceTrust};
use pin_recovery::service::{
    blocking, IssuerTrust, KeyEncryptionKey, RateLimit, RatePolicy, RecoveryService,
    RequestContext, ServiceError,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{Binding, Clock, KeyDocumentSigner, ManualClock, ServicePrivateKey, SigningKey};

const CHILD: &str = "PIN_RECOVERY_CHILD";

fn main() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(Path::new(&dir));
        return;
    }
    let args = Arguments::from_args();
    let pg = Backend::Postgres.not_run();
    if let Some(reason) = &pg {
        println!("postgres: {reason}");
    }
    let trials = vec![
        Trial::test(
            "postgres::two_replicas_race_one_assertion_and_one_registration",
            || {
                race(Backend::Postgres);
                Ok(())
            },
        )
        .with_ignored_flag(pg.is_some()),
        Trial::test(
            "postgres::a_key_rotation_on_one_replica_is_used_by_the_other",
            || {
                rotation_across_replicas();
                Ok(())
            },
        )
        .with_ignored_flag(pg.is_some()),
        Trial::test(
            "sqlite::a_service_killed_under_load_never_releases_twice",
            || {
                killed_under_load(Backend::Sqlite);
                Ok(())
            },
        ),
        Trial::test(
            "postgres::a_service_killed_under_load_never_releases_twice",
            || {
                killed_under_load(Backend::Postgres);
                Ok(())
            },
        )
        .with_ignored_flag(pg.is_some()),
    ];
    libtest_mimic::run(&args, trials).exit();
}

fn rates() -> RatePolicy {
    let generous = RateLimit {
        max: 1_000_000,
        window: 60,
    };
    RatePolicy {
        per_user: generous,
        per_device: generous,
    }
}

/// What a child needs to start a service like the parent's: the store and the operator's
/// keys, written to its work directory.
struct Setup {
    dir: tempfile::TempDir,
    backend: Backend,
    location: String,
    kek: String,
    signer: Vec<u8>,
    idp: Vec<u8>,
}

impl Setup {
    fn new(backend: Backend, location: String, dir: tempfile::TempDir) -> Self {
        let s = Setup {
            dir,
            backend,
            location,
            kek: KeyEncryptionKey::generate().unwrap().to_hex().to_string(),
            signer: SigningKey::generate()
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .to_vec(),
            idp: SigningKey::generate()
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .to_vec(),
        };
        let d = s.dir.path();
        std::fs::write(d.join("backend"), backend.name()).unwrap();
        std::fs::write(d.join("location"), &s.location).unwrap();
        std::fs::write(d.join("kek"), &s.kek).unwrap();
        std::fs::write(d.join("signer"), &s.signer).unwrap();
        std::fs::write(d.join("idp"), &s.idp).unwrap();
        s
    }

    fn work(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn idp(&self) -> TestIdentityProvider {
        idp(&self.idp)
    }

    fn service(&self) -> blocking::RecoveryService {
        start(
            self.backend,
            &self.location,
            &self.kek,
            &self.signer,
            &self.idp,
        )
    }
}

fn idp(key: &[u8]) -> TestIdentityProvider {
    TestIdentityProvider::from_key(
        "https://idp.test",
        "k1",
        SigningKey::from_pkcs8_der(key).unwrap(),
    )
}

fn start(
    backend: Backend,
    location: &str,
    kek: &str,
    signer: &[u8],
    idp_key: &[u8],
) -> blocking::RecoveryService {
    let (location, kek) = (
        location.to_owned(),
        KeyEncryptionKey::from_text(kek).unwrap(),
    );
    let signer = KeyDocumentSigner::new(SigningKey::from_pkcs8_der(signer).unwrap());
    let trust = IssuerTrust::new().trust("contoso", idp(idp_key).trusted_issuer().unwrap());
    blocking::RecoveryService::start(|| async move {
        let store = backends::open_at(backend, &location).await;
        RecoveryService::builder(service_config(), signer, trust, store, kek)
            .rate_policy(rates())
            .clock(Arc::new(ManualClock::new(T0)))
            .build()
            .await
    })
    .unwrap()
}

/// The child: starts a service, waits for `go` if asked, then answers every request in
/// `requests` and every registration in `registrations` from `threads` threads,
/// printing `released N`, `registered N` or `refused N REASON`.
fn child(dir: &Path) {
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let text = |name: &str| String::from_utf8(read(name)).unwrap();
    let service = Arc::new(start(
        backends::parse(&text("backend")),
        &text("location"),
        &text("kek"),
        &read("signer"),
        &read("idp"),
    ));
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (requests, registrations) = (
        Arc::new(lines("requests")),
        Arc::new(lines("registrations")),
    );
    let threads: usize = text("threads").trim().parse().unwrap();
    // Requests the parent has already seen acknowledged: skipped, so that each run spends
    // its time on new commits.
    let skip: std::collections::HashSet<usize> = std::fs::read_to_string(dir.join("skip"))
        .unwrap_or_default()
        .split(',')
        .filter_map(|i| i.trim().parse().ok())
        .collect();
    let skip = Arc::new(skip);
    println!("ready");
    while std::fs::metadata(dir.join("go")).is_err() && dir.join("wait").exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (service, requests, registrations, skip) = (
                service.clone(),
                requests.clone(),
                registrations.clone(),
                skip.clone(),
            );
            std::thread::spawn(move || {
                let ctx = RequestContext::default();
                // Each thread takes every request in turn, starting at its own offset.
                let n = requests.len();
                for i in (0..n).map(|i| (i + t * n / threads.max(1)) % n.max(1)) {
                    if skip.contains(&i) {
                        continue;
                    }
                    match service.handle_json(requests[i].as_bytes(), &ctx) {
                        Ok(_) => println!("released {i}"),
                        Err(e) => println!("refused {i} {}", e.reason()),
                    }
                }
                for (j, reg) in registrations.iter().enumerate() {
                    if j % threads != t && threads > 1 && !registrations_contested() {
                        continue;
                    }
                    match service.register_envelope_json(reg.as_bytes(), &ctx) {
                        Ok(()) => println!("registered {j}"),
                        Err(e) => println!("refused-registration {j} {}", e.reason()),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn registrations_contested() -> bool {
    std::env::var("PIN_RECOVERY_CONTEST").is_ok()
}

fn spawn(dir: &Path, contest: bool) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if contest {
        cmd.env("PIN_RECOVERY_CONTEST", "1");
    }
    cmd.spawn().unwrap()
}

/// A device registered with the service through `service`, its container enrolled and
/// its envelope registered; `n` valid, distinct requests for it (each with fresh MFA).
fn device_with_requests(
    setup: &Setup,
    service: &blocking::RecoveryService,
    device: &str,
    n: usize,
) -> Vec<String> {
    let clock = Arc::new(ManualClock::new(T0));
    let binding = Binding::new("contoso", "alice", device).unwrap();
    let keys = service.key_document("contoso").unwrap();
    let c = Container::with_clock(
        MemoryStore::new(),
        test_policy(true),
        Some(ServiceTrust {
            key_document_key: *service.key_document_key(),
        }),
        clock.clone(),
    );
    let enrolment = c.enrol(&binding, &Pin::new(PIN), Some(&keys)).unwrap();
    service
        .register_device(
            &binding,
            enrolment.device_public_key,
            &RequestContext::default(),
        )
        .unwrap();
    let reg = c.pending_registration().unwrap().unwrap();
    service
        .register_envelope(&reg, &RequestContext::default())
        .unwrap();
    c.confirm_registration(reg.envelope().envelope_id())
        .unwrap();
    let idp = setup.idp();
    (0..n)
        .map(|_| {
            let mut p = c.begin_recovery().unwrap();
            let a = idp
                .mfa_assertion(AUDIENCE, &binding, p.mfa_nonce(), clock.now())
                .unwrap();
            String::from_utf8(p.request(&a).unwrap().to_json()).unwrap()
        })
        .collect()
}

/// `n` competing first registrations of a new device: different envelopes, each properly
/// signed; the device's key.
fn competing_registrations(
    service: &blocking::RecoveryService,
    device: &str,
    n: usize,
) -> Vec<String> {
    let key = SigningKey::generate().unwrap();
    let binding = Binding::new("contoso", "alice", device).unwrap();
    service
        .register_device(&binding, *key.verifying_key(), &RequestContext::default())
        .unwrap();
    let doc = service.key_document("contoso").unwrap();
    let current = doc
        .verify(service.key_document_key(), "contoso", T0, 0)
        .unwrap()
        .current()
        .unwrap()
        .clone();
    (0..n)
        .map(|_| {
            let env = current
                .seal(&pin_recovery::RecoverySecret::generate().unwrap(), &binding)
                .unwrap();
            String::from_utf8(signed_registration(&env, None, None, &key).to_json()).unwrap()
        })
        .collect()
}

fn output(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a child failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn race(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let scratch = rt.block_on(backends::Scratch::new(backend));
    let setup = Setup::new(backend, scratch.location(), tempfile::tempdir().unwrap());
    {
        let service = setup.service();
        service
            .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
            .unwrap();
        let request = device_with_requests(&setup, &service, "LAPTOP-1", 1);
        std::fs::write(setup.work("requests"), request.join("\n")).unwrap();
        let regs = competing_registrations(&service, "LAPTOP-2", 16);
        std::fs::write(setup.work("registrations"), regs.join("\n")).unwrap();
    }
    std::fs::write(setup.work("threads"), "8").unwrap();
    std::fs::write(setup.work("wait"), "").unwrap();
    let children = [spawn(setup.dir.path(), true), spawn(setup.dir.path(), true)];
    // Both replicas are up (their first line), then go together.
    let mut children: Vec<(Child, BufReader<std::process::ChildStdout>)> = children
        .into_iter()
        .map(|mut c| {
            let mut out = BufReader::new(c.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready");
            (c, out)
        })
        .collect();
    std::fs::write(setup.work("go"), "").unwrap();
    let mut lines = Vec::new();
    for (c, out) in children.drain(..) {
        lines.extend(out.lines().map(Result::unwrap));
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(
        count("released "),
        1,
        "one release of one assertion across 16 threads: {lines:?}"
    );
    assert_eq!(count("refused 0 assertion-replayed"), 15, "{lines:?}");
    // 16 different first registrations, each tried by every thread of both replicas:
    // one envelope wins; its own retries are "unchanged" successes, every other loses.
    let won: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("registered "))
        .collect();
    assert_eq!(won.len(), 1, "exactly one registration took: {won:?}");
    assert_eq!(
        count("refused-registration"),
        lines
            .iter()
            .filter(
                |l| l.starts_with("refused-registration") && l.ends_with("registration-conflict")
            )
            .count(),
        "the others are conflicts"
    );
    let service = setup.service();
    let record = service
        .block_on(service.store().device("contoso", "LAPTOP-2"))
        .unwrap()
        .unwrap();
    let winner: usize = won.iter().next().unwrap().parse().unwrap();
    let regs: Vec<String> = std::fs::read_to_string(setup.work("registrations"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let expected = pin_recovery::EnvelopeRegistration::from_json(regs[winner].as_bytes()).unwrap();
    assert_eq!(
        record.envelope.as_ref(),
        Some(expected.envelope()),
        "the registered envelope is the winner's"
    );
    println!("two replicas x 8 threads: 1 release of 16 tries; 1 registration of 16 envelopes");
    drop(service);
    rt.block_on(scratch.cleanup());
}

fn rotation_across_replicas() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let scratch = rt.block_on(backends::Scratch::new(Backend::Postgres));
    let setup = Setup::new(
        Backend::Postgres,
        scratch.location(),
        tempfile::tempdir().unwrap(),
    );
    let a = setup.service();
    a.add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
        .unwrap();
    let b = setup.service();
    let before = b.key_document("contoso").unwrap();
    // A rotates; B, which loaded the keyring before, publishes and opens with the new key.
    let newer = ServicePrivateKey::generate_p256().unwrap();
    let new_id = newer.key_id();
    a.add_current_key("contoso", newer).unwrap();
    let doc = b.key_document("contoso").unwrap();
    let verified = doc.verify(b.key_document_key(), "contoso", T0, 0).unwrap();
    let old = before
        .verify(b.key_document_key(), "contoso", T0, 0)
        .unwrap();
    assert_eq!(verified.current().unwrap().key_id(), new_id);
    assert!(verified.serial > old.serial);
    // An envelope sealed to the new key (a device that fetched A's document) opens on B.
    let requests = device_with_requests(&setup, &a, "LAPTOP-3", 1);
    let req = pin_recovery::RecoveryRequest::from_json(requests[0].as_bytes()).unwrap();
    assert_eq!(req.envelope().key_id(), new_id);
    b.handle(&req, &RequestContext::default()).unwrap();
    // And a retirement on A is refused by B.
    let old_id = old.current().unwrap().key_id();
    let old_device = {
        // A device still on the old key cannot exist once it is retired; retire and check
        // that B no longer lists it.
        a.retire_key("contoso", old_id).unwrap()
    };
    assert!(old_device);
    let listed: Vec<_> = b
        .key_document("contoso")
        .unwrap()
        .verify(b.key_document_key(), "contoso", T0, 0)
        .unwrap()
        .keys
        .iter()
        .map(|k| k.key.key_id())
        .collect();
    assert_eq!(listed, vec![new_id]);
    drop((a, b));
    rt.block_on(scratch.cleanup());
}

fn killed_under_load(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let scratch = rt.block_on(backends::Scratch::new(backend));
    let setup = Setup::new(backend, scratch.location(), tempfile::tempdir().unwrap());
    let n_requests = 2500;
    let n_devices = 300;
    let mut registrations = Vec::new();
    {
        let service = setup.service();
        service
            .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
            .unwrap();
        let requests = device_with_requests(&setup, &service, "LAPTOP-1", n_requests);
        std::fs::write(setup.work("requests"), requests.join("\n")).unwrap();
        for d in 0..n_devices {
            registrations.extend(competing_registrations(&service, &format!("DEV-{d}"), 1));
        }
        std::fs::write(setup.work("registrations"), registrations.join("\n")).unwrap();
    }
    std::fs::write(setup.work("threads"), "4").unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut released = vec![0usize; n_requests];
    let mut acknowledged = std::collections::BTreeSet::new();
    // Kill until at least 20 kills have hit the service while it was committing (it
    // acknowledged new work in that round), at most 80 rounds.
    let (mut kills, mut busy_kills) = (0, 0);
    while busy_kills < 20 && kills < 80 {
        let acked: Vec<String> = (0..n_requests)
            .filter(|i| released[*i] > 0)
            .map(|i| i.to_string())
            .collect();
        std::fs::write(setup.work("skip"), acked.join(",")).unwrap();
        let mut c = spawn(setup.dir.path(), false);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = 80 + (seed >> 33) % 300;
        std::thread::sleep(std::time::Duration::from_millis(wait));
        c.kill().unwrap(); // SIGKILL: no destructor, no rollback, no flush
        kills += 1;
        let out = c.wait_with_output().unwrap();
        let mut acked_now = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(i) = line.strip_prefix("released ") {
                released[i.parse::<usize>().unwrap()] += 1;
                acked_now += 1;
            } else if let Some(j) = line.strip_prefix("registered ") {
                acked_now += usize::from(acknowledged.insert(j.parse::<usize>().unwrap()));
            }
        }
        busy_kills += usize::from(acked_now > 0);
    }
    assert!(
        busy_kills >= 20,
        "only {busy_kills} of {kills} kills hit a busy service"
    );
    // A last run to completion, skipping nothing: everything left is released or
    // registered now, and every acknowledged release is refused as spent.
    std::fs::remove_file(setup.work("skip")).unwrap();
    for line in output(spawn(setup.dir.path(), false)) {
        if let Some(i) = line.strip_prefix("released ") {
            released[i.parse::<usize>().unwrap()] += 1;
        } else if let Some(j) = line.strip_prefix("registered ") {
            acknowledged.insert(j.parse::<usize>().unwrap());
        }
    }
    // A release acknowledged (printed) is never acknowledged again. (One committed just
    // before a kill, unprinted, is acknowledged never: the store's count below has it.)
    let twice: Vec<usize> = (0..n_requests).filter(|i| released[*i] > 1).collect();
    assert!(twice.is_empty(), "released more than once: {twice:?}");
    let service = setup.service();
    for j in &acknowledged {
        let reg =
            pin_recovery::EnvelopeRegistration::from_json(registrations[*j].as_bytes()).unwrap();
        let record = service
            .block_on(service.store().device("contoso", &format!("DEV-{j}")))
            .unwrap()
            .unwrap();
        assert_eq!(
            record.envelope.as_ref(),
            Some(reg.envelope()),
            "acknowledged registration {j} lost"
        );
    }
    assert_eq!(acknowledged.len(), n_devices);
    // The store holds exactly one release event per request.
    let events = service
        .block_on(service.store().audit_events(0, 100_000))
        .unwrap();
    let releases = events
        .iter()
        .filter(|(_, e)| e.outcome == pin_recovery::service::AuditOutcome::Released)
        .count();
    assert_eq!(
        releases, n_requests,
        "each request released exactly once, in the store"
    );
    assert_eq!(
        service.handle_json(
            std::fs::read_to_string(setup.work("requests"))
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .as_bytes(),
            &RequestContext::default()
        ),
        Err(ServiceError::AssertionReplayed)
    );
    println!(
        "{}: killed a loaded service {kills} times ({busy_kills} while it was committing); {n_requests} requests released once each, {} acknowledged registrations all kept",
        backend.name(),
        acknowledged.len()
    );
    drop(service);
    rt.block_on(scratch.cleanup());
}

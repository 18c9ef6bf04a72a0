//! DESIGN.md property 5: a crash at any step of enrolment, PIN change, sign-in reseal,
//! non-destructive or destructive reset leaves a container that opens with the old state
//! or the new one. Proved two ways: every storage step of every operation fails in turn
//! (as an I/O error, and as a crash that abandons the operation on the spot), and a
//! child process doing resets in a loop is killed at random moments.
//!
//! Every case runs with each PIN protector: Argon2id, and (feature `tpm`) a TPM, on a
//! real software TPM of its own; without swtpm the TPM cases are reported as ignored
//! with the reason.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::world::{single_key_document, test_policy, T0};
use pin_recovery::client::{
    ClientError, Container, ContainerStore, FileStore, Pin, ServiceTrust, StoreStep,
};
use pin_recovery::{
    Binding, KeyDocumentSigner, ManualClock, ServicePrivateKey, SignedKeyDocument, SigningKey,
    VerifyingKey,
};

const OLD: &str = "111111";
const NEW: &str = "222222";

/// Which PIN protector a case runs with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Argon2id,
    #[cfg(feature = "tpm")]
    Tpm,
}

struct Rig {
    #[cfg(feature = "tpm")]
    tpm: Option<common::swtpm::SwTpm>,
    dir: tempfile::TempDir,
    service_key: ServicePrivateKey,
    signer: KeyDocumentSigner,
    keys: SignedKeyDocument,
    binding: Binding,
    clock: Arc<ManualClock>,
}

impl Rig {
    fn new(kind: Kind) -> Self {
        #[cfg(not(feature = "tpm"))]
        let Kind::Argon2id = kind;
        let service_key = ServicePrivateKey::generate_p256().unwrap();
        let signer = KeyDocumentSigner::new(SigningKey::generate().unwrap());
        let keys = single_key_document(&signer, &service_key, 1);
        Rig {
            #[cfg(feature = "tpm")]
            tpm: (kind == Kind::Tpm).then(|| {
                let tpm = common::swtpm::SwTpm::start();
                // The checks below try wrong PINs on purpose, many times: a TPM that
                // tolerates them (the container refuses such a TPM unless told, below).
                tpm.set_lockout(1_000_000, 1, 1);
                tpm
            }),
            dir: tempfile::tempdir().unwrap(),
            service_key,
            signer,
            keys,
            binding: Binding::new("t", "u", "d").unwrap(),
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("container")
    }

    fn tcti(&self) -> Option<String> {
        #[cfg(feature = "tpm")]
        if let Some(tpm) = &self.tpm {
            return Some(tpm.tcti());
        }
        None
    }

    fn container<S: ContainerStore>(&self, store: S) -> Container<S> {
        let trust = ServiceTrust {
            key_document_key: *self.signer.verifying_key(),
        };
        Container::with_clock(store, policy(self.tcti()), Some(trust), self.clock.clone())
    }

    fn clean(&self) -> Container<FileStore> {
        self.container(FileStore::new(self.path()))
    }

    /// The secret in the container's current envelope, opened with the service key.
    fn secret(&self) -> pin_recovery::RecoverySecret {
        let reg = self
            .clean()
            .pending_registration()
            .unwrap()
            .expect("registration is never confirmed here");
        self.service_key
            .open(reg.envelope(), &self.binding)
            .unwrap()
    }

    /// Which PIN opens the container now: exactly one of `candidates` must.
    fn which_pin(&self, candidates: &[&str]) -> (String, VerifyingKey) {
        let c = self.clean();
        let credential = c.status().unwrap().credential_public_key;
        let opens: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|p| match c.sign_in(&Pin::new(*p), b"probe", None) {
                Ok(_) => true,
                Err(ClientError::WrongPin { .. }) => false,
                Err(e) => panic!("PIN {p}: neither opens nor is wrong: {e:?}"),
            })
            .collect();
        assert_eq!(
            opens.len(),
            1,
            "exactly one of {candidates:?} must open the container, got {opens:?}"
        );
        (opens[0].to_owned(), credential)
    }
}

/// The test policy without PIN history, so that PINs can alternate; with the TPM at
/// `tcti`, if given.
fn policy(tcti: Option<String>) -> pin_recovery::client::ContainerPolicy {
    let mut p = test_policy(true);
    p.pin.history = 0;
    #[cfg(feature = "tpm")]
    if let Some(tcti) = tcti {
        p.protector =
            pin_recovery::client::PinProtectorChoice::Tpm(pin_recovery::client::TpmConfig {
                tcti,
                max_tries_allowed: u32::MAX,
                min_recovery_interval: 1,
                ..Default::default()
            });
    }
    #[cfg(not(feature = "tpm"))]
    let _ = tcti;
    p
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The step returns an I/O error; the operation cleans up and reports it.
    Error,
    /// The process "dies" at the step: the operation is abandoned without cleanup.
    Crash,
}

/// Keeps the injected crashes out of the test output; real panics still print.
fn quiet_injected_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"injected crash") {
                default(info);
            }
        }));
    });
}

/// A store whose `n`th step (counting from 0) fails, and which counts steps.
fn faulty(path: &Path, fail_at: Option<usize>, fault: Fault, count: Arc<AtomicUsize>) -> FileStore {
    FileStore::with_faults(
        path,
        Arc::new(move |_step: StoreStep| {
            let i = count.fetch_add(1, Ordering::SeqCst);
            if Some(i) == fail_at {
                match fault {
                    Fault::Error => return Err(std::io::Error::other("injected fault")),
                    Fault::Crash => std::panic::panic_any("injected crash"),
                }
            }
            Ok(())
        }),
    )
}

/// Runs `op` once cleanly to count its steps, then once per step with that step failing,
/// restoring `baseline` each time, and checks each outcome with `verify`.
fn every_step_fails<T>(
    rig: &Rig,
    baseline: Option<Vec<u8>>,
    op: impl Fn(&Container<FileStore>) -> Result<T, ClientError>,
    verify: impl Fn(&Rig),
) -> usize {
    let restore = || match &baseline {
        Some(b) => std::fs::write(rig.path(), b).unwrap(),
        None => {
            let _ = std::fs::remove_file(rig.path());
        }
    };
    quiet_injected_crashes();
    restore();
    let count = Arc::new(AtomicUsize::new(0));
    op(&rig.container(faulty(&rig.path(), None, Fault::Error, count.clone())))
        .expect("operation succeeds without faults");
    let steps = count.load(Ordering::SeqCst);
    verify(rig);
    for fault in [Fault::Error, Fault::Crash] {
        for k in 0..steps {
            restore();
            let count = Arc::new(AtomicUsize::new(0));
            let c = rig.container(faulty(&rig.path(), Some(k), fault, count));
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(&c).map(|_| ())));
            match (fault, outcome) {
                (Fault::Error, Ok(Err(ClientError::Store(_)))) => {}
                (Fault::Error, Ok(Ok(()))) => {
                    panic!("step {k} failed but the operation reported success")
                }
                (Fault::Error, other) => panic!("step {k}: unexpected {other:?}"),
                (Fault::Crash, Err(payload))
                    if payload.downcast_ref::<&str>() == Some(&"injected crash") => {}
                // Any other panic is a bug, not the crash we injected.
                (Fault::Crash, Err(payload)) => std::panic::resume_unwind(payload),
                (Fault::Crash, Ok(r)) => panic!("step {k}: crash not reached ({r:?})"),
            }
            verify(rig);
        }
    }
    steps
}

fn enrolled(rig: &Rig) -> Vec<u8> {
    let _ = std::fs::remove_file(rig.path());
    rig.clean()
        .enrol(&rig.binding, &Pin::new(OLD), Some(&rig.keys))
        .unwrap();
    std::fs::read(rig.path()).unwrap()
}

fn property_5_enrolment_is_all_or_nothing(kind: Kind) {
    let rig = Rig::new(kind);
    let steps = every_step_fails(
        &rig,
        None,
        |c| c.enrol(&rig.binding, &Pin::new(OLD), Some(&rig.keys)),
        |rig| match rig.clean().status() {
            Err(ClientError::NotEnrolled) => {}
            Ok(_) => {
                rig.which_pin(&[OLD]);
            }
            Err(e) => panic!("half-enrolled container: {e:?}"),
        },
    );
    println!("enrolment: {steps} storage steps, each failed and crashed in turn");
}

fn property_5_pin_change_leaves_old_or_new(kind: Kind) {
    let rig = Rig::new(kind);
    let base = enrolled(&rig);
    let credential = rig.clean().status().unwrap().credential_public_key;
    let steps = every_step_fails(
        &rig,
        Some(base),
        |c| c.change_pin(&Pin::new(OLD), &Pin::new(NEW)),
        |rig| {
            let (_, cred) = rig.which_pin(&[OLD, NEW]);
            assert_eq!(cred, credential);
        },
    );
    println!("PIN change: {steps} storage steps, each failed and crashed in turn");
}

fn property_5_non_destructive_reset_leaves_old_or_new(kind: Kind) {
    let rig = Rig::new(kind);
    let base = enrolled(&rig);
    let credential = rig.clean().status().unwrap().credential_public_key;
    let steps = every_step_fails(
        &rig,
        Some(base),
        |c| c.reset_with_secret(&rig.secret(), &Pin::new(NEW), &rig.keys),
        |rig| {
            let (pin, cred) = rig.which_pin(&[OLD, NEW]);
            assert_eq!(cred, credential, "credential key survives");
            // Whichever state it is, its own recovery secret still opens it: no lock-out.
            let c = rig.clean();
            let secret = rig.secret();
            let next = if pin == OLD { NEW } else { OLD };
            c.reset_with_secret(&secret, &Pin::new(next), &rig.keys)
                .unwrap();
        },
    );
    println!("non-destructive reset: {steps} storage steps, each failed and crashed in turn");
}

fn property_5_destructive_reset_leaves_old_or_new(kind: Kind) {
    let rig = Rig::new(kind);
    let base = enrolled(&rig);
    let old_credential = rig.clean().status().unwrap().credential_public_key;
    let steps = every_step_fails(
        &rig,
        Some(base),
        |c| c.destructive_reset(&rig.binding, &Pin::new(NEW), Some(&rig.keys)),
        |rig| {
            let (pin, cred) = rig.which_pin(&[OLD, NEW]);
            assert_eq!(
                pin == OLD,
                cred == old_credential,
                "old PIN goes with the old credential"
            );
        },
    );
    println!("destructive reset: {steps} storage steps, each failed and crashed in turn");
}

fn property_5_sign_in_reseal_leaves_old_or_new(kind: Kind) {
    let rig = Rig::new(kind);
    let base = enrolled(&rig);
    let new_key = ServicePrivateKey::generate_p256().unwrap();
    let rotated = single_key_document(&rig.signer, &new_key, 2);
    let steps = every_step_fails(
        &rig,
        Some(base),
        |c| c.sign_in(&Pin::new(OLD), b"c", Some(&rotated)),
        |rig| {
            rig.which_pin(&[OLD]);
            let env = rig
                .clean()
                .pending_registration()
                .unwrap()
                .unwrap()
                .envelope()
                .clone();
            let key = if env.key_id() == new_key.key_id() {
                &new_key
            } else {
                &rig.service_key
            };
            assert!(
                key.open(&env, &rig.binding).is_ok(),
                "the envelope in either state opens"
            );
        },
    );
    println!("sign-in with reseal: {steps} storage steps, each failed and crashed in turn");
}

/// Temporary files in the container's directory, with their sizes.
fn temp_files(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

fn finding_11_a_fault_in_the_write_step_really_tears_the_file(kind: Kind) {
    quiet_injected_crashes();
    let rig = Rig::new(kind);
    let base = enrolled(&rig);
    for fault in [Fault::Error, Fault::Crash] {
        std::fs::write(rig.path(), &base).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (dir, log) = (rig.dir.path().to_owned(), seen.clone());
        let store = FileStore::with_faults(
            rig.path(),
            Arc::new(move |step: StoreStep| {
                if step == StoreStep::Write {
                    log.lock().unwrap().extend(temp_files(&dir));
                    match fault {
                        Fault::Error => return Err(std::io::Error::other("injected fault")),
                        Fault::Crash => std::panic::panic_any("injected crash"),
                    }
                }
                Ok(())
            }),
        );
        let c = rig.container(store);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.change_pin(&Pin::new(OLD), &Pin::new(NEW))
        }));
        match (fault, outcome) {
            (Fault::Error, Ok(Err(ClientError::Store(e)))) => assert_eq!(e.step, StoreStep::Write),
            (Fault::Crash, Err(p)) if p.downcast_ref::<&str>() == Some(&"injected crash") => {}
            (_, other) => panic!("{fault:?}: unexpected {:?}", other.map(|r| r.err())),
        }
        // The first write (the failed-attempt counter) is as long as the stored state;
        // at the fault, exactly its first half was in a temporary file.
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            1,
            "{fault:?}: one temporary file at the fault: {seen:?}"
        );
        assert_eq!(seen[0].1, base.len() as u64 / 2, "{fault:?}: a torn file");
        assert_eq!(
            std::fs::read(rig.path()).unwrap(),
            base,
            "the state is untouched"
        );
        rig.which_pin(&[OLD]);
        assert!(
            temp_files(rig.dir.path()).is_empty(),
            "the torn file is gone"
        );
    }
}

/// The child half of the kill test: resets in a loop until killed.
fn crash_child_reset_loop() {
    let Ok(dir) = std::env::var("PIN_RECOVERY_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let service_key = ServicePrivateKey::from_pkcs8_pem(
        &std::fs::read_to_string(dir.join("service.pem")).unwrap(),
    )
    .unwrap();
    let keys = SignedKeyDocument::new(std::fs::read_to_string(dir.join("keys.jws")).unwrap());
    let signing_key =
        VerifyingKey::from_sec1(&std::fs::read(dir.join("signer.pub")).unwrap()).unwrap();
    let binding = Binding::new("t", "u", "d").unwrap();
    let c = Container::with_clock(
        FileStore::new(dir.join("container")),
        policy(
            std::env::var("PIN_RECOVERY_CRASH_TCTI")
                .ok()
                .filter(|t| !t.is_empty()),
        ),
        Some(ServiceTrust {
            key_document_key: signing_key,
        }),
        Arc::new(ManualClock::new(T0)),
    );
    for i in 0u64.. {
        let env = c
            .pending_registration()
            .unwrap()
            .unwrap()
            .envelope()
            .clone();
        let secret = service_key.open(&env, &binding).unwrap();
        let pin = if i % 2 == 0 { NEW } else { OLD };
        c.reset_with_secret(&secret, &Pin::new(pin), &keys).unwrap();
    }
}

fn property_5_killed_mid_reset(kind: Kind) {
    let rig = Rig::new(kind);
    enrolled(&rig);
    let dir = rig.dir.path();
    std::fs::write(
        dir.join("service.pem"),
        rig.service_key.to_pkcs8_pem().unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(dir.join("keys.jws"), rig.keys.as_str()).unwrap();
    std::fs::write(dir.join("signer.pub"), rig.signer.verifying_key().to_sec1()).unwrap();
    let credential = rig.clean().status().unwrap().credential_public_key;
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let kills = 12;
    let mut seen = std::collections::HashSet::new();
    for round in 0..kills {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "crash_child_reset_loop", "--test-threads=1"])
            .env("PIN_RECOVERY_CRASH_DIR", dir)
            .env("PIN_RECOVERY_CRASH_TCTI", rig.tcti().unwrap_or_default())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait_ms = 50 + (seed >> 33) % 350;
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no cleanup.
        child.wait().unwrap();
        // A TPM without a resource manager keeps what a killed client loaded (it has a
        // handful of slots): flush it, as the kernel's resource manager would.
        #[cfg(feature = "tpm")]
        if let Some(tpm) = &rig.tpm {
            for kind in ["-t", "-l", "-s"] {
                let (ok, out) = tpm.tool("tpm2_flushcontext", &[kind]);
                assert!(ok, "tpm2_flushcontext {kind}: {out}");
            }
        }
        let (_, cred) = rig.which_pin(&[OLD, NEW]);
        assert_eq!(cred, credential, "round {round}: credential key survives");
        // The surviving state's own secret still resets it.
        let reg = rig.clean().pending_registration().unwrap().unwrap();
        assert!(rig.service_key.open(reg.envelope(), &rig.binding).is_ok());
        seen.insert(reg.envelope().envelope_id());
    }
    // Some kills land before the child's first reset (a loaded machine starts it
    // slowly); enough must land after resets for the kills to mean something.
    assert!(
        seen.len() >= kills / 3,
        "the child must have made progress between kills ({} states)",
        seen.len()
    );
    // Temporary files a killed writer left are removed by the next writer.
    rig.clean()
        .change_pin(
            &Pin::new(rig.which_pin(&[OLD, NEW]).0.as_str()),
            &Pin::new("333333"),
        )
        .unwrap();
    assert_eq!(
        temp_files(dir),
        vec![],
        "no temporary file outlives the next write"
    );
    println!("killed the resetting child {kills} times in {} distinct states; the container opened every time", seen.len());
}

fn main() {
    // tpm2-tss logs every TPM error code to stderr; the wrong PINs here are deliberate.
    std::env::set_var("TSS2_LOG", "all+NONE");
    let args = libtest_mimic::Arguments::from_args();
    if std::env::var("PIN_RECOVERY_CRASH_DIR").is_ok() {
        // The child of the kill test: only its loop.
        let child = libtest_mimic::Trial::test("crash_child_reset_loop", || {
            crash_child_reset_loop();
            Ok(())
        });
        libtest_mimic::run(&args, vec![child]).exit();
    }
    type Case = fn(Kind);
    let cases: [(&str, Case); 7] = [
        (
            "property_5_enrolment_is_all_or_nothing",
            property_5_enrolment_is_all_or_nothing,
        ),
        (
            "property_5_pin_change_leaves_old_or_new",
            property_5_pin_change_leaves_old_or_new,
        ),
        (
            "property_5_non_destructive_reset_leaves_old_or_new",
            property_5_non_destructive_reset_leaves_old_or_new,
        ),
        (
            "property_5_destructive_reset_leaves_old_or_new",
            property_5_destructive_reset_leaves_old_or_new,
        ),
        (
            "property_5_sign_in_reseal_leaves_old_or_new",
            property_5_sign_in_reseal_leaves_old_or_new,
        ),
        (
            "finding_11_a_fault_in_the_write_step_really_tears_the_file",
            finding_11_a_fault_in_the_write_step_really_tears_the_file,
        ),
        ("property_5_killed_mid_reset", property_5_killed_mid_reset),
    ];
    #[allow(unused_mut)]
    let mut kinds = vec![(Kind::Argon2id, "argon2id", None::<String>)];
    #[cfg(feature = "tpm")]
    {
        let not_run = common::swtpm::not_run().or_else(common::swtpm::tools_not_run);
        if let Some(reason) = &not_run {
            println!("tpm: {reason}");
        }
        kinds.push((Kind::Tpm, "tpm", not_run));
    }
    let mut trials = Vec::new();
    for (kind, label, not_run) in kinds {
        for (name, case) in cases {
            trials.push(
                libtest_mimic::Trial::test(format!("{label}::{name}"), move || {
                    case(kind);
                    Ok(())
                })
                .with_ignored_flag(not_run.is_some()),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

//! Audit findings 8 and 9: a device never strands its user. A reset that fails after the
//! service released the secret can be retried with that secret (no second MFA, no second
//! release); and faults across the device/service boundary (the registration refused,
//! its answer lost, the device crashing at every storage step of a recovery cycle) leave
//! a device whose user can still recover with MFA, by the flow the docs give: send any
//! pending registration, then recover.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::world::{test_policy, AUDIENCE, T0};
use pin_recovery::client::{
    ClientError, Container, ContainerPolicy, FileStore, Pin, ServiceTrust, StoreStep,
};
use pin_recovery::service::{
    blocking, IssuerTrust, KeyEncryptionKey, MemoryStore, RateLimit, RatePolicy, RequestContext,
    ServiceError,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{
    Binding, Clock, KeyDocumentSigner, ManualClock, ServicePrivateKey, SignedKeyDocument,
    SigningKey,
};

/// The operation a failing swap names.
const SWAP: &str = "swap the registered envelope";

struct Rig {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    service: blocking::RecoveryService,
    db: Arc<MemoryStore>,
    idp: TestIdentityProvider,
    trust: ServiceTrust,
    keys: SignedKeyDocument,
    binding: Binding,
    /// PINs used in turn, so that each reset sets a new one.
    pins: AtomicUsize,
}

const PINS: [&str; 2] = ["111111", "222222"];

fn policy() -> ContainerPolicy {
    let mut p = test_policy(true);
    p.pin.history = 0;
    p
}

fn ctx() -> RequestContext {
    RequestContext::default()
}

impl Rig {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let db = Arc::new(MemoryStore::new());
        let idp = TestIdentityProvider::new("https://idp.test").unwrap();
        let generous = RateLimit {
            max: 10_000,
            window: 60,
        };
        let service = common::world::start_service(
            db.clone(),
            KeyEncryptionKey::generate().unwrap(),
            RatePolicy {
                per_user: generous,
                per_device: generous,
            },
            IssuerTrust::new().trust("t", idp.trusted_issuer().unwrap()),
            KeyDocumentSigner::new(SigningKey::generate().unwrap()),
            clock.clone(),
        );
        service
            .add_current_key("t", ServicePrivateKey::generate_p256().unwrap())
            .unwrap();
        let binding = Binding::new("t", "u", "d").unwrap();
        let rig = Rig {
            dir: tempfile::tempdir().unwrap(),
            clock,
            keys: service.key_document("t").unwrap(),
            trust: ServiceTrust {
                key_document_key: *service.key_document_key(),
            },
            service,
            db,
            idp,
            binding,
            pins: AtomicUsize::new(0),
        };
        let c = rig.clean();
        let enrolment = c
            .enrol(&rig.binding, &Pin::new(PINS[0]), Some(&rig.keys))
            .unwrap();
        rig.service
            .register_device(&rig.binding, enrolment.device_public_key, &ctx())
            .unwrap();
        let reg = c.pending_registration().unwrap().unwrap();
        rig.service.register_envelope(&reg, &ctx()).unwrap();
        c.confirm_registration(reg.envelope().envelope_id())
            .unwrap();
        rig
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("container")
    }

    fn container(&self, store: FileStore) -> Container<FileStore> {
        Container::with_clock(
            store,
            policy(),
            Some(self.trust.clone()),
            self.clock.clone(),
        )
    }

    fn clean(&self) -> Container<FileStore> {
        self.container(FileStore::new(self.path()))
    }

    fn next_pin(&self) -> Pin {
        Pin::new(PINS[(self.pins.fetch_add(1, Ordering::SeqCst) + 1) % 2])
    }

    fn releases(&self) -> usize {
        self.db
            .events()
            .iter()
            .filter(|e| e.outcome == pin_recovery::service::AuditOutcome::Released)
            .count()
    }

    /// One release for `c`'s envelope, with fresh MFA; the pending recovery and answer.
    fn release(
        &self,
        c: &Container<FileStore>,
    ) -> Result<
        (
            pin_recovery::client::PendingRecovery,
            pin_recovery::RecoveryResponse,
        ),
        String,
    > {
        let mut p = c.begin_recovery().map_err(|e| format!("begin: {e}"))?;
        let a = self
            .idp
            .mfa_assertion(AUDIENCE, &self.binding, p.mfa_nonce(), self.clock.now())
            .unwrap();
        let req = p.request(&a).map_err(|e| format!("request: {e}"))?;
        let resp = self
            .service
            .handle(&req, &ctx())
            .map_err(|e| format!("service: {e:?}"))?;
        Ok((p, resp))
    }

    /// What the docs tell a device whose PIN is forgotten to do: send the pending
    /// registration if there is one (confirming it if the service takes it), then recover
    /// with MFA, then register the new envelope. Returns the new PIN.
    fn user_recovers(&self) -> Result<Pin, String> {
        let c = self.clean();
        if let Some(reg) = c.pending_registration().unwrap() {
            if self.service.register_envelope(&reg, &ctx()).is_ok() {
                c.confirm_registration(reg.envelope().envelope_id())
                    .map_err(|e| format!("confirm: {e}"))?;
            }
        }
        let (p, resp) = self.release(&c)?;
        let pin = self.next_pin();
        let reset = c
            .complete_recovery(p, &resp, &pin, &self.keys)
            .map_err(|e| format!("reset: {e}"))?;
        let reg = c.pending_registration().unwrap().unwrap();
        assert_eq!(reg.envelope(), &reset.envelope);
        match self.service.register_envelope(&reg, &ctx()) {
            Ok(()) => c
                .confirm_registration(reset.envelope.envelope_id())
                .map_err(|e| format!("confirm: {e}"))?,
            // The registry may still be refusing writes: the old envelope stays usable.
            Err(ServiceError::Unavailable(_)) => {}
            Err(e) => return Err(format!("register: {e:?}")),
        }
        Ok(pin)
    }
}

/// How the registration step of a recovery cycle goes wrong.
#[derive(Clone, Copy, Debug)]
enum Registration {
    /// It succeeds and is confirmed.
    Confirmed,
    /// The service refuses it (its registry is failing).
    Refused,
    /// The service takes it, but its answer never reaches the device.
    AnswerLost,
}

/// A store whose `crash_at`th step panics, as if the process died there.
fn crashing(path: &std::path::Path, crash_at: Option<usize>, count: Arc<AtomicUsize>) -> FileStore {
    FileStore::with_faults(
        path,
        Arc::new(move |_: StoreStep| {
            if Some(count.fetch_add(1, Ordering::SeqCst)) == crash_at {
                std::panic::panic_any(InjectedCrash);
            }
            Ok(())
        }),
    )
}

struct InjectedCrash;

/// A full recovery: release, reset, registration (going as `mode` says), confirmation.
fn cycle(rig: &Rig, c: &Container<FileStore>, mode: Registration) {
    let (p, resp) = rig.release(c).unwrap();
    let pin = rig.next_pin();
    c.complete_recovery(p, &resp, &pin, &rig.keys).unwrap();
    let reg = c.pending_registration().unwrap().unwrap();
    match mode {
        Registration::Confirmed => {
            rig.service.register_envelope(&reg, &ctx()).unwrap();
            c.confirm_registration(reg.envelope().envelope_id())
                .unwrap();
        }
        Registration::Refused => {
            rig.db.fail_write(Some(SWAP));
            assert!(matches!(
                rig.service.register_envelope(&reg, &ctx()),
                Err(ServiceError::Unavailable(_))
            ));
            rig.db.fail_write(None);
        }
        Registration::AnswerLost => {
            rig.service.register_envelope(&reg, &ctx()).unwrap();
        }
    }
}

#[test]
fn finding_9_a_crash_at_every_step_refused_and_lost_registrations_never_strand_the_user() {
    let rig = Rig::new();
    let credential = rig.clean().status().unwrap().credential_public_key;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<InjectedCrash>().is_none() {
            default_hook(info);
        }
    }));
    let mut runs = 0;
    for mode in [
        Registration::Confirmed,
        Registration::Refused,
        Registration::AnswerLost,
    ] {
        // Count the cycle's storage steps once, then crash at each in turn. Every run
        // starts from wherever the last one left the device and the service: the faults
        // accumulate, as they would on a real device.
        let count = Arc::new(AtomicUsize::new(0));
        cycle(
            &rig,
            &rig.container(crashing(&rig.path(), None, count.clone())),
            mode,
        );
        let steps = count.load(Ordering::SeqCst);
        rig.user_recovers()
            .unwrap_or_else(|e| panic!("{mode:?}, no crash: the user is stranded: {e}"));
        for k in 0..steps {
            let c = rig.container(crashing(
                &rig.path(),
                Some(k),
                Arc::new(AtomicUsize::new(0)),
            ));
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cycle(&rig, &c, mode)));
            match outcome {
                Err(payload) if payload.downcast_ref::<InjectedCrash>().is_some() => {}
                Err(payload) => std::panic::resume_unwind(payload),
                Ok(()) => panic!("{mode:?}: step {k} of {steps} was never reached"),
            }
            let pin = rig.user_recovers().unwrap_or_else(|e| {
                panic!("{mode:?}, crash at step {k} of {steps}: the user is stranded: {e}")
            });
            // The container opens with the new PIN and the same credential key.
            let s = rig.clean().sign_in(&pin, b"c", None).unwrap();
            assert!(credential.verify(b"c", &s.signature));
            runs += 1;
        }
    }
    let _ = std::panic::take_hook();
    println!("{runs} crashes injected across recovery cycles; the user recovered after every one");
    assert!(runs >= 30, "every step of every cycle was crashed ({runs})");
}

#[test]
fn finding_9_the_old_envelope_keeps_working_until_the_new_one_is_confirmed() {
    let rig = Rig::new();
    let c = rig.clean();
    let (p, resp) = rig.release(&c).unwrap();
    let old = p.envelope().clone();
    c.complete_recovery(p, &resp, &rig.next_pin(), &rig.keys)
        .unwrap();
    // The registration is refused: the device still recovers with the old envelope.
    rig.db.fail_write(Some(SWAP));
    let reg = c.pending_registration().unwrap().unwrap();
    assert!(rig.service.register_envelope(&reg, &ctx()).is_err());
    let (p, resp) = rig.release(&c).unwrap();
    assert_eq!(
        p.envelope(),
        &old,
        "recovering with the envelope the service holds"
    );
    c.complete_recovery(p, &resp, &rig.next_pin(), &rig.keys)
        .unwrap();
    rig.db.fail_write(None);
    // The registration goes through now; the answer is lost. Recovering without sending
    // the pending registration first costs an MFA but nothing else (no release, nothing
    // spent); sending it, as the docs say, recovers.
    let reg = c.pending_registration().unwrap().unwrap();
    rig.service.register_envelope(&reg, &ctx()).unwrap();
    let releases = rig.releases();
    assert!(matches!(
        rig.release(&c),
        Err(e) if e.contains("StaleEnvelope")
    ));
    assert_eq!(rig.releases(), releases);
    rig.user_recovers().unwrap();
}

#[test]
fn finding_8_a_reset_failing_after_the_release_is_retried_without_mfa_or_a_release() {
    let rig = Rig::new();
    let c = rig.clean();
    // The policy is checked before the request is sent.
    assert!(matches!(
        c.check_new_pin(&Pin::new("12")),
        Err(ClientError::PinPolicy(_))
    ));
    let releases = rig.releases();
    let (p, resp) = rig.release(&c).unwrap();
    assert_eq!(rig.releases(), releases + 1);

    // 1. The key document has expired by the time the answer arrives.
    rig.clock.advance(86_400 + 1);
    let incomplete = c
        .complete_recovery(p, &resp, &Pin::new(PINS[1]), &rig.keys)
        .unwrap_err();
    assert!(matches!(incomplete.error(), ClientError::KeyDocument(_)));
    let secret = incomplete
        .into_secret()
        .expect("the released secret comes back");
    // 2. A fresh document, but the storage fails on the first write.
    let fresh = rig.service.key_document("t").unwrap();
    let fails = Arc::new(AtomicBool::new(true));
    let flaky = {
        let fails = fails.clone();
        FileStore::with_faults(
            rig.path(),
            Arc::new(move |step| {
                if step == StoreStep::Rename && fails.swap(false, Ordering::SeqCst) {
                    return Err(std::io::Error::other("disk full"));
                }
                Ok(())
            }),
        )
    };
    let c2 = rig.container(flaky);
    assert!(matches!(
        c2.reset_with_secret(&secret, &Pin::new(PINS[1]), &fresh),
        Err(ClientError::Store(_))
    ));
    // 3. Then it works, with the same secret: no second MFA, no second release.
    let reset = c2
        .reset_with_secret(&secret, &Pin::new(PINS[1]), &fresh)
        .unwrap();
    assert_eq!(rig.releases(), releases + 1);
    drop(secret);
    let reg = c.pending_registration().unwrap().unwrap();
    rig.service.register_envelope(&reg, &ctx()).unwrap();
    c.confirm_registration(reset.envelope.envelope_id())
        .unwrap();
    c.sign_in(&Pin::new(PINS[1]), b"c", None).unwrap();
}

#[test]
fn finding_8_a_reused_pin_after_the_release_is_retried_with_another() {
    // History on: a reused PIN can only be found once the container is unlocked.
    let w = common::world::World::new();
    let (req, pending) = w.request();
    let resp = w
        .service
        .handle(&req, &common::world::World::ctx())
        .unwrap();
    let releases = w.releases();
    let incomplete = w
        .container
        .complete_recovery(
            pending,
            &resp,
            &common::world::pin(common::world::PIN),
            &w.keys,
        )
        .unwrap_err();
    assert_eq!(incomplete.error(), &ClientError::PinReused);
    let secret = incomplete.into_secret().unwrap();
    w.container
        .reset_with_secret(&secret, &common::world::pin("730145"), &w.keys)
        .unwrap();
    assert_eq!(w.releases(), releases);
}

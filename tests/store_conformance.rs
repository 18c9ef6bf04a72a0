//! One conformance suite for every store backend: each case runs against the in-memory
//! store, SQLite and PostgreSQL, and checks the seam's contract (what each method does,
//! that a refused or failed commit changes nothing, that concurrent commits of one token
//! and concurrent swaps of one envelope succeed exactly once). A backend that cannot run
//! here is reported as ignored with the reason, never as passed.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use common::backends::{self, Backend, Scratch};
use libtest_mimic::{Arguments, Trial};
use pin_recovery::service::{
    AuditAction, AuditEvent, AuditOutcome, EnvelopeSwap, KeyState, NewTenantKey, RateKey,
    RateLimit, RatePolicy, RateScope, ReleaseCommit, ReleaseOutcome, ServiceStore, WrappedKey,
};
use pin_recovery::{Binding, Envelope, KeyId, RecoverySecret, ServicePrivateKey, SigningKey};

type Case = fn(Scratch) -> Pin<Box<dyn Future<Output = Scratch>>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |s| Box::pin($name(s)))),*]
    };
}

const CASES: &[(&str, Case)] = cases![
    devices_and_reregistration,
    swaps_are_compare_and_swap_with_their_event,
    a_release_commits_everything_or_nothing,
    the_release_check_answers_as_the_commit_would_and_writes_nothing,
    rate_windows_and_retry_after,
    keyrings_versions_states_and_serial,
    key_encryption_key_fingerprint_is_recorded_once,
    purge_keeps_a_floor_under_forgotten_tokens,
    audit_log_pages_in_order,
    concurrent_commits_of_one_token_release_once,
    concurrent_swaps_of_one_envelope_succeed_once,
    a_commit_failing_midway_changes_nothing,
];

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for backend in backends::ALL {
        let not_run = backend.not_run();
        if let Some(reason) = &not_run {
            println!("{}: {reason}", backend.name());
        }
        for (name, case) in CASES {
            let case = *case;
            trials.push(
                Trial::test(format!("{}::{name}", backend.name()), move || {
                    backends::run(backend, case);
                    Ok(())
                })
                .with_ignored_flag(not_run.is_some()),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

const T: u64 = 1_790_000_000;

fn event(reason: &str) -> AuditEvent {
    AuditEvent {
        time: T,
        action: AuditAction::Recovery,
        tenant: Some("t".into()),
        user: Some("u".into()),
        device: Some("d".into()),
        client_ip: "192.0.2.1".into(),
        client_type: "conformance".into(),
        key_id: Some(KeyId::from_bytes([3; 16])),
        envelope_id: None,
        outcome: AuditOutcome::Released,
        reason: reason.into(),
    }
}

fn envelope(key: &ServicePrivateKey) -> Envelope {
    key.public_key()
        .seal(
            &RecoverySecret::generate().unwrap(),
            &Binding::new("t", "u", "d").unwrap(),
        )
        .unwrap()
}

fn wrapped() -> WrappedKey {
    WrappedKey {
        nonce: [1; 12],
        ciphertext: vec![2; 64],
    }
}

async fn add_key(store: &dyn ServiceStore, tenant: &str, key: &ServicePrivateKey) -> u32 {
    store
        .add_current_key(&NewTenantKey {
            tenant,
            key_id: key.key_id(),
            public_spki: key.public_key().to_spki_der(),
            wrapped: &wrapped(),
        })
        .await
        .unwrap()
}

fn rates(max: u32) -> RatePolicy {
    RatePolicy {
        per_user: RateLimit { max, window: 100 },
        per_device: RateLimit { max, window: 100 },
    }
}

fn rate_keys() -> Vec<RateKey> {
    vec![
        RateKey {
            scope: RateScope::User,
            tenant: "t".into(),
            id: "u".into(),
        },
        RateKey {
            scope: RateScope::Device,
            tenant: "t".into(),
            id: "d".into(),
        },
    ]
}

/// A device `d` of user `u` with `env` registered, and the key of `env`.
async fn registered(store: &dyn ServiceStore) -> (ServicePrivateKey, Envelope) {
    let key = ServicePrivateKey::generate_p256().unwrap();
    add_key(store, "t", &key).await;
    let device = SigningKey::generate().unwrap();
    store
        .put_device("t", "d", "u", device.verifying_key())
        .await
        .unwrap();
    let env = envelope(&key);
    let ev = event("registered");
    assert!(store
        .swap_envelope(&EnvelopeSwap {
            tenant: "t",
            device: "d",
            expected: None,
            new: Some(&env),
            event: &ev,
        })
        .await
        .unwrap());
    (key, env)
}

fn commit<'a>(
    env: &Envelope,
    token: &'a str,
    keys: &'a [RateKey],
    policy: &'a RatePolicy,
    now: u64,
    ev: &'a AuditEvent,
) -> ReleaseCommit<'a> {
    ReleaseCommit {
        tenant: "t",
        device: "d",
        envelope_id: env.envelope_id(),
        key_id: env.key_id(),
        issuer: "idp",
        token_id: token,
        token_expires_at: now + 360,
        rate_keys: keys,
        policy,
        now,
        event: ev,
    }
}

async fn event_count(store: &dyn ServiceStore) -> usize {
    store.audit_events(0, 10_000).await.unwrap().len()
}

async fn devices_and_reregistration(s: Scratch) -> Scratch {
    let store = s.open().await;
    assert_eq!(store.device("t", "d").await.unwrap(), None);
    let k1 = SigningKey::generate().unwrap();
    store
        .put_device("t", "d", "u", k1.verifying_key())
        .await
        .unwrap();
    let r = store.device("t", "d").await.unwrap().unwrap();
    assert_eq!(
        (r.user.as_str(), r.device_key, r.envelope),
        ("u", *k1.verifying_key(), None)
    );
    // Give it an envelope; the same registration again keeps it, a new key clears it.
    let key = ServicePrivateKey::generate_p256().unwrap();
    let env = envelope(&key);
    let ev = event("registered");
    let swap = EnvelopeSwap {
        tenant: "t",
        device: "d",
        expected: None,
        new: Some(&env),
        event: &ev,
    };
    assert!(store.swap_envelope(&swap).await.unwrap());
    store
        .put_device("t", "d", "u", k1.verifying_key())
        .await
        .unwrap();
    assert_eq!(
        store.device("t", "d").await.unwrap().unwrap().envelope,
        Some(env)
    );
    let k2 = SigningKey::generate().unwrap();
    store
        .put_device("t", "d", "u", k2.verifying_key())
        .await
        .unwrap();
    let r = store.device("t", "d").await.unwrap().unwrap();
    assert_eq!((r.device_key, r.envelope), (*k2.verifying_key(), None));
    assert_eq!(store.device("t", "other").await.unwrap(), None);
    assert_eq!(
        store.device("u", "d").await.unwrap(),
        None,
        "devices are per tenant"
    );
    s
}

async fn swaps_are_compare_and_swap_with_their_event(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (key, first) = registered(&*store).await;
    let before = event_count(&*store).await;
    let second = envelope(&key);
    let ev = event("swap");
    // The wrong expectation: nothing changes, nothing is recorded.
    for expected in [None, Some(second.envelope_id())] {
        let swap = EnvelopeSwap {
            tenant: "t",
            device: "d",
            expected,
            new: Some(&second),
            event: &ev,
        };
        assert!(!store.swap_envelope(&swap).await.unwrap());
    }
    let unknown = EnvelopeSwap {
        tenant: "t",
        device: "x",
        expected: None,
        new: Some(&second),
        event: &ev,
    };
    assert!(!store.swap_envelope(&unknown).await.unwrap());
    assert_eq!(event_count(&*store).await, before);
    assert_eq!(
        store.device("t", "d").await.unwrap().unwrap().envelope,
        Some(first.clone())
    );
    // The right one: swapped and recorded together.
    let swap = EnvelopeSwap {
        tenant: "t",
        device: "d",
        expected: Some(first.envelope_id()),
        new: Some(&second),
        event: &ev,
    };
    assert!(store.swap_envelope(&swap).await.unwrap());
    assert_eq!(
        store.device("t", "d").await.unwrap().unwrap().envelope,
        Some(second.clone())
    );
    let log = store.audit_events(0, 100).await.unwrap();
    assert_eq!(
        (log.len(), log.last().unwrap().1.reason.as_str()),
        (before + 1, "swap")
    );
    // Back to nothing (undoing a first registration).
    let clear = EnvelopeSwap {
        tenant: "t",
        device: "d",
        expected: Some(second.envelope_id()),
        new: None,
        event: &ev,
    };
    assert!(store.swap_envelope(&clear).await.unwrap());
    assert_eq!(
        store.device("t", "d").await.unwrap().unwrap().envelope,
        None
    );
    s
}

async fn a_release_commits_everything_or_nothing(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (key, env) = registered(&*store).await;
    let keys = rate_keys();
    let policy = rates(5);
    let ev = event("released");
    let before = event_count(&*store).await;
    assert_eq!(
        store
            .commit_release(&commit(&env, "tok-1", &keys, &policy, T, &ev))
            .await
            .unwrap(),
        ReleaseOutcome::Committed
    );
    assert!(store.token_spent("idp", "tok-1", T + 360).await.unwrap());
    assert!(!store.token_spent("idp", "tok-2", T + 360).await.unwrap());
    assert!(
        !store
            .token_spent("other-idp", "tok-1", T + 360)
            .await
            .unwrap(),
        "per issuer"
    );
    assert_eq!(event_count(&*store).await, before + 1);
    // Every refusal changes nothing: no token, no slot, no event.
    let stale = envelope(&key);
    let refusals = [
        (
            commit(&env, "tok-1", &keys, &policy, T + 1, &ev),
            ReleaseOutcome::Replayed,
        ),
        (
            commit(&stale, "tok-3", &keys, &policy, T + 1, &ev),
            ReleaseOutcome::StaleEnvelope,
        ),
    ];
    for (c, expected) in refusals {
        assert_eq!(store.commit_release(&c).await.unwrap(), expected);
    }
    assert!(!store.token_spent("idp", "tok-3", T + 360).await.unwrap());
    // A retired key: add a new current key, retire the old (active) one.
    let newer = ServicePrivateKey::generate_p256().unwrap();
    add_key(&*store, "t", &newer).await;
    assert!(store.retire_key("t", key.key_id()).await.unwrap());
    assert_eq!(
        store
            .commit_release(&commit(&env, "tok-4", &keys, &policy, T + 2, &ev))
            .await
            .unwrap(),
        ReleaseOutcome::RetiredKey
    );
    assert!(!store.token_spent("idp", "tok-4", T + 360).await.unwrap());
    assert_eq!(
        event_count(&*store).await,
        before + 1,
        "no refusal recorded an event"
    );
    assert_eq!(
        store.rate_refusal(&keys, &rates(2), T + 3).await.unwrap(),
        None,
        "one slot taken, by the one release"
    );
    assert_eq!(
        store.rate_refusal(&keys, &rates(1), T + 3).await.unwrap(),
        Some((RateScope::User, 97))
    );
    s
}

async fn the_release_check_answers_as_the_commit_would_and_writes_nothing(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (key, env) = registered(&*store).await;
    let keys = rate_keys();
    let policy = rates(2);
    let ev = event("released");
    let first = commit(&env, "tok-1", &keys, &policy, T, &ev);
    // Checking writes nothing: the same answer twice, and the commit still commits.
    assert_eq!(store.check_release(&first).await.unwrap(), None);
    assert_eq!(store.check_release(&first).await.unwrap(), None);
    let events = event_count(&*store).await;
    assert!(!store.token_spent("idp", "tok-1", T + 360).await.unwrap());
    assert_eq!(
        store.commit_release(&first).await.unwrap(),
        ReleaseOutcome::Committed
    );
    assert_eq!(event_count(&*store).await, events + 1);
    let second = commit(&env, "tok-2", &keys, &policy, T + 10, &ev);
    assert_eq!(store.check_release(&second).await.unwrap(), None);
    assert_eq!(
        store.commit_release(&second).await.unwrap(),
        ReleaseOutcome::Committed
    );
    // Each refusal: the check says what the commit then says, in the commit's order.
    let stale = envelope(&key);
    let (none, generous) = (rates(0), rates(10));
    let refusals = [
        (
            commit(&env, "tok-1", &keys, &policy, T + 20, &ev),
            ReleaseOutcome::Replayed,
        ),
        (
            commit(&stale, "tok-3", &keys, &policy, T + 20, &ev),
            ReleaseOutcome::StaleEnvelope,
        ),
        (
            commit(&env, "tok-4", &keys, &policy, T + 20, &ev),
            ReleaseOutcome::RateLimited {
                scope: RateScope::User,
                retry_after: 80,
            },
        ),
        (
            commit(&env, "tok-5", &keys, &none, T + 20, &ev),
            ReleaseOutcome::RateLimited {
                scope: RateScope::User,
                retry_after: 100,
            },
        ),
    ];
    for (c, expected) in &refusals {
        assert_eq!(store.check_release(c).await.unwrap(), Some(*expected));
        assert_eq!(store.commit_release(c).await.unwrap(), *expected);
    }
    let newer = ServicePrivateKey::generate_p256().unwrap();
    add_key(&*store, "t", &newer).await;
    assert!(store.retire_key("t", key.key_id()).await.unwrap());
    let retired = commit(&env, "tok-6", &keys, &generous, T + 30, &ev);
    assert_eq!(
        store.check_release(&retired).await.unwrap(),
        Some(ReleaseOutcome::RetiredKey)
    );
    assert_eq!(
        event_count(&*store).await,
        events + 2,
        "refusals recorded nothing"
    );
    s
}

async fn rate_windows_and_retry_after(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (_, env) = registered(&*store).await;
    let keys = rate_keys();
    let policy = RatePolicy {
        per_user: RateLimit {
            max: 2,
            window: 100,
        },
        per_device: RateLimit {
            max: 3,
            window: 100,
        },
    };
    let ev = event("released");
    for (token, now) in [("r0", T), ("r1", T + 10)] {
        let c = commit(&env, token, &keys, &policy, now, &ev);
        assert_eq!(
            store.commit_release(&c).await.unwrap(),
            ReleaseOutcome::Committed
        );
    }
    assert_eq!(
        store.rate_refusal(&keys, &policy, T + 20).await.unwrap(),
        Some((RateScope::User, 80))
    );
    let refused = commit(&env, "r2", &keys, &policy, T + 20, &ev);
    assert_eq!(
        store.commit_release(&refused).await.unwrap(),
        ReleaseOutcome::RateLimited {
            scope: RateScope::User,
            retry_after: 80
        }
    );
    assert!(
        !store.token_spent("idp", "r2", T + 400).await.unwrap(),
        "refused: not spent"
    );
    assert_eq!(
        store.rate_refusal(&keys, &policy, T + 100).await.unwrap(),
        None,
        "the first left the window"
    );
    let zero = RatePolicy {
        per_user: RateLimit { max: 0, window: 60 },
        per_device: RateLimit { max: 1, window: 60 },
    };
    assert_eq!(
        store.rate_refusal(&keys, &zero, T).await.unwrap(),
        Some((RateScope::User, 60))
    );
    // A window holding more releases than the limit (the limit was lowered): the wait
    // runs from the newest `max` of them, not the oldest.
    let generous = RateLimit {
        max: 10,
        window: 100,
    };
    let generous = RatePolicy {
        per_user: generous,
        per_device: generous,
    };
    for (token, now) in [
        ("r3", T + 110),
        ("r4", T + 120),
        ("r5", T + 130),
        ("r6", T + 140),
    ] {
        let c = commit(&env, token, &keys, &generous, now, &ev);
        assert_eq!(
            store.commit_release(&c).await.unwrap(),
            ReleaseOutcome::Committed
        );
    }
    let lowered = RatePolicy {
        per_user: RateLimit {
            max: 2,
            window: 100,
        },
        per_device: generous.per_device,
    };
    assert_eq!(
        store.rate_refusal(&keys, &lowered, T + 150).await.unwrap(),
        Some((RateScope::User, 80)),
        "T+130 is the older of the newest two"
    );
    s
}

async fn keyrings_versions_states_and_serial(s: Scratch) -> Scratch {
    let store = s.open().await;
    assert_eq!(store.keyring("t").await.unwrap(), None);
    assert!(store.tenants().await.unwrap().is_empty());
    let k1 = ServicePrivateKey::generate_p256().unwrap();
    let k2 = ServicePrivateKey::generate_p256().unwrap();
    assert_eq!(add_key(&*store, "t", &k1).await, 1);
    assert_eq!(add_key(&*store, "t", &k2).await, 2);
    assert_eq!(
        add_key(&*store, "t", &k1).await,
        1,
        "adding a known key changes nothing"
    );
    assert_eq!(
        add_key(&*store, "u", &k1).await,
        1,
        "keyrings are per tenant"
    );
    let ring = store.keyring("t").await.unwrap().unwrap();
    assert_eq!(ring.serial, 2);
    let states: Vec<_> = ring
        .keys
        .iter()
        .map(|k| (k.version, k.key_id, k.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (1, k1.key_id(), KeyState::Active),
            (2, k2.key_id(), KeyState::Current)
        ]
    );
    assert_eq!(ring.keys[0].public_spki, k1.public_key().to_spki_der());
    assert_eq!(ring.keys[0].wrapped, Some(wrapped()));
    // Only an active key retires; its wrapped key goes; the serial moves on.
    assert!(
        !store.retire_key("t", k2.key_id()).await.unwrap(),
        "not the current key"
    );
    assert!(!store
        .retire_key("t", KeyId::from_bytes([9; 16]))
        .await
        .unwrap());
    assert!(store.retire_key("t", k1.key_id()).await.unwrap());
    assert!(!store.retire_key("t", k1.key_id()).await.unwrap(), "once");
    let ring = store.keyring("t").await.unwrap().unwrap();
    assert_eq!(
        (
            ring.serial,
            ring.keys[0].state,
            ring.keys[0].wrapped.clone()
        ),
        (3, KeyState::Retired, None)
    );
    assert_eq!(
        store.tenants().await.unwrap(),
        vec!["t".to_owned(), "u".to_owned()]
    );
    s
}

async fn key_encryption_key_fingerprint_is_recorded_once(s: Scratch) -> Scratch {
    let store = s.open().await;
    assert_eq!(store.key_encryption_key(&[1; 32]).await.unwrap(), [1; 32]);
    assert_eq!(
        store.key_encryption_key(&[2; 32]).await.unwrap(),
        [1; 32],
        "the first stays"
    );
    // And survives reopening (SQL backends: same database).
    if s.backend != Backend::Memory {
        let again = s.open().await;
        assert_eq!(again.key_encryption_key(&[3; 32]).await.unwrap(), [1; 32]);
    }
    s
}

async fn purge_keeps_a_floor_under_forgotten_tokens(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (_, env) = registered(&*store).await;
    let keys = rate_keys();
    let policy = rates(100);
    let ev = event("released");
    let first = commit(&env, "old", &keys, &policy, T, &ev);
    assert_eq!(
        store.commit_release(&first).await.unwrap(),
        ReleaseOutcome::Committed
    );
    // Far ahead: the token expired and is forgotten, and so are the rate slots.
    assert!(store.purge(T + 100_000, 100).await.unwrap() >= 3);
    // Whatever the clock says later, it expired no later than the floor: spent.
    assert!(store.token_spent("idp", "old", T + 360).await.unwrap());
    // The same assertion (the same expiry) presented with the clock stepped back.
    let again = ReleaseCommit {
        token_expires_at: T + 360,
        ..commit(&env, "old", &keys, &policy, T + 10, &ev)
    };
    assert_eq!(
        store.commit_release(&again).await.unwrap(),
        ReleaseOutcome::Replayed
    );
    assert!(
        store.token_spent("idp", "anything", T + 360).await.unwrap(),
        "the floor covers it"
    );
    assert!(!store.token_spent("idp", "new", T + 100_001).await.unwrap());
    assert_eq!(
        store.rate_refusal(&keys, &rates(1), T + 10).await.unwrap(),
        None,
        "slots purged"
    );
    s
}

async fn audit_log_pages_in_order(s: Scratch) -> Scratch {
    let store = s.open().await;
    for i in 0..7 {
        store.record_event(&event(&format!("e{i}"))).await.unwrap();
    }
    let all = store.audit_events(0, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "increasing sequence numbers"
    );
    assert_eq!(
        all[0].1,
        event("e0"),
        "an event reads back as it was written"
    );
    let page = store.audit_events(all[2].0, 3).await.unwrap();
    let reasons: Vec<_> = page.iter().map(|(_, e)| e.reason.as_str()).collect();
    assert_eq!(reasons, vec!["e3", "e4", "e5"]);
    s
}

async fn concurrent_commits_of_one_token_release_once(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (_, env) = registered(&*store).await;
    let env = Arc::new(env);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, env) = (store.clone(), env.clone());
            tokio::spawn(async move {
                let keys = rate_keys();
                let policy = rates(100);
                let ev = event("released");
                store
                    .commit_release(&commit(&env, "contested", &keys, &policy, T, &ev))
                    .await
            })
        })
        .collect();
    let mut committed = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            ReleaseOutcome::Committed => committed += 1,
            ReleaseOutcome::Replayed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(committed, 1, "exactly one of 8 concurrent commits");
    s
}

async fn concurrent_swaps_of_one_envelope_succeed_once(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (key, first) = registered(&*store).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let next = envelope(&key);
            let expected = Some(first.envelope_id());
            tokio::spawn(async move {
                let ev = event("swap");
                let swap = EnvelopeSwap {
                    tenant: "t",
                    device: "d",
                    expected,
                    new: Some(&next),
                    event: &ev,
                };
                store.swap_envelope(&swap).await.unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "the compare-and-swap holds");
    s
}

async fn a_commit_failing_midway_changes_nothing(s: Scratch) -> Scratch {
    let store = s.open().await;
    let (key, env) = registered(&*store).await;
    let keys = rate_keys();
    let policy = rates(1);
    let ev = event("released");
    let events = event_count(&*store).await;
    // The audit insert is the commit's last statement: the token and the rate slots are
    // already written in the transaction when it fails.
    s.break_audit_log(true).await;
    let failed = store
        .commit_release(&commit(&env, "tok", &keys, &policy, T, &ev))
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let next = envelope(&key);
    let swap = EnvelopeSwap {
        tenant: "t",
        device: "d",
        expected: Some(env.envelope_id()),
        new: Some(&next),
        event: &ev,
    };
    if s.backend != Backend::Memory {
        assert!(
            store.swap_envelope(&swap).await.is_err(),
            "the swap's event fails too"
        );
    }
    s.break_audit_log(false).await;
    assert!(
        !store.token_spent("idp", "tok", T + 360).await.unwrap(),
        "no token spent"
    );
    assert_eq!(
        store.rate_refusal(&keys, &policy, T).await.unwrap(),
        None,
        "no slot taken"
    );
    assert_eq!(event_count(&*store).await, events, "no event");
    assert_eq!(
        store.device("t", "d").await.unwrap().unwrap().envelope,
        Some(env.clone()),
        "not swapped"
    );
    // Mended, the same commit goes through.
    assert_eq!(
        store
            .commit_release(&commit(&env, "tok", &keys, &policy, T, &ev))
            .await
            .unwrap(),
        ReleaseOutcome::Committed
    );
    s
}

//! The in-memory store: all state behind one mutex, so every method is atomic. For tests,
//! demos and fuzzing; it forgets everything when dropped, so a deployment uses a durable
//! store.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::records::{rate_wait, KeyState};
use super::{
    DeviceRecord, EnvelopeSwap, NewTenantKey, RateKey, RatePolicy, ReleaseCommit, ReleaseOutcome,
    ServiceStore, StorageFailure, StoredKey, StoredKeyring,
};
use crate::keys::{KeyId, VerifyingKey};
use crate::service::audit::AuditEvent;
use crate::service::error::RateScope;

/// Spent token ids, by id and by expiry (to forget the oldest first, amortised O(log n)).
#[derive(Clone, Debug, Default)]
struct SpentIds {
    by_id: HashMap<(String, String), u64>,
    by_expiry: BinaryHeap<Reverse<(u64, (String, String))>>,
    /// The newest expiry among the ids forgotten so far.
    floor: u64,
}

/// Equal when they hold the same ids and floor (the heap is only an index).
impl PartialEq for SpentIds {
    fn eq(&self, other: &Self) -> bool {
        self.by_id == other.by_id && self.floor == other.floor
    }
}

impl Eq for SpentIds {}

impl SpentIds {
    fn forget_expired(&mut self, now: u64) -> u64 {
        let mut forgotten = 0;
        while let Some(Reverse((exp, _))) = self.by_expiry.peek() {
            if *exp > now {
                break;
            }
            if let Some(Reverse((exp, id))) = self.by_expiry.pop() {
                if self.by_id.get(&id) == Some(&exp) {
                    self.by_id.remove(&id);
                    self.floor = self.floor.max(exp);
                    forgotten += 1;
                }
            }
        }
        forgotten
    }

    fn spent(&self, issuer: &str, token_id: &str, expires_at: u64) -> bool {
        expires_at <= self.floor
            || self
                .by_id
                .contains_key(&(issuer.to_owned(), token_id.to_owned()))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    devices: HashMap<(String, String), DeviceRecord>,
    spent: SpentIds,
    rate: HashMap<RateKey, VecDeque<u64>>,
    keyrings: HashMap<String, StoredKeyring>,
    kek: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
struct Audit {
    next: u64,
    events: VecDeque<(u64, AuditEvent)>,
}

/// Everything a [`MemoryStore`] holds but its audit log, to compare before and after an
/// operation that must change nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemorySnapshot(State);

/// An in-memory [`ServiceStore`].
///
/// # Examples
/// ```
/// use pin_recovery::service::{MemoryStore, ServiceStore};
///
/// let store = MemoryStore::new();
/// let before = store.snapshot();
/// store.fail_writes(true); // an outage, for a test
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// assert!(store.purge(0, 60).await.is_err());
/// # });
/// assert_eq!(store.snapshot(), before, "a failed write changes nothing");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    audit: Mutex<Audit>,
    /// The most audit events kept (the oldest go first); `None`: all.
    audit_limit: Option<usize>,
    failing: AtomicBool,
    failing_operation: Mutex<Option<&'static str>>,
}

fn poisoned<T>(_: T) -> StorageFailure {
    StorageFailure::new("lock the in-memory store (poisoned)")
}

impl MemoryStore {
    /// An empty store that keeps every audit event.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps only the last `limit` audit events, so that a long run
    /// (a fuzzing campaign, say) does not grow without bound.
    pub fn with_audit_limit(limit: usize) -> Self {
        MemoryStore {
            audit_limit: Some(limit),
            ..Self::default()
        }
    }

    /// While `on`, every write fails with a [`StorageFailure`] and changes nothing: an
    /// outage, for tests.
    pub fn fail_writes(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    /// While `Some(operation)`, writes doing that operation (as [`StorageFailure::operation`]
    /// names it, such as "swap the registered envelope") fail and change nothing.
    pub fn fail_write(&self, operation: Option<&'static str>) {
        if let Ok(mut f) = self.failing_operation.lock() {
            *f = operation;
        }
    }

    /// Everything held but the audit log.
    pub fn snapshot(&self) -> MemorySnapshot {
        MemorySnapshot(self.state.lock().map(|s| s.clone()).unwrap_or_default())
    }

    /// How many spent token ids it remembers.
    pub fn spent_len(&self) -> usize {
        self.state.lock().map(|s| s.spent.by_id.len()).unwrap_or(0)
    }

    /// Every audit event kept, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.audit
            .lock()
            .map(|a| a.events.iter().map(|(_, e)| e.clone()).collect())
            .unwrap_or_default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StorageFailure> {
        self.state.lock().map_err(poisoned)
    }

    /// The state, for a write: fails while writes are failing.
    fn state_for_write(
        &self,
        operation: &'static str,
    ) -> Result<MutexGuard<'_, State>, StorageFailure> {
        let targeted = self
            .failing_operation
            .lock()
            .map_err(poisoned)?
            .is_some_and(|op| op == operation);
        if targeted || self.failing.load(Ordering::SeqCst) {
            return Err(StorageFailure::with_source(operation, "injected outage"));
        }
        self.state()
    }

    fn push_event(&self, event: &AuditEvent) -> Result<(), StorageFailure> {
        let mut audit = self.audit.lock().map_err(poisoned)?;
        audit.next += 1;
        let seq = audit.next;
        audit.events.push_back((seq, event.clone()));
        if let Some(limit) = self.audit_limit {
            while audit.events.len() > limit {
                audit.events.pop_front();
            }
        }
        Ok(())
    }
}

/// The releases of `key` still within its window at `now`.
fn recent(
    rate: &HashMap<RateKey, VecDeque<u64>>,
    key: &RateKey,
    window: u64,
    now: u64,
) -> Vec<u64> {
    rate.get(key)
        .map(|times| {
            times
                .iter()
                .copied()
                .filter(|t| t.saturating_add(window) > now)
                .collect()
        })
        .unwrap_or_default()
}

/// The commit's checks, in its order: what it would refuse, if anything.
fn release_refusal(s: &State, c: &ReleaseCommit<'_>) -> Option<ReleaseOutcome> {
    if s.spent.spent(c.issuer, c.token_id, c.token_expires_at) {
        return Some(ReleaseOutcome::Replayed);
    }
    let registered = s
        .devices
        .get(&(c.tenant.to_owned(), c.device.to_owned()))
        .and_then(super::registered_id);
    if registered != Some(c.envelope_id) {
        return Some(ReleaseOutcome::StaleEnvelope);
    }
    let usable = s.keyrings.get(c.tenant).is_some_and(|r| {
        r.keys
            .iter()
            .any(|k| k.key_id == c.key_id && k.state != KeyState::Retired)
    });
    if !usable {
        return Some(ReleaseOutcome::RetiredKey);
    }
    refusal(&s.rate, c.rate_keys, c.policy, c.now)
        .map(|(scope, retry_after)| ReleaseOutcome::RateLimited { scope, retry_after })
}

fn refusal(
    rate: &HashMap<RateKey, VecDeque<u64>>,
    keys: &[RateKey],
    policy: &RatePolicy,
    now: u64,
) -> Option<(RateScope, u64)> {
    keys.iter().find_map(|k| {
        let limit = policy.limit(k.scope);
        rate_wait(&recent(rate, k, limit.window, now), limit, now).map(|w| (k.scope, w))
    })
}

#[async_trait]
impl ServiceStore for MemoryStore {
    async fn device(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<DeviceRecord>, StorageFailure> {
        Ok(self
            .state()?
            .devices
            .get(&(tenant.to_owned(), device.to_owned()))
            .cloned())
    }

    async fn put_device(
        &self,
        tenant: &str,
        device: &str,
        user: &str,
        key: &VerifyingKey,
    ) -> Result<(), StorageFailure> {
        let mut s = self.state_for_write("register the device")?;
        let fresh = DeviceRecord {
            user: user.to_owned(),
            device_key: *key,
            envelope: None,
        };
        let entry = s
            .devices
            .entry((tenant.to_owned(), device.to_owned()))
            .or_insert_with(|| fresh.clone());
        if entry.device_key != *key || entry.user != user {
            *entry = fresh;
        }
        Ok(())
    }

    async fn swap_envelope(&self, swap: &EnvelopeSwap<'_>) -> Result<bool, StorageFailure> {
        let mut s = self.state_for_write("swap the registered envelope")?;
        let Some(record) = s
            .devices
            .get_mut(&(swap.tenant.to_owned(), swap.device.to_owned()))
        else {
            return Ok(false);
        };
        if super::registered_id(record) != swap.expected {
            return Ok(false);
        }
        record.envelope = swap.new.cloned();
        self.push_event(swap.event)?;
        Ok(true)
    }

    async fn token_spent(
        &self,
        issuer: &str,
        token_id: &str,
        expires_at: u64,
    ) -> Result<bool, StorageFailure> {
        Ok(self.state()?.spent.spent(issuer, token_id, expires_at))
    }

    async fn rate_refusal(
        &self,
        keys: &[RateKey],
        policy: &RatePolicy,
        now: u64,
    ) -> Result<Option<(RateScope, u64)>, StorageFailure> {
        Ok(refusal(&self.state()?.rate, keys, policy, now))
    }

    async fn commit_release(
        &self,
        c: &ReleaseCommit<'_>,
    ) -> Result<ReleaseOutcome, StorageFailure> {
        let mut s = self.state_for_write("commit the release")?;
        s.spent.forget_expired(c.now);
        if let Some(refused) = release_refusal(&s, c) {
            return Ok(refused);
        }
        self.push_event(c.event)?;
        let id = (c.issuer.to_owned(), c.token_id.to_owned());
        s.spent.by_id.insert(id.clone(), c.token_expires_at);
        s.spent.by_expiry.push(Reverse((c.token_expires_at, id)));
        for k in c.rate_keys {
            s.rate.entry(k.clone()).or_default().push_back(c.now);
        }
        Ok(ReleaseOutcome::Committed)
    }

    async fn check_release(
        &self,
        c: &ReleaseCommit<'_>,
    ) -> Result<Option<ReleaseOutcome>, StorageFailure> {
        Ok(release_refusal(&*self.state()?, c))
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), StorageFailure> {
        drop(self.state_for_write("record the audit event")?);
        self.push_event(event)
    }

    async fn audit_events(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, AuditEvent)>, StorageFailure> {
        let audit = self.audit.lock().map_err(poisoned)?;
        Ok(audit
            .events
            .iter()
            .filter(|(seq, _)| *seq > after)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn keyring(&self, tenant: &str) -> Result<Option<StoredKeyring>, StorageFailure> {
        Ok(self.state()?.keyrings.get(tenant).cloned())
    }

    async fn tenants(&self) -> Result<Vec<String>, StorageFailure> {
        let mut t: Vec<String> = self.state()?.keyrings.keys().cloned().collect();
        t.sort();
        Ok(t)
    }

    async fn add_current_key(&self, key: &NewTenantKey<'_>) -> Result<u32, StorageFailure> {
        let mut s = self.state_for_write("add the tenant key")?;
        let ring = s
            .keyrings
            .entry(key.tenant.to_owned())
            .or_insert_with(|| StoredKeyring {
                tenant: key.tenant.to_owned(),
                serial: 0,
                keys: Vec::new(),
            });
        if let Some(existing) = ring.keys.iter().find(|k| k.key_id == key.key_id) {
            return Ok(existing.version);
        }
        for k in &mut ring.keys {
            if k.state == KeyState::Current {
                k.state = KeyState::Active;
            }
        }
        let version = ring
            .keys
            .iter()
            .map(|k| k.version)
            .max()
            .map_or(1, |v| v.saturating_add(1));
        ring.keys.push(StoredKey {
            version,
            key_id: key.key_id,
            state: KeyState::Current,
            public_spki: key.public_spki.to_vec(),
            wrapped: Some(key.wrapped.clone()),
        });
        ring.serial = ring.serial.saturating_add(1);
        Ok(version)
    }

    async fn retire_key(&self, tenant: &str, key_id: KeyId) -> Result<bool, StorageFailure> {
        let mut s = self.state_for_write("retire the tenant key")?;
        let Some(ring) = s.keyrings.get_mut(tenant) else {
            return Ok(false);
        };
        let Some(k) = ring
            .keys
            .iter_mut()
            .find(|k| k.key_id == key_id && k.state == KeyState::Active)
        else {
            return Ok(false);
        };
        k.state = KeyState::Retired;
        k.wrapped = None;
        ring.serial = ring.serial.saturating_add(1);
        Ok(true)
    }

    async fn key_encryption_key(&self, fingerprint: &[u8; 32]) -> Result<[u8; 32], StorageFailure> {
        let mut s = self.state_for_write("check the key-encryption key")?;
        Ok(*s.kek.get_or_insert(*fingerprint))
    }

    async fn purge(&self, now: u64, max_window: u64) -> Result<u64, StorageFailure> {
        let mut s = self.state_for_write("purge expired state")?;
        let mut gone = s.spent.forget_expired(now);
        for times in s.rate.values_mut() {
            while times
                .front()
                .is_some_and(|t| t.saturating_add(max_window) <= now)
            {
                times.pop_front();
                gone += 1;
            }
        }
        s.rate.retain(|_, times| !times.is_empty());
        Ok(gone)
    }
}

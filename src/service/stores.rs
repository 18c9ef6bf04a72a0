//! The service's mutable state, behind traits so deployments can back them with a
//! database: the replay cache, the device registry and the rate limiter, each with an
//! in-memory implementation that is safe under concurrent use.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Mutex;

use super::error::{RateScope, StorageFailure};
use crate::envelope::{Envelope, EnvelopeId};
use crate::keys::signing::VerifyingKey;

fn poisoned<T>(_: T) -> StorageFailure {
    StorageFailure("lock poisoned")
}

/// Remembers spent assertion ids until they expire. An id may be forgotten only once its
/// `expires_at` has passed; from then on the cache can no longer vouch for any assertion
/// expiring at or before the newest forgotten expiry, and says such an assertion is spent.
/// So a clock that jumps forward (purging) and back again cannot make a spent assertion
/// acceptable.
pub trait ReplayCache: Send + Sync {
    /// Whether `(issuer, jti)`, which expires at `expires_at`, must be treated as spent:
    /// it was spent, or it expires no later than an id already forgotten.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn is_spent(&self, issuer: &str, jti: &str, expires_at: u64) -> Result<bool, StorageFailure>;

    /// Atomically spends `(issuer, jti)`; `false` if it must be treated as spent (as
    /// [`ReplayCache::is_spent`]). `expires_at` is when the entry may be forgotten.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn spend(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StorageFailure>;

    /// Undoes a [`ReplayCache::spend`] whose release then failed.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn unspend(&self, issuer: &str, jti: &str) -> Result<(), StorageFailure>;
}

/// An in-memory [`ReplayCache`]. Expired entries are dropped as new ones arrive
/// (amortised O(log n), oldest first), so its size is bounded by the assertions accepted
/// within one assertion lifetime.
#[derive(Default)]
pub struct MemoryReplayCache(Mutex<SpentIds>);

#[derive(Default)]
struct SpentIds {
    by_id: HashMap<(String, String), u64>,
    by_expiry: BinaryHeap<Reverse<(u64, (String, String))>>,
    /// The newest expiry among the ids forgotten so far.
    forgotten_until: u64,
}

impl SpentIds {
    fn forget_expired(&mut self, now: u64) {
        while let Some(Reverse((exp, _))) = self.by_expiry.peek() {
            if *exp > now {
                break;
            }
            if let Some(Reverse((exp, id))) = self.by_expiry.pop() {
                // An id unspent (or spent again) since has another entry, or none: keep it.
                if self.by_id.get(&id) == Some(&exp) {
                    self.by_id.remove(&id);
                    self.forgotten_until = self.forgotten_until.max(exp);
                }
            }
        }
    }

    fn spent(&self, id: &(String, String), expires_at: u64) -> bool {
        expires_at <= self.forgotten_until || self.by_id.contains_key(id)
    }
}

impl MemoryReplayCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.by_id.len()).unwrap_or(0)
    }

    /// Whether it holds no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayCache for MemoryReplayCache {
    fn is_spent(&self, issuer: &str, jti: &str, expires_at: u64) -> Result<bool, StorageFailure> {
        let spent = self.0.lock().map_err(poisoned)?;
        Ok(spent.spent(&(issuer.to_owned(), jti.to_owned()), expires_at))
    }

    fn spend(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StorageFailure> {
        let mut spent = self.0.lock().map_err(poisoned)?;
        spent.forget_expired(now);
        let id = (issuer.to_owned(), jti.to_owned());
        if spent.spent(&id, expires_at) {
            return Ok(false);
        }
        spent.by_id.insert(id.clone(), expires_at);
        spent.by_expiry.push(Reverse((expires_at, id)));
        Ok(true)
    }

    fn unspend(&self, issuer: &str, jti: &str) -> Result<(), StorageFailure> {
        let mut spent = self.0.lock().map_err(poisoned)?;
        spent.by_id.remove(&(issuer.to_owned(), jti.to_owned()));
        Ok(())
    }
}

/// A registered device: whose it is, its key, and the one envelope the service opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The user the device is registered to.
    pub user: String,
    /// The device key that signs its requests.
    pub device_key: VerifyingKey,
    /// The envelope currently registered (none before the first registration): the only
    /// one the service opens for this device, compared byte for byte.
    pub envelope: Option<Envelope>,
}

/// Devices and their registered envelopes.
pub trait DeviceRegistry: Send + Sync {
    /// The record of `(tenant, device)`.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn get(&self, tenant: &str, device: &str) -> Result<Option<DeviceRecord>, StorageFailure>;

    /// Registers (or re-registers) a device to a user with its key; clears its envelope
    /// when the key changes.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn put_device(
        &self,
        tenant: &str,
        device: &str,
        user: &str,
        key: VerifyingKey,
    ) -> Result<(), StorageFailure>;

    /// Atomically replaces the registered envelope if its id is `expected` (`None`: no
    /// envelope registered) with `new` (`None`: none); returns whether it did. A crash
    /// leaves either the old or the new envelope registered.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn swap_envelope(
        &self,
        tenant: &str,
        device: &str,
        expected: Option<EnvelopeId>,
        new: Option<&Envelope>,
    ) -> Result<bool, StorageFailure>;
}

/// An in-memory [`DeviceRegistry`].
#[derive(Default)]
pub struct MemoryDeviceRegistry(Mutex<HashMap<(String, String), DeviceRecord>>);

impl MemoryDeviceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

impl DeviceRegistry for MemoryDeviceRegistry {
    fn get(&self, tenant: &str, device: &str) -> Result<Option<DeviceRecord>, StorageFailure> {
        let map = self.0.lock().map_err(poisoned)?;
        Ok(map.get(&(tenant.to_owned(), device.to_owned())).cloned())
    }

    fn put_device(
        &self,
        tenant: &str,
        device: &str,
        user: &str,
        key: VerifyingKey,
    ) -> Result<(), StorageFailure> {
        let mut map = self.0.lock().map_err(poisoned)?;
        let entry = map
            .entry((tenant.to_owned(), device.to_owned()))
            .or_insert_with(|| DeviceRecord {
                user: user.to_owned(),
                device_key: key,
                envelope: None,
            });
        if entry.device_key != key || entry.user != user {
            *entry = DeviceRecord {
                user: user.to_owned(),
                device_key: key,
                envelope: None,
            };
        }
        Ok(())
    }

    fn swap_envelope(
        &self,
        tenant: &str,
        device: &str,
        expected: Option<EnvelopeId>,
        new: Option<&Envelope>,
    ) -> Result<bool, StorageFailure> {
        let mut map = self.0.lock().map_err(poisoned)?;
        match map.get_mut(&(tenant.to_owned(), device.to_owned())) {
            Some(r) if r.envelope.as_ref().map(Envelope::envelope_id) == expected => {
                r.envelope = new.cloned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// One rate-limited subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// Per user or per device.
    pub scope: RateScope,
    /// The tenant.
    pub tenant: String,
    /// The user or device id.
    pub id: String,
}

/// Limits how often secrets are released.
pub trait RateLimiter: Send + Sync {
    /// `None` if a release for every key is allowed now, else the first refusing scope
    /// and the seconds until it allows one. Changes nothing.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn check(&self, keys: &[RateKey], now: u64)
        -> Result<Option<(RateScope, u64)>, StorageFailure>;

    /// Atomically records a release for every key if all allow it (`None`); otherwise
    /// records nothing and says which refused.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn acquire(
        &self,
        keys: &[RateKey],
        now: u64,
    ) -> Result<Option<(RateScope, u64)>, StorageFailure>;

    /// Undoes one [`RateLimiter::acquire`] made at `now` for `keys`, whose release then
    /// failed.
    ///
    /// # Errors
    /// [`StorageFailure`].
    fn release(&self, keys: &[RateKey], now: u64) -> Result<(), StorageFailure>;
}

/// Limits: at most `max` releases in any `window` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Releases allowed per window.
    pub max: u32,
    /// Window length in seconds.
    pub window: u64,
}

/// The per-user and per-device limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatePolicy {
    /// Per user.
    pub per_user: RateLimit,
    /// Per device.
    pub per_device: RateLimit,
}

impl Default for RatePolicy {
    /// Three releases per user and per device per day.
    fn default() -> Self {
        RatePolicy {
            per_user: RateLimit {
                max: 3,
                window: 86_400,
            },
            per_device: RateLimit {
                max: 3,
                window: 86_400,
            },
        }
    }
}

/// An in-memory sliding-window [`RateLimiter`].
pub struct MemoryRateLimiter {
    policy: RatePolicy,
    log: Mutex<HashMap<RateKey, VecDeque<u64>>>,
}

impl MemoryRateLimiter {
    /// A limiter enforcing `policy`.
    pub fn new(policy: RatePolicy) -> Self {
        MemoryRateLimiter {
            policy,
            log: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, scope: RateScope) -> RateLimit {
        match scope {
            RateScope::User => self.policy.per_user,
            RateScope::Device => self.policy.per_device,
        }
    }

    /// Drops releases that left the window (each log is in time order, so from the
    /// front), then says which key, if any, refuses another release now.
    fn refusal(
        &self,
        log: &mut HashMap<RateKey, VecDeque<u64>>,
        keys: &[RateKey],
        now: u64,
    ) -> Option<(RateScope, u64)> {
        keys.iter().find_map(|k| {
            let limit = self.limit(k.scope);
            let max = limit.max as usize;
            let empty = VecDeque::new();
            let recent = match log.get_mut(k) {
                Some(times) => {
                    while times
                        .front()
                        .is_some_and(|t| t.saturating_add(limit.window) <= now)
                    {
                        times.pop_front();
                    }
                    &*times
                }
                None => &empty,
            };
            if recent.len() < max {
                return None;
            }
            // A release is allowed again when the entry `max` places from the end leaves
            // the window.
            let wait = recent
                .len()
                .checked_sub(max)
                .filter(|_| max > 0)
                .and_then(|i| recent.get(i))
                .map_or(limit.window, |t| {
                    t.saturating_add(limit.window).saturating_sub(now)
                });
            Some((k.scope, wait.max(1)))
        })
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn check(
        &self,
        keys: &[RateKey],
        now: u64,
    ) -> Result<Option<(RateScope, u64)>, StorageFailure> {
        let mut log = self.log.lock().map_err(poisoned)?;
        Ok(self.refusal(&mut log, keys, now))
    }

    fn acquire(
        &self,
        keys: &[RateKey],
        now: u64,
    ) -> Result<Option<(RateScope, u64)>, StorageFailure> {
        let mut log = self.log.lock().map_err(poisoned)?;
        if let Some(refused) = self.refusal(&mut log, keys, now) {
            return Ok(Some(refused));
        }
        for k in keys {
            log.entry(k.clone()).or_default().push_back(now);
        }
        Ok(None)
    }

    fn release(&self, keys: &[RateKey], now: u64) -> Result<(), StorageFailure> {
        let mut log = self.log.lock().map_err(poisoned)?;
        for k in keys {
            if let Some(times) = log.get_mut(k) {
                if let Some(i) = times.iter().rposition(|t| *t == now) {
                    times.remove(i);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cache_spends_once_and_forgets_after_expiry() {
        let c = MemoryReplayCache::new();
        assert!(c.spend("i", "a", 100, 0).unwrap());
        assert!(!c.spend("i", "a", 100, 50).unwrap());
        assert!(c.is_spent("i", "a", 100).unwrap());
        assert!(c.spend("j", "a", 100, 50).unwrap(), "ids are per issuer");
        c.unspend("j", "a").unwrap();
        assert!(!c.is_spent("j", "a", 100).unwrap());
        // Expired entries go when later ones arrive.
        assert!(c.spend("i", "b", 300, 200).unwrap());
        assert_eq!(c.len(), 1);
        // Forgotten, but not acceptable again: it expired no later than what was purged.
        assert!(c.is_spent("i", "a", 100).unwrap());
        assert!(
            !c.spend("i", "a", 100, 10).unwrap(),
            "even with the clock back at 10"
        );
        assert!(
            !c.is_spent("i", "z", 101).unwrap(),
            "a later expiry is vouched for"
        );
        // An id unspent and spent again keeps its newer expiry.
        c.unspend("i", "b").unwrap();
        assert!(c.spend("i", "b", 500, 200).unwrap());
        assert!(c.spend("i", "c", 600, 400).unwrap());
        assert!(c.is_spent("i", "b", 500).unwrap());
    }

    #[test]
    fn rate_limiter_windows_and_waits() {
        let key = |scope, id: &str| RateKey {
            scope,
            tenant: "t".into(),
            id: id.into(),
        };
        let keys = [key(RateScope::User, "u"), key(RateScope::Device, "d")];
        let r = MemoryRateLimiter::new(RatePolicy {
            per_user: RateLimit {
                max: 2,
                window: 100,
            },
            per_device: RateLimit {
                max: 3,
                window: 100,
            },
        });
        assert_eq!(r.acquire(&keys, 0).unwrap(), None);
        assert_eq!(r.acquire(&keys, 10).unwrap(), None);
        assert_eq!(r.check(&keys, 20).unwrap(), Some((RateScope::User, 80)));
        assert_eq!(r.acquire(&keys, 20).unwrap(), Some((RateScope::User, 80)));
        assert_eq!(
            r.check(&keys, 100).unwrap(),
            None,
            "the first release left the window"
        );
        let zero = MemoryRateLimiter::new(RatePolicy {
            per_user: RateLimit { max: 0, window: 60 },
            per_device: RateLimit { max: 1, window: 60 },
        });
        assert_eq!(zero.check(&keys, 0).unwrap(), Some((RateScope::User, 60)));
        // An undone release frees its slot.
        r.release(&keys, 10).unwrap();
        assert_eq!(r.check(&keys, 20).unwrap(), None);
    }
}

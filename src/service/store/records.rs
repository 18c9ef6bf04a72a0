//! What the store keeps and what the service asks it to commit.

use crate::envelope::{Envelope, EnvelopeId};
use crate::keys::{KeyId, VerifyingKey};
use crate::service::audit::AuditEvent;
use crate::service::error::RateScope;

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

/// A compare-and-swap of a device's registered envelope, with the audit event that
/// records it.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeSwap<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The device.
    pub device: &'a str,
    /// The id of the envelope that must be registered now (`None`: none).
    pub expected: Option<EnvelopeId>,
    /// What to register instead (`None`: nothing, as when undoing a first registration).
    pub new: Option<&'a Envelope>,
    /// Recorded in the same step.
    pub event: &'a AuditEvent,
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

/// At most `max` releases in any `window` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Releases allowed per window.
    pub max: u32,
    /// Window length in seconds.
    pub window: u64,
}

/// The per-user and per-device limits on releases.
///
/// The default: 3 releases per user and 3 per device in any 24 hours (86,400 s); the
/// fourth is refused `rate-limited` with the seconds until a slot frees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatePolicy {
    /// Per user.
    pub per_user: RateLimit,
    /// Per device.
    pub per_device: RateLimit,
}

impl RatePolicy {
    /// The limit for `scope`.
    pub fn limit(&self, scope: RateScope) -> RateLimit {
        match scope {
            RateScope::User => self.per_user,
            RateScope::Device => self.per_device,
        }
    }

    /// The longest window: slots older than this count for nothing.
    pub fn max_window(&self) -> u64 {
        self.per_user.window.max(self.per_device.window)
    }
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

/// The seconds until `times` (the releases within the window, oldest first) allows
/// another release under `limit` at `now`, or `None` if it allows one now.
pub(crate) fn rate_wait(times: &[u64], limit: RateLimit, now: u64) -> Option<u64> {
    let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
    if times.len() < max {
        return None;
    }
    // A release is allowed again when the entry `max` places from the end leaves the
    // window (with a limit of 0, never within a window: wait a whole one).
    let wait = times
        .len()
        .checked_sub(max)
        .filter(|_| max > 0)
        .and_then(|i| times.get(i))
        .map_or(limit.window, |t| {
            t.saturating_add(limit.window).saturating_sub(now)
        });
    Some(wait.max(1))
}

/// A release to commit, with everything that must still hold when it commits.
#[derive(Clone, Copy, Debug)]
pub struct ReleaseCommit<'a> {
    /// The envelope's tenant.
    pub tenant: &'a str,
    /// Its device.
    pub device: &'a str,
    /// The envelope, which must still be the registered one.
    pub envelope_id: EnvelopeId,
    /// Its key, which must not have been retired.
    pub key_id: KeyId,
    /// The assertion's issuer.
    pub issuer: &'a str,
    /// Its token id, spent by the commit.
    pub token_id: &'a str,
    /// Until when the token id must be remembered.
    pub token_expires_at: u64,
    /// The rate-limited subjects, each taking a slot.
    pub rate_keys: &'a [RateKey],
    /// Their limits.
    pub policy: &'a RatePolicy,
    /// The time of the release.
    pub now: u64,
    /// The `released` audit event, recorded in the same step.
    pub event: &'a AuditEvent,
}

/// How a release commit ended. Only `Committed` changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Token spent, slots taken, event recorded.
    Committed,
    /// The token was spent meanwhile (a concurrent duplicate won).
    Replayed,
    /// A limit refuses; seconds until it allows a release.
    RateLimited {
        /// Which limit.
        scope: RateScope,
        /// Seconds until a release is allowed.
        retry_after: u64,
    },
    /// Another envelope was registered meanwhile.
    StaleEnvelope,
    /// The envelope's key was retired meanwhile.
    RetiredKey,
}

/// The lifecycle state of a tenant key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Devices seal to it; it opens.
    Current,
    /// It still opens; devices reseal away from it at their next sign-in.
    Active,
    /// Its private key is gone; its envelopes are refused with
    /// [`crate::service::ServiceError::RetiredKey`].
    Retired,
}

impl KeyState {
    /// The name stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    /// The state a stored name denotes.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "current" => Some(KeyState::Current),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A tenant private key (PKCS#8 DER) wrapped under the key-encryption key: AES-256-GCM.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The AES-GCM nonce.
    pub nonce: [u8; 12],
    /// The ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// `nonce || ciphertext`, as databases store it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.ciphertext.len());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// From `nonce || ciphertext`; `None` if too short to hold a nonce and a tag.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        Some(WrappedKey {
            nonce: nonce.try_into().ok()?,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

impl core::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.ciphertext.len())
    }
}

/// One key of a stored keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// Its version in the tenant's keyring, from 1.
    pub version: u32,
    /// Its key id.
    pub key_id: KeyId,
    /// Current, active or retired.
    pub state: KeyState,
    /// Its public key, SubjectPublicKeyInfo DER.
    pub public_spki: Vec<u8>,
    /// Its private key, wrapped; `None` once retired.
    pub wrapped: Option<WrappedKey>,
}

/// A tenant's keys and its key-document serial, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKeyring {
    /// The tenant.
    pub tenant: String,
    /// Increases with every change; key documents carry it.
    pub serial: u64,
    /// The keys, by version.
    pub keys: Vec<StoredKey>,
}

/// A key to add to a tenant's keyring as its current key.
#[derive(Clone, Copy, Debug)]
pub struct NewTenantKey<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The key's id.
    pub key_id: KeyId,
    /// Its public key, SubjectPublicKeyInfo DER.
    pub public_spki: &'a [u8],
    /// Its private key, wrapped under the key-encryption key.
    pub wrapped: &'a WrappedKey,
}

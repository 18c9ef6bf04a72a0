//! The service's state behind one seam: devices and their registered envelopes, spent
//! assertion ids, rate windows, tenant keyrings (private keys wrapped under the
//! operator's key-encryption key) with their key-document serials, and the audit log.
//!
//! The seam is shaped for a database. Verification only reads. A release commits in one
//! atomic step ([`ServiceStore::commit_release`]): the token spent, the rate slots taken,
//! the envelope still the registered one, its key not retired, the audit event recorded
//! — one transaction on SQL backends. A registration is a compare-and-swap that records
//! its event in the same step. Methods are async (a tokio service never blocks a runtime
//! thread on I/O) and hold no lock across I/O; `service::blocking` gives simple callers a
//! synchronous path. Backends: [`MemoryStore`] (tests), [`SqliteStore`] (embedded,
//! durable: the default for one machine), [`PostgresStore`] (many replicas); one
//! conformance suite (`tests/store_conformance.rs`) runs against all three.

mod error;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use async_trait::async_trait;

pub use error::StorageFailure;
pub use memory::{MemorySnapshot, MemoryStore};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use records::{
    DeviceRecord, EnvelopeSwap, KeyState, NewTenantKey, RateKey, RateLimit, RatePolicy,
    ReleaseCommit, ReleaseOutcome, StoredKey, StoredKeyring, WrappedKey,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use super::audit::AuditEvent;
use super::error::RateScope;
use crate::envelope::EnvelopeId;
use crate::keys::{KeyId, VerifyingKey};

/// Where the service keeps its state. Every method either does all it says or nothing
/// (a failure is a [`StorageFailure`] and changes nothing); implementations must be safe
/// to share between threads and, for SQL backends, between processes.
#[async_trait]
pub trait ServiceStore: Send + Sync {
    /// The record of `(tenant, device)`.
    async fn device(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<DeviceRecord>, StorageFailure>;

    /// Registers (or re-registers) a device to a user with its key; clears its envelope
    /// when the key or the user changes.
    async fn put_device(
        &self,
        tenant: &str,
        device: &str,
        user: &str,
        key: &VerifyingKey,
    ) -> Result<(), StorageFailure>;

    /// Atomically replaces the registered envelope if its id is `swap.expected` and
    /// records `swap.event` with it; `false` (and nothing recorded) if it was not.
    async fn swap_envelope(&self, swap: &EnvelopeSwap<'_>) -> Result<bool, StorageFailure>;

    /// Whether `(issuer, token_id)`, which expires at `expires_at`, must be treated as
    /// spent: it was spent, or it expires no later than an id already forgotten.
    async fn token_spent(
        &self,
        issuer: &str,
        token_id: &str,
        expires_at: u64,
    ) -> Result<bool, StorageFailure>;

    /// The first key whose limit refuses a release at `now`, with the seconds until it
    /// allows one; `None` if all allow it. Changes nothing.
    async fn rate_refusal(
        &self,
        keys: &[RateKey],
        policy: &RatePolicy,
        now: u64,
    ) -> Result<Option<(RateScope, u64)>, StorageFailure>;

    /// What [`ServiceStore::commit_release`] would answer now, reading only: its checks
    /// in its order (token unspent, envelope still registered, key not retired, rate
    /// limits), `None` if it would commit. The service asks before it opens the envelope,
    /// so that a request the commit would refuse opens nothing; the commit checks again.
    /// The SQL stores answer it in one statement.
    async fn check_release(
        &self,
        c: &ReleaseCommit<'_>,
    ) -> Result<Option<ReleaseOutcome>, StorageFailure>;

    /// The release, in one atomic step: checks that the token is unspent, the rate
    /// limits allow it, the envelope is still the registered one and its key is not
    /// retired; then spends the token, takes the rate slots and records the event. Any
    /// other outcome than [`ReleaseOutcome::Committed`] changes nothing.
    async fn commit_release(
        &self,
        commit: &ReleaseCommit<'_>,
    ) -> Result<ReleaseOutcome, StorageFailure>;

    /// Records an audit event (a refusal's).
    async fn record_event(&self, event: &AuditEvent) -> Result<(), StorageFailure>;

    /// The audit events recorded after sequence number `after`, oldest first, at most
    /// `limit`, each with its sequence number.
    async fn audit_events(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, AuditEvent)>, StorageFailure>;

    /// A tenant's keyring, or `None` if the tenant has no keys.
    async fn keyring(&self, tenant: &str) -> Result<Option<StoredKeyring>, StorageFailure>;

    /// The tenants that have keyrings.
    async fn tenants(&self) -> Result<Vec<String>, StorageFailure>;

    /// Atomically makes `key` the tenant's current key (the previous current key becomes
    /// active) and increases the tenant's key-document serial. Adding a key id already in
    /// the keyring changes nothing. Returns the key's version.
    async fn add_current_key(&self, key: &NewTenantKey<'_>) -> Result<u32, StorageFailure>;

    /// Atomically retires an active (not current) key: its wrapped private key is deleted
    /// and the serial increases. Returns whether a key was retired.
    async fn retire_key(&self, tenant: &str, key_id: KeyId) -> Result<bool, StorageFailure>;

    /// The fingerprint of the key-encryption key the stored private keys are wrapped
    /// under; on an empty store, records `fingerprint` and returns it. Lets a service
    /// refuse to start with another key before it decrypts or writes anything.
    async fn key_encryption_key(&self, fingerprint: &[u8; 32]) -> Result<[u8; 32], StorageFailure>;

    /// Forgets spent tokens that expired at or before `now` (remembering the newest
    /// such expiry as the floor of [`ServiceStore::token_spent`]) and rate slots older
    /// than `max_window`. Returns how many rows went.
    async fn purge(&self, now: u64, max_window: u64) -> Result<u64, StorageFailure>;
}

/// The id of the envelope a record holds.
pub(crate) fn registered_id(record: &DeviceRecord) -> Option<EnvelopeId> {
    record.envelope.as_ref().map(crate::Envelope::envelope_id)
}

//! Starting a service: its settings, the builder, and the checks made before it answers
//! anything (the key-encryption key against the store, every tenant keyring unwrapped).

use core::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

use super::audit::{AuditSink, ResetNotifier};
use super::handler::RecoveryService;
use super::issuers::IssuerTrust;
use super::kek::KeyEncryptionKey;
use super::keyring::{KeyringCache, LoadedKeyring};
use super::mfa::MfaPolicy;
use super::store::{RatePolicy, ServiceStore, StorageFailure};
use crate::clock::{Clock, SystemClock};
use crate::keys::KeyId;
use crate::protocol::key_document::KeyDocumentSigner;

/// The service's fixed settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The service's name in key documents (`iss`).
    pub issuer: String,
    /// How assertions are checked (including the required audience).
    pub mfa: MfaPolicy,
    /// How long a key document is valid, in seconds.
    pub key_document_lifetime: u64,
}

/// Why a service did not start. Nothing was decrypted or written when this is returned
/// (but for recording the key-encryption key's fingerprint in an empty store).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The store failed.
    Store(StorageFailure),
    /// The store's private keys are wrapped under another key-encryption key: check the
    /// key file or variable this service was given.
    WrongKeyEncryptionKey,
    /// A stored tenant key does not load (the store was altered or is damaged).
    UnreadableKey {
        /// The tenant.
        tenant: String,
        /// The key.
        key_id: KeyId,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "{e}"),
            StartError::WrongKeyEncryptionKey => f.write_str(
                "the store's keys are wrapped under another key-encryption key; nothing was decrypted or changed",
            ),
            StartError::UnreadableKey {
                tenant,
                key_id,
                reason,
            } => write!(f, "tenant {tenant:?} key {key_id} does not load: {reason}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // `Display` already is the failure's: its cause comes next.
            StartError::Store(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

impl From<StorageFailure> for StartError {
    fn from(e: StorageFailure) -> Self {
        StartError::Store(e)
    }
}

/// Builds a [`RecoveryService`]. The store is not optional: a deployment chooses where
/// its state lives (an in-memory store is chosen explicitly, for tests).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use pin_recovery::service::{blocking, IssuerTrust, JsonLinesAuditSink, KeyEncryptionKey,
///     MemoryStore, MfaPolicy, RateLimit, RatePolicy, RecoveryService, ServiceConfig};
/// use pin_recovery::{KeyDocumentSigner, SigningKey};
///
/// let config = ServiceConfig {
///     issuer: "https://recovery.example".into(),
///     mfa: MfaPolicy::new("https://recovery.example"),
///     key_document_lifetime: 86_400,
/// };
/// let (signer, kek) = (KeyDocumentSigner::new(SigningKey::generate()?), KeyEncryptionKey::generate()?);
/// let service = blocking::RecoveryService::start(|| async move {
///     RecoveryService::builder(config, signer, IssuerTrust::new(), Arc::new(MemoryStore::new()), kek)
///         .rate_policy(RatePolicy {
///             per_user: RateLimit { max: 3, window: 86_400 },
///             per_device: RateLimit { max: 2, window: 86_400 },
///         })
///         .audit_mirror(Arc::new(JsonLinesAuditSink::new(std::io::stderr())))
///         .build()
///         .await
/// })?;
/// # let _ = service;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecoveryServiceBuilder {
    config: ServiceConfig,
    signer: KeyDocumentSigner,
    trust: IssuerTrust,
    store: Arc<dyn ServiceStore>,
    kek: KeyEncryptionKey,
    rates: RatePolicy,
    mirror: Option<Arc<dyn AuditSink>>,
    notifier: Option<Arc<dyn ResetNotifier>>,
    clock: Arc<dyn Clock>,
}

impl RecoveryServiceBuilder {
    /// Uses `rates` instead of [`RatePolicy::default`].
    pub fn rate_policy(mut self, rates: RatePolicy) -> Self {
        self.rates = rates;
        self
    }

    /// Copies every audit event, once the store has recorded it, to `sink` (JSON lines to
    /// a log collector, say). The store's log is the authority; a failing mirror is
    /// counted ([`RecoveryService::mirror_failures`]) and changes nothing.
    pub fn audit_mirror(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.mirror = Some(sink);
        self
    }

    /// Calls `notifier` on every released secret.
    pub fn notifier(mut self, notifier: Arc<dyn ResetNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts the service: checks the key-encryption key against the store (recording its
    /// fingerprint in an empty one) and unwraps every tenant key.
    ///
    /// # Errors
    /// [`StartError`]; nothing is decrypted or written after a wrong key-encryption key.
    pub async fn build(self) -> Result<RecoveryService, StartError> {
        let fingerprint = self.kek.fingerprint();
        let stored = self.store.key_encryption_key(&fingerprint).await?;
        if !bool::from(stored.ct_eq(&fingerprint)) {
            return Err(StartError::WrongKeyEncryptionKey);
        }
        let keyrings = KeyringCache::default();
        for tenant in self.store.tenants().await? {
            let Some(stored) = self.store.keyring(&tenant).await? else {
                continue;
            };
            let ring =
                LoadedKeyring::load(stored, &self.kek).map_err(|e| StartError::UnreadableKey {
                    tenant: tenant.clone(),
                    key_id: e.key_id,
                    reason: e.reason,
                })?;
            keyrings.put(&tenant, Arc::new(ring));
        }
        Ok(RecoveryService {
            config: self.config,
            signer: self.signer,
            trust: RwLock::new(Arc::new(self.trust)),
            store: self.store,
            kek: self.kek,
            rates: self.rates,
            keyrings,
            mirror: self.mirror,
            notifier: self.notifier,
            clock: self.clock,
            audit_failures: AtomicU64::new(0),
            mirror_failures: AtomicU64::new(0),
            notifier_failures: AtomicU64::new(0),
            last_purge: AtomicU64::new(0),
        })
    }
}

impl RecoveryService {
    /// Starts building a service that signs key documents with `signer`, accepts
    /// assertions from the issuers each tenant names in `trust`, keeps its state in
    /// `store` and wraps tenant private keys under `kek`.
    pub fn builder(
        config: ServiceConfig,
        signer: KeyDocumentSigner,
        trust: IssuerTrust,
        store: Arc<dyn ServiceStore>,
        kek: KeyEncryptionKey,
    ) -> RecoveryServiceBuilder {
        RecoveryServiceBuilder {
            config,
            signer,
            trust,
            store,
            kek,
            rates: RatePolicy::default(),
            mirror: None,
            notifier: None,
            clock: Arc::new(SystemClock),
        }
    }
}

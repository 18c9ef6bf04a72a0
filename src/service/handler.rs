//! The recovery service: the administration of tenant keys, devices and trusted
//! issuers, and what every request shares (device authentication, audit). Its start is
//! in `start`; the recovery request is answered in `release`, envelope registration in
//! `register`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, RequestContext, ResetNotifier,
};
use super::error::ServiceError;
use super::issuers::IssuerTrust;
use super::kek::KeyEncryptionKey;
use super::keyring::{KeyInfo, KeyringCache, LoadedKeyring};
use super::start::ServiceConfig;
use super::store::{DeviceRecord, NewTenantKey, RatePolicy, ServiceStore, StorageFailure};
use crate::clock::Clock;
use crate::envelope::binding::Binding;
use crate::envelope::Envelope;
use crate::keys::{KeyId, ServicePrivateKey, VerifyingKey};
use crate::protocol::key_document::{KeyDocumentSigner, SignedKeyDocument};

/// The recovery service. `Send + Sync` but not `Clone`: share one between threads and
/// tasks as an `Arc<RecoveryService>` (axum state, say). Its methods are async
/// (see [`super::blocking::RecoveryService`] for a synchronous front). See
/// [`crate::guides::service`] for a whole service.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use pin_recovery::service::{AssertionAlgorithm, IssuerTrust, KeyEncryptionKey, MemoryStore,
///     MfaPolicy, RecoveryService, ServiceConfig, TrustedIssuer};
/// use pin_recovery::{KeyDocumentSigner, ServicePrivateKey, SigningKey};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
/// # let idp_jwks = pin_recovery::testkit::TestIdentityProvider::new("https://idp.contoso.example")?.jwks();
/// // Which identity provider vouches for which tenant's users: the tenant id here is the
/// // same string as in the keys added below and in the devices' bindings.
/// let idp = TrustedIssuer::from_jwks("https://idp.contoso.example", idp_jwks.as_bytes(), &[AssertionAlgorithm::Es256])?;
/// let trust = IssuerTrust::new().trust("contoso", Arc::new(idp));
/// let config = ServiceConfig {
///     issuer: "https://recovery.example".into(),
///     mfa: MfaPolicy::new("https://recovery.example"),
///     key_document_lifetime: 86_400,
/// };
/// let service = RecoveryService::builder(
///     config,
///     KeyDocumentSigner::new(SigningKey::generate()?),
///     trust,
///     Arc::new(MemoryStore::new()),       // a deployment: SqliteStore or PostgresStore
///     KeyEncryptionKey::generate()?,      // a deployment: KeyEncryptionKey::from_file
/// )
/// .build()
/// .await?;
/// service.add_current_key("contoso", ServicePrivateKey::generate_p256()?).await?;
/// let document = service.key_document("contoso").await?; // what devices fetch
/// # let _ = document;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecoveryService {
    pub(super) config: ServiceConfig,
    pub(super) signer: KeyDocumentSigner,
    pub(super) trust: RwLock<Arc<IssuerTrust>>,
    pub(super) store: Arc<dyn ServiceStore>,
    pub(super) kek: KeyEncryptionKey,
    pub(super) rates: RatePolicy,
    pub(super) keyrings: KeyringCache,
    pub(super) mirror: Option<Arc<dyn AuditSink>>,
    pub(super) notifier: Option<Arc<dyn ResetNotifier>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) audit_failures: AtomicU64,
    pub(super) mirror_failures: AtomicU64,
    pub(super) notifier_failures: AtomicU64,
    /// When this replica last purged expired state (clock seconds).
    pub(super) last_purge: AtomicU64,
}

/// How often a replica purges expired state on its own, in seconds.
const PURGE_INTERVAL: u64 = 3600;

pub(super) fn lock_failed<T>(_: T) -> ServiceError {
    ServiceError::Unavailable(StorageFailure::new("lock the issuer trust (poisoned)"))
}

/// A refusal as the caller sees it, and the exact reason the audit event records (they
/// differ only where telling the caller would leak, as for unauthenticated devices).
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) error: ServiceError,
    pub(super) audit_reason: &'static str,
}

impl From<ServiceError> for Refusal {
    fn from(error: ServiceError) -> Self {
        Refusal {
            audit_reason: error.reason(),
            error,
        }
    }
}

impl From<StorageFailure> for Refusal {
    fn from(e: StorageFailure) -> Self {
        ServiceError::Unavailable(e).into()
    }
}

/// The facts an audit event records, gathered as the request is checked.
pub(super) struct Trace<'a> {
    pub(super) action: AuditAction,
    pub(super) ctx: &'a RequestContext,
    pub(super) envelope: Option<&'a Envelope>,
    /// Who the request is about, when there is no envelope to say it.
    pub(super) subject: Option<&'a Binding>,
}

impl RecoveryService {
    /// The public key that verifies this service's key documents: devices pin it
    /// (`client::ServiceTrust`). Give it to devices when they are provisioned.
    pub fn key_document_key(&self) -> &VerifyingKey {
        self.signer.verifying_key()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ServiceStore> {
        &self.store
    }

    /// Replaces the trusted issuers (for example after an identity provider published
    /// new keys). Requests already being checked finish under the old trust.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] if the trust lock is poisoned.
    pub fn replace_issuer_trust(&self, trust: IssuerTrust) -> Result<(), ServiceError> {
        *self.trust.write().map_err(lock_failed)? = Arc::new(trust);
        Ok(())
    }

    pub(super) fn issuer_trust(&self) -> Result<Arc<IssuerTrust>, ServiceError> {
        Ok(self.trust.read().map_err(lock_failed)?.clone())
    }

    /// How many refusals' audit events the store could not record (the refusals stood).
    pub fn audit_failures(&self) -> u64 {
        self.audit_failures.load(Ordering::Relaxed)
    }

    /// How many events the audit mirror failed to take.
    pub fn mirror_failures(&self) -> u64 {
        self.mirror_failures.load(Ordering::Relaxed)
    }

    /// How many reset notifications failed (the releases stood).
    pub fn notifier_failures(&self) -> u64 {
        self.notifier_failures.load(Ordering::Relaxed)
    }

    /// Makes `key` `tenant`'s current key: wrapped under the key-encryption key and
    /// stored; the previous current key keeps opening its envelopes. Returns its version.
    /// Every replica sees it (it reloads a keyring when it meets an unknown key id, and
    /// reads keyrings afresh for key documents).
    ///
    /// # Errors
    /// [`ServiceError::NoTrustedIssuer`] if no identity provider is trusted for `tenant`
    /// (its keys could never release anything: usually the tenant is named differently
    /// in the issuer trust); [`ServiceError::Unavailable`], [`ServiceError::Crypto`].
    pub async fn add_current_key(
        &self,
        tenant: &str,
        key: ServicePrivateKey,
    ) -> Result<u32, ServiceError> {
        if self.issuer_trust()?.issuers(tenant).is_empty() {
            return Err(ServiceError::NoTrustedIssuer {
                tenant: tenant.to_owned(),
            });
        }
        let der = key.to_pkcs8_der().map_err(|_| ServiceError::Crypto)?;
        let wrapped = self
            .kek
            .wrap(tenant, key.key_id(), &der)
            .map_err(|_| ServiceError::Crypto)?;
        let version = self
            .store
            .add_current_key(&NewTenantKey {
                tenant,
                key_id: key.key_id(),
                public_spki: key.public_key().to_spki_der(),
                wrapped: &wrapped,
            })
            .await?;
        self.reload_keyring(tenant).await?;
        Ok(version)
    }

    /// Retires a non-current key of `tenant`: its wrapped private key is deleted, and its
    /// envelopes are refused from now on with [`ServiceError::RetiredKey`], by every
    /// replica. Returns whether a key was retired.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`].
    pub async fn retire_key(&self, tenant: &str, key_id: KeyId) -> Result<bool, ServiceError> {
        let retired = self.store.retire_key(tenant, key_id).await?;
        if retired {
            self.reload_keyring(tenant).await?;
        }
        Ok(retired)
    }

    /// The keys of `tenant`, as the store holds them now.
    ///
    /// # Errors
    /// [`ServiceError::UnknownTenant`], [`ServiceError::Unavailable`],
    /// [`ServiceError::Crypto`].
    pub async fn keys(&self, tenant: &str) -> Result<Vec<KeyInfo>, ServiceError> {
        Ok(self.reload_keyring(tenant).await?.infos())
    }

    /// The signed key document for `tenant`, valid from now, from the keyring as the
    /// store holds it now (its serial only ever increases).
    ///
    /// # Errors
    /// [`ServiceError::UnknownTenant`], [`ServiceError::Unavailable`],
    /// [`ServiceError::Crypto`].
    pub async fn key_document(&self, tenant: &str) -> Result<SignedKeyDocument, ServiceError> {
        let ring = self.reload_keyring(tenant).await?;
        let doc = ring.key_document(
            &self.config.issuer,
            self.clock.now(),
            self.config.key_document_lifetime,
        );
        self.signer.sign(&doc).map_err(|_| ServiceError::Crypto)
    }

    /// Reads `tenant`'s keyring from the store and caches it.
    async fn reload_keyring(&self, tenant: &str) -> Result<Arc<LoadedKeyring>, ServiceError> {
        let stored = self
            .store
            .keyring(tenant)
            .await?
            .ok_or(ServiceError::UnknownTenant)?;
        let ring =
            Arc::new(LoadedKeyring::load(stored, &self.kek).map_err(|_| ServiceError::Crypto)?);
        self.keyrings.put(tenant, ring.clone());
        Ok(ring)
    }

    /// `tenant`'s keyring, knowing `key_id` if the store does: reloaded when the cached
    /// one has never heard of it (another replica added it).
    pub(super) async fn keyring_with(
        &self,
        tenant: &str,
        key_id: KeyId,
    ) -> Result<Arc<LoadedKeyring>, ServiceError> {
        match self.keyrings.get(tenant) {
            Some(ring) if ring.has(key_id) => Ok(ring),
            _ => self.reload_keyring(tenant).await,
        }
    }

    /// Forgets the cached keyring of `tenant` (after the store said a key was retired).
    pub(super) async fn refresh_keyring(&self, tenant: &str) {
        let _ = self.reload_keyring(tenant).await;
    }

    /// Forgets what no longer matters: spent assertion ids past their expiry and rate
    /// slots older than the longest window. Each replica runs it on its own at most once
    /// an hour, after a release; call it to run it now. Returns how many entries went.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`].
    pub async fn purge(&self) -> Result<u64, ServiceError> {
        Ok(self
            .store
            .purge(self.clock.now(), self.rates.max_window())
            .await?)
    }

    /// Purges if this replica has not for [`PURGE_INTERVAL`]; a failure waits for the
    /// next interval (the state stays correct, only larger).
    pub(super) async fn purge_now_and_then(&self, now: u64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PURGE_INTERVAL
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let _ = self.store.purge(now, self.rates.max_window()).await;
    }

    /// The registered device of `binding`, if `signature` over `signed` is its device
    /// key's. An unknown device and a bad signature are one refusal to the caller, and
    /// take about the same time (a signature is verified either way).
    pub(super) async fn authenticate_device(
        &self,
        binding: &Binding,
        signed: &[u8],
        signature: &[u8; 64],
    ) -> Result<DeviceRecord, Refusal> {
        let refusal = |audit_reason| Refusal {
            error: ServiceError::DeviceNotAuthenticated,
            audit_reason,
        };
        match self
            .store
            .device(binding.tenant(), binding.device())
            .await?
        {
            None => {
                // A decoy verification: its result is ignored.
                let _ = self.signer.verifying_key().verify(signed, signature);
                Err(refusal("unknown-device"))
            }
            Some(record) if !record.device_key.verify(signed, signature) => {
                Err(refusal("bad-device-signature"))
            }
            Some(record) => Ok(record),
        }
    }

    pub(super) fn event(
        &self,
        trace: &Trace<'_>,
        outcome: AuditOutcome,
        reason: &'static str,
    ) -> AuditEvent {
        let binding = trace.envelope.map(Envelope::binding).or(trace.subject);
        AuditEvent {
            time: self.clock.now(),
            action: trace.action,
            tenant: binding.map(|b| b.tenant().to_owned()),
            user: binding.map(|b| b.user().to_owned()),
            device: binding.map(|b| b.device().to_owned()),
            client_ip: trace.ctx.client_ip.clone(),
            client_type: trace.ctx.client_type.clone(),
            key_id: trace.envelope.map(Envelope::key_id),
            envelope_id: trace.envelope.map(Envelope::envelope_id),
            outcome,
            reason: reason.to_owned(),
        }
    }

    /// Copies an event the store has recorded to the mirror, if any.
    pub(super) fn mirror(&self, event: &AuditEvent) {
        if let Some(m) = &self.mirror {
            if m.record(event).is_err() {
                self.mirror_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records `event` in the store (and the mirror); a failure is counted.
    pub(super) async fn record(&self, event: &AuditEvent) {
        match self.store.record_event(event).await {
            Ok(()) => self.mirror(event),
            Err(_) => {
                self.audit_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Audits a refusal and returns what the caller is told. A refusal stands whether or
    /// not its event is recorded.
    pub(super) async fn refuse(&self, trace: &Trace<'_>, refusal: Refusal) -> ServiceError {
        self.record(&self.event(trace, AuditOutcome::Refused, refusal.audit_reason))
            .await;
        refusal.error
    }
}

//! The recovery service: its settings, its state, the administration of tenant keys and
//! trusted issuers, and what every request shares (device authentication, audit). The
//! recovery request is answered in `release`, envelope registration in `register`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, RequestContext, ResetNotifier,
};
use super::error::{ServiceError, StorageFailure};
use super::issuers::IssuerTrust;
use super::keyring::TenantKeyring;
use super::mfa::MfaPolicy;
use super::stores::{
    DeviceRecord, DeviceRegistry, MemoryDeviceRegistry, MemoryRateLimiter, MemoryReplayCache,
    RateLimiter, RatePolicy, ReplayCache,
};
use crate::envelope::binding::Binding;
use crate::clock::{Clock, SystemClock};
use crate::envelope::Envelope;
use crate::protocol::key_document::{KeyDocumentSigner, SignedKeyDocument};
use crate::keys::ServicePrivateKey;
use crate::keys::signing::VerifyingKey;

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

/// Builds a [`RecoveryService`].
pub struct RecoveryServiceBuilder {
    config: ServiceConfig,
    signer: KeyDocumentSigner,
    trust: IssuerTrust,
    audit: Arc<dyn AuditSink>,
    replay: Option<Arc<dyn ReplayCache>>,
    registry: Option<Arc<dyn DeviceRegistry>>,
    rate: Option<Arc<dyn RateLimiter>>,
    notifier: Option<Arc<dyn ResetNotifier>>,
    clock: Arc<dyn Clock>,
}

impl RecoveryServiceBuilder {
    /// Uses `replay` instead of an in-memory replay cache.
    pub fn replay_cache(mut self, replay: Arc<dyn ReplayCache>) -> Self {
        self.replay = Some(replay);
        self
    }

    /// Uses `registry` instead of an in-memory device registry.
    pub fn registry(mut self, registry: Arc<dyn DeviceRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Uses `rate` instead of an in-memory limiter with [`RatePolicy::default`].
    pub fn rate_limiter(mut self, rate: Arc<dyn RateLimiter>) -> Self {
        self.rate = Some(rate);
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

    /// The service.
    pub fn build(self) -> RecoveryService {
        RecoveryService {
            config: self.config,
            signer: self.signer,
            trust: RwLock::new(Arc::new(self.trust)),
            audit: self.audit,
            replay: self
                .replay
                .unwrap_or_else(|| Arc::new(MemoryReplayCache::new())),
            registry: self
                .registry
                .unwrap_or_else(|| Arc::new(MemoryDeviceRegistry::new())),
            rate: self
                .rate
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::new(RatePolicy::default()))),
            notifier: self.notifier,
            clock: self.clock,
            keyrings: RwLock::new(HashMap::new()),
            audit_failures: AtomicU64::new(0),
            notifier_failures: AtomicU64::new(0),
        }
    }
}

/// The recovery service. Safe to share between threads.
pub struct RecoveryService {
    pub(super) config: ServiceConfig,
    signer: KeyDocumentSigner,
    trust: RwLock<Arc<IssuerTrust>>,
    audit: Arc<dyn AuditSink>,
    pub(super) replay: Arc<dyn ReplayCache>,
    pub(super) registry: Arc<dyn DeviceRegistry>,
    pub(super) rate: Arc<dyn RateLimiter>,
    pub(super) notifier: Option<Arc<dyn ResetNotifier>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) keyrings: RwLock<HashMap<String, TenantKeyring>>,
    audit_failures: AtomicU64,
    pub(super) notifier_failures: AtomicU64,
}

pub(super) fn lock_failed<T>(_: T) -> ServiceError {
    ServiceError::Unavailable(StorageFailure("keyring lock poisoned"))
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
}

impl RecoveryService {
    /// Starts building a service that signs key documents with `signer`, accepts
    /// assertions from the issuers each tenant names in `trust`, and audits to `audit`.
    pub fn builder(
        config: ServiceConfig,
        signer: KeyDocumentSigner,
        trust: IssuerTrust,
        audit: Arc<dyn AuditSink>,
    ) -> RecoveryServiceBuilder {
        RecoveryServiceBuilder {
            config,
            signer,
            trust,
            audit,
            replay: None,
            registry: None,
            rate: None,
            notifier: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The public key devices pin to trust this service's key documents.
    pub fn signing_key(&self) -> &VerifyingKey {
        self.signer.verifying_key()
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

    /// How many audit events could not be recorded (each refusal's, and each release
    /// undone because its event could not be recorded).
    pub fn audit_failures(&self) -> u64 {
        self.audit_failures.load(Ordering::Relaxed)
    }

    /// How many reset notifications failed (the releases stood).
    pub fn notifier_failures(&self) -> u64 {
        self.notifier_failures.load(Ordering::Relaxed)
    }

    /// Adds `key` as `tenant`'s current key; the previous current key keeps opening its
    /// envelopes. Returns the key's version.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] if the keyring lock is poisoned.
    pub fn add_current_key(
        &self,
        tenant: &str,
        key: ServicePrivateKey,
    ) -> Result<u32, ServiceError> {
        let mut rings = self.keyrings.write().map_err(lock_failed)?;
        Ok(rings
            .entry(tenant.to_owned())
            .or_insert_with(|| TenantKeyring::new(tenant))
            .add_current(key))
    }

    /// Retires a non-current key of `tenant`: its envelopes are refused from now on with
    /// [`ServiceError::RetiredKey`]. Returns whether a key was retired.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] if the keyring lock is poisoned.
    pub fn retire_key(&self, tenant: &str, key_id: crate::KeyId) -> Result<bool, ServiceError> {
        let mut rings = self.keyrings.write().map_err(lock_failed)?;
        Ok(rings.get_mut(tenant).is_some_and(|r| r.retire(key_id)))
    }

    /// The signed key document for `tenant`, valid from now.
    ///
    /// # Errors
    /// [`ServiceError::UnknownTenant`], [`ServiceError::Crypto`].
    pub fn key_document(&self, tenant: &str) -> Result<SignedKeyDocument, ServiceError> {
        let rings = self.keyrings.read().map_err(lock_failed)?;
        let ring = rings.get(tenant).ok_or(ServiceError::UnknownTenant)?;
        let doc = ring.key_document(
            &self.config.issuer,
            self.clock.now(),
            self.config.key_document_lifetime,
        );
        self.signer.sign(&doc).map_err(|_| ServiceError::Crypto)
    }

    /// Registers a device to a user with its device key (done at device registration,
    /// by the identity provider or an administrator, not by the device itself).
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`].
    pub fn register_device(
        &self,
        tenant: &str,
        device: &str,
        user: &str,
        key: VerifyingKey,
    ) -> Result<(), ServiceError> {
        Ok(self.registry.put_device(tenant, device, user, key)?)
    }

    /// The registered device of `binding`, if `signature` over `signed` is its device
    /// key's. An unknown device and a bad signature are one refusal to the caller, and
    /// take about the same time (a signature is verified either way).
    pub(super) fn authenticate_device(
        &self,
        binding: &Binding,
        signed: &[u8],
        signature: &[u8; 64],
    ) -> Result<DeviceRecord, Refusal> {
        let refusal = |audit_reason| Refusal {
            error: ServiceError::DeviceNotAuthenticated,
            audit_reason,
        };
        match self.registry.get(binding.tenant(), binding.device())? {
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
        let binding = trace.envelope.map(Envelope::binding);
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
            reason,
        }
    }

    /// Records `event`; a failure is counted and returned.
    pub(super) fn record(&self, event: &AuditEvent) -> Result<(), ServiceError> {
        self.audit.record(event).map_err(|_| {
            self.audit_failures.fetch_add(1, Ordering::Relaxed);
            ServiceError::AuditUnavailable
        })
    }

    /// Audits a refusal and returns what the caller is told.
    pub(super) fn refuse(&self, trace: &Trace<'_>, refusal: Refusal) -> ServiceError {
        // A refusal stands whether or not its event is recorded; the failure is counted.
        let _ = self.record(&self.event(trace, AuditOutcome::Refused, refusal.audit_reason));
        refusal.error
    }
}

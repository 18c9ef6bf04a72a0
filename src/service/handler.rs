//! The recovery service: answers recovery requests and envelope registrations.
//!
//! A request is checked in a fixed order, cheapest and most public first: decoding, the
//! device's registration and signature, the MFA assertion and its claims, whether the
//! assertion is spent and the envelope current, the key, the rate limits, then the
//! envelope is opened and the answer sealed. Only then is state changed, in one commit
//! step (spend the assertion, take a rate slot, undone if the second fails). Every
//! refusal changes nothing and is audited once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use super::audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, RequestContext, ResetNotifier,
};
use super::error::{RateScope, ServiceError, StorageFailure};
use super::keyring::TenantKeyring;
use super::mfa::{self, MfaPolicy, TrustedIssuer};
use super::stores::{
    DeviceRegistry, MemoryDeviceRegistry, MemoryRateLimiter, MemoryReplayCache, RateKey,
    RateLimiter, RatePolicy, ReplayCache,
};
use crate::clock::{Clock, SystemClock};
use crate::envelope::Envelope;
use crate::hpke::{self, Ephemeral, ENC_LEN};
use crate::keydoc::{KeyDocumentSigner, SignedKeyDocument};
use crate::keys::ServicePrivateKey;
use crate::provider::provider;
use crate::signing::VerifyingKey;
use crate::wire::{
    self, EnvelopeRegistration, RecoveryRequest, RecoveryResponse, RESPONSE_LABEL,
    SEALED_SECRET_LEN,
};

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
    issuers: Vec<TrustedIssuer>,
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
            issuers: self.issuers,
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
        }
    }
}

/// The recovery service. Safe to share between threads.
pub struct RecoveryService {
    config: ServiceConfig,
    signer: KeyDocumentSigner,
    issuers: Vec<TrustedIssuer>,
    audit: Arc<dyn AuditSink>,
    replay: Arc<dyn ReplayCache>,
    registry: Arc<dyn DeviceRegistry>,
    rate: Arc<dyn RateLimiter>,
    notifier: Option<Arc<dyn ResetNotifier>>,
    clock: Arc<dyn Clock>,
    keyrings: RwLock<HashMap<String, TenantKeyring>>,
}

fn lock_failed<T>(_: T) -> ServiceError {
    ServiceError::Unavailable(StorageFailure("keyring lock poisoned"))
}

/// The facts an audit event records, gathered as the request is checked.
struct Trace<'a> {
    action: AuditAction,
    ctx: &'a RequestContext,
    envelope: Option<&'a Envelope>,
}

impl RecoveryService {
    /// Starts building a service that signs key documents with `signer`, accepts
    /// assertions from `issuers` and audits to `audit`.
    pub fn builder(
        config: ServiceConfig,
        signer: KeyDocumentSigner,
        issuers: Vec<TrustedIssuer>,
        audit: Arc<dyn AuditSink>,
    ) -> RecoveryServiceBuilder {
        RecoveryServiceBuilder {
            config,
            signer,
            issuers,
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

    fn audit(&self, trace: &Trace<'_>, outcome: AuditOutcome, reason: &'static str) -> AuditEvent {
        let binding = trace.envelope.map(Envelope::binding);
        let event = AuditEvent {
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
        };
        self.audit.record(&event);
        event
    }

    /// Answers a recovery request given as JSON; the answer is JSON too.
    ///
    /// # Errors
    /// Every [`ServiceError`]; each is audited.
    pub fn handle_json(
        &self,
        request: &[u8],
        ctx: &RequestContext,
    ) -> Result<Vec<u8>, ServiceError> {
        match RecoveryRequest::from_json(request) {
            Ok(r) => self.handle(&r, ctx).map(|resp| resp.to_json()),
            Err(e) => {
                let trace = Trace {
                    action: AuditAction::Recovery,
                    ctx,
                    envelope: None,
                };
                let err = ServiceError::MalformedRequest(e);
                self.audit(&trace, AuditOutcome::Refused, err.reason());
                Err(err)
            }
        }
    }

    /// Answers a recovery request: the envelope's secret, sealed to the request's one-time
    /// key, or a refusal.
    ///
    /// # Errors
    /// Every [`ServiceError`] but `MalformedRequest` and `RegistrationConflict`; each
    /// is audited and changes nothing.
    pub fn handle(
        &self,
        request: &RecoveryRequest,
        ctx: &RequestContext,
    ) -> Result<RecoveryResponse, ServiceError> {
        let trace = Trace {
            action: AuditAction::Recovery,
            ctx,
            envelope: Some(request.envelope()),
        };
        match self.release(request) {
            Ok(response) => {
                let event = self.audit(&trace, AuditOutcome::Released, "ok");
                if let Some(n) = &self.notifier {
                    n.secret_released(&event);
                }
                Ok(response)
            }
            Err(e) => {
                self.audit(&trace, AuditOutcome::Refused, e.reason());
                Err(e)
            }
        }
    }

    fn release(&self, request: &RecoveryRequest) -> Result<RecoveryResponse, ServiceError> {
        let envelope = request.envelope();
        let binding = envelope.binding();
        let now = self.clock.now();

        if VerifyingKey::from_sec1(request.ephemeral_key()).is_err() {
            return Err(ServiceError::MalformedRequest(
                crate::DecodeError::BadDocument {
                    reason: "ephemeral key is not a P-256 point",
                },
            ));
        }
        let record = self
            .registry
            .get(binding.tenant(), binding.device())?
            .ok_or(ServiceError::UnknownDevice)?;
        // Built once: the device signs these bytes, and the answer is bound to their hash.
        let signed = request.signed_bytes();
        if !record
            .device_key
            .verify(&signed, request.device_signature())
        {
            return Err(ServiceError::BadDeviceSignature);
        }
        if record.user != binding.user() {
            return Err(ServiceError::WrongUser);
        }
        let nonce = wire::mfa_nonce(&envelope.envelope_id(), request.ephemeral_key());
        let assertion = mfa::verify(
            request.assertion(),
            &self.issuers,
            &self.config.mfa,
            binding,
            &nonce,
            now,
        )?;
        if self.replay.is_spent(&assertion.issuer, &assertion.jti)? {
            return Err(ServiceError::AssertionReplayed);
        }
        if record.envelope != Some(envelope.envelope_id()) {
            return Err(ServiceError::StaleEnvelope);
        }
        let rate_keys = [
            RateKey {
                scope: RateScope::User,
                tenant: binding.tenant().to_owned(),
                id: binding.user().to_owned(),
            },
            RateKey {
                scope: RateScope::Device,
                tenant: binding.tenant().to_owned(),
                id: binding.device().to_owned(),
            },
        ];
        let sealed = {
            let rings = self.keyrings.read().map_err(lock_failed)?;
            let key = rings
                .get(binding.tenant())
                .ok_or(ServiceError::UnknownTenant)?
                .opener(envelope.key_id())?;
            if let Some((scope, retry_after)) = self.rate.check(&rate_keys, now)? {
                return Err(ServiceError::RateLimited { scope, retry_after });
            }
            let secret = key.open(envelope, binding).map_err(|e| match e {
                crate::Error::Unsupported(_) => ServiceError::Unsupported,
                _ => ServiceError::OpenFailed,
            })?;
            seal_response(
                request,
                &provider().sha256(&[&signed]),
                secret.expose_secret(),
            )?
        };

        // Commit: spend the assertion, then take the rate slots; undo the first if the
        // second is refused, so a refusal leaves no trace in either.
        if !self
            .replay
            .spend(&assertion.issuer, &assertion.jti, assertion.expires_at, now)?
        {
            return Err(ServiceError::AssertionReplayed);
        }
        match self.rate.acquire(&rate_keys, now) {
            Ok(None) => Ok(RecoveryResponse::new(envelope.envelope_id(), sealed)),
            Ok(Some((scope, retry_after))) => {
                self.replay.unspend(&assertion.issuer, &assertion.jti)?;
                Err(ServiceError::RateLimited { scope, retry_after })
            }
            Err(e) => {
                self.replay.unspend(&assertion.issuer, &assertion.jti)?;
                Err(e.into())
            }
        }
    }

    /// Registers the envelope a device will recover with, replacing its previous one.
    /// Replaying a registration that already took effect succeeds and changes nothing.
    ///
    /// # Errors
    /// [`ServiceError::UnknownDevice`], [`ServiceError::WrongUser`],
    /// [`ServiceError::BadDeviceSignature`], [`ServiceError::UnknownTenant`],
    /// [`ServiceError::UnknownKey`], [`ServiceError::RetiredKey`],
    /// [`ServiceError::RegistrationConflict`], [`ServiceError::Unavailable`].
    pub fn register_envelope(
        &self,
        registration: &EnvelopeRegistration,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let trace = Trace {
            action: AuditAction::Registration,
            ctx,
            envelope: Some(registration.envelope()),
        };
        match self.register(registration) {
            Ok(()) => {
                self.audit(&trace, AuditOutcome::Registered, "ok");
                Ok(())
            }
            Err(e) => {
                self.audit(&trace, AuditOutcome::Refused, e.reason());
                Err(e)
            }
        }
    }

    fn register(&self, registration: &EnvelopeRegistration) -> Result<(), ServiceError> {
        let envelope = registration.envelope();
        let binding = envelope.binding();
        let record = self
            .registry
            .get(binding.tenant(), binding.device())?
            .ok_or(ServiceError::UnknownDevice)?;
        if !record.device_key.verify(
            &registration.signed_bytes(),
            registration.device_signature(),
        ) {
            return Err(ServiceError::BadDeviceSignature);
        }
        if record.user != binding.user() {
            return Err(ServiceError::WrongUser);
        }
        {
            let rings = self.keyrings.read().map_err(lock_failed)?;
            rings
                .get(binding.tenant())
                .ok_or(ServiceError::UnknownTenant)?
                .opener(envelope.key_id())?;
        }
        let id = envelope.envelope_id();
        if record.envelope == Some(id) {
            return Ok(());
        }
        if self.registry.swap_envelope(
            binding.tenant(),
            binding.device(),
            registration.previous(),
            id,
        )? {
            Ok(())
        } else {
            Err(ServiceError::RegistrationConflict)
        }
    }
}

/// Seals the secret to the request's one-time key, bound to the request hash.
fn seal_response(
    request: &RecoveryRequest,
    request_hash: &[u8; 32],
    secret: &[u8; 32],
) -> Result<[u8; SEALED_SECRET_LEN], ServiceError> {
    let p = provider();
    let mut info = Vec::with_capacity(RESPONSE_LABEL.len() + 32);
    info.extend_from_slice(RESPONSE_LABEL);
    info.extend_from_slice(request_hash);
    let (enc, mut ctx) = hpke::setup_base_s(p, request.ephemeral_key(), &info, Ephemeral::Fresh)
        .map_err(|_| ServiceError::Crypto)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(48));
    buf.extend_from_slice(secret);
    ctx.seal(p, b"", &mut buf)
        .map_err(|_| ServiceError::Crypto)?;
    let mut out = [0u8; SEALED_SECRET_LEN];
    let (e, c) = out.split_at_mut(ENC_LEN);
    e.copy_from_slice(&enc);
    c.copy_from_slice(&buf);
    Ok(out)
}

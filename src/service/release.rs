//! Answering a recovery request. The checks run in a fixed order, cheapest and most
//! public first: decoding, the device's registration and signature (one refusal class
//! to the caller), the MFA assertion and its claims, whether the assertion is spent and
//! the envelope is the registered one, the key, the rate limits; then the envelope is
//! opened and the answer sealed. Only then is state changed, in one atomic store commit:
//! the assertion spent, the rate slots taken, the envelope still the registered one, its
//! key not retired, the audit event recorded. A refusal leaves no trace but its event.

use std::sync::atomic::Ordering;

use zeroize::Zeroizing;

use super::audit::{AuditAction, AuditEvent, AuditOutcome, RequestContext};
use super::error::{RateScope, ServiceError};
use super::handler::{RecoveryService, Refusal, Trace};
use super::mfa;
use super::store::{RateKey, ReleaseCommit, ReleaseOutcome, StorageFailure};
use crate::crypto::hpke::{self, Ephemeral};
use crate::crypto::provider::provider;
use crate::crypto::xwing::{self, Randomness};
use crate::envelope::binding::Binding;
use crate::envelope::Envelope;
use crate::keys::signing::VerifyingKey;
use crate::protocol::request::{mfa_nonce, OneTimeKem, RecoveryRequest};
use crate::protocol::response::{RecoveryResponse, RESPONSE_LABEL};

impl RecoveryService {
    /// Answers a recovery request given as JSON; the answer is JSON too. Malformed input
    /// is audited like any other refusal.
    ///
    /// # Errors
    /// Every [`ServiceError`] [`RecoveryService::handle`] returns, and
    /// [`ServiceError::MalformedRequest`]; each is audited.
    pub async fn handle_json(
        &self,
        request: &[u8],
        ctx: &RequestContext,
    ) -> Result<Vec<u8>, ServiceError> {
        match RecoveryRequest::from_json(request) {
            Ok(r) => self.handle(&r, ctx).await.map(|resp| resp.to_json()),
            Err(e) => {
                let trace = Trace {
                    action: AuditAction::Recovery,
                    ctx,
                    envelope: None,
                    subject: None,
                };
                Err(self
                    .refuse(&trace, ServiceError::MalformedRequest(e).into())
                    .await)
            }
        }
    }

    /// Answers a recovery request: the envelope's secret, sealed to the request's one-time
    /// key, or a refusal. The secret is released only once the store has committed the
    /// release with its audit event.
    ///
    /// # Errors
    /// Every [`ServiceError`] but `RegistrationConflict`, `SuiteMismatch` and
    /// `RegistrationProofInvalid`; each is audited and changes nothing.
    pub async fn handle(
        &self,
        request: &RecoveryRequest,
        ctx: &RequestContext,
    ) -> Result<RecoveryResponse, ServiceError> {
        let trace = Trace {
            action: AuditAction::Recovery,
            ctx,
            envelope: Some(request.envelope()),
            subject: None,
        };
        match self.release(request, &trace).await {
            Ok((response, event)) => {
                self.mirror(&event);
                self.notify(&trace, &event).await;
                self.purge_now_and_then(event.time).await;
                Ok(response)
            }
            Err(refusal) => Err(self.refuse(&trace, refusal).await),
        }
    }

    async fn release(
        &self,
        request: &RecoveryRequest,
        trace: &Trace<'_>,
    ) -> Result<(RecoveryResponse, AuditEvent), Refusal> {
        let envelope = request.envelope();
        let binding = envelope.binding();
        let now = self.clock.now();

        if !one_time_key_is_valid(request) {
            return Err(
                ServiceError::MalformedRequest(crate::DecodeError::BadDocument {
                    reason: "ephemeral key is not a key of the envelope's KEM",
                })
                .into(),
            );
        }
        // Built once: the device signs these bytes, and the answer is bound to their hash.
        let signed = request.signed_bytes();
        let record = self
            .authenticate_device(binding, signed, request.device_signature())
            .await?;
        if record.user != binding.user() {
            return Err(ServiceError::WrongUser.into());
        }
        let nonce = mfa_nonce(&envelope.envelope_id(), request.ephemeral_key());
        let assertion = mfa::verify(
            request.assertion(),
            &*self.issuer_trust()?,
            &self.config.mfa,
            binding,
            &nonce,
            now,
        )?;
        // An envelope carrying the registered id but other bytes is not the registered
        // one: refused before the store is asked, which compares ids only.
        let registered = record.envelope.as_ref();
        if registered.map(Envelope::envelope_id) == Some(envelope.envelope_id())
            && registered != Some(envelope)
        {
            return Err(ServiceError::StaleEnvelope.into());
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
        let event = self.event(trace, AuditOutcome::Released, "ok");
        let commit = ReleaseCommit {
            tenant: binding.tenant(),
            device: binding.device(),
            envelope_id: envelope.envelope_id(),
            key_id: envelope.key_id(),
            issuer: &assertion.issuer,
            token_id: &assertion.token_id,
            token_expires_at: assertion.expires_at,
            rate_keys: &rate_keys,
            policy: &self.rates,
            now,
            event: &event,
        };
        // What the commit would refuse (spent, stale, retired, rate), in one read, before
        // anything is opened.
        if let Some(refused) = self.store.check_release(&commit).await? {
            return Err(self.refused(binding, envelope, refused).await);
        }
        // The device record read above may predate a swap the store has seen since.
        if registered != Some(envelope) {
            return Err(ServiceError::StaleEnvelope.into());
        }
        let key = self
            .keyring_with(binding.tenant(), envelope.key_id())
            .await?
            .opener(envelope.key_id())?;
        let secret = key.open(envelope, binding).map_err(|e| match e {
            crate::Error::Unsupported(_) => ServiceError::Unsupported,
            _ => ServiceError::OpenFailed,
        })?;
        let sealed = seal_response(
            request,
            &provider().sha256(&[signed]),
            secret.expose_secret(),
        )?;
        drop(secret);

        match self.store.commit_release(&commit).await? {
            ReleaseOutcome::Committed => {
                Ok((RecoveryResponse::new(envelope.envelope_id(), sealed), event))
            }
            refused => Err(self.refused(binding, envelope, refused).await),
        }
    }

    /// The refusal for an outcome other than `Committed`.
    async fn refused(
        &self,
        binding: &Binding,
        envelope: &Envelope,
        outcome: ReleaseOutcome,
    ) -> Refusal {
        match outcome {
            ReleaseOutcome::Replayed => ServiceError::AssertionReplayed.into(),
            // A check that answers "refused: committed" is a store's bug: refuse safely.
            ReleaseOutcome::Committed => {
                StorageFailure::new("check the release (the store's answer is inconsistent)").into()
            }
            ReleaseOutcome::RateLimited { scope, retry_after } => {
                ServiceError::RateLimited { scope, retry_after }.into()
            }
            ReleaseOutcome::StaleEnvelope => ServiceError::StaleEnvelope.into(),
            ReleaseOutcome::RetiredKey => {
                // Another replica retired it: this one learns it now.
                self.refresh_keyring(binding.tenant()).await;
                ServiceError::RetiredKey {
                    key_id: envelope.key_id(),
                }
                .into()
            }
        }
    }

    /// Tells the notifier of a release; a failure is counted and audited, and the
    /// release stands.
    async fn notify(&self, trace: &Trace<'_>, released: &AuditEvent) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        if notifier.secret_released(released).is_err() {
            self.notifier_failures.fetch_add(1, Ordering::Relaxed);
            let event = self.event(trace, AuditOutcome::NotificationFailed, "notifier-failed");
            self.record(&event).await;
        }
    }
}

/// Seals the secret to the request's one-time key, bound to the request hash, with the
/// KEM the envelope's suite calls for (the request's decoder checked the key's length).
fn seal_response(
    request: &RecoveryRequest,
    request_hash: &[u8; 32],
    secret: &[u8; 32],
) -> Result<Vec<u8>, ServiceError> {
    let p = provider();
    let mut info = Vec::with_capacity(RESPONSE_LABEL.len() + 32);
    info.extend_from_slice(RESPONSE_LABEL);
    info.extend_from_slice(request_hash);
    fn crypto<E>(_: E) -> ServiceError {
        ServiceError::Crypto
    }
    let key = request.ephemeral_key();
    let (mut out, mut ctx) = match OneTimeKem::for_suite(request.envelope().suite()) {
        OneTimeKem::XWing => {
            let pk = <&[u8; xwing::PUBLIC_KEY_LEN]>::try_from(key).map_err(crypto)?;
            let (enc, ctx) =
                hpke::setup_base_s_xwing(p, pk, &info, Randomness::Fresh).map_err(crypto)?;
            (enc.to_vec(), ctx)
        }
        OneTimeKem::P256 => {
            let pk = <&[u8; hpke::ENC_LEN]>::try_from(key).map_err(crypto)?;
            let (enc, ctx) = hpke::setup_base_s(p, pk, &info, Ephemeral::Fresh).map_err(crypto)?;
            (enc.to_vec(), ctx)
        }
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(48));
    buf.extend_from_slice(secret);
    ctx.seal(p, b"", &mut buf).map_err(crypto)?;
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Whether the request's one-time key is a key of its KEM: a P-256 point on the curve,
/// or an X-Wing key whose ML-KEM part passes FIPS 203's modulus check.
fn one_time_key_is_valid(request: &RecoveryRequest) -> bool {
    let key = request.ephemeral_key();
    match OneTimeKem::for_suite(request.envelope().suite()) {
        OneTimeKem::XWing => {
            <&[u8; xwing::PUBLIC_KEY_LEN]>::try_from(key).is_ok_and(xwing::public_key_is_valid)
        }
        OneTimeKem::P256 => {
            <&[u8; hpke::ENC_LEN]>::try_from(key).is_ok_and(|k| VerifyingKey::from_sec1(k).is_ok())
        }
    }
}

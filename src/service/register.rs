//! Envelope registration: which envelope the service will open for a device. A
//! registration is a compare-and-swap on the previous envelope; replacing one also needs
//! a proof derived from the previous envelope's secret, which only the current device
//! holds (a stale backup does not), and the new envelope must open, so that a device is
//! never left relying on an envelope the service cannot open.

use subtle::ConstantTimeEq;

use super::audit::{AuditAction, AuditEvent, AuditOutcome, RequestContext};
use super::error::ServiceError;
use super::handler::{RecoveryService, Refusal, Trace};
use super::store::EnvelopeSwap;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::protocol::registration::{self, EnvelopeRegistration};

fn open_failure(e: Error) -> ServiceError {
    match e {
        Error::Unsupported(_) => ServiceError::Unsupported,
        _ => ServiceError::OpenFailed,
    }
}

impl RecoveryService {
    /// Registers the envelope a device will recover with, replacing its previous one.
    /// Replaying a registration that already took effect succeeds and changes nothing.
    ///
    /// # Errors
    /// [`ServiceError::DeviceNotAuthenticated`], [`ServiceError::WrongUser`],
    /// [`ServiceError::UnknownTenant`], [`ServiceError::UnknownKey`],
    /// [`ServiceError::RetiredKey`], [`ServiceError::SuiteMismatch`],
    /// [`ServiceError::OpenFailed`] (the new envelope does not open for its binding),
    /// [`ServiceError::Unsupported`], [`ServiceError::RegistrationConflict`],
    /// [`ServiceError::RegistrationProofInvalid`], [`ServiceError::Unavailable`]; each is
    /// audited and changes nothing.
    pub async fn register_envelope(
        &self,
        registration: &EnvelopeRegistration,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let trace = Trace {
            action: AuditAction::Registration,
            ctx,
            envelope: Some(registration.envelope()),
            subject: None,
        };
        match self.register(registration, &trace).await {
            Ok(event) => {
                self.mirror(&event);
                Ok(())
            }
            Err(refusal) => Err(self.refuse(&trace, refusal).await),
        }
    }

    /// As [`RecoveryService::register_envelope`], for a registration given as JSON;
    /// malformed input is audited like any other refusal.
    ///
    /// # Errors
    /// [`ServiceError::MalformedRequest`], and every error of
    /// [`RecoveryService::register_envelope`].
    pub async fn register_envelope_json(
        &self,
        registration: &[u8],
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        match EnvelopeRegistration::from_json(registration) {
            Ok(r) => self.register_envelope(&r, ctx).await,
            Err(e) => {
                let trace = Trace {
                    action: AuditAction::Registration,
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

    async fn register(
        &self,
        registration: &EnvelopeRegistration,
        trace: &Trace<'_>,
    ) -> Result<AuditEvent, Refusal> {
        let envelope = registration.envelope();
        let binding = envelope.binding();
        let signed = registration.signed_bytes();
        let record = self
            .authenticate_device(binding, signed, registration.device_signature())
            .await?;
        if record.user != binding.user() {
            return Err(ServiceError::WrongUser.into());
        }
        let current = record.envelope.as_ref();
        if current == Some(envelope) {
            // A retry after a lost answer: nothing to change.
            let event = self.event(trace, AuditOutcome::Registered, "unchanged");
            self.store.record_event(&event).await?;
            return Ok(event);
        }
        if registration.previous() != current.map(Envelope::envelope_id) {
            return Err(ServiceError::RegistrationConflict.into());
        }
        let ring = self
            .keyring_with(binding.tenant(), envelope.key_id())
            .await?;
        let key = ring.opener(envelope.key_id())?;
        if key.suite() != envelope.suite() {
            return Err(ServiceError::SuiteMismatch.into());
        }
        key.open(envelope, binding).map_err(open_failure)?;
        if let Some(current) = current {
            let secret = ring
                .opener(current.key_id())?
                .open(current, current.binding())
                .map_err(open_failure)?;
            let key = registration::registration_key(&secret).map_err(|_| ServiceError::Crypto)?;
            let expected = registration::registration_proof(&key, signed);
            let proven = registration
                .proof()
                .is_some_and(|p| bool::from(p.ct_eq(&expected)));
            if !proven {
                return Err(ServiceError::RegistrationProofInvalid.into());
            }
        }
        let event = self.event(trace, AuditOutcome::Registered, "ok");
        let swapped = self
            .store
            .swap_envelope(&EnvelopeSwap {
                tenant: binding.tenant(),
                device: binding.device(),
                expected: registration.previous(),
                new: Some(envelope),
                event: &event,
            })
            .await?;
        if swapped {
            Ok(event)
        } else {
            Err(ServiceError::RegistrationConflict.into())
        }
    }
}

//! Device registration: which user a device belongs to and which key signs its requests.
//! A first registration, or the same one again, is an ordinary act; replacing a device's
//! key is an explicit one that needs a new key and clears the device's envelope (the
//! device must register one afresh, authenticated by the new key alone). Both are
//! audited.

use super::audit::{AuditAction, AuditOutcome, RequestContext};
use super::error::ServiceError;
use super::handler::{RecoveryService, Refusal, Trace};
use crate::envelope::binding::Binding;
use crate::keys::VerifyingKey;
use crate::protocol::device::DeviceRegistration;

impl RecoveryService {
    /// Registers a device to a user with its device key (the device's
    /// `Enrolment::device_public_key`). Done by the identity provider's provisioning or
    /// an administrator, whom the caller authenticates. Registering it again with the
    /// same key and user changes nothing.
    ///
    /// # Errors
    /// [`ServiceError::DeviceAlreadyRegistered`] if the device is registered under another
    /// key or user (see [`RecoveryService::reregister_device`]);
    /// [`ServiceError::Unavailable`]. Each is audited.
    pub async fn register_device(
        &self,
        binding: &Binding,
        key: VerifyingKey,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.device_registration(&DeviceRegistration::new(binding, key, false), ctx)
            .await
    }

    /// Re-registers a device under a new key (after a destructive reset, or a
    /// reinstalled device keeping its name): its registered envelope is cleared and its
    /// old key, and every backup holding it, stop working.
    ///
    /// # Errors
    /// [`ServiceError::DeviceKeyUnchanged`] if `key` is the device's key already;
    /// [`ServiceError::Unavailable`]. Each is audited.
    pub async fn reregister_device(
        &self,
        binding: &Binding,
        key: VerifyingKey,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.device_registration(&DeviceRegistration::new(binding, key, true), ctx)
            .await
    }

    /// A device registration given as JSON ([`DeviceRegistration::to_json`]); malformed
    /// input is audited like any other refusal.
    ///
    /// # Errors
    /// [`ServiceError::MalformedRequest`], and the errors of
    /// [`RecoveryService::register_device`] or [`RecoveryService::reregister_device`].
    pub async fn register_device_json(
        &self,
        registration: &[u8],
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        match DeviceRegistration::from_json(registration) {
            Ok(r) => self.device_registration(&r, ctx).await,
            Err(e) => {
                let trace = Trace {
                    action: AuditAction::DeviceRegistration,
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

    async fn device_registration(
        &self,
        r: &DeviceRegistration,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let trace = Trace {
            action: AuditAction::DeviceRegistration,
            ctx,
            envelope: None,
            subject: Some(r.binding()),
        };
        match self.register_device_checked(r).await {
            Ok(reason) => {
                self.record(&self.event(&trace, AuditOutcome::Registered, reason))
                    .await;
                Ok(())
            }
            Err(refusal) => Err(self.refuse(&trace, refusal).await),
        }
    }

    async fn register_device_checked(
        &self,
        r: &DeviceRegistration,
    ) -> Result<&'static str, Refusal> {
        let b = r.binding();
        let existing = self.store.device(b.tenant(), b.device()).await?;
        let same = existing
            .as_ref()
            .is_some_and(|d| d.device_key == *r.device_key() && d.user == b.user());
        match (&existing, r.replace()) {
            (None, _) => {}
            (Some(_), false) if same => return Ok("unchanged"),
            (Some(_), false) => return Err(ServiceError::DeviceAlreadyRegistered.into()),
            (Some(d), true) if d.device_key == *r.device_key() => {
                return Err(ServiceError::DeviceKeyUnchanged.into())
            }
            (Some(_), true) => {}
        }
        self.store
            .put_device(b.tenant(), b.device(), b.user(), r.device_key())
            .await?;
        Ok(if existing.is_some() { "replaced" } else { "ok" })
    }
}

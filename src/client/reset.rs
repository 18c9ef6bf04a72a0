//! The device's half of a recovery after the service has released the secret: opening
//! the answer, the non-destructive reset, and registering the envelope that replaces the
//! one used, so that the old envelope keeps working until the service holds the new one.

use core::fmt;

use super::container::{authenticate, device_key, seal_state, Container};
use super::error::ClientError;
use super::policy::Pin;
use super::protector::RecoveryProtector;
use super::recovery::PendingRecovery;
use super::store::ContainerStore;
use crate::crypto::secret::RecoverySecret;
use crate::envelope::{Envelope, EnvelopeId};
use crate::keys::signing::{SigningKey, VerifyingKey};
use crate::protocol::key_document::SignedKeyDocument;
use crate::protocol::registration::{self, EnvelopeRegistration};
use crate::protocol::response::RecoveryResponse;

/// A completed non-destructive reset.
#[derive(Debug)]
pub struct Reset {
    /// The credential public key: unchanged, nothing to re-register.
    pub credential_public_key: VerifyingKey,
    /// The new envelope (a new secret, sealed to the current key): register it
    /// ([`Container::pending_registration`]). Until the service confirms it, the envelope
    /// it replaces (and its secret) keeps working, so the user is never stranded.
    pub envelope: Envelope,
}

/// A recovery whose secret the service released but whose reset did not complete (the
/// new PIN refused, a stale key document, a storage failure). It holds the released
/// secret, so the reset can be retried with [`Container::reset_with_secret`]: no second
/// MFA, no second release. The secret is wiped when this is dropped.
pub struct RecoveryIncomplete {
    error: ClientError,
    secret: Option<RecoverySecret>,
}

impl RecoveryIncomplete {
    /// Why the reset did not complete.
    pub fn error(&self) -> &ClientError {
        &self.error
    }

    /// The released secret, to retry the reset with (`None` if the answer did not open:
    /// then there is nothing to retry with).
    pub fn into_secret(self) -> Option<RecoverySecret> {
        self.secret
    }
}

impl fmt::Debug for RecoveryIncomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryIncomplete")
            .field("error", &self.error)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl fmt::Display for RecoveryIncomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.secret {
            Some(_) => write!(
                f,
                "reset not completed ({}); retry with the released secret",
                self.error
            ),
            None => write!(f, "recovery failed: {}", self.error),
        }
    }
}

impl std::error::Error for RecoveryIncomplete {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<S: ContainerStore> Container<S> {
    /// Starts a recovery: a one-time key whose nonce goes to the identity provider, for
    /// the envelope the service holds as far as the device knows — the confirmed one, or
    /// before any confirmation the one waiting for registration. If a new envelope is
    /// waiting, send [`Container::pending_registration`] first: if the service already
    /// took it (its answer was lost), confirming it makes this recover with it.
    ///
    /// # Errors
    /// [`ClientError::RecoveryDisabled`] without a recovery protector;
    /// [`ClientError::NotEnrolled`], [`ClientError::CorruptState`].
    pub fn begin_recovery(&self) -> Result<PendingRecovery, ClientError> {
        let state = self.load()?;
        let key = device_key(&state)?;
        let envelope = match (state.current, state.next) {
            (Some(current), _) => current.envelope,
            (None, Some(next)) => next.protector.envelope,
            (None, None) => return Err(ClientError::RecoveryDisabled),
        };
        PendingRecovery::for_envelope(envelope, key)
    }

    /// Completes a recovery with the service's answer: opens it with the one-time key,
    /// then resets the PIN as [`Container::reset_with_secret`] does. Check the new PIN
    /// with [`Container::check_new_pin`] before sending the request.
    ///
    /// # Errors
    /// [`RecoveryIncomplete`]: its [`RecoveryIncomplete::error`] is
    /// [`ClientError::ResponseMismatch`] if the answer is not for this request, or any
    /// error of [`Container::reset_with_secret`]; in the latter case it carries the
    /// released secret to retry with.
    pub fn complete_recovery(
        &self,
        pending: PendingRecovery,
        response: &RecoveryResponse,
        new_pin: &Pin,
        keys: &SignedKeyDocument,
    ) -> Result<Reset, RecoveryIncomplete> {
        let secret = pending.open(response).map_err(|error| RecoveryIncomplete {
            error,
            secret: None,
        })?;
        self.reset_with_secret(&secret, new_pin, keys)
            .map_err(|error| RecoveryIncomplete {
                error,
                secret: Some(secret),
            })
    }

    /// The non-destructive reset: unlocks the container with the recovery secret the
    /// service released, sets `new_pin` (under a new protector of the policy's kind),
    /// clears the Argon2id protector's lockout (a TPM's lockout heals only with time, and
    /// the new PIN waits for it; the reset itself works during it), and seals a new recovery
    /// secret to the current service key as the next envelope. The credential keys are
    /// unchanged. The envelope whose secret this is stays the service's until the new
    /// one is confirmed ([`Container::confirm_registration`]), when its protector is
    /// dropped and the old secret stops opening the container.
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`], [`ClientError::RecoveryDisabled`],
    /// [`ClientError::WrongRecoverySecret`], [`ClientError::PinReused`], key-document
    /// errors, [`ClientError::Store`], [`ClientError::Tampered`], [`ClientError::Tpm`]
    /// (TPM protector: the new PIN's object could not be sealed); none changes what is
    /// stored, and each can be retried with the same secret.
    pub fn reset_with_secret(
        &self,
        secret: &RecoverySecret,
        new_pin: &Pin,
        keys: &SignedKeyDocument,
    ) -> Result<Reset, ClientError> {
        self.policy.pin.check(new_pin)?;
        let _lock = self.store.lock()?;
        let mut state = self.load()?;
        if state.current.is_none() && state.next.is_none() {
            return Err(ClientError::RecoveryDisabled);
        }
        // The service released the secret of the envelope it holds: that protector
        // becomes the current one, whichever it was.
        let opened = state
            .current
            .as_ref()
            .and_then(|p| p.unlock(secret, &state.identity).ok())
            .map(|ck| (ck, false))
            .or_else(|| {
                state
                    .next
                    .as_ref()
                    .and_then(|n| n.protector.unlock(secret, &state.identity).ok())
                    .map(|ck| (ck, true))
            });
        let (ck, was_next) = opened.ok_or(ClientError::WrongRecoverySecret)?;
        let mut unlocked = authenticate(&state, ck)?;
        self.set_pin(&mut state, &mut unlocked, new_pin)?;
        let doc = self.verify_keys(&state, keys)?;
        if was_next {
            state.current = state.next.take().map(|n| n.protector);
        }
        state.next = None;
        let current_key = registration::registration_key(secret)?;
        self.seal_next(&mut state, &unlocked.ck, &doc, Some(&*current_key))?;
        state.failed_attempts = 0;
        seal_state(&mut state, &unlocked)?;
        self.write(&state)?;
        let envelope = state
            .next
            .map(|n| n.protector.envelope)
            .ok_or(ClientError::RecoveryDisabled)?;
        let credential_public_key =
            VerifyingKey::from_sec1(&state.credential_public).map_err(|_| ClientError::Tampered)?;
        Ok(Reset {
            credential_public_key,
            envelope,
        })
    }

    /// The registration the service still needs, if any: the new envelope, signed by the
    /// device key, replacing the one the service holds, with the proof that the device
    /// knows that envelope's secret. Send it (`RecoveryService::register_envelope`, or its
    /// JSON form `to_json`), then [`Container::confirm_registration`] when the service
    /// accepts it. Sending it again is harmless: the service answers a registration it
    /// already took with success.
    ///
    /// # Errors
    /// [`ClientError::NotEnrolled`], [`ClientError::CorruptState`],
    /// [`ClientError::Crypto`].
    pub fn pending_registration(&self) -> Result<Option<EnvelopeRegistration>, ClientError> {
        let state = self.load()?;
        let device_key = device_key(&state)?;
        let previous = state.previous();
        let Some(next) = state.next else {
            return Ok(None);
        };
        let envelope = next.protector.envelope;
        let signed = registration::registration_signed_bytes(&envelope, previous)
            .map_err(ClientError::CorruptState)?;
        let signature = device_key.sign(&signed)?;
        Ok(Some(EnvelopeRegistration::new(
            envelope, previous, next.proof, signature, signed,
        )))
    }

    /// The device key itself: it is stored in the clear (see SECURITY.md), so anyone with
    /// a copy of the container has it; tests use this to play that attacker.
    #[doc(hidden)]
    pub fn __device_key(&self) -> Result<SigningKey, ClientError> {
        device_key(&self.load()?)
    }

    /// Records that the service registered `envelope_id`: the waiting envelope becomes
    /// the current one, and the protector it replaces (with its secret) is dropped.
    /// Confirming the current envelope again changes nothing.
    ///
    /// # Errors
    /// [`ClientError::ResponseMismatch`] if it is neither the waiting nor the current
    /// envelope; storage and decoding errors.
    pub fn confirm_registration(&self, envelope_id: EnvelopeId) -> Result<(), ClientError> {
        let _lock = self.store.lock()?;
        let mut state = self.load()?;
        let id = |p: &RecoveryProtector| p.envelope.envelope_id();
        if state.next.as_ref().map(|n| id(&n.protector)) == Some(envelope_id) {
            state.current = state.next.take().map(|n| n.protector);
            return self.write(&state);
        }
        if state.current.as_ref().map(id) == Some(envelope_id) {
            return Ok(());
        }
        Err(ClientError::ResponseMismatch)
    }
}

//! The credential container and its operations. Every operation reads the stored state,
//! computes a complete new state in memory, and replaces the stored state in one atomic
//! write; so a failure (or a crash) at any point leaves the old state or the new one.

use std::sync::Arc;

use super::error::ClientError;
use super::policy::{ContainerPolicy, Pin};
use super::protector::{ContainerKey, PinProtector, RecoveryProtector};
use super::recovery::PendingRecovery;
use super::state::{Payload, State};
use super::store::ContainerStore;
use crate::binding::Binding;
use crate::clock::{Clock, SystemClock};
use crate::envelope::{Envelope, EnvelopeId};
use crate::keydoc::{KeyDocument, SignedKeyDocument};
use crate::secret::RecoverySecret;
use crate::signing::{SigningKey, VerifyingKey};
use crate::wire::{self, EnvelopeRegistration, RecoveryResponse};

const SECONDS_PER_DAY: u64 = 86_400;

/// The service a device trusts: the key-document signing key it pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTrust {
    /// The pinned public key that signs the service's key documents.
    pub signing_key: VerifyingKey,
}

/// A new container.
#[derive(Debug)]
pub struct Enrolment {
    /// The credential public key to register with the identity provider.
    pub credential_public_key: VerifyingKey,
    /// The envelope to register with the recovery service (when recovery is enabled).
    pub envelope: Option<Envelope>,
}

/// A successful PIN sign-in.
#[derive(Debug)]
pub struct SignIn {
    /// The credential key's signature (`r || s`) over the challenge.
    pub signature: [u8; 64],
    /// A fresh envelope sealed to the service's current key, when the stored one was
    /// sealed to an older key (or recovery was just enabled): register it.
    pub resealed: Option<Envelope>,
}

/// A completed non-destructive reset.
#[derive(Debug)]
pub struct Reset {
    /// The credential public key: unchanged, nothing to re-register.
    pub credential_public_key: VerifyingKey,
    /// The new envelope (a new secret, sealed to the current key): register it.
    pub envelope: Envelope,
}

/// A completed destructive reset: a new container with a new credential key.
#[derive(Debug)]
pub struct DestructiveReset {
    /// The NEW credential public key: it must be registered with the identity provider
    /// again, and the old one revoked.
    pub credential_public_key: VerifyingKey,
    /// The new envelope, when recovery is enabled.
    pub envelope: Option<Envelope>,
}

/// What a container's stored state says, without any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// The identity the container belongs to.
    pub identity: Binding,
    /// The credential public key.
    pub credential_public_key: VerifyingKey,
    /// Failed PIN attempts since the last success.
    pub failed_attempts: u32,
    /// Whether the PIN protector is locked.
    pub locked_out: bool,
    /// Whether a recovery protector exists.
    pub recoverable: bool,
    /// Whether the current envelope still has to be registered with the service.
    pub registration_pending: bool,
}

/// A credential container for one (tenant, user, device), over a store.
pub struct Container<S: ContainerStore> {
    store: S,
    policy: ContainerPolicy,
    trust: Option<ServiceTrust>,
    clock: Arc<dyn Clock>,
}

/// The container key and decrypted payload of an unlocked state.
struct Unlocked {
    ck: ContainerKey,
    payload: Payload,
}

impl<S: ContainerStore> Container<S> {
    /// A container over `store` under `policy`, trusting key documents signed by
    /// `trust` (needed whenever recovery is enabled).
    pub fn new(store: S, policy: ContainerPolicy, trust: Option<ServiceTrust>) -> Self {
        Self::with_clock(store, policy, trust, Arc::new(SystemClock))
    }

    /// As [`Container::new`], with an injected clock.
    pub fn with_clock(
        store: S,
        policy: ContainerPolicy,
        trust: Option<ServiceTrust>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Container {
            store,
            policy,
            trust,
            clock,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &ContainerPolicy {
        &self.policy
    }

    fn limit(&self) -> u32 {
        self.policy.attempt_limit.max(1)
    }

    fn load(&self) -> Result<State, ClientError> {
        let bytes = self.store.load()?.ok_or(ClientError::NotEnrolled)?;
        State::decode(&bytes).map_err(ClientError::CorruptState)
    }

    fn write(&self, state: &State) -> Result<(), ClientError> {
        Ok(self.store.replace(&state.encode())?)
    }

    /// The state, without any secret.
    ///
    /// # Errors
    /// [`ClientError::NotEnrolled`], [`ClientError::CorruptState`] or
    /// [`ClientError::Store`].
    pub fn status(&self) -> Result<ContainerStatus, ClientError> {
        let s = self.load()?;
        Ok(ContainerStatus {
            credential_public_key: VerifyingKey::from_sec1(&s.credential_public)
                .map_err(|_| ClientError::Tampered)?,
            failed_attempts: s.failed_attempts,
            locked_out: s.failed_attempts >= self.limit(),
            recoverable: s.recovery.is_some(),
            registration_pending: pending_registration(&s).is_some(),
            identity: s.identity,
        })
    }

    /// Creates the container: a new credential key, a PIN protector and, if policy
    /// enables recovery, a recovery secret sealed to the service's current key.
    ///
    /// # Errors
    /// [`ClientError::AlreadyEnrolled`], [`ClientError::PinPolicy`], key-document
    /// errors when recovery is enabled, [`ClientError::Store`].
    pub fn enrol(
        &self,
        identity: &Binding,
        pin: &Pin,
        keys: Option<&SignedKeyDocument>,
    ) -> Result<Enrolment, ClientError> {
        if self.store.load()?.is_some() {
            return Err(ClientError::AlreadyEnrolled);
        }
        let (state, credential) = self.fresh_state(identity, pin, keys)?;
        self.write(&state)?;
        Ok(Enrolment {
            credential_public_key: credential,
            envelope: state.recovery.map(|r| r.envelope),
        })
    }

    /// Replaces the container with a new one (new credential key, new PIN): the way back
    /// when the PIN is forgotten and recovery is disabled, or the container is locked
    /// or damaged. The new credential key must be registered again.
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`], key-document errors when recovery is enabled,
    /// [`ClientError::Store`].
    pub fn destructive_reset(
        &self,
        identity: &Binding,
        new_pin: &Pin,
        keys: Option<&SignedKeyDocument>,
    ) -> Result<DestructiveReset, ClientError> {
        let (state, credential) = self.fresh_state(identity, new_pin, keys)?;
        self.write(&state)?;
        Ok(DestructiveReset {
            credential_public_key: credential,
            envelope: state.recovery.map(|r| r.envelope),
        })
    }

    fn fresh_state(
        &self,
        identity: &Binding,
        pin: &Pin,
        keys: Option<&SignedKeyDocument>,
    ) -> Result<(State, VerifyingKey), ClientError> {
        self.policy.pin.check(pin)?;
        let credential = SigningKey::generate()?;
        let public = *credential.verifying_key();
        let scalar = credential.scalar();
        let ck = ContainerKey::generate()?;
        let mut history = Vec::new();
        if self.policy.pin.history_len() > 0 {
            history.push(ck.history_tag(pin)?);
        }
        let unlocked = Unlocked {
            payload: Payload {
                credential: scalar,
                history,
            },
            ck,
        };
        let mut state = State {
            identity: identity.clone(),
            credential_public: *public.to_sec1(),
            payload_nonce: [0; 12],
            payload: Vec::new(),
            pin: PinProtector::create(&unlocked.ck, pin, self.policy.argon2, identity)?,
            pin_set_at: self.clock.now(),
            recovery: None,
            key_doc_serial: 0,
            mac: [0; 32],
            failed_attempts: 0,
            registered: None,
        };
        if self.policy.recovery_enabled {
            let doc = self.verify_keys(&state, keys.ok_or(ClientError::KeyDocumentRequired)?)?;
            self.reseal(&mut state, &unlocked.ck, &doc)?;
        }
        seal_state(&mut state, &unlocked)?;
        Ok((state, public))
    }

    /// The key document, verified under the pinned key for this container's tenant,
    /// now, and no older than the newest one the container has accepted.
    fn verify_keys(
        &self,
        state: &State,
        keys: &SignedKeyDocument,
    ) -> Result<KeyDocument, ClientError> {
        let trust = self.trust.as_ref().ok_or(ClientError::NoServiceTrust)?;
        Ok(keys.verify(
            &trust.signing_key,
            state.identity.tenant(),
            self.clock.now(),
            state.key_doc_serial,
        )?)
    }

    /// A fresh secret sealed to the current key of a verified document, and its protector.
    fn reseal(
        &self,
        state: &mut State,
        ck: &ContainerKey,
        doc: &KeyDocument,
    ) -> Result<(), ClientError> {
        let current = doc.current().ok_or(ClientError::KeyDocument(
            crate::keydoc::KeyDocumentError::BadKeys,
        ))?;
        let secret = RecoverySecret::generate()?;
        let envelope = current.seal_at(&secret, &state.identity, self.clock.now())?;
        state.recovery = Some(RecoveryProtector::create(
            ck,
            &secret,
            envelope,
            &state.identity,
        )?);
        state.key_doc_serial = doc.serial;
        Ok(())
    }

    /// Checks the PIN. The failed-attempt counter is incremented and persisted before
    /// the check, so killing the process mid-check cannot reset it.
    fn unlock_with_pin(&self, state: &mut State, pin: &Pin) -> Result<Unlocked, ClientError> {
        let limit = self.limit();
        if state.failed_attempts >= limit {
            return Err(ClientError::LockedOut);
        }
        state.failed_attempts = state.failed_attempts.saturating_add(1);
        self.write(state)?;
        let ck = match state.pin.unlock(pin, &state.identity) {
            Ok(ck) => ck,
            Err(_) => {
                return Err(ClientError::WrongPin {
                    attempts_left: limit.saturating_sub(state.failed_attempts),
                })
            }
        };
        authenticate(state, ck)
    }

    fn pin_expired(&self, state: &State) -> bool {
        match self.policy.pin.expiry_days {
            Some(days) => {
                self.clock.now()
                    >= state
                        .pin_set_at
                        .saturating_add(u64::from(days) * SECONDS_PER_DAY)
            }
            None => false,
        }
    }

    /// Signs `challenge` with the credential key after checking the PIN. If recovery is
    /// enabled and a key document is given whose current key differs from the one the
    /// envelope is sealed to, reseals a fresh secret to the current key (so no envelope
    /// is stranded on a retired key); if recovery was disabled, drops the recovery
    /// protector.
    ///
    /// # Errors
    /// [`ClientError::WrongPin`], [`ClientError::LockedOut`],
    /// [`ClientError::PinExpired`] (after a correct PIN; change it), key-document errors,
    /// [`ClientError::Store`], [`ClientError::Tampered`].
    pub fn sign_in(
        &self,
        pin: &Pin,
        challenge: &[u8],
        keys: Option<&SignedKeyDocument>,
    ) -> Result<SignIn, ClientError> {
        let mut state = self.load()?;
        let unlocked = self.unlock_with_pin(&mut state, pin)?;
        state.failed_attempts = 0;
        if self.pin_expired(&state) {
            self.write(&state)?;
            return Err(ClientError::PinExpired);
        }
        let mut resealed = None;
        let mut changed = false;
        match (self.policy.recovery_enabled, keys) {
            (true, Some(keys)) => {
                let doc = match self.verify_keys(&state, keys) {
                    Ok(doc) => doc,
                    Err(e) => {
                        self.write(&state)?;
                        return Err(e);
                    }
                };
                let current = doc.current().map(|k| k.key_id());
                if current.is_some()
                    && current != state.recovery.as_ref().map(|r| r.envelope.key_id())
                {
                    self.reseal(&mut state, &unlocked.ck, &doc)?;
                    resealed = state.recovery.as_ref().map(|r| r.envelope.clone());
                    changed = true;
                }
            }
            (false, _) if state.recovery.is_some() => {
                state.recovery = None;
                changed = true;
            }
            _ => {}
        }
        let signature = SigningKey::from_scalar(&unlocked.payload.credential)?.sign(challenge)?;
        if changed {
            seal_state(&mut state, &unlocked)?;
        }
        self.write(&state)?;
        Ok(SignIn {
            signature,
            resealed,
        })
    }

    /// Changes the PIN, knowing the old one.
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`] (checked first: nothing is counted or stored),
    /// [`ClientError::WrongPin`], [`ClientError::LockedOut`], [`ClientError::PinReused`],
    /// [`ClientError::Store`], [`ClientError::Tampered`].
    pub fn change_pin(&self, old: &Pin, new: &Pin) -> Result<(), ClientError> {
        self.policy.pin.check(new)?;
        let mut state = self.load()?;
        let mut unlocked = self.unlock_with_pin(&mut state, old)?;
        state.failed_attempts = 0;
        if let Err(e) = self.set_pin(&mut state, &mut unlocked, new) {
            self.write(&state)?;
            return Err(e);
        }
        seal_state(&mut state, &unlocked)?;
        self.write(&state)
    }

    fn set_pin(
        &self,
        state: &mut State,
        unlocked: &mut Unlocked,
        new: &Pin,
    ) -> Result<(), ClientError> {
        let tag = unlocked.ck.history_tag(new)?;
        let keep = self.policy.pin.history_len();
        if unlocked
            .payload
            .history
            .iter()
            .take(keep)
            .any(|h| bool::from(subtle::ConstantTimeEq::ct_eq(&h[..], &tag[..])))
        {
            return Err(ClientError::PinReused);
        }
        let mut history = Vec::with_capacity(keep);
        if keep > 0 {
            history.push(tag);
            history.extend(unlocked.payload.history.iter().take(keep - 1).copied());
        }
        unlocked.payload.history = history;
        state.pin = PinProtector::create(&unlocked.ck, new, self.policy.argon2, &state.identity)?;
        state.pin_set_at = self.clock.now();
        Ok(())
    }

    /// Starts a recovery: a one-time key whose nonce goes to the identity provider.
    ///
    /// # Errors
    /// [`ClientError::RecoveryDisabled`] without a recovery protector;
    /// [`ClientError::NotEnrolled`], [`ClientError::CorruptState`].
    pub fn begin_recovery(&self) -> Result<PendingRecovery, ClientError> {
        let state = self.load()?;
        let envelope = state
            .recovery
            .ok_or(ClientError::RecoveryDisabled)?
            .envelope;
        PendingRecovery::for_envelope(envelope)
    }

    /// Completes a recovery with the service's answer: opens it with the one-time key,
    /// then resets the PIN as [`Container::reset_with_secret`] does.
    ///
    /// # Errors
    /// [`ClientError::ResponseMismatch`] if the answer is not for this request, and
    /// every error of [`Container::reset_with_secret`].
    pub fn complete_recovery(
        &self,
        pending: PendingRecovery,
        response: &RecoveryResponse,
        new_pin: &Pin,
        keys: &SignedKeyDocument,
    ) -> Result<Reset, ClientError> {
        self.policy.pin.check(new_pin)?;
        let secret = pending.open(response)?;
        self.reset_with_secret(secret, new_pin, keys)
    }

    /// The non-destructive reset: unlocks the container with the recovery secret the
    /// service returned, sets `new_pin`, clears any lockout, and rotates to a new
    /// recovery secret sealed to the current service key. The credential keys are
    /// unchanged. The old secret is wiped (it is consumed) and no longer opens the
    /// container.
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`], [`ClientError::RecoveryDisabled`],
    /// [`ClientError::WrongRecoverySecret`], [`ClientError::PinReused`], key-document
    /// errors, [`ClientError::Store`], [`ClientError::Tampered`]; none changes what is
    /// stored.
    pub fn reset_with_secret(
        &self,
        secret: RecoverySecret,
        new_pin: &Pin,
        keys: &SignedKeyDocument,
    ) -> Result<Reset, ClientError> {
        self.policy.pin.check(new_pin)?;
        let mut state = self.load()?;
        let protector = state
            .recovery
            .as_ref()
            .ok_or(ClientError::RecoveryDisabled)?;
        let ck = protector
            .unlock(&secret, &state.identity)
            .map_err(|_| ClientError::WrongRecoverySecret)?;
        drop(secret);
        let mut unlocked = authenticate(&state, ck)?;
        self.set_pin(&mut state, &mut unlocked, new_pin)?;
        let doc = self.verify_keys(&state, keys)?;
        self.reseal(&mut state, &unlocked.ck, &doc)?;
        state.failed_attempts = 0;
        seal_state(&mut state, &unlocked)?;
        self.write(&state)?;
        let envelope = state
            .recovery
            .map(|r| r.envelope)
            .ok_or(ClientError::RecoveryDisabled)?;
        let credential_public_key =
            VerifyingKey::from_sec1(&state.credential_public).map_err(|_| ClientError::Tampered)?;
        Ok(Reset {
            credential_public_key,
            envelope,
        })
    }

    /// The registration the service still needs, if any: the current envelope, signed
    /// by the device key, replacing the one the service last acknowledged.
    ///
    /// # Errors
    /// [`ClientError::NotEnrolled`], [`ClientError::CorruptState`],
    /// [`ClientError::Crypto`].
    pub fn pending_registration(
        &self,
        device_key: &SigningKey,
    ) -> Result<Option<EnvelopeRegistration>, ClientError> {
        let state = self.load()?;
        let Some(envelope) = pending_registration(&state) else {
            return Ok(None);
        };
        let signed = wire::registration_signed_bytes(envelope, state.registered);
        let signature = device_key.sign(&signed)?;
        Ok(Some(EnvelopeRegistration::new(
            envelope.clone(),
            state.registered,
            signature,
        )))
    }

    /// Records that the service registered `envelope_id`.
    ///
    /// # Errors
    /// [`ClientError::ResponseMismatch`] if it is not the current envelope; storage and
    /// decoding errors.
    pub fn confirm_registration(&self, envelope_id: EnvelopeId) -> Result<(), ClientError> {
        let mut state = self.load()?;
        match &state.recovery {
            Some(r) if r.envelope.envelope_id() == envelope_id => {
                if state.registered != Some(envelope_id) {
                    state.registered = Some(envelope_id);
                    self.write(&state)?;
                }
                Ok(())
            }
            _ => Err(ClientError::ResponseMismatch),
        }
    }
}

fn pending_registration(state: &State) -> Option<&Envelope> {
    state
        .recovery
        .as_ref()
        .map(|r| &r.envelope)
        .filter(|e| state.registered != Some(e.envelope_id()))
}

/// Verifies the state MAC and decrypts the payload with `ck`.
fn authenticate(state: &State, ck: ContainerKey) -> Result<Unlocked, ClientError> {
    if !ck.verify_state_mac(&state.body(), &state.mac)? {
        return Err(ClientError::Tampered);
    }
    let aad = State::payload_aad(&state.identity, &state.credential_public);
    let bytes = ck
        .open_payload(&aad, &state.payload_nonce, &state.payload)
        .map_err(|_| ClientError::Tampered)?;
    let payload = Payload::decode(&bytes).map_err(|_| ClientError::Tampered)?;
    Ok(Unlocked { ck, payload })
}

/// Re-encrypts the payload and recomputes the MAC over the new body.
fn seal_state(state: &mut State, unlocked: &Unlocked) -> Result<(), ClientError> {
    let aad = State::payload_aad(&state.identity, &state.credential_public);
    let (nonce, payload) = unlocked.ck.seal_payload(&aad, &unlocked.payload.encode())?;
    state.payload_nonce = nonce;
    state.payload = payload;
    state.mac = unlocked.ck.state_mac(&state.body())?;
    Ok(())
}

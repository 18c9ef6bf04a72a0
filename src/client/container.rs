//! The credential container: enrolment, PIN sign-in and change, and destructive reset
//! (the recovery half is in `reset`). Every operation holds the store's lock,
//! reads the stored state, computes a complete new state in memory, and replaces the
//! stored state in one atomic write; so a failure (or a crash) at any point leaves the
//! old state or the new one, and two processes never interleave.

use std::sync::Arc;

use super::error::ClientError;
use super::policy::{ContainerPolicy, Pin, PinProtectorChoice};
use super::protector::{ContainerKey, PinProtector, RecoveryProtector};
use super::state::{DeviceScalar, NextEnvelope, Payload, PinGuard, State};
use super::store::ContainerStore;
use super::tpm::sealed::TpmProtector;
#[cfg(feature = "tpm")]
use super::tpm::{self, TpmConfig};
use crate::clock::{Clock, SystemClock};
use crate::crypto::secret::RecoverySecret;
use crate::envelope::binding::Binding;
use crate::envelope::Envelope;
use crate::keys::signing::{SigningKey, VerifyingKey};
use crate::protocol::key_document::{KeyDocument, SignedKeyDocument};
use crate::protocol::registration;

const SECONDS_PER_DAY: u64 = 86_400;

/// The service a device trusts: the public key that signs the service's key documents,
/// which the device pins. It comes with the device's provisioning (a configuration
/// profile, or the application itself), never from the network at recovery time:
/// whoever can swap it can make the device seal its secret to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTrust {
    /// The pinned public key that verifies the service's key documents
    /// ([`crate::service::RecoveryService::key_document_key`] on the service).
    pub key_document_key: VerifyingKey,
}

/// A new container.
#[derive(Debug)]
pub struct Enrolment {
    /// The credential public key to register with the identity provider.
    pub credential_public_key: VerifyingKey,
    /// The device key's public half: register it with the recovery service (it signs
    /// the device's recovery requests and envelope registrations).
    pub device_public_key: VerifyingKey,
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
    /// Why the key document given was not used, if it was refused (expired, rolled
    /// back, not signed by the pinned key…): the PIN worked regardless; fetch a fresh
    /// document and sign in with it later to reseal.
    pub key_document_refused: Option<ClientError>,
}

/// A completed destructive reset: a new container with a new credential key and a new
/// device key.
#[derive(Debug)]
pub struct DestructiveReset {
    /// The NEW credential public key: it must be registered with the identity provider
    /// again, and the old one revoked.
    pub credential_public_key: VerifyingKey,
    /// The NEW device key: the device must be registered with the recovery service again
    /// ([`crate::service::RecoveryService::reregister_device`]), so that an old backup's
    /// device key cannot claim the device's first envelope registration.
    pub device_public_key: VerifyingKey,
    /// The new envelope, when recovery is enabled.
    pub envelope: Option<Envelope>,
}

/// Which PIN protector a container has.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinProtectorKind {
    /// Argon2id, with the failed-attempt counter in the container.
    Argon2id,
    /// Sealed by a TPM, which counts failed attempts itself.
    Tpm,
}

/// What a container's stored state says, without any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// The identity the container belongs to.
    pub identity: Binding,
    /// The credential public key.
    pub credential_public_key: VerifyingKey,
    /// The device key's public half (what the recovery service knows the device by).
    pub device_public_key: VerifyingKey,
    /// The PIN protector.
    pub protector: PinProtectorKind,
    /// Failed PIN attempts since the last success (Argon2id protector; a TPM counts its
    /// own, and this stays 0).
    pub failed_attempts: u32,
    /// Whether the Argon2id PIN protector is locked (a TPM's lockout shows only when
    /// the TPM is asked: [`crate::client::TpmError::LockedOut`]).
    pub locked_out: bool,
    /// Whether a recovery protector exists.
    pub recoverable: bool,
    /// Whether a new envelope still has to be registered with the service.
    pub registration_pending: bool,
    /// The highest key-document serial the container has accepted; it refuses lower.
    pub key_document_serial: u64,
}

/// A credential container for one (tenant, user, device), over a store: the credential
/// key behind the PIN and, when policy enables it, behind a recovery secret sealed to the
/// recovery service; and the device key that signs the device's requests. See
/// [`crate::guides::device`] for the whole story.
///
/// # Examples
/// ```
/// use pin_recovery::client::{Argon2Profile, Container, ContainerPolicy, FileStore, Pin, ServiceTrust};
/// use pin_recovery::Binding;
/// # let svc = pin_recovery::testkit::StandIn::start()?;
/// # let dir = tempfile::tempdir()?;
///
/// let trust = ServiceTrust { key_document_key: svc.key_document_key() }; // pinned at provisioning
/// let policy = ContainerPolicy {
///     recovery_enabled: true, // off by default
///     argon2: Argon2Profile::INSECURE_TEST_ONLY, // fast, for this example only
///     ..ContainerPolicy::default()
/// };
/// let container = Container::new(FileStore::new(dir.path().join("c")), policy, Some(trust));
/// let me = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K")?;
/// let enrolment = container.enrol(&me, &Pin::new("482913"), Some(&svc.fetch_key_document()?))?;
/// let signed = container.sign_in(&Pin::new("482913"), b"challenge", None)?;
/// assert!(enrolment.credential_public_key.verify(b"challenge", &signed.signature));
/// assert!(container.status()?.registration_pending); // the envelope awaits registration
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Container<S: ContainerStore> {
    pub(super) store: S,
    pub(super) policy: ContainerPolicy,
    trust: Option<ServiceTrust>,
    clock: Arc<dyn Clock>,
}

/// The container key and decrypted payload of an unlocked state.
pub(super) struct Unlocked {
    pub(super) ck: ContainerKey,
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

    pub(super) fn load(&self) -> Result<State, ClientError> {
        let bytes = self.store.load()?.ok_or(ClientError::NotEnrolled)?;
        State::decode(&bytes).map_err(ClientError::CorruptState)
    }

    pub(super) fn write(&self, state: &State) -> Result<(), ClientError> {
        let bytes = state.encode().map_err(ClientError::CorruptState)?;
        Ok(self.store.replace(&bytes)?)
    }

    /// Checks a new PIN against the policy, changing nothing: call it before asking the
    /// service to release a secret, so that a PIN the policy refuses costs no release.
    /// (Reuse of a recent PIN can only be checked once the container is unlocked.)
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`].
    pub fn check_new_pin(&self, pin: &Pin) -> Result<(), ClientError> {
        Ok(self.policy.pin.check(pin)?)
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
            device_public_key: *device_key(&s)?.verifying_key(),
            protector: match s.pin {
                PinGuard::Argon2id(_) => PinProtectorKind::Argon2id,
                PinGuard::Tpm(_) => PinProtectorKind::Tpm,
            },
            failed_attempts: s.failed_attempts,
            locked_out: s.failed_attempts >= self.limit(),
            recoverable: s.current.is_some() || s.next.is_some(),
            registration_pending: s.next.is_some(),
            key_document_serial: s.key_doc_serial,
            identity: s.identity,
        })
    }

    /// Creates the container: a new credential key, a PIN protector and, if policy
    /// enables recovery, a recovery secret sealed to the service's current key.
    ///
    /// # Errors
    /// [`ClientError::AlreadyEnrolled`], [`ClientError::PinPolicy`], key-document
    /// errors when recovery is enabled, [`ClientError::Store`], and with the TPM
    /// protector [`ClientError::Tpm`] (the TPM refused by policy, or unavailable).
    pub fn enrol(
        &self,
        identity: &Binding,
        pin: &Pin,
        keys: Option<&SignedKeyDocument>,
    ) -> Result<Enrolment, ClientError> {
        let _lock = self.store.lock()?;
        if self.store.load()?.is_some() {
            return Err(ClientError::AlreadyEnrolled);
        }
        let (state, credential) = self.fresh_state(identity, pin, keys)?;
        self.write(&state)?;
        Ok(Enrolment {
            credential_public_key: credential,
            device_public_key: *device_key(&state)?.verifying_key(),
            envelope: state.next.map(|n| n.protector.envelope),
        })
    }

    /// Replaces the container with a new one (new credential key, new PIN): the way back
    /// when the PIN is forgotten and recovery is disabled, or the container is locked
    /// or damaged. The new credential key must be registered again.
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`], key-document errors when recovery is enabled,
    /// [`ClientError::Store`], [`ClientError::Tpm`] (TPM protector).
    pub fn destructive_reset(
        &self,
        identity: &Binding,
        new_pin: &Pin,
        keys: Option<&SignedKeyDocument>,
    ) -> Result<DestructiveReset, ClientError> {
        let _lock = self.store.lock()?;
        let (state, credential) = self.fresh_state(identity, new_pin, keys)?;
        self.write(&state)?;
        Ok(DestructiveReset {
            credential_public_key: credential,
            device_public_key: *device_key(&state)?.verifying_key(),
            envelope: state.next.map(|n| n.protector.envelope),
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
            device_key: DeviceScalar(SigningKey::generate()?.scalar()),
            credential_public: *public.to_sec1(),
            payload_nonce: [0; 12],
            payload: Vec::new(),
            pin: self.new_pin_guard(&unlocked.ck, pin, identity)?,
            pin_set_at: self.clock.now(),
            key_doc_serial: 0,
            mac: [0; 32],
            current: None,
            next: None,
            failed_attempts: 0,
        };
        if self.policy.recovery_enabled {
            let doc = self.verify_keys(&state, keys.ok_or(ClientError::KeyDocumentRequired)?)?;
            self.seal_next(&mut state, &unlocked.ck, &doc, None)?;
        }
        seal_state(&mut state, &unlocked)?;
        Ok((state, public))
    }

    /// Checks a key document as the container would use it (signed by the pinned key,
    /// for its tenant, unexpired, not older than the newest it accepted), changing
    /// nothing: a device can check a document before it asks for a recovery, so that a
    /// stale one does not cost it the released secret's reset.
    ///
    /// # Errors
    /// [`ClientError::NoServiceTrust`], [`ClientError::KeyDocument`],
    /// [`ClientError::NotEnrolled`], [`ClientError::CorruptState`].
    pub fn check_key_document(&self, keys: &SignedKeyDocument) -> Result<KeyDocument, ClientError> {
        let state = self.load()?;
        self.verify_keys(&state, keys)
    }

    /// The key document, verified under the pinned key for this container's tenant,
    /// now, and no older than the newest one the container has accepted.
    pub(super) fn verify_keys(
        &self,
        state: &State,
        keys: &SignedKeyDocument,
    ) -> Result<KeyDocument, ClientError> {
        let trust = self.trust.as_ref().ok_or(ClientError::NoServiceTrust)?;
        Ok(keys.verify(
            &trust.key_document_key,
            state.identity.tenant(),
            self.clock.now(),
            state.key_doc_serial,
        )?)
    }

    /// A fresh secret sealed to the current key of a verified document, as the next
    /// envelope, with the proof that it may replace `state.current` (made with that
    /// envelope's registration key, `current_key`).
    pub(super) fn seal_next(
        &self,
        state: &mut State,
        ck: &ContainerKey,
        doc: &KeyDocument,
        current_key: Option<&[u8; 32]>,
    ) -> Result<(), ClientError> {
        let key = doc.current().ok_or(ClientError::KeyDocument(
            crate::protocol::key_document::KeyDocumentError::BadKeys,
        ))?;
        let secret = RecoverySecret::generate()?;
        let envelope = key.seal_at(&secret, &state.identity, self.clock.now())?;
        let proof = match (current_key, state.previous()) {
            (Some(k), Some(previous)) => {
                let signed = registration::registration_signed_bytes(&envelope, Some(previous))
                    .map_err(ClientError::CorruptState)?;
                Some(registration::registration_proof(k, &signed))
            }
            (None, None) => None,
            // A current envelope with no key to prove it by (or the reverse) is a bug.
            _ => return Err(ClientError::Crypto(crate::Error::Crypto)),
        };
        state.next = Some(NextEnvelope {
            protector: RecoveryProtector::create(ck, &secret, envelope, &state.identity)?,
            proof,
        });
        state.key_doc_serial = doc.serial;
        Ok(())
    }

    /// Checks the PIN. The failed-attempt counter is incremented and persisted before
    /// the check, so killing the process mid-check cannot reset it.
    fn unlock_with_pin(&self, state: &mut State, pin: &Pin) -> Result<Unlocked, ClientError> {
        let software = match &state.pin {
            PinGuard::Argon2id(p) => p.clone(),
            PinGuard::Tpm(p) => return self.unlock_with_tpm(state, p, pin),
        };
        let limit = self.limit();
        if state.failed_attempts >= limit {
            return Err(ClientError::LockedOut);
        }
        state.failed_attempts = state.failed_attempts.saturating_add(1);
        self.write(state)?;
        let ck = match software.unlock(pin, &state.identity) {
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
    /// service's envelope is sealed to, reseals a fresh secret to the current key as the
    /// next envelope (so no envelope is stranded on a retired key) — unless a new
    /// envelope is already waiting for registration: it is registered first. If recovery
    /// was disabled, drops the recovery protectors.
    ///
    /// A refused key document does not fail the sign-in: it is reported in
    /// [`SignIn::key_document_refused`].
    ///
    /// # Errors
    /// [`ClientError::WrongPin`], [`ClientError::LockedOut`],
    /// [`ClientError::PinExpired`] (after a correct PIN; change it),
    /// [`ClientError::Store`], [`ClientError::Tampered`], and with the TPM protector
    /// [`ClientError::Tpm`] (locked out, unavailable, the wrong TPM).
    pub fn sign_in(
        &self,
        pin: &Pin,
        challenge: &[u8],
        keys: Option<&SignedKeyDocument>,
    ) -> Result<SignIn, ClientError> {
        let _lock = self.store.lock()?;
        let mut state = self.load()?;
        let unlocked = self.unlock_with_pin(&mut state, pin)?;
        state.failed_attempts = 0;
        if self.pin_expired(&state) {
            self.write(&state)?;
            return Err(ClientError::PinExpired);
        }
        let mut resealed = None;
        let mut changed = false;
        let mut key_document_refused = None;
        match (self.policy.recovery_enabled, keys) {
            (true, Some(keys)) => match self.verify_keys(&state, keys) {
                Err(e) => key_document_refused = Some(e),
                Ok(doc) => {
                    let wanted = doc.current().map(|k| k.key_id());
                    if state.next.is_none()
                        && wanted.is_some()
                        && wanted != state.current.as_ref().map(|r| r.envelope.key_id())
                    {
                        let current_key = match &state.current {
                            Some(p) => Some(p.registration_key(&unlocked.ck, &state.identity)?),
                            None => None,
                        };
                        self.seal_next(&mut state, &unlocked.ck, &doc, current_key.as_deref())?;
                        resealed = state.next.as_ref().map(|n| n.protector.envelope.clone());
                        changed = true;
                    }
                }
            },
            (false, _) if state.current.is_some() || state.next.is_some() => {
                state.current = None;
                state.next = None;
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
            key_document_refused,
        })
    }

    /// Changes the PIN, knowing the old one. A TPM container keeps its TPM object and
    /// changes its authorization; an Argon2id container gets a new protector of the
    /// policy's kind (so it moves to the TPM if the policy now names one).
    ///
    /// # Errors
    /// [`ClientError::PinPolicy`] (checked first: nothing is counted or stored),
    /// [`ClientError::WrongPin`], [`ClientError::LockedOut`], [`ClientError::PinReused`],
    /// [`ClientError::Store`], [`ClientError::Tampered`], [`ClientError::Tpm`].
    pub fn change_pin(&self, old: &Pin, new: &Pin) -> Result<(), ClientError> {
        self.policy.pin.check(new)?;
        let _lock = self.store.lock()?;
        let mut state = self.load()?;
        if let PinGuard::Tpm(p) = &state.pin {
            let p = p.clone();
            return self.change_tpm_pin(state, &p, old, new);
        }
        let mut unlocked = self.unlock_with_pin(&mut state, old)?;
        state.failed_attempts = 0;
        if let Err(e) = self.set_pin(&mut state, &mut unlocked, new) {
            self.write(&state)?;
            return Err(e);
        }
        seal_state(&mut state, &unlocked)?;
        self.write(&state)
    }

    /// Sets `new` as the PIN under a new protector of the policy's kind.
    pub(super) fn set_pin(
        &self,
        state: &mut State,
        unlocked: &mut Unlocked,
        new: &Pin,
    ) -> Result<(), ClientError> {
        self.record_in_history(unlocked, new)?;
        state.pin = self.new_pin_guard(&unlocked.ck, new, &state.identity)?;
        state.pin_set_at = self.clock.now();
        Ok(())
    }

    /// Refuses a recent PIN, and records `new` in the history.
    fn record_in_history(&self, unlocked: &mut Unlocked, new: &Pin) -> Result<(), ClientError> {
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
        Ok(())
    }

    /// A new PIN protector of `ck`, of the kind the policy chooses.
    fn new_pin_guard(
        &self,
        ck: &ContainerKey,
        pin: &Pin,
        identity: &Binding,
    ) -> Result<PinGuard, ClientError> {
        match &self.policy.protector {
            PinProtectorChoice::Argon2id => Ok(PinGuard::Argon2id(PinProtector::create(
                ck,
                pin,
                self.policy.argon2,
                identity,
            )?)),
            #[cfg(feature = "tpm")]
            PinProtectorChoice::Tpm(config) => {
                Ok(PinGuard::Tpm(tpm::seal_new(config, ck, pin, identity)?))
            }
        }
    }
}

#[cfg(feature = "tpm")]
impl<S: ContainerStore> Container<S> {
    /// The TPM settings: the policy's, or the defaults if the policy (now) names
    /// another protector, so that a TPM container still opens.
    fn tpm_config(&self) -> std::borrow::Cow<'_, TpmConfig> {
        match &self.policy.protector {
            PinProtectorChoice::Tpm(c) => std::borrow::Cow::Borrowed(c),
            _ => std::borrow::Cow::Owned(TpmConfig::default()),
        }
    }

    /// The TPM counts the failures: nothing is written before the PIN is known.
    fn unlock_with_tpm(
        &self,
        state: &State,
        p: &TpmProtector,
        pin: &Pin,
    ) -> Result<Unlocked, ClientError> {
        let mut device = tpm::connect(&self.tpm_config(), p)?;
        let ck = tpm::unlock(&mut device, p, pin, &state.identity)?;
        authenticate(state, ck)
    }

    /// PIN change on a TPM container: unseal with the old PIN (a wrong one costs one
    /// TPM failure and ends here), then change the object's authorization (one more,
    /// now known-good, use of the old PIN): a PIN change never trips the lockout.
    fn change_tpm_pin(
        &self,
        mut state: State,
        p: &TpmProtector,
        old: &Pin,
        new: &Pin,
    ) -> Result<(), ClientError> {
        let mut device = tpm::connect(&self.tpm_config(), p)?;
        let ck = tpm::unlock(&mut device, p, old, &state.identity)?;
        let mut unlocked = authenticate(&state, ck)?;
        self.record_in_history(&mut unlocked, new)?;
        let changed = tpm::change_pin(&mut device, p, old, new, &state.identity)?;
        drop(device);
        state.pin = PinGuard::Tpm(changed);
        state.pin_set_at = self.clock.now();
        seal_state(&mut state, &unlocked)?;
        self.write(&state)
    }
}

#[cfg(not(feature = "tpm"))]
impl<S: ContainerStore> Container<S> {
    fn unlock_with_tpm(
        &self,
        _: &State,
        _: &TpmProtector,
        _: &Pin,
    ) -> Result<Unlocked, ClientError> {
        Err(ClientError::Tpm(super::tpm::TpmError::NotCompiled))
    }

    fn change_tpm_pin(
        &self,
        _: State,
        _: &TpmProtector,
        _: &Pin,
        _: &Pin,
    ) -> Result<(), ClientError> {
        Err(ClientError::Tpm(super::tpm::TpmError::NotCompiled))
    }
}

/// The device key of a stored state.
pub(super) fn device_key(state: &State) -> Result<SigningKey, ClientError> {
    SigningKey::from_scalar(&state.device_key.0).map_err(|_| ClientError::Tampered)
}

/// Verifies the state MAC and decrypts the payload with `ck`.
pub(super) fn authenticate(state: &State, ck: ContainerKey) -> Result<Unlocked, ClientError> {
    let body = state.body().map_err(ClientError::CorruptState)?;
    if !ck.verify_state_mac(&body, &state.mac)? {
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
pub(super) fn seal_state(state: &mut State, unlocked: &Unlocked) -> Result<(), ClientError> {
    let aad = State::payload_aad(&state.identity, &state.credential_public);
    let (nonce, payload) = unlocked.ck.seal_payload(&aad, &unlocked.payload.encode())?;
    state.payload_nonce = nonce;
    state.payload = payload;
    let body = state.body().map_err(ClientError::CorruptState)?;
    state.mac = unlocked.ck.state_mac(&body)?;
    Ok(())
}

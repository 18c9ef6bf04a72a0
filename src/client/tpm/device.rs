//! The conversation with the TPM (through tss-esapi and the system's tpm2-tss): the
//! storage key, a salted session, sealing, unsealing, changing an object's
//! authorization, and reading and enforcing the dictionary-attack settings. Every
//! object and session it loads is flushed when the connection is dropped, error or not:
//! a TPM without a resource manager has only a few slots.

use std::str::FromStr;
use std::time::Duration;

use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::tss::{TPM2_PT_LOCKOUT_COUNTER, TPM2_PT_PERMANENT};
use tss_esapi::constants::{
    CapabilityType, PropertyTag, SessionType, Tss2ResponseCode, Tss2ResponseCodeKind,
};
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, CapabilityData, Digest, EccPoint, KeyedHashScheme, Private, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyedHashParameters, SensitiveData, SymmetricDefinition,
    SymmetricDefinitionObject, TaggedTpmPropertyList,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, TctiNameConf};
use zeroize::Zeroizing;

use super::config::{LockoutAuthorization, TpmConfig};
use super::error::TpmError;
use super::sealed::{SealedObject, MAX_BLOB_LEN, MAX_NAME_LEN};
use crate::crypto::provider::{provider, Secret32};

/// TPMA_PERMANENT.lockoutAuthSet.
const LOCKOUT_AUTH_SET: u32 = 1 << 2;

/// Why using a stored object failed.
pub(crate) enum AuthFailure {
    /// The authorization value was wrong; the TPM counted it.
    WrongPin {
        attempts_left: u32,
    },
    /// The stored object was altered: the TPM refused to load it under the storage key
    /// whose name the container records.
    Tampered,
    Tpm(TpmError),
}

impl From<TpmError> for AuthFailure {
    fn from(e: TpmError) -> Self {
        AuthFailure::Tpm(e)
    }
}

/// The TPM's dictionary-attack state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LockoutState {
    pub(crate) counter: u32,
    pub(crate) max_tries: u32,
    pub(crate) recovery_interval: u32,
    pub(crate) lockout_auth_set: bool,
}

/// A connection with the storage key loaded and a session salted to it.
pub(crate) struct Tpm {
    ctx: Context,
    srk: KeyHandle,
    srk_name: Vec<u8>,
    session: AuthSession,
    loaded: Vec<ObjectHandle>,
}

fn unavailable(what: &str, e: tss_esapi::Error) -> TpmError {
    TpmError::Unavailable {
        reason: format!("{what}: {e}"),
    }
}

fn kind(e: &tss_esapi::Error) -> Option<Tss2ResponseCodeKind> {
    match e {
        tss_esapi::Error::Tss2Error(rc) => rc.kind(),
        tss_esapi::Error::WrapperError(_) => None,
    }
}

/// The storage key: ECC P-256 under the owner hierarchy, derived from the owner seed,
/// so the same TPM gives the same key (and name) every time. noDA, so that sealing a
/// new PIN works during a lockout.
fn srk_template() -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The sealed object: a keyed-hash data object, used with its authorization value,
/// under dictionary-attack protection (noDA clear), its authorization changeable with
/// that value (adminWithPolicy clear).
fn sealed_template() -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .with_no_da(false)
        .with_admin_with_policy(false)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}

fn auth(value: &Secret32) -> Result<Auth, TpmError> {
    Auth::try_from(value.to_vec()).map_err(|e| unavailable("authorization value", e))
}

impl Tpm {
    /// Connects, creates the storage key and starts a session salted to it. With
    /// `expected_srk`, a TPM whose storage key has another name is [`TpmError::WrongTpm`]
    /// before any command that a wrong PIN could count against.
    pub(crate) fn connect(tcti: &str, expected_srk: Option<&[u8]>) -> Result<Self, TpmError> {
        let conf = TctiNameConf::from_str(tcti).map_err(|e| unavailable("TCTI", e))?;
        let mut ctx = Context::new(conf).map_err(|e| unavailable("connect", e))?;
        let template = srk_template().map_err(|e| unavailable("storage key template", e))?;
        let srk = ctx
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .map_err(|e| unavailable("create the storage key", e))?
            .key_handle;
        // From here on, `Drop` flushes the storage key and the session.
        let mut tpm = Tpm {
            ctx,
            srk,
            srk_name: Vec::new(),
            session: AuthSession::Password,
            loaded: Vec::new(),
        };
        let (_, name, _) = tpm
            .ctx
            .read_public(srk)
            .map_err(|e| unavailable("read the storage key", e))?;
        tpm.srk_name = name.value().to_vec();
        if tpm.srk_name.len() > MAX_NAME_LEN {
            return Err(TpmError::Unavailable {
                reason: "storage key name too long".into(),
            });
        }
        if expected_srk.is_some_and(|n| n != tpm.srk_name.as_slice()) {
            return Err(TpmError::WrongTpm);
        }
        let session = tpm
            .ctx
            .start_auth_session(
                Some(srk),
                None,
                None,
                SessionType::Hmac,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(|e| unavailable("start a salted session", e))?
            .ok_or(TpmError::Unavailable {
                reason: "no session returned".into(),
            })?;
        tpm.session = session;
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(true)
            .with_encrypt(true)
            .build();
        tpm.ctx
            .tr_sess_set_attributes(session, attributes, mask)
            .map_err(|e| unavailable("session attributes", e))?;
        Ok(tpm)
    }

    /// The dictionary-attack counter and parameters, read fresh (never cached: the
    /// counter moves).
    pub(crate) fn lockout_state(&mut self) -> Result<LockoutState, TpmError> {
        let permanent = self.properties(TPM2_PT_PERMANENT, 1)?;
        // The four DA properties are consecutive: one read.
        let lockout = self.properties(TPM2_PT_LOCKOUT_COUNTER, 4)?;
        let find = |list: &TaggedTpmPropertyList, tag: PropertyTag| {
            list.find(tag)
                .map(|p| p.value())
                .ok_or(TpmError::Unavailable {
                    reason: format!("the TPM did not report {tag:?}"),
                })
        };
        Ok(LockoutState {
            counter: find(&lockout, PropertyTag::LockoutCounter)?,
            max_tries: find(&lockout, PropertyTag::MaxAuthFail)?,
            recovery_interval: find(&lockout, PropertyTag::LockoutInterval)?,
            lockout_auth_set: find(&permanent, PropertyTag::Permanent)? & LOCKOUT_AUTH_SET != 0,
        })
    }

    fn properties(&mut self, first: u32, count: u32) -> Result<TaggedTpmPropertyList, TpmError> {
        let (data, _) = self
            .ctx
            .execute_without_session(|c| {
                c.get_capability(CapabilityType::TpmProperties, first, count)
            })
            .map_err(|e| unavailable("read the TPM's properties", e))?;
        match data {
            CapabilityData::TpmProperties(list) => Ok(list),
            _ => Err(TpmError::Unavailable {
                reason: "the TPM answered another capability".into(),
            }),
        }
    }

    /// Refuses a TPM whose lockout parameters the policy does not accept, and takes an
    /// unset lockout authorization if the policy says so. Called before every new seal.
    pub(crate) fn enforce_lockout_policy(&mut self, config: &TpmConfig) -> Result<(), TpmError> {
        let state = self.lockout_state()?;
        if state.max_tries > config.max_tries_allowed
            || state.recovery_interval < config.min_recovery_interval.max(1)
        {
            return Err(TpmError::UnsafeLockoutParameters {
                max_tries: state.max_tries,
                recovery_interval: state.recovery_interval,
            });
        }
        if state.lockout_auth_set {
            return Ok(());
        }
        match config.lockout {
            LockoutAuthorization::RequireSet => Err(TpmError::LockoutAuthorizationUnset),
            LockoutAuthorization::SetIfUnset => {
                let mut value = Zeroizing::new([0u8; 32]);
                provider()
                    .fill_random(&mut value[..])
                    .map_err(|_| TpmError::Unavailable {
                        reason: "no randomness for the lockout authorization".into(),
                    })?;
                value[31] |= 1;
                let new = auth(&value)?;
                // Through the salted session, so the new value never crosses the bus in
                // the clear; then it is forgotten.
                let session = self.session;
                self.ctx
                    .execute_with_session(Some(session), |c| {
                        c.hierarchy_change_auth(AuthHandle::Lockout, new)
                    })
                    .map_err(|e| unavailable("set the lockout authorization", e))
            }
        }
    }

    /// Seals `secret` in a new object whose authorization value is `auth_value`. Needs
    /// no DA-protected authorization, so it works during a lockout.
    pub(crate) fn seal(
        &mut self,
        auth_value: &Secret32,
        secret: &Secret32,
    ) -> Result<SealedObject, TpmError> {
        let template = sealed_template().map_err(|e| unavailable("sealed object template", e))?;
        let data =
            SensitiveData::try_from(secret.to_vec()).map_err(|e| unavailable("sealed data", e))?;
        let (srk, session, new_auth) = (self.srk, self.session, auth(auth_value)?);
        let created = self
            .ctx
            .execute_with_session(Some(session), |c| {
                c.create(srk, template, Some(new_auth), Some(data), None, None)
            })
            .map_err(|e| unavailable("seal", e))?;
        let public = created
            .out_public
            .marshall()
            .map_err(|e| unavailable("marshal the sealed object", e))?;
        let private = created.out_private.value().to_vec();
        if public.len() > MAX_BLOB_LEN || private.len() > MAX_BLOB_LEN {
            return Err(TpmError::Unavailable {
                reason: "sealed object too large".into(),
            });
        }
        Ok(SealedObject {
            srk_name: self.srk_name.clone(),
            public,
            private,
        })
    }

    fn load(&mut self, object: &SealedObject) -> Result<ObjectHandle, AuthFailure> {
        if object.srk_name != self.srk_name {
            return Err(AuthFailure::Tpm(TpmError::WrongTpm));
        }
        let public = Public::unmarshall(&object.public).map_err(|_| AuthFailure::Tampered)?;
        let private =
            Private::try_from(object.private.clone()).map_err(|_| AuthFailure::Tampered)?;
        let (srk, session) = (self.srk, self.session);
        let handle = self
            .ctx
            .execute_with_session(Some(session), |c| c.load(srk, private, public))
            .map_err(|e| match e {
                // The TPM itself refused the object (integrity, attributes, sizes) under
                // the very storage key that made it: the stored object was altered.
                // Format-one codes come only from the TPM, never from the TSS layers.
                tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(_)) => {
                    AuthFailure::Tampered
                }
                _ => AuthFailure::Tpm(unavailable("load the sealed object", e)),
            })?;
        let handle = ObjectHandle::from(handle);
        self.loaded.push(handle);
        Ok(handle)
    }

    /// What a failed PIN-authorized command means.
    fn auth_failure(&mut self, what: &str, e: tss_esapi::Error) -> AuthFailure {
        match kind(&e) {
            Some(Tss2ResponseCodeKind::AuthFail) => match self.lockout_state() {
                Ok(s) => AuthFailure::WrongPin {
                    attempts_left: s.max_tries.saturating_sub(s.counter),
                },
                Err(e) => AuthFailure::Tpm(e),
            },
            Some(Tss2ResponseCodeKind::Lockout) => match self.lockout_state() {
                Ok(s) => AuthFailure::Tpm(TpmError::LockedOut {
                    retry_after: Duration::from_secs(u64::from(s.recovery_interval)),
                }),
                Err(e) => AuthFailure::Tpm(e),
            },
            // A noDA object, or one whose template was changed: never a verdict on the
            // PIN, and never counted.
            _ => AuthFailure::Tpm(unavailable(what, e)),
        }
    }

    /// The sealed secret, if `auth_value` is right. A wrong one is counted by the TPM.
    pub(crate) fn unseal(
        &mut self,
        object: &SealedObject,
        auth_value: &Secret32,
    ) -> Result<Secret32, AuthFailure> {
        let handle = self.load(object)?;
        self.ctx
            .tr_set_auth(handle, auth(auth_value)?)
            .map_err(|e| unavailable("set the PIN authorization", e))?;
        let session = self.session;
        let data = match self
            .ctx
            .execute_with_session(Some(session), |c| c.unseal(handle))
        {
            Ok(data) => data,
            Err(e) => return Err(self.auth_failure("unseal", e)),
        };
        let out = <[u8; 32]>::try_from(data.value()).map_err(|_| TpmError::Unavailable {
            reason: "the sealed secret has the wrong length".into(),
        })?;
        Ok(Zeroizing::new(out))
    }

    /// The object's private part re-encrypted for `new_auth`, authorized by `old_auth`
    /// (one use of it, counted only if wrong). Copies of the old private part still
    /// open with the old value: the caller replaces the stored one.
    pub(crate) fn change_auth(
        &mut self,
        object: &SealedObject,
        old_auth: &Secret32,
        new_auth: &Secret32,
    ) -> Result<Vec<u8>, AuthFailure> {
        let handle = self.load(object)?;
        self.ctx
            .tr_set_auth(handle, auth(old_auth)?)
            .map_err(|e| unavailable("set the PIN authorization", e))?;
        let (srk, session, new) = (self.srk, self.session, auth(new_auth)?);
        let private = match self.ctx.execute_with_session(Some(session), |c| {
            c.object_change_auth(handle, srk.into(), new)
        }) {
            Ok(p) => p,
            Err(e) => return Err(self.auth_failure("change the authorization", e)),
        };
        let private = private.value().to_vec();
        if private.len() > MAX_BLOB_LEN {
            return Err(AuthFailure::Tpm(TpmError::Unavailable {
                reason: "sealed object too large".into(),
            }));
        }
        Ok(private)
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        // Best effort: a TPM that failed may refuse these too, and nothing can be done.
        for handle in self.loaded.drain(..) {
            let _ = self.ctx.flush_context(handle);
        }
        if self.session != AuthSession::Password {
            let _ = self
                .ctx
                .flush_context(SessionHandle::from(self.session).into());
        }
        let _ = self.ctx.flush_context(self.srk.into());
    }
}

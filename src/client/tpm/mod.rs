//! The TPM-sealed PIN protector. The container key is wrapped under a random secret
//! that a TPM 2.0 object seals under a storage key in the TPM; the object's
//! authorization value is derived from the PIN, and it is under dictionary-attack
//! protection, so the TPM counts wrong PINs, locks out, and cannot be rolled back by
//! copying the disk. A copied container is useless without its TPM. SECURITY.md states
//! the lockout parameters relied on and what remains.
//!
//! The TPM code (tss-esapi over the system's tpm2-tss) is compiled with the `tpm`
//! feature; without it the stored form still decodes, and opening a TPM container says
//! [`TpmError::NotCompiled`].

#[cfg(feature = "tpm")]
mod config;
#[cfg(feature = "tpm")]
mod device;
mod error;
pub(crate) mod sealed;

#[cfg(feature = "tpm")]
pub use config::{LockoutAuthorization, TpmConfig};
pub use error::TpmError;

#[cfg(feature = "tpm")]
pub(crate) use ops::*;

#[cfg(feature = "tpm")]
mod ops {
    use zeroize::Zeroizing;

    use super::config::TpmConfig;
    use super::device::{AuthFailure, Tpm};
    use super::sealed::TpmProtector;
    use crate::client::error::ClientError;
    use crate::client::policy::Pin;
    use crate::client::protector::ContainerKey;
    use crate::crypto::provider::provider;
    use crate::envelope::binding::Binding;

    impl From<AuthFailure> for ClientError {
        fn from(e: AuthFailure) -> Self {
            match e {
                AuthFailure::WrongPin { attempts_left } => ClientError::WrongPin { attempts_left },
                AuthFailure::Tampered => ClientError::Tampered,
                AuthFailure::Tpm(e) => ClientError::Tpm(e),
            }
        }
    }

    fn random32() -> Result<Zeroizing<[u8; 32]>, ClientError> {
        let mut out = Zeroizing::new([0u8; 32]);
        provider().fill_random(&mut out[..])?;
        Ok(out)
    }

    /// Seals a new protector of `ck` for `pin`, after checking the TPM against the
    /// policy. Needs no PIN-authorized command, so it works during a lockout.
    pub(crate) fn seal_new(
        config: &TpmConfig,
        ck: &ContainerKey,
        pin: &Pin,
        identity: &Binding,
    ) -> Result<TpmProtector, ClientError> {
        let mut tpm = Tpm::connect(&config.tcti, None).map_err(ClientError::Tpm)?;
        tpm.enforce_lockout_policy(config)
            .map_err(ClientError::Tpm)?;
        let salt = *random32()?;
        let secret = random32()?;
        let auth = TpmProtector::auth_value(pin, &salt, identity)?;
        let object = tpm.seal(&auth, &secret).map_err(ClientError::Tpm)?;
        Ok(TpmProtector::wrap(ck, &secret, salt, object, identity)?)
    }

    /// A connection to the TPM that sealed `protector`.
    pub(crate) fn connect(
        config: &TpmConfig,
        protector: &TpmProtector,
    ) -> Result<Tpm, ClientError> {
        Tpm::connect(&config.tcti, Some(&protector.object.srk_name)).map_err(ClientError::Tpm)
    }

    /// The container key, if `pin` is right. One PIN-authorized command: a wrong PIN
    /// costs one TPM failure.
    pub(crate) fn unlock(
        tpm: &mut Tpm,
        protector: &TpmProtector,
        pin: &Pin,
        identity: &Binding,
    ) -> Result<ContainerKey, ClientError> {
        let auth = TpmProtector::auth_value(pin, &protector.auth_salt, identity)?;
        let secret = tpm.unseal(&protector.object, &auth)?;
        // The object unsealed, so the PIN was right: a wrap that does not open was
        // altered.
        protector
            .unwrap(&secret, identity)
            .map_err(|_| ClientError::Tampered)
    }

    /// The protector with its object's authorization changed from `old` to `new` (one
    /// more use of `old`, which the caller has just proved right).
    pub(crate) fn change_pin(
        tpm: &mut Tpm,
        protector: &TpmProtector,
        old: &Pin,
        new: &Pin,
        identity: &Binding,
    ) -> Result<TpmProtector, ClientError> {
        let old_auth = TpmProtector::auth_value(old, &protector.auth_salt, identity)?;
        let salt = *random32()?;
        let new_auth = TpmProtector::auth_value(new, &salt, identity)?;
        let private = tpm.change_auth(&protector.object, &old_auth, &new_auth)?;
        let mut changed = protector.clone();
        changed.auth_salt = salt;
        changed.object.private = private;
        Ok(changed)
    }
}

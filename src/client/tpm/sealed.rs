//! The stored half of a TPM-sealed PIN protector, and the cryptography that needs no
//! TPM: the authorization value a PIN becomes, and the container key wrapped under a
//! key derived from the TPM-sealed secret.

// Without the `tpm` feature only the stored form is read (to report and refuse).
#![cfg_attr(not(feature = "tpm"), allow(dead_code))]

use zeroize::Zeroizing;

use crate::client::policy::Pin;
use crate::client::protector::{self, ContainerKey, WRAPPED_LEN};
use crate::crypto::provider::{provider, Failure, Secret32};
use crate::envelope::binding::Binding;

const AUTH_LABEL: &[u8] = b"pin-recovery v1 tpm pin authorization";
const WRAP_LABEL: &[u8] = b"pin-recovery v1 tpm pin protector";

/// The longest TPM name stored: a 2-byte algorithm id and a SHA-512 digest.
pub(crate) const MAX_NAME_LEN: usize = 66;
/// The longest TPM object part (public or private) stored. A sealed 32-byte secret
/// under a P-256 storage key takes about 80 (public) and 160 (private) bytes.
pub(crate) const MAX_BLOB_LEN: usize = 1024;

/// A container key wrapped under a secret that a TPM object seals, and that object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TpmProtector {
    /// Salt of the PIN's authorization value; new with every PIN.
    pub(crate) auth_salt: [u8; 32],
    pub(crate) object: SealedObject,
    pub(crate) nonce: [u8; 12],
    pub(crate) wrapped: [u8; WRAPPED_LEN],
}

impl TpmProtector {
    /// The sealed object's authorization value for `pin`: a fixed length whatever the
    /// PIN, unrelated to the same PIN anywhere else. No Argon2 here: the TPM, not the
    /// derivation's cost, limits the guessing.
    pub(crate) fn auth_value(
        pin: &Pin,
        salt: &[u8; 32],
        identity: &Binding,
    ) -> Result<Secret32, Failure> {
        let prk = provider().hmac_sha256(salt, &[pin.as_bytes()]);
        let mut info = AUTH_LABEL.to_vec();
        identity.encode(&mut info);
        let mut auth = Zeroizing::new([0u8; 32]);
        provider().hkdf_sha256_expand(&prk, &[&info], &mut auth[..])?;
        // The TPM drops trailing zero bytes of an authorization value; a value that
        // cannot end in zero is used the same way by every TSS.
        auth[31] |= 1;
        Ok(auth)
    }

    /// Binds the wrap to the object's parent and public area, not to its private part,
    /// which a PIN change replaces.
    fn aad(identity: &Binding, object: &SealedObject) -> Vec<u8> {
        let mut aad = WRAP_LABEL.to_vec();
        identity.encode(&mut aad);
        aad.extend_from_slice(&provider().sha256(&[&object.srk_name]));
        aad.extend_from_slice(&provider().sha256(&[&object.public]));
        aad
    }

    fn kek(unsealed: &Secret32, aad: &[u8]) -> Result<Secret32, Failure> {
        let mut kek = Zeroizing::new([0u8; 32]);
        provider().hkdf_sha256_expand(unsealed, &[aad], &mut kek[..])?;
        Ok(kek)
    }

    /// Wraps `ck` under the secret the new object seals.
    pub(crate) fn wrap(
        ck: &ContainerKey,
        unsealed: &Secret32,
        auth_salt: [u8; 32],
        object: SealedObject,
        identity: &Binding,
    ) -> Result<Self, Failure> {
        let aad = Self::aad(identity, &object);
        let (nonce, wrapped) = protector::wrap(&*Self::kek(unsealed, &aad)?, &aad, ck)?;
        Ok(TpmProtector {
            auth_salt,
            object,
            nonce,
            wrapped,
        })
    }

    /// The container key, from the secret the TPM unsealed.
    pub(crate) fn unwrap(
        &self,
        unsealed: &Secret32,
        identity: &Binding,
    ) -> Result<ContainerKey, Failure> {
        let aad = Self::aad(identity, &self.object);
        protector::unwrap(
            &*Self::kek(unsealed, &aad)?,
            &aad,
            &self.nonce,
            &self.wrapped,
        )
    }
}

/// A sealed TPM object as stored: its parent's name and its two parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SealedObject {
    /// The storage key's name: another TPM (or a cleared one) has another.
    pub(crate) srk_name: Vec<u8>,
    /// The public area (marshalled TPMT_PUBLIC).
    pub(crate) public: Vec<u8>,
    /// The private area, encrypted by the TPM under the storage key.
    pub(crate) private: Vec<u8>,
}

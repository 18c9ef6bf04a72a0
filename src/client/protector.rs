//! The container key and the two protectors that wrap it: one under an Argon2id key
//! derived from the PIN, one under a key derived from the recovery secret. Also the
//! keys derived from the container key for the payload, the state MAC and the PIN
//! history.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::policy::{Argon2Profile, Pin};
use crate::crypto::provider::{provider, Failure, Secret32};
use crate::crypto::secret::RecoverySecret;
use crate::envelope::binding::Binding;
use crate::envelope::Envelope;

const PIN_LABEL: &[u8] = b"pin-recovery v1 pin protector";
const RECOVERY_LABEL: &[u8] = b"pin-recovery v2 recovery protector";
const REGISTRATION_KEY_WRAP_LABEL: &[u8] = b"pin-recovery v2 registration key wrap";
const PAYLOAD_LABEL: &[u8] = b"pin-recovery v1 container payload";
const MAC_LABEL: &[u8] = b"pin-recovery v1 state mac";
const HISTORY_LABEL: &[u8] = b"pin-recovery v1 pin history";

/// A wrapped 32-byte key: AES-256-GCM ciphertext and tag.
pub(crate) const WRAPPED_LEN: usize = 48;

/// The random key that protects a container's credential keys.
pub(crate) struct ContainerKey(Secret32);

impl ContainerKey {
    pub(crate) fn generate() -> Result<Self, Failure> {
        let mut k = Zeroizing::new([0u8; 32]);
        provider().fill_random(&mut k[..])?;
        Ok(ContainerKey(k))
    }

    /// A key for one purpose, derived so that no two uses share a key.
    fn subkey(&self, label: &[u8]) -> Result<Secret32, Failure> {
        let mut out = Zeroizing::new([0u8; 32]);
        provider().hkdf_sha256_expand(&self.0, &[label], &mut out[..])?;
        Ok(out)
    }

    /// The MAC over a state body.
    pub(crate) fn state_mac(&self, body: &[u8]) -> Result<[u8; 32], Failure> {
        Ok(*provider().hmac_sha256(&self.subkey(MAC_LABEL)?[..], &[body]))
    }

    pub(crate) fn verify_state_mac(&self, body: &[u8], mac: &[u8; 32]) -> Result<bool, Failure> {
        Ok(self.state_mac(body)?.ct_eq(mac).into())
    }

    /// A PIN's history entry: useless without the container key.
    pub(crate) fn history_tag(&self, pin: &Pin) -> Result<[u8; 32], Failure> {
        Ok(*provider().hmac_sha256(&self.subkey(HISTORY_LABEL)?[..], &[pin.as_bytes()]))
    }

    pub(crate) fn seal_payload(
        &self,
        aad: &[u8],
        payload: &[u8],
    ) -> Result<([u8; 12], Vec<u8>), Failure> {
        let key = self.subkey(PAYLOAD_LABEL)?;
        let nonce = random_nonce()?;
        let mut buf = payload.to_vec();
        provider().aes256gcm_seal(&key, &nonce, aad, &mut buf)?;
        Ok((nonce, buf))
    }

    pub(crate) fn open_payload(
        &self,
        aad: &[u8],
        nonce: &[u8; 12],
        ct: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let key = self.subkey(PAYLOAD_LABEL)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = provider().aes256gcm_open(&key, nonce, aad, &mut buf)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn random_nonce() -> Result<[u8; 12], Failure> {
    let mut n = [0u8; 12];
    provider().fill_random(&mut n)?;
    Ok(n)
}

pub(crate) fn wrap(
    kek: &[u8; 32],
    aad: &[u8],
    ck: &ContainerKey,
) -> Result<([u8; 12], [u8; WRAPPED_LEN]), Failure> {
    let nonce = random_nonce()?;
    let mut buf = Zeroizing::new(ck.0.to_vec());
    provider().aes256gcm_seal(kek, &nonce, aad, &mut buf)?;
    let wrapped = <[u8; WRAPPED_LEN]>::try_from(buf.as_slice()).map_err(|_| Failure)?;
    Ok((nonce, wrapped))
}

pub(crate) fn unwrap(
    kek: &[u8; 32],
    aad: &[u8],
    nonce: &[u8; 12],
    wrapped: &[u8; WRAPPED_LEN],
) -> Result<ContainerKey, Failure> {
    let mut buf = Zeroizing::new(*wrapped);
    let pt = provider().aes256gcm_open(kek, nonce, aad, &mut buf[..])?;
    let mut ck = Zeroizing::new([0u8; 32]);
    ck.copy_from_slice(pt.get(..32).ok_or(Failure)?);
    Ok(ContainerKey(ck))
}

/// The container key wrapped under a key derived from the PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PinProtector {
    pub(crate) salt: [u8; 16],
    pub(crate) params: Argon2Profile,
    pub(crate) nonce: [u8; 12],
    pub(crate) wrapped: [u8; WRAPPED_LEN],
}

impl PinProtector {
    fn aad(identity: &Binding, params: &Argon2Profile, salt: &[u8; 16]) -> Vec<u8> {
        let mut aad = PIN_LABEL.to_vec();
        identity.encode(&mut aad);
        aad.extend_from_slice(&params.memory_kib.to_be_bytes());
        aad.extend_from_slice(&params.iterations.to_be_bytes());
        aad.extend_from_slice(&params.parallelism.to_be_bytes());
        aad.extend_from_slice(salt);
        aad
    }

    fn kek(pin: &Pin, salt: &[u8; 16], params: &Argon2Profile) -> Result<Secret32, Failure> {
        if !params.within_bounds() {
            return Err(Failure);
        }
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(
                params.memory_kib,
                params.iterations,
                params.parallelism,
                Some(32),
            )
            .map_err(|_| Failure)?,
        );
        let mut kek = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(pin.as_bytes(), salt, &mut kek[..])
            .map_err(|_| Failure)?;
        Ok(kek)
    }

    pub(crate) fn create(
        ck: &ContainerKey,
        pin: &Pin,
        params: Argon2Profile,
        identity: &Binding,
    ) -> Result<Self, Failure> {
        let mut salt = [0u8; 16];
        provider().fill_random(&mut salt)?;
        let kek = Self::kek(pin, &salt, &params)?;
        let (nonce, wrapped) = wrap(&kek, &Self::aad(identity, &params, &salt), ck)?;
        Ok(PinProtector {
            salt,
            params,
            nonce,
            wrapped,
        })
    }

    /// The container key, if `pin` is right (and the stored parameters are intact).
    pub(crate) fn unlock(&self, pin: &Pin, identity: &Binding) -> Result<ContainerKey, Failure> {
        let kek = Self::kek(pin, &self.salt, &self.params)?;
        unwrap(
            &kek,
            &Self::aad(identity, &self.params, &self.salt),
            &self.nonce,
            &self.wrapped,
        )
    }
}

/// The container key wrapped under a key derived from the recovery secret, with the
/// envelope that carries the secret to the service, and the envelope's registration key
/// wrapped under the container key (to prove, when replacing this envelope at the
/// service, that the device knows its secret). It authenticates itself: both wraps are
/// AEADs over the identity and a hash of the exact envelope bytes, so it sits outside
/// the state MAC and can be dropped without the container key when the service confirms
/// a newer envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecoveryProtector {
    pub(crate) salt: [u8; 16],
    pub(crate) nonce: [u8; 12],
    pub(crate) wrapped: [u8; WRAPPED_LEN],
    pub(crate) key_nonce: [u8; 12],
    pub(crate) wrapped_registration_key: [u8; WRAPPED_LEN],
    pub(crate) envelope: Envelope,
}

impl RecoveryProtector {
    fn aad(label: &[u8], identity: &Binding, envelope: &Envelope) -> Vec<u8> {
        let mut aad = label.to_vec();
        identity.encode(&mut aad);
        aad.extend_from_slice(&provider().sha256(&[envelope.as_bytes()]));
        aad
    }

    fn kek(secret: &RecoverySecret, salt: &[u8; 16], aad: &[u8]) -> Result<Secret32, Failure> {
        let prk = provider().hmac_sha256(salt, &[secret.expose_secret()]);
        let mut kek = Zeroizing::new([0u8; 32]);
        provider().hkdf_sha256_expand(&prk, &[aad], &mut kek[..])?;
        Ok(kek)
    }

    pub(crate) fn create(
        ck: &ContainerKey,
        secret: &RecoverySecret,
        envelope: Envelope,
        identity: &Binding,
    ) -> Result<Self, Failure> {
        let mut salt = [0u8; 16];
        provider().fill_random(&mut salt)?;
        let aad = Self::aad(RECOVERY_LABEL, identity, &envelope);
        let kek = Self::kek(secret, &salt, &aad)?;
        let (nonce, wrapped) = wrap(&kek, &aad, ck)?;
        let registration_key = crate::protocol::registration::registration_key(secret)?;
        let key_aad = Self::aad(REGISTRATION_KEY_WRAP_LABEL, identity, &envelope);
        let (key_nonce, wrapped_registration_key) = wrap(
            &*ck.subkey(REGISTRATION_KEY_WRAP_LABEL)?,
            &key_aad,
            &ContainerKey(registration_key),
        )?;
        Ok(RecoveryProtector {
            salt,
            nonce,
            wrapped,
            key_nonce,
            wrapped_registration_key,
            envelope,
        })
    }

    pub(crate) fn unlock(
        &self,
        secret: &RecoverySecret,
        identity: &Binding,
    ) -> Result<ContainerKey, Failure> {
        let aad = Self::aad(RECOVERY_LABEL, identity, &self.envelope);
        let kek = Self::kek(secret, &self.salt, &aad)?;
        unwrap(&kek, &aad, &self.nonce, &self.wrapped)
    }

    /// The envelope's registration key (see [`crate::protocol::registration::registration_key`]).
    pub(crate) fn registration_key(
        &self,
        ck: &ContainerKey,
        identity: &Binding,
    ) -> Result<Secret32, Failure> {
        let aad = Self::aad(REGISTRATION_KEY_WRAP_LABEL, identity, &self.envelope);
        let key = unwrap(
            &*ck.subkey(REGISTRATION_KEY_WRAP_LABEL)?,
            &aad,
            &self.key_nonce,
            &self.wrapped_registration_key,
        )?;
        Ok(key.0)
    }
}

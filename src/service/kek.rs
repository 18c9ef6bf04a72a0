//! The key-encryption key: the operator's secret under which tenant private keys are
//! stored (AES-256-GCM, bound to the tenant and key id). It comes from a file or the
//! environment, never from the database itself, so a copy of the database alone holds
//! no usable private key. Every replica is given the same one; the store records its
//! fingerprint, so a service started with another key refuses to start before it
//! decrypts or writes anything.

use core::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::store::WrappedKey;
use crate::codec::base64url;
use crate::crypto::provider::{provider, Failure};
use crate::keys::KeyId;

const WRAP_LABEL: &[u8] = b"pin-recovery v1 tenant key";
const FINGERPRINT_LABEL: &[u8] = b"pin-recovery v1 key-encryption key fingerprint";

/// Why a key-encryption key could not be read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KekError {
    /// The file could not be read (its path and the system's error).
    Unreadable(String),
    /// The environment variable is not set.
    Unset(String),
    /// Not 32 bytes, nor 64 hex digits, nor 43 characters of unpadded base64url.
    Malformed,
}

impl fmt::Display for KekError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KekError::Unreadable(why) => write!(f, "key-encryption key unreadable: {why}"),
            KekError::Unset(var) => write!(f, "key-encryption key variable {var} is not set"),
            KekError::Malformed => f.write_str(
                "key-encryption key must be 32 bytes, 64 hex digits or 43 base64url characters",
            ),
        }
    }
}

impl std::error::Error for KekError {}

/// A 256-bit key-encryption key. Wiped on drop, never printed, not `Clone`.
///
/// # Examples
/// ```
/// use pin_recovery::service::KeyEncryptionKey;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("kek");
/// // Once, when the deployment is set up: store it where the operator keeps secrets.
/// std::fs::write(&path, KeyEncryptionKey::generate()?.to_hex().as_bytes())?;
/// // Every start of every replica:
/// let kek = KeyEncryptionKey::from_file(&path)?;
/// assert_eq!(format!("{kek:?}"), "KeyEncryptionKey([redacted])");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl KeyEncryptionKey {
    /// A fresh random key (for setting up a new deployment; store it outside the
    /// database).
    ///
    /// # Errors
    /// [`crate::Error::Crypto`] if the random source fails.
    pub fn generate() -> Result<Self, crate::Error> {
        let mut k = Zeroizing::new([0u8; 32]);
        provider()
            .fill_random(&mut k[..])
            .map_err(|_| crate::Error::Crypto)?;
        Ok(KeyEncryptionKey(k))
    }

    /// From 32 raw bytes, which are wiped.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        let k = KeyEncryptionKey(Zeroizing::new(*bytes));
        zeroize::Zeroize::zeroize(bytes);
        k
    }

    /// From text: 64 hex digits or 43 characters of unpadded base64url, surrounding
    /// whitespace ignored.
    ///
    /// # Errors
    /// [`KekError::Malformed`].
    pub fn from_text(text: &str) -> Result<Self, KekError> {
        let t = text.trim();
        let mut bytes = Zeroizing::new([0u8; 32]);
        if t.len() == 64 {
            base16ct::mixed::decode(t, &mut bytes[..]).map_err(|_| KekError::Malformed)?;
        } else {
            let decoded =
                Zeroizing::new(base64url::b64_decode(t, 32).map_err(|_| KekError::Malformed)?);
            if decoded.len() != 32 {
                return Err(KekError::Malformed);
            }
            bytes.copy_from_slice(&decoded);
        }
        Ok(KeyEncryptionKey(bytes))
    }

    /// From a file holding 32 raw bytes or the text form.
    ///
    /// # Errors
    /// [`KekError::Unreadable`], [`KekError::Malformed`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KekError> {
        let path = path.as_ref();
        let raw = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| KekError::Unreadable(format!("{}: {e}", path.display())))?,
        );
        if let Ok(mut exact) = <[u8; 32]>::try_from(raw.as_slice()) {
            let k = Self::from_bytes(&mut exact);
            return Ok(k);
        }
        let text = std::str::from_utf8(&raw).map_err(|_| KekError::Malformed)?;
        Self::from_text(text)
    }

    /// From the environment variable `var`, in the text form.
    ///
    /// # Errors
    /// [`KekError::Unset`], [`KekError::Malformed`].
    pub fn from_env(var: &str) -> Result<Self, KekError> {
        let value =
            Zeroizing::new(std::env::var(var).map_err(|_| KekError::Unset(var.to_owned()))?);
        Self::from_text(&value)
    }

    /// The text form (64 lowercase hex digits), to store where the operator keeps it.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(base16ct::lower::encode_string(&self.0[..]))
    }

    /// A fingerprint that identifies the key without revealing it.
    pub fn fingerprint(&self) -> [u8; 32] {
        *provider().hmac_sha256(&self.0[..], &[FINGERPRINT_LABEL])
    }

    fn aad(tenant: &str, key_id: KeyId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 2 + tenant.len() + 16);
        aad.extend_from_slice(WRAP_LABEL);
        aad.extend_from_slice(
            &u16::try_from(tenant.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        aad.extend_from_slice(tenant.as_bytes());
        aad.extend_from_slice(key_id.as_bytes());
        aad
    }

    /// Wraps a tenant's private key (PKCS#8 DER).
    pub(crate) fn wrap(
        &self,
        tenant: &str,
        key_id: KeyId,
        pkcs8: &[u8],
    ) -> Result<WrappedKey, Failure> {
        let mut nonce = [0u8; 12];
        provider().fill_random(&mut nonce)?;
        let mut buf = pkcs8.to_vec();
        provider().aes256gcm_seal(&self.0, &nonce, &Self::aad(tenant, key_id), &mut buf)?;
        Ok(WrappedKey {
            nonce,
            ciphertext: buf,
        })
    }

    /// Unwraps a tenant's private key; fails for another key-encryption key, another
    /// tenant or key id, or any change to the stored bytes.
    pub(crate) fn unwrap(
        &self,
        tenant: &str,
        key_id: KeyId,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let mut buf = Zeroizing::new(wrapped.ciphertext.clone());
        let len = provider()
            .aes256gcm_open(
                &self.0,
                &wrapped.nonce,
                &Self::aad(tenant, key_id),
                &mut buf,
            )?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_bound_to_tenant_and_key_id_and_reads_every_text_form() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let id = KeyId::from_bytes([1; 16]);
        let w = kek.wrap("t", id, b"private key der").unwrap();
        assert_eq!(&kek.unwrap("t", id, &w).unwrap()[..], b"private key der");
        assert!(kek.unwrap("u", id, &w).is_err());
        assert!(kek.unwrap("t", KeyId::from_bytes([2; 16]), &w).is_err());
        let other = KeyEncryptionKey::generate().unwrap();
        assert!(other.unwrap("t", id, &w).is_err());
        assert_ne!(kek.fingerprint(), other.fingerprint());
        let hex = kek.to_hex();
        assert_eq!(
            KeyEncryptionKey::from_text(&hex).unwrap().fingerprint(),
            kek.fingerprint()
        );
        let b64 = base64url::b64_encode(&[7; 32]);
        assert!(KeyEncryptionKey::from_text(&format!(" {b64}\n")).is_ok());
        assert_eq!(
            KeyEncryptionKey::from_text("abc").unwrap_err(),
            KekError::Malformed
        );
        assert_eq!(format!("{kek:?}"), "KeyEncryptionKey([redacted])");
    }
}

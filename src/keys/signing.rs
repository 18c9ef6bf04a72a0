//! P-256 ECDSA (SHA-256) keys for everything that signs rather than seals: device keys,
//! which sign recovery requests, and the service's key-document signing key.

use core::fmt;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand_core::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use spki::{DecodePublicKey, EncodePublicKey};
use zeroize::Zeroizing;

use crate::codec::base64url;
use crate::crypto::provider::{provider, EcdsaP256Signer};
use crate::error::{Error, KeyError};
use crate::keys::{MAX_KEY_DER_LEN, MAX_KEY_PEM_LEN};

/// A P-256 signing key. Wiped on drop, not `Clone`, `Debug` shows only the public key.
///
/// # Examples
/// ```
/// use pin_recovery::{SigningKey, VerifyingKey};
///
/// let key = SigningKey::generate()?;
/// let signature = key.sign(b"message")?;
/// let public = VerifyingKey::from_sec1(key.verifying_key().to_sec1())?;
/// assert!(public.verify(b"message", &signature));
/// assert!(format!("{key:?}").contains("[redacted]"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SigningKey {
    secret: p256::SecretKey,
    signer: Box<dyn EcdsaP256Signer>,
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh key.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the provider refuses the key (not expected).
    pub fn generate() -> Result<Self, Error> {
        Self::from_secret(p256::SecretKey::random(&mut OsRng))
    }

    fn from_secret(secret: p256::SecretKey) -> Result<Self, Error> {
        let mut point = [0u8; 65];
        point.copy_from_slice(secret.public_key().to_encoded_point(false).as_bytes());
        let scalar = Zeroizing::new(<[u8; 32]>::from(secret.to_bytes()));
        let signer = provider()
            .ecdsa_p256_signer(&scalar, &point)
            .map_err(|_| Error::Crypto)?;
        Ok(SigningKey {
            secret,
            signer,
            public: VerifyingKey(point),
        })
    }

    /// From a raw private scalar (as the container stores credential keys).
    pub(crate) fn from_scalar(scalar: &[u8; 32]) -> Result<Self, Error> {
        Self::from_secret(
            p256::SecretKey::from_bytes(scalar.into()).map_err(|_| KeyError::Malformed)?,
        )
    }

    /// The raw private scalar, wiped on drop.
    pub(crate) fn scalar(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes().into())
    }

    /// Imports a P-256 PKCS#8 DER document.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] (or [`KeyError::UnsupportedAlgorithm`] for other curves).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        if der.len() > MAX_KEY_DER_LEN {
            return Err(KeyError::Malformed.into());
        }
        let secret = p256::SecretKey::from_pkcs8_der(der).map_err(|e| match e {
            pkcs8::Error::KeyMalformed | pkcs8::Error::Asn1(_) => KeyError::Malformed,
            _ => KeyError::UnsupportedAlgorithm,
        })?;
        Self::from_secret(secret)
    }

    /// Imports a `PRIVATE KEY` PEM document.
    ///
    /// # Errors
    /// As [`SigningKey::from_pkcs8_der`].
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        if pem.len() > MAX_KEY_PEM_LEN {
            return Err(KeyError::Malformed.into());
        }
        let secret = p256::SecretKey::from_pkcs8_pem(pem).map_err(|_| KeyError::Malformed)?;
        Self::from_secret(secret)
    }

    /// The PKCS#8 DER encoding, wiped on drop.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] if the encoder fails (not expected).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = self
            .secret
            .to_pkcs8_der()
            .map_err(|_| KeyError::Malformed)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `msg` (ECDSA P-256 with SHA-256); the signature is `r || s`.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the provider fails.
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; 64], Error> {
        self.signer.sign(msg).map_err(|_| Error::Crypto)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey {{ public: {:?}, secret: [redacted] }}",
            self.public
        )
    }
}

/// A P-256 public key for ECDSA verification, held as its uncompressed SEC1 point
/// (validated on import).
///
/// Its text form, in `Display`, `FromStr`, serde and every JSON message, is the unpadded
/// base64url of that point (87 characters): the form to put in a device's configuration
/// when it pins the service's key-document key.
///
/// # Examples
/// ```
/// use pin_recovery::{SigningKey, VerifyingKey};
///
/// let key = *SigningKey::generate()?.verifying_key();
/// let text = key.to_string();                  // for a configuration profile
/// assert_eq!(text.len(), 87);
/// assert_eq!(text.parse::<VerifyingKey>()?, key);
/// assert!("BAAA".parse::<VerifyingKey>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey([u8; 65]);

impl VerifyingKey {
    /// From an uncompressed SEC1 point.
    ///
    /// # Errors
    /// [`KeyError::InvalidPoint`] if it is not a point on P-256 in uncompressed form.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        let point = <[u8; 65]>::try_from(bytes).map_err(|_| KeyError::InvalidPoint)?;
        p256::PublicKey::from_sec1_bytes(&point).map_err(|_| KeyError::InvalidPoint)?;
        Ok(VerifyingKey(point))
    }

    /// From SubjectPublicKeyInfo DER.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] or [`KeyError::NonCanonical`].
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if der.len() > MAX_KEY_DER_LEN {
            return Err(KeyError::Malformed);
        }
        let key = p256::PublicKey::from_public_key_der(der).map_err(|_| KeyError::Malformed)?;
        let canonical = key.to_public_key_der().map_err(|_| KeyError::Malformed)?;
        if canonical.as_bytes() != der {
            return Err(KeyError::NonCanonical);
        }
        Self::from_sec1(key.to_encoded_point(false).as_bytes())
    }

    /// The uncompressed SEC1 point.
    pub fn to_sec1(&self) -> &[u8; 65] {
        &self.0
    }

    /// Verifies an `r || s` signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        provider().ecdsa_p256_verify(&self.0, msg, sig).is_ok()
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64url::b64_encode(&self.0))
    }
}

impl core::str::FromStr for VerifyingKey {
    type Err = KeyError;

    /// Parses the text form.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] if it is not 65 bytes of canonical unpadded base64url;
    /// [`KeyError::InvalidPoint`] if those are not an uncompressed P-256 point.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let raw = base64url::b64_decode_array::<65>(text).map_err(|_| KeyError::Malformed)?;
        VerifyingKey::from_sec1(&raw)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", base64url::b64_encode(&self.0))
    }
}

impl Serialize for VerifyingKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64url::b64_encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for VerifyingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        let raw = base64url::b64_decode_array::<65>(&s).map_err(serde::de::Error::custom)?;
        VerifyingKey::from_sec1(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_tampering() {
        let k = SigningKey::generate().unwrap();
        let sig = k.sign(b"message").unwrap();
        assert!(k.verifying_key().verify(b"message", &sig));
        assert!(!k.verifying_key().verify(b"messagf", &sig));
        let again = SigningKey::from_pkcs8_der(&k.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(again.verifying_key(), k.verifying_key());
        assert!(format!("{k:?}").contains("[redacted]"));
        let json = serde_json::to_string(k.verifying_key()).unwrap();
        assert_eq!(
            &serde_json::from_str::<VerifyingKey>(&json).unwrap(),
            k.verifying_key()
        );
        assert!(VerifyingKey::from_sec1(&[4u8; 65]).is_err());
    }
}

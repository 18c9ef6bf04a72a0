use core::fmt;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use super::public::{
    check_rsa_bits, PublicKind, OID_EC_PUBLIC_KEY, OID_P256, OID_RSA_ENCRYPTION, OID_XWING,
};
use super::{KeyId, ServicePublicKey, MAX_KEY_DER_LEN, MAX_KEY_PEM_LEN};
use crate::crypto::provider::{provider, P256Agreement, RsaOaepDecryptor};
use crate::crypto::suite::Suite;
use crate::crypto::xwing::{self, XWingPrivate};
use crate::error::{Error, KeyError, Unsupported};

/// A recovery service's private key: what opens envelopes. Service-side only.
///
/// # Examples
/// ```
/// use pin_recovery::{Binding, Error, RecoverySecret, ServicePrivateKey, ServicePublicKey};
///
/// let key = ServicePrivateKey::generate_p256()?;
/// let pem = key.to_pkcs8_pem()?;                      // keep it secret (0600, or an HSM)
/// let again = ServicePrivateKey::from_pkcs8_pem(&pem)?;
/// let public = ServicePublicKey::from_pem(&key.public_key().to_pem())?; // what devices get
/// let b = Binding::new("t", "u", "d")?;
/// let env = public.seal(&RecoverySecret::generate()?, &b)?;
/// assert!(again.open(&env, &b).is_ok());
/// assert_eq!(again.open(&env, &Binding::new("t", "u", "x")?), Err(Error::OpenFailed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Wiped from memory when dropped, not `Clone`, never printed (`Debug` shows the suite
/// and key id, then `[redacted]`). Export it only through the PKCS#8 functions, whose
/// output is itself wiped on drop.
pub struct ServicePrivateKey {
    inner: PrivateInner,
    public: ServicePublicKey,
}

enum PrivateInner {
    P256 {
        /// Kept for export; the provider's handle does the agreements.
        secret: p256::SecretKey,
        agreement: Box<dyn P256Agreement>,
    },
    Rsa {
        key: Box<rsa::RsaPrivateKey>,
        /// `None` when the provider has no constant-time RSA decryption.
        decryptor: Option<Box<dyn RsaOaepDecryptor>>,
    },
    XWing(Box<XWingPrivate>),
}

impl ServicePrivateKey {
    /// Generates a P-256 key for the HPKE suite.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the platform's random source fails.
    pub fn generate_p256() -> Result<Self, Error> {
        Self::from_p256(p256::SecretKey::random(&mut OsRng))
    }

    /// Generates an RSA key for the RSA-OAEP suite (2048, 3072 or 4096 bits). Slow: a
    /// 4096-bit key can take seconds.
    ///
    /// # Errors
    /// [`KeyError::UnsupportedRsaSize`] for other sizes; [`Error::Crypto`] if generation
    /// fails.
    pub fn generate_rsa(bits: usize) -> Result<Self, Error> {
        check_rsa_bits(bits)?;
        let key = rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|_| Error::Crypto)?;
        Self::from_rsa(key)
    }

    /// Generates an X-Wing key (ML-KEM-768 + X25519) for the post-quantum hybrid suite.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the platform's random source fails.
    pub fn generate_xwing() -> Result<Self, Error> {
        let key = XWingPrivate::generate(provider()).map_err(|_| Error::Crypto)?;
        Self::from_xwing(key)
    }

    fn from_xwing(key: XWingPrivate) -> Result<Self, Error> {
        let public = ServicePublicKey::from_kind(PublicKind::XWing(Box::new(*key.public_key())))?;
        Ok(ServicePrivateKey {
            inner: PrivateInner::XWing(Box::new(key)),
            public,
        })
    }

    fn from_p256(secret: p256::SecretKey) -> Result<Self, Error> {
        let scalar = Zeroizing::new(<[u8; 32]>::from(secret.to_bytes()));
        let agreement = provider()
            .p256_agreement_from_scalar(&scalar)
            .map_err(|_| KeyError::Malformed)?;
        let mut point = [0u8; 65];
        point.copy_from_slice(secret.public_key().to_encoded_point(false).as_bytes());
        let public = ServicePublicKey::from_kind(PublicKind::P256(point))?;
        Ok(ServicePrivateKey {
            inner: PrivateInner::P256 { secret, agreement },
            public,
        })
    }

    fn from_rsa(key: rsa::RsaPrivateKey) -> Result<Self, Error> {
        check_rsa_bits(key.n().bits())?;
        key.validate().map_err(|_| KeyError::Malformed)?;
        let der = key.to_pkcs8_der().map_err(|_| KeyError::Malformed)?;
        let decryptor = match provider().rsa_oaep_decryptor(der.as_bytes()) {
            None => None,
            Some(loaded) => Some(loaded.map_err(|_| KeyError::Malformed)?),
        };
        let public = ServicePublicKey::from_kind(PublicKind::Rsa(Box::new(key.to_public_key())))?;
        Ok(ServicePrivateKey {
            inner: PrivateInner::Rsa {
                key: Box::new(key),
                decryptor,
            },
            public,
        })
    }

    /// Imports a PKCS#8 `PrivateKeyInfo` DER document (P-256 or RSA, such as one made by
    /// `openssl genpkey`; or X-Wing: `id-XWing`, no parameters, the raw 32-byte seed).
    ///
    /// # Errors
    /// [`KeyError::Malformed`], [`KeyError::UnsupportedAlgorithm`] or
    /// [`KeyError::UnsupportedRsaSize`] (wrapped in [`Error::Key`]).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        if der.len() > MAX_KEY_DER_LEN {
            return Err(KeyError::Malformed.into());
        }
        let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|_| KeyError::Malformed)?;
        if info.algorithm.oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::Malformed)?;
            if curve != OID_P256 {
                return Err(KeyError::UnsupportedAlgorithm.into());
            }
            let secret = p256::SecretKey::from_pkcs8_der(der).map_err(|_| KeyError::Malformed)?;
            Self::from_p256(secret)
        } else if info.algorithm.oid == OID_RSA_ENCRYPTION {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| KeyError::Malformed)?;
            Self::from_rsa(key)
        } else if info.algorithm.oid == OID_XWING {
            if info.algorithm.parameters.is_some() || info.public_key.is_some() {
                return Err(KeyError::Malformed.into());
            }
            let seed = Zeroizing::new(
                <[u8; xwing::SEED_LEN]>::try_from(info.private_key)
                    .map_err(|_| KeyError::Malformed)?,
            );
            let key = Self::from_xwing(XWingPrivate::from_seed(&seed))?;
            // One encoding per key, as for public keys.
            if key.to_pkcs8_der()?.as_slice() != der {
                return Err(KeyError::Malformed.into());
            }
            Ok(key)
        } else {
            Err(KeyError::UnsupportedAlgorithm.into())
        }
    }

    /// Imports a `PRIVATE KEY` (PKCS#8) PEM document.
    ///
    /// # Errors
    /// As [`ServicePrivateKey::from_pkcs8_der`]; [`KeyError::Malformed`] for bad PEM.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        if pem.len() > MAX_KEY_PEM_LEN {
            return Err(KeyError::Malformed.into());
        }
        let (label, doc) = pkcs8::SecretDocument::from_pem(pem).map_err(|_| KeyError::Malformed)?;
        if label != "PRIVATE KEY" {
            return Err(KeyError::Malformed.into());
        }
        Self::from_pkcs8_der(doc.as_bytes())
    }

    /// The PKCS#8 DER encoding, wiped when dropped.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] if the encoder fails (not expected for a loaded key).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = match &self.inner {
            PrivateInner::P256 { secret, .. } => secret.to_pkcs8_der(),
            PrivateInner::Rsa { key, .. } => key.to_pkcs8_der(),
            PrivateInner::XWing(key) => xwing_pkcs8_der(key),
        }
        .map_err(|_| KeyError::Malformed)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The `PRIVATE KEY` PEM encoding (LF line endings), wiped when dropped.
    ///
    /// # Errors
    /// As [`ServicePrivateKey::to_pkcs8_der`].
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        let der = self.to_pkcs8_der()?;
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Malformed.into())
    }

    /// The matching public key.
    pub fn public_key(&self) -> &ServicePublicKey {
        &self.public
    }

    /// The key id of the public key.
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }

    /// The suite this key opens.
    pub fn suite(&self) -> Suite {
        self.public.suite()
    }

    pub(crate) fn p256_agreement(&self) -> Option<&dyn P256Agreement> {
        match &self.inner {
            PrivateInner::P256 { agreement, .. } => Some(agreement.as_ref()),
            PrivateInner::Rsa { .. } | PrivateInner::XWing(_) => None,
        }
    }

    pub(crate) fn xwing(&self) -> Option<&XWingPrivate> {
        match &self.inner {
            PrivateInner::XWing(key) => Some(key),
            PrivateInner::P256 { .. } | PrivateInner::Rsa { .. } => None,
        }
    }

    /// The RSA decryptor, or why there is none.
    pub(crate) fn rsa_decryptor(&self) -> Result<Option<&dyn RsaOaepDecryptor>, Error> {
        match &self.inner {
            PrivateInner::P256 { .. } | PrivateInner::XWing(_) => Ok(None),
            PrivateInner::Rsa {
                decryptor: Some(d), ..
            } => Ok(Some(d.as_ref())),
            PrivateInner::Rsa {
                decryptor: None, ..
            } => Err(Error::Unsupported(Unsupported::RsaDecryption)),
        }
    }

    /// The modulus length in bytes, for RSA keys.
    pub(crate) fn rsa_modulus_len(&self) -> Option<usize> {
        match &self.inner {
            PrivateInner::Rsa { key, .. } => Some(key.size()),
            PrivateInner::P256 { .. } | PrivateInner::XWing(_) => None,
        }
    }
}

/// PKCS#8 for an X-Wing key: `id-XWing`, no parameters, the seed as the private key.
fn xwing_pkcs8_der(key: &XWingPrivate) -> pkcs8::Result<pkcs8::SecretDocument> {
    let seed = key.seed();
    let info = pkcs8::PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: OID_XWING,
            parameters: None,
        },
        private_key: &seed[..],
        public_key: None,
    };
    pkcs8::SecretDocument::try_from(info)
}

impl fmt::Debug for ServicePrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServicePrivateKey {{ suite: {}, key_id: {}, secret: [redacted] }}",
            self.suite(),
            self.key_id()
        )
    }
}

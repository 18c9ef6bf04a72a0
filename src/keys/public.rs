use core::fmt;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use pkcs8::der::asn1::ObjectIdentifier;
use rsa::traits::PublicKeyParts;
use spki::{DecodePublicKey, EncodePublicKey};

use super::{KeyId, MAX_KEY_DER_LEN, MAX_KEY_PEM_LEN, RSA_KEY_BITS};
use crate::crypto::suite::Suite;
use crate::crypto::xwing;
use crate::error::KeyError;

pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-XWing` (draft-connolly-cfrg-xwing-kem): no parameters; the public key is the raw
/// 1216-byte encapsulation key, the private key the raw 32-byte seed.
pub(crate) const OID_XWING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.62253.25722");

/// A recovery service's public key: what a device seals to.
///
/// Imported only from its one canonical SubjectPublicKeyInfo encoding (an uncompressed
/// point for P-256; for X-Wing, `id-XWing` with no parameters and the raw 1216-byte
/// key), so that every key has exactly one [`KeyId`].
#[derive(Clone)]
pub struct ServicePublicKey {
    kind: PublicKind,
    spki_der: Vec<u8>,
    key_id: KeyId,
}

#[derive(Clone)]
pub(crate) enum PublicKind {
    P256([u8; 65]),
    Rsa(Box<rsa::RsaPublicKey>),
    XWing(Box<[u8; xwing::PUBLIC_KEY_LEN]>),
}

impl ServicePublicKey {
    pub(crate) fn from_kind(kind: PublicKind) -> Result<Self, KeyError> {
        let spki_der = match &kind {
            PublicKind::P256(point) => p256::PublicKey::from_sec1_bytes(point)
                .map_err(|_| KeyError::InvalidPoint)?
                .to_public_key_der(),
            PublicKind::Rsa(key) => key.to_public_key_der(),
            PublicKind::XWing(key) => {
                if !xwing::public_key_is_valid(key) {
                    return Err(KeyError::InvalidPoint);
                }
                xwing_spki_der(key)
            }
        }
        .map_err(|_| KeyError::Malformed)?
        .into_vec();
        let key_id = KeyId::of_spki_der(&spki_der);
        Ok(ServicePublicKey {
            kind,
            spki_der,
            key_id,
        })
    }

    /// Imports a SubjectPublicKeyInfo DER document.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] for bad DER, [`KeyError::UnsupportedAlgorithm`] for keys
    /// other than P-256, RSA and X-Wing, [`KeyError::UnsupportedRsaSize`],
    /// [`KeyError::InvalidPoint`], or [`KeyError::NonCanonical`] for a valid key in
    /// another encoding (such as a compressed point).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if der.len() > MAX_KEY_DER_LEN {
            return Err(KeyError::Malformed);
        }
        let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|_| KeyError::Malformed)?;
        let kind = if info.algorithm.oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::Malformed)?;
            if curve != OID_P256 {
                return Err(KeyError::UnsupportedAlgorithm);
            }
            let key =
                p256::PublicKey::from_public_key_der(der).map_err(|_| KeyError::InvalidPoint)?;
            let mut point = [0u8; 65];
            point.copy_from_slice(key.to_encoded_point(false).as_bytes());
            PublicKind::P256(point)
        } else if info.algorithm.oid == OID_RSA_ENCRYPTION {
            let key =
                rsa::RsaPublicKey::from_public_key_der(der).map_err(|_| KeyError::Malformed)?;
            check_rsa_bits(key.n().bits())?;
            PublicKind::Rsa(Box::new(key))
        } else if info.algorithm.oid == OID_XWING {
            if info.algorithm.parameters.is_some() {
                return Err(KeyError::NonCanonical);
            }
            let raw = info
                .subject_public_key
                .as_bytes()
                .and_then(|b| <[u8; xwing::PUBLIC_KEY_LEN]>::try_from(b).ok())
                .ok_or(KeyError::Malformed)?;
            PublicKind::XWing(Box::new(raw))
        } else {
            return Err(KeyError::UnsupportedAlgorithm);
        };
        let key = Self::from_kind(kind)?;
        if key.spki_der != der {
            return Err(KeyError::NonCanonical);
        }
        Ok(key)
    }

    /// Imports a `PUBLIC KEY` PEM document.
    ///
    /// # Errors
    /// As [`ServicePublicKey::from_spki_der`]; [`KeyError::Malformed`] for bad PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        if pem.len() > MAX_KEY_PEM_LEN {
            return Err(KeyError::Malformed);
        }
        let (label, doc) = spki::Document::from_pem(pem).map_err(|_| KeyError::Malformed)?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Malformed);
        }
        Self::from_spki_der(doc.as_bytes())
    }

    /// The SubjectPublicKeyInfo DER encoding.
    pub fn to_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The `PUBLIC KEY` PEM encoding (LF line endings).
    pub fn to_pem(&self) -> String {
        pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &self.spki_der)
            .unwrap_or_default()
    }

    /// The key id envelopes sealed to this key carry.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The suite this key seals with.
    pub fn suite(&self) -> Suite {
        match self.kind {
            PublicKind::P256(_) => Suite::HpkeP256Sha256Aes256Gcm,
            PublicKind::Rsa(_) => Suite::RsaOaepSha256Aes256Gcm,
            PublicKind::XWing(_) => Suite::HpkeXWingSha256Aes256Gcm,
        }
    }

    pub(crate) fn kind(&self) -> &PublicKind {
        &self.kind
    }
}

/// The SubjectPublicKeyInfo of an X-Wing key: `id-XWing`, no parameters, the raw key.
fn xwing_spki_der(key: &[u8; xwing::PUBLIC_KEY_LEN]) -> spki::Result<spki::Document> {
    use pkcs8::der::Encode;
    let info = spki::SubjectPublicKeyInfoRef {
        algorithm: spki::AlgorithmIdentifierRef {
            oid: OID_XWING,
            parameters: None,
        },
        subject_public_key: pkcs8::der::asn1::BitStringRef::from_bytes(key)?,
    };
    Ok(spki::Document::try_from(info.to_der()?)?)
}

pub(crate) fn check_rsa_bits(bits: usize) -> Result<(), KeyError> {
    if RSA_KEY_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::UnsupportedRsaSize { bits })
    }
}

impl PartialEq for ServicePublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for ServicePublicKey {}

impl fmt::Debug for ServicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServicePublicKey")
            .field("suite", &self.suite())
            .field("key_id", &self.key_id)
            .finish()
    }
}

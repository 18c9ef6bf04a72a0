//! Key documents: the service's list of current sealing keys, signed (ES256 compact JWS,
//! through `jsonwebtoken`) by a service signing key that devices pin. A device seals
//! only to the current key of a document that verifies under the pinned key, is
//! unexpired, names its tenant, and is not older than the newest it has seen.

use core::fmt;
use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::codec::base64url::{b64_decode, b64_encode};
use crate::crypto::suite::Suite;
use crate::error::Error;
use crate::keys::signing::{SigningKey, VerifyingKey};
use crate::keys::{KeyId, ServicePublicKey, MAX_KEY_DER_LEN};

/// The JWS `typ` of key documents; refusing others keeps a token signed for another
/// purpose from passing as a key document.
pub const KEY_DOCUMENT_TYPE: &str = "pin-recovery-keys+jwt";
/// The largest signed key document accepted.
pub const MAX_KEY_DOCUMENT_LEN: usize = 64 * 1024;
/// Tolerated clock difference, in seconds, for a document's issue time.
const ISSUED_SKEW: u64 = 300;

/// Whether a published key is the one to seal to, or only still accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishedStatus {
    /// Devices seal new envelopes to this key. Exactly one key is current.
    Current,
    /// The service still opens envelopes sealed to it; devices reseal away from it.
    Active,
}

/// One key in a key document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedKey {
    /// The public key.
    pub key: ServicePublicKey,
    /// Current or active.
    pub status: PublishedStatus,
}

/// The contents of a key document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDocument {
    /// The service that issued it.
    pub issuer: String,
    /// The tenant whose keys these are.
    pub tenant: String,
    /// Increases with every new document; devices refuse a lower serial than they saw.
    pub serial: u64,
    /// Issue time, seconds since the Unix epoch.
    pub issued_at: u64,
    /// Expiry time, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The keys, exactly one of them current.
    pub keys: Vec<PublishedKey>,
}

impl KeyDocument {
    /// The key to seal to.
    pub fn current(&self) -> Option<&ServicePublicKey> {
        self.keys
            .iter()
            .find(|k| k.status == PublishedStatus::Current)
            .map(|k| &k.key)
    }
}

/// Why a key document was refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyDocumentError {
    /// Not a well-formed signed key document.
    Malformed,
    /// Unsigned, signed with another algorithm or key, or tampered with.
    BadSignature,
    /// For another tenant.
    WrongTenant,
    /// Issued in the future (beyond the tolerated skew).
    NotYetValid,
    /// Past its expiry time.
    Expired,
    /// Older than a document this device already accepted.
    RolledBack {
        /// The document's serial.
        serial: u64,
        /// The newest serial this device has seen.
        last_seen: u64,
    },
    /// No current key, more than one, or a key whose id does not match its key.
    BadKeys,
}

impl fmt::Display for KeyDocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDocumentError::Malformed => f.write_str("malformed key document"),
            KeyDocumentError::BadSignature => {
                f.write_str("key document signature does not verify under the pinned key")
            }
            KeyDocumentError::WrongTenant => f.write_str("key document is for another tenant"),
            KeyDocumentError::NotYetValid => f.write_str("key document is issued in the future"),
            KeyDocumentError::Expired => f.write_str("key document has expired"),
            KeyDocumentError::RolledBack { serial, last_seen } => {
                write!(
                    f,
                    "key document serial {serial} is older than {last_seen}, already seen"
                )
            }
            KeyDocumentError::BadKeys => {
                f.write_str("key document does not list exactly one current, valid key")
            }
        }
    }
}

impl std::error::Error for KeyDocumentError {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    iss: String,
    tid: String,
    serial: u64,
    iat: u64,
    exp: u64,
    keys: Vec<KeyClaim>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyClaim {
    kid: KeyId,
    suite: String,
    spki: String,
    status: PublishedStatus,
}

/// Signs key documents with the service's signing key, whose public half devices pin.
///
/// # Examples
/// ```
/// use pin_recovery::{KeyDocument, KeyDocumentSigner, PublishedKey, PublishedStatus,
///     ServicePrivateKey, SigningKey};
///
/// let signer = KeyDocumentSigner::new(SigningKey::generate()?);
/// let tenant_key = ServicePrivateKey::generate_p256()?;
/// let now = 1_790_000_000;
/// let signed = signer.sign(&KeyDocument {
///     issuer: "https://recovery.example".into(),
///     tenant: "contoso".into(),
///     serial: 1,
///     issued_at: now,
///     expires_at: now + 86_400,
///     keys: vec![PublishedKey { key: tenant_key.public_key().clone(), status: PublishedStatus::Current }],
/// })?;
/// // A device verifies it against the key it pinned, for its tenant, now, and no older
/// // than the newest serial it has seen.
/// let doc = signed.verify(signer.verifying_key(), "contoso", now, 0)?;
/// assert_eq!(doc.current().unwrap().key_id(), tenant_key.key_id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyDocumentSigner {
    key: SigningKey,
}

impl KeyDocumentSigner {
    /// Wraps the signing key whose public half devices pin.
    pub fn new(key: SigningKey) -> Self {
        KeyDocumentSigner { key }
    }

    /// The public key devices pin.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `doc` as a compact JWS.
    ///
    /// # Errors
    /// [`Error::Crypto`] if signing fails.
    pub fn sign(&self, doc: &KeyDocument) -> Result<SignedKeyDocument, Error> {
        let claims = Claims {
            iss: doc.issuer.clone(),
            tid: doc.tenant.clone(),
            serial: doc.serial,
            iat: doc.issued_at,
            exp: doc.expires_at,
            keys: doc
                .keys
                .iter()
                .map(|k| KeyClaim {
                    kid: k.key.key_id(),
                    suite: k.key.suite().name().to_owned(),
                    spki: b64_encode(k.key.to_spki_der()),
                    status: k.status,
                })
                .collect(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(KEY_DOCUMENT_TYPE.to_owned());
        let der = self.key.to_pkcs8_der()?;
        crate::crypto::jose::ensure_provider();
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&der))
            .map_err(|_| Error::Crypto)?;
        Ok(SignedKeyDocument(token))
    }
}

/// A key document as received: a compact JWS, not yet trusted.
///
/// # Examples
/// ```
/// use pin_recovery::SignedKeyDocument;
/// # let (svc, container, _dir) = pin_recovery::testkit::StandIn::enrolled_device()?;
/// # let http_body = svc.fetch_key_document()?.as_str().to_owned();
///
/// // The body of `GET /keys/{tenant}` (docs/PROTOCOL.md §8), as it arrived:
/// let received = SignedKeyDocument::new(http_body);
/// // The container checks it against the key it pinned, for its tenant, now, and not
/// // older than the newest it accepted.
/// let document = container.check_key_document(&received)?;
/// assert_eq!(document.tenant, "contoso");
/// assert!(document.current().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedKeyDocument(String);

impl SignedKeyDocument {
    /// Wraps a received compact JWS.
    pub fn new(jws: impl Into<String>) -> Self {
        SignedKeyDocument(jws.into())
    }

    /// The compact JWS.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Verifies the document under the pinned key and checks it is for `tenant`, valid at
    /// `now`, and no older than serial `last_seen`.
    ///
    /// # Errors
    /// A [`KeyDocumentError`] naming the first check that failed.
    pub fn verify(
        &self,
        pinned: &VerifyingKey,
        tenant: &str,
        now: u64,
        last_seen: u64,
    ) -> Result<KeyDocument, KeyDocumentError> {
        if self.0.len() > MAX_KEY_DOCUMENT_LEN {
            return Err(KeyDocumentError::Malformed);
        }
        let header =
            jsonwebtoken::decode_header(&self.0).map_err(|_| KeyDocumentError::BadSignature)?;
        if header.alg != Algorithm::ES256 {
            return Err(KeyDocumentError::BadSignature);
        }
        if header.typ.as_deref() != Some(KEY_DOCUMENT_TYPE) {
            return Err(KeyDocumentError::Malformed);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let key = DecodingKey::from_ec_der(pinned.to_sec1());
        crate::crypto::jose::ensure_provider();
        let claims = jsonwebtoken::decode::<Claims>(&self.0, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey => {
                    KeyDocumentError::BadSignature
                }
                _ => KeyDocumentError::Malformed,
            })?
            .claims;
        if claims.tid != tenant {
            return Err(KeyDocumentError::WrongTenant);
        }
        if claims.iat > now.saturating_add(ISSUED_SKEW) {
            return Err(KeyDocumentError::NotYetValid);
        }
        if now >= claims.exp {
            return Err(KeyDocumentError::Expired);
        }
        if claims.serial < last_seen {
            return Err(KeyDocumentError::RolledBack {
                serial: claims.serial,
                last_seen,
            });
        }
        let mut keys = Vec::with_capacity(claims.keys.len());
        for k in &claims.keys {
            let der =
                b64_decode(&k.spki, MAX_KEY_DER_LEN).map_err(|_| KeyDocumentError::BadKeys)?;
            let key =
                ServicePublicKey::from_spki_der(&der).map_err(|_| KeyDocumentError::BadKeys)?;
            if key.key_id() != k.kid || Ok(key.suite()) != k.suite.parse::<Suite>() {
                return Err(KeyDocumentError::BadKeys);
            }
            keys.push(PublishedKey {
                key,
                status: k.status,
            });
        }
        if keys
            .iter()
            .filter(|k| k.status == PublishedStatus::Current)
            .count()
            != 1
        {
            return Err(KeyDocumentError::BadKeys);
        }
        Ok(KeyDocument {
            issuer: claims.iss,
            tenant: claims.tid,
            serial: claims.serial,
            issued_at: claims.iat,
            expires_at: claims.exp,
            keys,
        })
    }
}

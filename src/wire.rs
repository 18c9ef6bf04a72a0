//! The messages between device and service, as versioned, size-limited, canonical JSON:
//! a recovery request, its response, and an envelope registration. Binary fields are
//! unpadded base64url; unknown fields, duplicate fields and any non-canonical layout are
//! refused, so `to_json(from_json(b)) == b` for every accepted `b`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::encoding::{b64_decode_array, b64_encode};
use crate::envelope::{Envelope, EnvelopeId};
use crate::error::DecodeError;
use crate::hpke::ENC_LEN;
use crate::provider::{provider, Failure, Secret32};
use crate::secret::RecoverySecret;

/// The wire version this implementation speaks.
pub const WIRE_VERSION: u8 = 1;
/// The largest JSON message accepted; longer input is refused before parsing.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// The largest MFA assertion (compact JWS) accepted.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// The sealed secret in a response: an HPKE encapsulated key and the 48-byte ciphertext.
pub const SEALED_SECRET_LEN: usize = ENC_LEN + 48;

const REQUEST_LABEL: &[u8] = b"pin-recovery v1 recovery request";
const NONCE_LABEL: &[u8] = b"pin-recovery v1 mfa nonce";
const REGISTRATION_LABEL: &[u8] = b"pin-recovery v1 envelope registration";
const REGISTRATION_KEY_LABEL: &[u8] = b"pin-recovery v1 registration key";
/// Prepended to the request hash to form the HPKE `info` of a response.
pub(crate) const RESPONSE_LABEL: &[u8] = b"pin-recovery v1 response";

/// Parses `bytes` as `T` and insists that they are exactly `T`'s canonical encoding.
fn from_canonical_json<T, W>(bytes: &[u8]) -> Result<T, DecodeError>
where
    W: for<'de> Deserialize<'de> + Serialize,
    T: TryFrom<W, Error = DecodeError>,
    for<'a> &'a T: Into<W>,
{
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLong {
            max: MAX_MESSAGE_LEN,
        });
    }
    let wire: W = serde_json::from_slice(bytes).map_err(|_| DecodeError::BadDocument {
        reason: "not a valid message",
    })?;
    let value = T::try_from(wire)?;
    let canonical: W = (&value).into();
    if serde_json::to_vec(&canonical).ok().as_deref() != Some(bytes) {
        return Err(DecodeError::BadDocument {
            reason: "not in canonical form",
        });
    }
    Ok(value)
}

fn check_version(v: u8) -> Result<(), DecodeError> {
    if v == WIRE_VERSION {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion(v))
    }
}

/// A device's request to recover the secret sealed in its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryRequest {
    envelope: Envelope,
    ephemeral_key: [u8; ENC_LEN],
    assertion: String,
    device_signature: [u8; 64],
    /// What the device signs, built once the parts are checked.
    signed: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestWire {
    version: u8,
    envelope: Envelope,
    ephemeral_key: String,
    assertion: String,
    device_signature: String,
}

impl TryFrom<RequestWire> for RecoveryRequest {
    type Error = DecodeError;
    fn try_from(w: RequestWire) -> Result<Self, DecodeError> {
        check_version(w.version)?;
        let ephemeral_key = b64_decode_array(&w.ephemeral_key)?;
        let signed = request_signed_bytes(&w.envelope, &ephemeral_key, &w.assertion)?;
        Ok(RecoveryRequest {
            envelope: w.envelope,
            ephemeral_key,
            assertion: w.assertion,
            device_signature: b64_decode_array(&w.device_signature)?,
            signed,
        })
    }
}

impl From<&RecoveryRequest> for RequestWire {
    fn from(r: &RecoveryRequest) -> Self {
        RequestWire {
            version: WIRE_VERSION,
            envelope: r.envelope.clone(),
            ephemeral_key: b64_encode(&r.ephemeral_key),
            assertion: r.assertion.clone(),
            device_signature: b64_encode(&r.device_signature),
        }
    }
}

/// Checks that `a` can be carried in a request: at most [`MAX_ASSERTION_LEN`] bytes of
/// the compact JWS alphabet (base64url and dots).
pub(crate) fn check_assertion(a: &str) -> Result<(), DecodeError> {
    if a.len() > MAX_ASSERTION_LEN {
        return Err(DecodeError::TooLong {
            max: MAX_ASSERTION_LEN,
        });
    }
    if !a
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(DecodeError::BadDocument {
            reason: "assertion is not a compact JWS",
        });
    }
    Ok(())
}

impl RecoveryRequest {
    /// Assembles a request from its parts and the signature over `signed`, which the
    /// client module built with [`request_signed_bytes`] from the same parts.
    pub(crate) fn new(
        envelope: Envelope,
        ephemeral_key: [u8; ENC_LEN],
        assertion: String,
        device_signature: [u8; 64],
        signed: Vec<u8>,
    ) -> Self {
        RecoveryRequest {
            envelope,
            ephemeral_key,
            assertion,
            device_signature,
            signed,
        }
    }

    /// Parses the canonical JSON form.
    ///
    /// # Errors
    /// [`DecodeError`] for oversized, malformed, non-canonical or unknown-version input.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        from_canonical_json::<Self, RequestWire>(bytes)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&RequestWire::from(self)).unwrap_or_default()
    }

    /// The envelope to open.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The device's one-time P-256 public key the answer is sealed to.
    pub fn ephemeral_key(&self) -> &[u8; ENC_LEN] {
        &self.ephemeral_key
    }

    /// The identity provider's MFA assertion (compact JWS).
    pub fn assertion(&self) -> &str {
        &self.assertion
    }

    /// The device key's signature over [`RecoveryRequest::signed_bytes`].
    pub fn device_signature(&self) -> &[u8; 64] {
        &self.device_signature
    }

    /// The bytes the device signs: a label, then the envelope, the ephemeral key and the
    /// assertion, each length-delimited (docs/PROTOCOL.md §3).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// SHA-256 of [`RecoveryRequest::signed_bytes`]: what the response is bound to.
    pub fn request_hash(&self) -> [u8; 32] {
        provider().sha256(&[&self.signed])
    }
}

/// The bytes a device signs for a request; checks the assertion first.
pub(crate) fn request_signed_bytes(
    envelope: &Envelope,
    ephemeral_key: &[u8; ENC_LEN],
    assertion: &str,
) -> Result<Vec<u8>, DecodeError> {
    check_assertion(assertion)?;
    let env = envelope.as_bytes();
    let mut out =
        Vec::with_capacity(REQUEST_LABEL.len() + 4 + env.len() + ENC_LEN + assertion.len());
    out.extend_from_slice(REQUEST_LABEL);
    crate::codec::put_vec16(&mut out, env)?;
    out.extend_from_slice(ephemeral_key);
    crate::codec::put_vec16(&mut out, assertion.as_bytes())?;
    Ok(out)
}

/// The `nonce` an MFA assertion must carry for a request: unpadded base64url of
/// SHA-256(label || envelope id || ephemeral key). It ties the assertion to this one
/// request, so an assertion cannot be replayed with another envelope or another key.
pub fn mfa_nonce(envelope_id: &EnvelopeId, ephemeral_key: &[u8; ENC_LEN]) -> String {
    b64_encode(&provider().sha256(&[NONCE_LABEL, envelope_id.as_bytes(), ephemeral_key]))
}

/// The service's answer: the secret sealed (HPKE, to the request's ephemeral key, bound
/// to the request hash). Never the secret in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryResponse {
    envelope_id: EnvelopeId,
    sealed_secret: [u8; SEALED_SECRET_LEN],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseWire {
    version: u8,
    envelope_id: EnvelopeId,
    sealed_secret: String,
}

impl TryFrom<ResponseWire> for RecoveryResponse {
    type Error = DecodeError;
    fn try_from(w: ResponseWire) -> Result<Self, DecodeError> {
        check_version(w.version)?;
        Ok(RecoveryResponse {
            envelope_id: w.envelope_id,
            sealed_secret: b64_decode_array(&w.sealed_secret)?,
        })
    }
}

impl From<&RecoveryResponse> for ResponseWire {
    fn from(r: &RecoveryResponse) -> Self {
        ResponseWire {
            version: WIRE_VERSION,
            envelope_id: r.envelope_id,
            sealed_secret: b64_encode(&r.sealed_secret),
        }
    }
}

impl RecoveryResponse {
    pub(crate) fn new(envelope_id: EnvelopeId, sealed_secret: [u8; SEALED_SECRET_LEN]) -> Self {
        RecoveryResponse {
            envelope_id,
            sealed_secret,
        }
    }

    /// Parses the canonical JSON form.
    ///
    /// # Errors
    /// [`DecodeError`] for oversized, malformed, non-canonical or unknown-version input.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        from_canonical_json::<Self, ResponseWire>(bytes)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ResponseWire::from(self)).unwrap_or_default()
    }

    /// The envelope this answers for.
    pub fn envelope_id(&self) -> EnvelopeId {
        self.envelope_id
    }

    pub(crate) fn sealed_secret(&self) -> &[u8; SEALED_SECRET_LEN] {
        &self.sealed_secret
    }
}

/// A device's request to make `envelope` the one the service will open for it,
/// replacing `previous` (compare-and-swap, so a replayed registration changes nothing).
/// Replacing an envelope also needs `proof`: an HMAC over the signed bytes under a key
/// derived from the previous envelope's secret, which the device keeps (encrypted under
/// its container key) and the service recovers by opening the previous envelope. A stale
/// backup, whose envelope is not the registered one, cannot produce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeRegistration {
    envelope: Envelope,
    previous: Option<EnvelopeId>,
    proof: Option<[u8; 32]>,
    device_signature: [u8; 64],
    signed: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationWire {
    version: u8,
    envelope: Envelope,
    previous: Option<EnvelopeId>,
    proof: Option<String>,
    device_signature: String,
}

impl TryFrom<RegistrationWire> for EnvelopeRegistration {
    type Error = DecodeError;
    fn try_from(w: RegistrationWire) -> Result<Self, DecodeError> {
        check_version(w.version)?;
        let proof = w.proof.as_deref().map(b64_decode_array).transpose()?;
        if w.previous.is_some() != proof.is_some() {
            return Err(DecodeError::BadDocument {
                reason: "a proof comes with a previous envelope, and only then",
            });
        }
        let signed = registration_signed_bytes(&w.envelope, w.previous)?;
        Ok(EnvelopeRegistration {
            envelope: w.envelope,
            previous: w.previous,
            proof,
            device_signature: b64_decode_array(&w.device_signature)?,
            signed,
        })
    }
}

impl From<&EnvelopeRegistration> for RegistrationWire {
    fn from(r: &EnvelopeRegistration) -> Self {
        RegistrationWire {
            version: WIRE_VERSION,
            envelope: r.envelope.clone(),
            previous: r.previous,
            proof: r.proof.as_ref().map(|p| b64_encode(p)),
            device_signature: b64_encode(&r.device_signature),
        }
    }
}

impl EnvelopeRegistration {
    pub(crate) fn new(
        envelope: Envelope,
        previous: Option<EnvelopeId>,
        proof: Option<[u8; 32]>,
        device_signature: [u8; 64],
        signed: Vec<u8>,
    ) -> Self {
        EnvelopeRegistration {
            envelope,
            previous,
            proof,
            device_signature,
            signed,
        }
    }

    /// Parses the canonical JSON form.
    ///
    /// # Errors
    /// [`DecodeError`] for oversized, malformed, non-canonical or unknown-version input,
    /// and for a proof without a previous envelope or a previous envelope without one.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        from_canonical_json::<Self, RegistrationWire>(bytes)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&RegistrationWire::from(self)).unwrap_or_default()
    }

    /// The envelope to register.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The envelope it replaces (`None` for the first registration).
    pub fn previous(&self) -> Option<EnvelopeId> {
        self.previous
    }

    /// The proof of knowing the previous envelope's secret (present exactly when
    /// `previous` is).
    pub fn proof(&self) -> Option<&[u8; 32]> {
        self.proof.as_ref()
    }

    /// The device key's signature over [`EnvelopeRegistration::signed_bytes`].
    pub fn device_signature(&self) -> &[u8; 64] {
        &self.device_signature
    }

    /// The bytes the device signs and the proof authenticates.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }
}

pub(crate) fn registration_signed_bytes(
    envelope: &Envelope,
    previous: Option<EnvelopeId>,
) -> Result<Vec<u8>, DecodeError> {
    let env = envelope.as_bytes();
    let mut out = Vec::with_capacity(REGISTRATION_LABEL.len() + 2 + env.len() + 17);
    out.extend_from_slice(REGISTRATION_LABEL);
    crate::codec::put_vec16(&mut out, env)?;
    match previous {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
    Ok(out)
}

/// The key that authorises replacing an envelope: derived from its secret, so known only
/// to the service (which opens the envelope) and the device (which keeps it encrypted
/// under its container key).
pub(crate) fn registration_key(secret: &RecoverySecret) -> Result<Secret32, Failure> {
    let mut key = Zeroizing::new([0u8; 32]);
    provider().hkdf_sha256_expand(
        secret.expose_secret(),
        &[REGISTRATION_KEY_LABEL],
        &mut key[..],
    )?;
    Ok(key)
}

/// The proof for a registration whose signed bytes are `signed`.
pub(crate) fn registration_proof(key: &[u8; 32], signed: &[u8]) -> [u8; 32] {
    *provider().hmac_sha256(key, &[signed])
}

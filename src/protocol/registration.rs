//! Envelope registration: which envelope the service is to open for a device, as a
//! compare-and-swap on the previous one, with the proof that replacing it needs.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::json::{check_version, from_canonical_json, WIRE_VERSION};
use crate::codec::base64url::{b64_decode_array, b64_encode};
use crate::crypto::provider::{provider, Failure, Secret32};
use crate::crypto::secret::RecoverySecret;
use crate::envelope::{Envelope, EnvelopeId};
use crate::error::DecodeError;

const REGISTRATION_LABEL: &[u8] = b"pin-recovery v1 envelope registration";
const REGISTRATION_KEY_LABEL: &[u8] = b"pin-recovery v1 registration key";

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

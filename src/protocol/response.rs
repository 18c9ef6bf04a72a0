//! The service's answer: the secret sealed to the request's one-time key.

use serde::{Deserialize, Serialize};

use super::json::{check_version, from_canonical_json, WIRE_VERSION};
use crate::codec::base64url::{b64_decode, b64_encode};
use crate::crypto::{hpke, xwing};
use crate::envelope::EnvelopeId;
use crate::error::DecodeError;

/// The sealed secret in an answer to a P-256 one-time key (for `hpke-p256` and
/// `rsa-oaep` envelopes): the 65-byte encapsulated key and the 48-byte ciphertext.
pub const SEALED_SECRET_LEN: usize = hpke::ENC_LEN + 48;
/// The sealed secret in an answer to an X-Wing one-time key (for `hpke-xwing`
/// envelopes): the 1120-byte encapsulation and the 48-byte ciphertext.
pub const SEALED_SECRET_LEN_XWING: usize = xwing::ENC_LEN + 48;
/// Prepended to the request hash to form the HPKE `info` of a response.
pub(crate) const RESPONSE_LABEL: &[u8] = b"pin-recovery v1 response";

/// The service's answer: the secret sealed (HPKE, to the request's ephemeral key, bound
/// to the request hash). Never the secret in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryResponse {
    envelope_id: EnvelopeId,
    /// [`SEALED_SECRET_LEN`] or [`SEALED_SECRET_LEN_XWING`] bytes; which one the request
    /// asked for is checked when the device opens it.
    sealed_secret: Vec<u8>,
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
        let sealed_secret = b64_decode(&w.sealed_secret, SEALED_SECRET_LEN_XWING)?;
        if ![SEALED_SECRET_LEN, SEALED_SECRET_LEN_XWING].contains(&sealed_secret.len()) {
            return Err(DecodeError::BadLength {
                field: "sealed secret",
                found: sealed_secret.len(),
            });
        }
        Ok(RecoveryResponse {
            envelope_id: w.envelope_id,
            sealed_secret,
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
    pub(crate) fn new(envelope_id: EnvelopeId, sealed_secret: Vec<u8>) -> Self {
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

    pub(crate) fn sealed_secret(&self) -> &[u8] {
        &self.sealed_secret
    }
}

//! The recovery request: the envelope, the device's one-time key, the MFA assertion
//! bound to both by its nonce, and the device key's signature over all three.
//!
//! The one-time key's KEM follows the envelope's suite, so that the answer is as strong
//! as the envelope: an X-Wing key (1216 bytes) for `hpke-xwing` envelopes, a P-256 point
//! (65 bytes) for every other suite.

use serde::{Deserialize, Serialize};

use super::json::{check_version, from_canonical_json, WIRE_VERSION};
use crate::codec::base64url::{b64_decode, b64_decode_array, b64_encode};
use crate::crypto::provider::provider;
use crate::crypto::suite::Suite;
use crate::crypto::{hpke, xwing};
use crate::envelope::{Envelope, EnvelopeId};
use crate::error::DecodeError;

/// The largest MFA assertion (compact JWS) accepted.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

const REQUEST_LABEL: &[u8] = b"pin-recovery v1 recovery request";
const NONCE_LABEL: &[u8] = b"pin-recovery v1 mfa nonce";

/// A device's request to recover the secret sealed in its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryRequest {
    envelope: Envelope,
    /// Of the length [`OneTimeKem::public_key_len`] gives for the envelope's suite.
    ephemeral_key: Vec<u8>,
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
        let want = OneTimeKem::for_suite(w.envelope.suite()).public_key_len();
        let ephemeral_key = b64_decode(&w.ephemeral_key, want)?;
        if ephemeral_key.len() != want {
            return Err(DecodeError::BadLength {
                field: "ephemeral key",
                found: ephemeral_key.len(),
            });
        }
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
        ephemeral_key: Vec<u8>,
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

    /// The device's one-time public key the answer is sealed to: a P-256 point (65
    /// bytes), or an X-Wing key (1216 bytes) for an `hpke-xwing` envelope.
    pub fn ephemeral_key(&self) -> &[u8] {
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
    ephemeral_key: &[u8],
    assertion: &str,
) -> Result<Vec<u8>, DecodeError> {
    check_assertion(assertion)?;
    // The envelope fixes the key's length, so the key needs no length prefix.
    if ephemeral_key.len() != OneTimeKem::for_suite(envelope.suite()).public_key_len() {
        return Err(DecodeError::BadLength {
            field: "ephemeral key",
            found: ephemeral_key.len(),
        });
    }
    let env = envelope.as_bytes();
    let mut out = Vec::with_capacity(
        REQUEST_LABEL.len() + 4 + env.len() + ephemeral_key.len() + assertion.len(),
    );
    out.extend_from_slice(REQUEST_LABEL);
    crate::codec::put_vec16(&mut out, env)?;
    out.extend_from_slice(ephemeral_key);
    crate::codec::put_vec16(&mut out, assertion.as_bytes())?;
    Ok(out)
}

/// The `nonce` an MFA assertion must carry for a request: unpadded base64url of
/// SHA-256(label || envelope id || ephemeral key). It ties the assertion to this one
/// request, so an assertion cannot be replayed with another envelope or another key.
pub fn mfa_nonce(envelope_id: &EnvelopeId, ephemeral_key: &[u8]) -> String {
    b64_encode(&provider().sha256(&[NONCE_LABEL, envelope_id.as_bytes(), ephemeral_key]))
}

/// The KEM of the one-time key a request for an envelope carries: the one place that
/// decides it, so the device, the decoder and the service agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OneTimeKem {
    /// A P-256 point (65 bytes), for hpke-p256 and rsa-oaep envelopes.
    P256,
    /// An X-Wing key (1216 bytes), for hpke-xwing envelopes: the answer is post-quantum.
    XWing,
}

impl OneTimeKem {
    pub(crate) fn for_suite(suite: Suite) -> Self {
        match suite {
            Suite::HpkeXWingSha256Aes256Gcm => OneTimeKem::XWing,
            Suite::HpkeP256Sha256Aes256Gcm | Suite::RsaOaepSha256Aes256Gcm => OneTimeKem::P256,
        }
    }

    pub(crate) fn public_key_len(self) -> usize {
        match self {
            OneTimeKem::XWing => xwing::PUBLIC_KEY_LEN,
            OneTimeKem::P256 => hpke::ENC_LEN,
        }
    }
}

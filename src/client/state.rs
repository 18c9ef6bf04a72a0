//! The stored container: one canonical binary encoding (decode rejects truncation,
//! trailing bytes, bad lengths and unknown versions), split into a body that the
//! container key authenticates and a small tail that changes without it (the failed-PIN
//! counter and the service's registration acknowledgement).

use zeroize::Zeroizing;

use super::policy::Argon2Profile;
use super::protector::{PinProtector, RecoveryProtector, WRAPPED_LEN};
use crate::binding::Binding;
use crate::codec::{self, Reader};
use crate::envelope::{Envelope, EnvelopeId, MAX_ENVELOPE_LEN};
use crate::error::DecodeError;

const MAGIC: [u8; 4] = *b"PRCS";
const VERSION: u8 = 1;
/// The most PIN history entries a payload can hold.
pub(crate) const MAX_HISTORY: usize = 50;
const PAYLOAD_MAX: usize = 32 + 1 + 32 * MAX_HISTORY + 16;
const PAYLOAD_MIN: usize = 32 + 1 + 16;

/// A decoded container state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) identity: Binding,
    pub(crate) credential_public: [u8; 65],
    pub(crate) payload_nonce: [u8; 12],
    pub(crate) payload: Vec<u8>,
    pub(crate) pin: PinProtector,
    pub(crate) pin_set_at: u64,
    pub(crate) recovery: Option<RecoveryProtector>,
    pub(crate) key_doc_serial: u64,
    pub(crate) mac: [u8; 32],
    pub(crate) failed_attempts: u32,
    pub(crate) registered: Option<EnvelopeId>,
}

impl State {
    /// The bytes the state MAC covers.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        self.identity.encode(&mut out);
        out.extend_from_slice(&self.credential_public);
        out.extend_from_slice(&self.payload_nonce);
        codec::put_vec16(&mut out, &self.payload);
        out.extend_from_slice(&self.pin.salt);
        out.extend_from_slice(&self.pin.params.memory_kib.to_be_bytes());
        out.extend_from_slice(&self.pin.params.iterations.to_be_bytes());
        out.extend_from_slice(&self.pin.params.parallelism.to_be_bytes());
        out.extend_from_slice(&self.pin.nonce);
        out.extend_from_slice(&self.pin.wrapped);
        out.extend_from_slice(&self.pin_set_at.to_be_bytes());
        match &self.recovery {
            None => out.push(0),
            Some(r) => {
                out.push(1);
                out.extend_from_slice(&r.salt);
                out.extend_from_slice(&r.nonce);
                out.extend_from_slice(&r.wrapped);
                codec::put_vec16(&mut out, r.envelope.as_bytes());
            }
        }
        out.extend_from_slice(&self.key_doc_serial.to_be_bytes());
        out
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.failed_attempts.to_be_bytes());
        match self.registered {
            None => out.push(0),
            Some(id) => {
                out.push(1);
                out.extend_from_slice(id.as_bytes());
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.magic_and_version(MAGIC, VERSION)?;
        let identity = Binding::read(&mut r)?;
        let credential_public = r.array()?;
        let payload_nonce = r.array()?;
        let payload = r.vec16("payload", PAYLOAD_MIN, PAYLOAD_MAX)?.to_vec();
        let salt = r.array()?;
        let params = Argon2Profile {
            memory_kib: r.u32()?,
            iterations: r.u32()?,
            parallelism: r.u32()?,
        };
        if !params.within_bounds() {
            return Err(DecodeError::BadDocument {
                reason: "Argon2 parameters out of bounds",
            });
        }
        let pin = PinProtector {
            salt,
            params,
            nonce: r.array()?,
            wrapped: r.array::<WRAPPED_LEN>()?,
        };
        let pin_set_at = r.u64()?;
        let recovery = match flag(&mut r)? {
            false => None,
            true => Some(RecoveryProtector {
                salt: r.array()?,
                nonce: r.array()?,
                wrapped: r.array()?,
                envelope: Envelope::from_bytes(r.vec16("envelope", 1, MAX_ENVELOPE_LEN)?)?,
            }),
        };
        let key_doc_serial = r.u64()?;
        let mac = r.array()?;
        let failed_attempts = r.u32()?;
        let registered = match flag(&mut r)? {
            false => None,
            true => Some(EnvelopeId::from_bytes(r.array()?)),
        };
        r.finish()?;
        Ok(State {
            identity,
            credential_public,
            payload_nonce,
            payload,
            pin,
            pin_set_at,
            recovery,
            key_doc_serial,
            mac,
            failed_attempts,
            registered,
        })
    }

    /// The associated data of the payload: it ties the credential keys to this identity
    /// and this credential public key.
    pub(crate) fn payload_aad(identity: &Binding, credential_public: &[u8; 65]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(3 + 3 * Binding::MAX_ID_LEN + 65);
        identity.encode(&mut aad);
        aad.extend_from_slice(credential_public);
        aad
    }
}

fn flag(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        found => Err(DecodeError::BadLength {
            field: "flag",
            found: usize::from(found),
        }),
    }
}

/// What the container key encrypts: the credential private key and the PIN history.
pub(crate) struct Payload {
    pub(crate) credential: Zeroizing<[u8; 32]>,
    pub(crate) history: Vec<[u8; 32]>,
}

impl Payload {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(33 + 32 * self.history.len()));
        out.extend_from_slice(&self.credential[..]);
        let n = self.history.len().min(MAX_HISTORY);
        out.push(u8::try_from(n).unwrap_or(0));
        for h in self.history.iter().take(n) {
            out.extend_from_slice(h);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let credential = Zeroizing::new(r.array()?);
        let n = usize::from(r.u8()?);
        if n > MAX_HISTORY {
            return Err(DecodeError::BadLength {
                field: "history",
                found: n,
            });
        }
        let mut history = Vec::with_capacity(n);
        for _ in 0..n {
            history.push(r.array()?);
        }
        r.finish()?;
        Ok(Payload {
            credential,
            history,
        })
    }
}

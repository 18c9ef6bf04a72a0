//! The stored container: one canonical binary encoding (decode rejects truncation,
//! trailing bytes, bad lengths and unknown versions), in three parts: a body that the
//! container key authenticates; the recovery protectors, each authenticating itself, so
//! that a confirmed registration can drop the one it replaces without the container key;
//! and the failed-PIN counter, which changes before the PIN is known.

use zeroize::Zeroizing;

use super::policy::Argon2Profile;
use super::protector::{PinProtector, RecoveryProtector, WRAPPED_LEN};
use super::tpm::sealed::{SealedObject, TpmProtector, MAX_BLOB_LEN, MAX_NAME_LEN};
use crate::codec::{self, Reader};
use crate::envelope::binding::Binding;
use crate::envelope::{Envelope, EnvelopeId, MAX_ENVELOPE_LEN};
use crate::error::DecodeError;

const MAGIC: [u8; 4] = *b"PRCS";
/// Version 2: the device key; recovery protectors outside the MAC, a pending one beside
/// the registered one, each with its registration key; the Argon2id PIN protector.
/// Version 1 containers are refused.
const VERSION_ARGON2ID: u8 = 2;
/// Version 3: as version 2, with a TPM-sealed PIN protector in place of the Argon2id
/// one. The version says which, so each state has exactly one encoding and version 2
/// containers need no migration.
const VERSION_TPM: u8 = 3;
/// The most PIN history entries a payload can hold.
pub(crate) const MAX_HISTORY: usize = 50;
const PAYLOAD_MAX: usize = 32 + 1 + 32 * MAX_HISTORY + 16;
const PAYLOAD_MIN: usize = 32 + 1 + 16;

/// The device key's private scalar: wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DeviceScalar(pub(crate) Zeroizing<[u8; 32]>);

impl core::fmt::Debug for DeviceScalar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceScalar([redacted])")
    }
}

/// A new envelope waiting for the service to register it, with the proof that replaces
/// the current one (present exactly when there is a current one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NextEnvelope {
    pub(crate) protector: RecoveryProtector,
    pub(crate) proof: Option<[u8; 32]>,
}

/// What guards the container key behind the PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PinGuard {
    /// A key derived from the PIN by Argon2id: open to offline guessing by whoever
    /// copies the container.
    Argon2id(PinProtector),
    /// A secret sealed by a TPM object whose authorization the PIN gives: the TPM counts
    /// the guesses.
    Tpm(TpmProtector),
}

/// A decoded container state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) identity: Binding,
    /// The device key's private scalar: in the clear (the device must sign recovery
    /// requests when the PIN is forgotten), covered by the MAC.
    pub(crate) device_key: DeviceScalar,
    pub(crate) credential_public: [u8; 65],
    pub(crate) payload_nonce: [u8; 12],
    pub(crate) payload: Vec<u8>,
    pub(crate) pin: PinGuard,
    pub(crate) pin_set_at: u64,
    pub(crate) key_doc_serial: u64,
    pub(crate) mac: [u8; 32],
    /// The protector whose envelope the service holds (it confirmed the registration, or
    /// released the secret).
    pub(crate) current: Option<RecoveryProtector>,
    /// The protector whose envelope is to replace `current` at the service. Both stay
    /// until the service confirms, so the user can recover whichever it holds.
    pub(crate) next: Option<NextEnvelope>,
    pub(crate) failed_attempts: u32,
}

impl State {
    /// The bytes the state MAC covers.
    pub(crate) fn body(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&MAGIC);
        out.push(match self.pin {
            PinGuard::Argon2id(_) => VERSION_ARGON2ID,
            PinGuard::Tpm(_) => VERSION_TPM,
        });
        self.identity.encode(&mut out);
        out.extend_from_slice(&self.device_key.0[..]);
        out.extend_from_slice(&self.credential_public);
        out.extend_from_slice(&self.payload_nonce);
        codec::put_vec16(&mut out, &self.payload)?;
        match &self.pin {
            PinGuard::Argon2id(p) => {
                out.extend_from_slice(&p.salt);
                out.extend_from_slice(&p.params.memory_kib.to_be_bytes());
                out.extend_from_slice(&p.params.iterations.to_be_bytes());
                out.extend_from_slice(&p.params.parallelism.to_be_bytes());
                out.extend_from_slice(&p.nonce);
                out.extend_from_slice(&p.wrapped);
            }
            PinGuard::Tpm(p) => {
                out.extend_from_slice(&p.auth_salt);
                codec::put_vec8(&mut out, &p.object.srk_name)?;
                codec::put_vec16(&mut out, &p.object.public)?;
                codec::put_vec16(&mut out, &p.object.private)?;
                out.extend_from_slice(&p.nonce);
                out.extend_from_slice(&p.wrapped);
            }
        }
        out.extend_from_slice(&self.pin_set_at.to_be_bytes());
        out.extend_from_slice(&self.key_doc_serial.to_be_bytes());
        Ok(out)
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = self.body()?;
        out.extend_from_slice(&self.mac);
        match &self.current {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                put_protector(&mut out, p)?;
            }
        }
        match &self.next {
            None => out.push(0),
            Some(n) => {
                out.push(1);
                put_protector(&mut out, &n.protector)?;
                match &n.proof {
                    None => out.push(0),
                    Some(proof) => {
                        out.push(1);
                        out.extend_from_slice(proof);
                    }
                }
            }
        }
        out.extend_from_slice(&self.failed_attempts.to_be_bytes());
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = match r.magic_and_version(MAGIC, VERSION_ARGON2ID) {
            Err(DecodeError::UnsupportedVersion(VERSION_TPM)) => VERSION_TPM,
            other => other.map(|()| VERSION_ARGON2ID)?,
        };
        let identity = Binding::read(&mut r)?;
        let device_key = DeviceScalar(Zeroizing::new(r.array()?));
        let credential_public = r.array()?;
        let payload_nonce = r.array()?;
        let payload = r.vec16("payload", PAYLOAD_MIN, PAYLOAD_MAX)?.to_vec();
        let pin = if version == VERSION_TPM {
            PinGuard::Tpm(TpmProtector {
                auth_salt: r.array()?,
                object: SealedObject {
                    srk_name: r.vec8("TPM storage key name", 1, MAX_NAME_LEN)?.to_vec(),
                    public: r.vec16("TPM public area", 1, MAX_BLOB_LEN)?.to_vec(),
                    private: r.vec16("TPM private area", 1, MAX_BLOB_LEN)?.to_vec(),
                },
                nonce: r.array()?,
                wrapped: r.array::<WRAPPED_LEN>()?,
            })
        } else {
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
            PinGuard::Argon2id(PinProtector {
                salt,
                params,
                nonce: r.array()?,
                wrapped: r.array::<WRAPPED_LEN>()?,
            })
        };
        let pin_set_at = r.u64()?;
        let key_doc_serial = r.u64()?;
        let mac = r.array()?;
        let current = match flag(&mut r)? {
            false => None,
            true => Some(read_protector(&mut r)?),
        };
        let next = match flag(&mut r)? {
            false => None,
            true => Some(NextEnvelope {
                protector: read_protector(&mut r)?,
                proof: match flag(&mut r)? {
                    false => None,
                    true => Some(r.array()?),
                },
            }),
        };
        if next
            .as_ref()
            .is_some_and(|n| n.proof.is_some() != current.is_some())
        {
            return Err(DecodeError::BadDocument {
                reason: "a pending envelope has a proof exactly when it replaces one",
            });
        }
        let failed_attempts = r.u32()?;
        r.finish()?;
        Ok(State {
            identity,
            device_key,
            credential_public,
            payload_nonce,
            payload,
            pin,
            pin_set_at,
            key_doc_serial,
            mac,
            current,
            next,
            failed_attempts,
        })
    }

    /// The envelope the service is to replace with `next`'s, if any.
    pub(crate) fn previous(&self) -> Option<EnvelopeId> {
        self.current.as_ref().map(|p| p.envelope.envelope_id())
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

fn put_protector(out: &mut Vec<u8>, p: &RecoveryProtector) -> Result<(), DecodeError> {
    out.extend_from_slice(&p.salt);
    out.extend_from_slice(&p.nonce);
    out.extend_from_slice(&p.wrapped);
    out.extend_from_slice(&p.key_nonce);
    out.extend_from_slice(&p.wrapped_registration_key);
    codec::put_vec16(out, p.envelope.as_bytes())
}

fn read_protector(r: &mut Reader<'_>) -> Result<RecoveryProtector, DecodeError> {
    Ok(RecoveryProtector {
        salt: r.array()?,
        nonce: r.array()?,
        wrapped: r.array()?,
        key_nonce: r.array()?,
        wrapped_registration_key: r.array()?,
        envelope: Envelope::from_bytes(r.vec16("envelope", 1, MAX_ENVELOPE_LEN)?)?,
    })
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

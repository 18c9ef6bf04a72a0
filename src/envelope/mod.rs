//! The sealed envelope: its fields, its one canonical binary encoding, its text form and
//! its serde form. docs/FORMAT.md is the byte-level specification; this module follows it.

pub(crate) mod binding;
mod open;
mod seal;

use core::fmt;
use core::ops::Range;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::base64url;
use crate::codec::hex_id::hex_id;
use crate::codec::{self, Reader};
use crate::crypto::suite::Suite;
use crate::envelope::binding::Binding;
use crate::error::DecodeError;
use crate::keys::KeyId;

hex_id!(
    /// A random id that names one envelope. The service registers, per device, the id
    /// of the envelope it will open, so an older envelope is refused.
    EnvelopeId,
    "envelope id"
);

/// The four bytes every envelope starts with.
pub const MAGIC: [u8; 4] = *b"PINR";
/// The format version this implementation writes and reads.
pub const VERSION: u8 = 1;
/// The prefix of an envelope's text form.
pub const TEXT_PREFIX: &str = "pinrec1.";
/// The largest binary envelope accepted; longer input is refused before parsing.
pub const MAX_ENVELOPE_LEN: usize = 4096;

/// Prepended to the header bytes to form the HPKE `info` (and the RSA suite's AEAD
/// associated data): it separates envelopes from every other use of the keys.
pub(crate) const ENVELOPE_LABEL: &[u8] = b"pin-recovery v1 envelope";
/// The secret's ciphertext: 32 bytes and a 16-byte tag, in every suite.
pub(crate) const CIPHERTEXT_LEN: usize = 32 + 16;

/// A recovery secret sealed to a service key and bound to a tenant, user and device.
///
/// Decoding checks structure only (no key is needed): [`Envelope::from_bytes`] and
/// [`Envelope::from_text`] accept exactly the canonical encoding, so
/// `Envelope::from_bytes(b)?.to_bytes() == b` for every accepted `b`. Everything in the
/// header is authenticated when the envelope is opened.
///
/// # Examples
/// ```
/// use pin_recovery::{Binding, Envelope, RecoverySecret, ServicePrivateKey, Suite};
///
/// let key = ServicePrivateKey::generate_p256()?;
/// let alice = Binding::new("contoso", "alice", "LAPTOP-1")?;
/// let envelope = key.public_key().seal(&RecoverySecret::generate()?, &alice)?;
/// // Anyone can read the header; nothing in it is trusted until it opens.
/// let read: Envelope = envelope.to_text().parse()?;
/// assert_eq!((read.suite(), read.key_id(), read.binding()), (Suite::HpkeP256Sha256Aes256Gcm, key.key_id(), &alice));
/// assert_eq!(Envelope::from_bytes(read.as_bytes())?, envelope);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Vec<u8>,
    header_len: usize,
    suite: Suite,
    key_id: KeyId,
    envelope_id: EnvelopeId,
    binding: Binding,
    created_at: u64,
    encapsulated: Range<usize>,
    ciphertext: Range<usize>,
}

impl Envelope {
    /// Decodes the canonical binary form.
    ///
    /// # Errors
    /// [`DecodeError`] for input that is too long, truncated, has trailing bytes, a bad
    /// magic, an unknown version or suite, or a field of a length or content the format
    /// does not allow.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(DecodeError::TooLong {
                max: MAX_ENVELOPE_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        r.magic_and_version(MAGIC, VERSION)?;
        let suite_id = r.u16()?;
        let suite = Suite::from_id(suite_id).ok_or(DecodeError::UnknownSuite(suite_id))?;
        let key_id = KeyId::from_bytes(r.array()?);
        let envelope_id = EnvelopeId::from_bytes(r.array()?);
        let binding = Binding::read(&mut r)?;
        let created_at = r.u64()?;
        let header_len = r.consumed().len();

        let (enc_min, enc_max) = encapsulated_len_range(suite);
        let enc_len = r.vec16("encapsulated key", enc_min, enc_max)?.len();
        if suite == Suite::RsaOaepSha256Aes256Gcm
            && !crate::keys::RSA_KEY_BITS.contains(&(enc_len * 8))
        {
            return Err(DecodeError::BadLength {
                field: "encapsulated key",
                found: enc_len,
            });
        }
        let encapsulated = header_len + 2..header_len + 2 + enc_len;
        r.vec16("ciphertext", CIPHERTEXT_LEN, CIPHERTEXT_LEN)?;
        let ciphertext = encapsulated.end + 2..encapsulated.end + 2 + CIPHERTEXT_LEN;
        r.finish()?;
        Ok(Envelope {
            bytes: bytes.to_vec(),
            header_len,
            suite,
            key_id,
            envelope_id,
            binding,
            created_at,
            encapsulated,
            ciphertext,
        })
    }

    /// Assembles an envelope from its parts (used by sealing).
    pub(crate) fn assemble(
        header: Vec<u8>,
        encapsulated: &[u8],
        ciphertext: &[u8],
    ) -> Result<Self, DecodeError> {
        let mut bytes = header;
        codec::put_vec16(&mut bytes, encapsulated)?;
        codec::put_vec16(&mut bytes, ciphertext)?;
        Self::from_bytes(&bytes)
    }

    /// The canonical binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The canonical binary form, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes the text form: [`TEXT_PREFIX`] then unpadded base64url.
    ///
    /// # Errors
    /// [`DecodeError::BadMagic`] without the prefix, [`DecodeError::BadBase64`] for
    /// non-canonical base64url, [`DecodeError::TooLong`], and every error of
    /// [`Envelope::from_bytes`].
    pub fn from_text(text: &str) -> Result<Self, DecodeError> {
        let body = text
            .strip_prefix(TEXT_PREFIX)
            .ok_or(DecodeError::BadMagic)?;
        Self::from_bytes(&base64url::b64_decode(body, MAX_ENVELOPE_LEN)?)
    }

    /// The text form: [`TEXT_PREFIX`] then unpadded base64url.
    pub fn to_text(&self) -> String {
        let mut s = String::from(TEXT_PREFIX);
        s.push_str(&base64url::b64_encode(&self.bytes));
        s
    }

    /// The format version.
    pub fn version(&self) -> u8 {
        VERSION
    }

    /// The suite the secret is sealed with.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The id of the service key the envelope is sealed to.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// This envelope's random id.
    pub fn envelope_id(&self) -> EnvelopeId {
        self.envelope_id
    }

    /// The tenant, user and device the envelope is bound to.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// Creation time, in seconds since the Unix epoch (as claimed by the sealer).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The header bytes exactly as encoded: what the seal authenticates.
    pub(crate) fn header_bytes(&self) -> &[u8] {
        self.bytes.get(..self.header_len).unwrap_or_default()
    }

    pub(crate) fn encapsulated(&self) -> &[u8] {
        self.bytes
            .get(self.encapsulated.clone())
            .unwrap_or_default()
    }

    pub(crate) fn ciphertext(&self) -> &[u8] {
        self.bytes.get(self.ciphertext.clone()).unwrap_or_default()
    }
}

/// The encapsulated-key lengths each suite allows.
fn encapsulated_len_range(suite: Suite) -> (usize, usize) {
    match suite {
        Suite::HpkeP256Sha256Aes256Gcm => {
            (crate::crypto::hpke::ENC_LEN, crate::crypto::hpke::ENC_LEN)
        }
        Suite::RsaOaepSha256Aes256Gcm => (256, crate::crypto::provider::RSA_MAX_BYTES),
        Suite::HpkeXWingSha256Aes256Gcm => {
            (crate::crypto::xwing::ENC_LEN, crate::crypto::xwing::ENC_LEN)
        }
    }
}

/// Encodes a header (docs/FORMAT.md §2).
pub(crate) fn encode_header(
    suite: Suite,
    key_id: KeyId,
    envelope_id: EnvelopeId,
    binding: &Binding,
    created_at: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 3 * Binding::MAX_ID_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&suite.id().to_be_bytes());
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(envelope_id.as_bytes());
    binding.encode(&mut out);
    out.extend_from_slice(&created_at.to_be_bytes());
    out
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &VERSION)
            .field("suite", &self.suite)
            .field("key_id", &self.key_id)
            .field("envelope_id", &self.envelope_id)
            .field("binding", &self.binding)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Envelope {
    /// The text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Envelope {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_text(s)
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        Envelope::from_text(&s).map_err(serde::de::Error::custom)
    }
}

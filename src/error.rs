//! The envelope layer's error type.
//!
//! Which errors a caller can act on:
//! - [`Error::Decode`] and [`Error::InvalidBinding`]: the input is malformed; fix or drop it.
//!   Retrying the same bytes will fail the same way.
//! - [`Error::Key`]: the key is malformed, of a refused size, or of the wrong kind for the
//!   operation; supply another key.
//! - [`Error::Unsupported`]: this build cannot do the operation (for example, opening an
//!   RSA envelope without the `aws-lc` feature); rebuild with the named feature.
//! - [`Error::OpenFailed`]: the envelope did not open. Deliberately without detail: wrong
//!   key, wrong binding and tampering are indistinguishable, so it is not an oracle.
//! - [`Error::Crypto`]: the platform's randomness or a primitive failed; retrying may work.

use core::fmt;

/// Errors from encoding, decoding, key handling, sealing and opening envelopes.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Bytes or text that are not a valid canonical encoding.
    Decode(DecodeError),
    /// A tenant, user or device id that the format cannot carry.
    InvalidBinding(BindingError),
    /// A key that cannot be imported, exported or used for this operation.
    Key(KeyError),
    /// The operation is not available in this build.
    Unsupported(Unsupported),
    /// The envelope could not be opened with this key and binding. Carries no detail on
    /// purpose: a wrong key, a wrong binding and any tampering all look the same.
    OpenFailed,
    /// The platform's random source or a primitive failed unexpectedly.
    Crypto,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(e) => write!(f, "invalid encoding: {e}"),
            Error::InvalidBinding(e) => write!(f, "invalid binding: {e}"),
            Error::Key(e) => write!(f, "key error: {e}"),
            Error::Unsupported(e) => write!(f, "unsupported: {e}"),
            Error::OpenFailed => f.write_str("the envelope could not be opened"),
            Error::Crypto => f.write_str("a cryptographic primitive or the random source failed"),
        }
    }
}

impl std::error::Error for Error {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Key(e)
    }
}

impl From<BindingError> for Error {
    fn from(e: BindingError) -> Self {
        Error::InvalidBinding(e)
    }
}

/// Why bytes or text were refused by a decoder.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the structure did.
    Truncated,
    /// Bytes follow a complete structure.
    TrailingBytes,
    /// The input is longer than the format allows; nothing was parsed.
    TooLong {
        /// The largest accepted size, in bytes.
        max: usize,
    },
    /// The magic bytes or the text prefix are not this format's.
    BadMagic,
    /// A format version this implementation does not know.
    UnsupportedVersion(u8),
    /// A suite id that is not in the registry (or not one this build knows).
    UnknownSuite(u16),
    /// A length field outside the range the format allows for that field.
    BadLength {
        /// The field whose length is wrong.
        field: &'static str,
        /// The length found.
        found: usize,
    },
    /// A field that is not UTF-8, or carries a character the format forbids.
    BadText {
        /// The field in question.
        field: &'static str,
    },
    /// Text that is not canonical unpadded base64url (padding, whitespace, non-zero
    /// trailing bits or a character outside the alphabet).
    BadBase64,
    /// A structured document (JSON, JWS) that does not match its schema.
    BadDocument {
        /// What was wrong, in words.
        reason: &'static str,
    },
    /// A JSON message that does not parse as the message it should be, at the parser's
    /// position (from 1). The input itself is never quoted (not even a field name: a
    /// caller chose those).
    BadJson {
        /// What is wrong.
        problem: JsonProblem,
        /// The line.
        line: usize,
        /// The column.
        column: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("input is truncated"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after the structure"),
            DecodeError::TooLong { max } => write!(f, "input longer than {max} bytes"),
            DecodeError::BadMagic => {
                f.write_str("not a pin-recovery structure (bad magic or prefix)")
            }
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            DecodeError::UnknownSuite(s) => write!(f, "unknown suite id 0x{s:04x}"),
            DecodeError::BadLength { field, found } => {
                write!(f, "length {found} not allowed for field {field}")
            }
            DecodeError::BadText { field } => write!(f, "field {field} is not valid text"),
            DecodeError::BadBase64 => f.write_str("not canonical unpadded base64url"),
            DecodeError::BadDocument { reason } => write!(f, "malformed document: {reason}"),
            DecodeError::BadJson {
                problem,
                line,
                column,
            } => write!(f, "{problem} (line {line}, column {column})"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What is wrong with a JSON message that does not parse.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonProblem {
    /// It is not JSON (a syntax error).
    Syntax,
    /// It ends before the JSON value does.
    Truncated,
    /// It is JSON, but not this message: a field missing, unknown or repeated, or a
    /// value of the wrong type or out of range.
    Shape,
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonProblem::Syntax => "not valid JSON",
            JsonProblem::Truncated => "the JSON ends early",
            JsonProblem::Shape => {
                "valid JSON but not the expected message (a field missing, unknown or repeated, or a value of the wrong type or out of range)"
            }
        })
    }
}

/// Why a tenant, user or device id was refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingError {
    /// The id is empty.
    Empty {
        /// `tenant`, `user` or `device`.
        field: &'static str,
    },
    /// The id is longer than [`crate::Binding::MAX_ID_LEN`] bytes.
    TooLong {
        /// `tenant`, `user` or `device`.
        field: &'static str,
    },
    /// The id contains a control character (refused so that logs and CLI output cannot
    /// be spoofed).
    ControlCharacter {
        /// `tenant`, `user` or `device`.
        field: &'static str,
    },
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindingError::Empty { field } => write!(f, "{field} id is empty"),
            BindingError::TooLong { field } => write!(f, "{field} id is too long"),
            BindingError::ControlCharacter { field } => {
                write!(f, "{field} id contains a control character")
            }
        }
    }
}

impl std::error::Error for BindingError {}

/// Why a key was refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not a well-formed PKCS#8, SubjectPublicKeyInfo or PEM document.
    Malformed,
    /// A well-formed key of an algorithm or curve this crate does not use.
    UnsupportedAlgorithm,
    /// An RSA modulus size other than 2048, 3072 or 4096 bits.
    UnsupportedRsaSize {
        /// The modulus size found, in bits.
        bits: usize,
    },
    /// A public key whose encoding is valid but not the one canonical encoding (for
    /// example a compressed point): refused so that every key has exactly one key id.
    NonCanonical,
    /// The key is for another suite than the operation needs.
    WrongSuite,
    /// A public value that is not valid for its algorithm: a point not on the curve or
    /// at infinity, or an ML-KEM key with a coefficient out of range.
    InvalidPoint,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed => f.write_str("malformed key document"),
            KeyError::UnsupportedAlgorithm => f.write_str("unsupported key algorithm or curve"),
            KeyError::UnsupportedRsaSize { bits } => {
                write!(f, "RSA keys must be 2048, 3072 or 4096 bits, not {bits}")
            }
            KeyError::NonCanonical => f.write_str("public key is not canonically encoded"),
            KeyError::WrongSuite => f.write_str("key is for another suite"),
            KeyError::InvalidPoint => f.write_str("invalid public key value"),
        }
    }
}

impl std::error::Error for KeyError {}

/// An operation this build does not offer.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// RSA-OAEP decryption runs only on a constant-time implementation; the default
    /// provider has none (the `rsa` crate carries RUSTSEC-2023-0071). Enable `aws-lc`.
    RsaDecryption,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::RsaDecryption => f.write_str(
                "RSA-OAEP decryption needs the `aws-lc` feature (no constant-time RSA in the default provider)",
            ),
        }
    }
}

impl std::error::Error for Unsupported {}

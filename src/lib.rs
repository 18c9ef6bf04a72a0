#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![warn(clippy::cast_possible_truncation)]

mod binding;
mod codec;
mod encoding;
mod envelope;
mod error;
mod hex_id;
mod hpke;
mod keys;
mod provider;
mod secret;
mod suite;

pub use binding::Binding;
pub use envelope::{Envelope, EnvelopeId, MAGIC, MAX_ENVELOPE_LEN, TEXT_PREFIX, VERSION};
pub use error::{BindingError, DecodeError, Error, KeyError, Unsupported};
pub use keys::{KeyId, ServicePrivateKey, ServicePublicKey, RSA_KEY_BITS};
pub use secret::RecoverySecret;
pub use suite::{Suite, UnknownSuiteName};

#[doc(hidden)]
pub mod __internal;

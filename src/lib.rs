#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(clippy::cast_possible_truncation)]

mod binding;
pub mod client;
mod clock;
mod codec;
mod encoding;
mod envelope;
mod error;
mod hex_id;
mod hpke;
mod keydoc;
mod keys;
mod probe;
mod provider;
mod secret;
pub mod service;
mod signing;
mod suite;
pub mod testkit;
mod wire;

pub use binding::Binding;
pub use clock::{Clock, ManualClock, SystemClock};
pub use envelope::{Envelope, EnvelopeId, MAGIC, MAX_ENVELOPE_LEN, TEXT_PREFIX, VERSION};
pub use error::{BindingError, DecodeError, Error, KeyError, Unsupported};
pub use keydoc::{
    KeyDocument, KeyDocumentError, KeyDocumentSigner, PublishedKey, PublishedStatus,
    SignedKeyDocument, KEY_DOCUMENT_TYPE, MAX_KEY_DOCUMENT_LEN,
};
pub use keys::{KeyId, ServicePrivateKey, ServicePublicKey, RSA_KEY_BITS};
pub use secret::RecoverySecret;
pub use signing::{SigningKey, VerifyingKey};
pub use suite::{Suite, UnknownSuiteName};
pub use wire::{
    mfa_nonce, EnvelopeRegistration, RecoveryRequest, RecoveryResponse, MAX_ASSERTION_LEN,
    MAX_MESSAGE_LEN, SEALED_SECRET_LEN, WIRE_VERSION,
};

#[doc(hidden)]
pub mod __internal;

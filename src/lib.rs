#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(clippy::cast_possible_truncation)]
// The core serves two sides; a build with only one of them leaves the other's helpers
// unused, which is expected, not dead code.
#![cfg_attr(
    not(all(feature = "client", feature = "service")),
    allow(dead_code, unused_imports)
)]

// The layers, bottom up: bytes in and values out; the cryptography; keys; the envelope;
// what crosses between device and service; then the two sides, each behind its feature.
#[cfg(feature = "client")]
pub mod client;
mod codec;
mod crypto;
mod envelope;
#[cfg(all(feature = "client", feature = "service"))]
pub mod guides;
mod keys;
mod protocol;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "testkit")]
pub mod testkit;

mod clock;
mod error;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::secret::RecoverySecret;
pub use crypto::suite::{Suite, UnknownSuiteName};
pub use envelope::binding::Binding;
pub use envelope::{Envelope, EnvelopeId, MAGIC, MAX_ENVELOPE_LEN, TEXT_PREFIX, VERSION};
pub use error::{BindingError, DecodeError, Error, JsonProblem, KeyError, Unsupported};
pub use keys::{
    KeyId, ServicePrivateKey, ServicePublicKey, SigningKey, VerifyingKey, RSA_KEY_BITS,
};
pub use protocol::device::DeviceRegistration;
pub use protocol::json::{MAX_MESSAGE_LEN, WIRE_VERSION};
pub use protocol::key_document::{
    KeyDocument, KeyDocumentError, KeyDocumentSigner, PublishedKey, PublishedStatus,
    SignedKeyDocument, KEY_DOCUMENT_TYPE, MAX_KEY_DOCUMENT_LEN,
};
pub use protocol::refusal::{Advice, Refusal, RefusalCode};
pub use protocol::registration::EnvelopeRegistration;
pub use protocol::request::{mfa_nonce, RecoveryRequest, MAX_ASSERTION_LEN};
pub use protocol::response::{RecoveryResponse, SEALED_SECRET_LEN, SEALED_SECRET_LEN_XWING};

#[doc(hidden)]
pub mod __internal;

//! The device side: the credential container with its PIN and recovery protectors, the
//! PIN policy, crash-safe storage, and the device's half of a recovery exchange.
//!
//! This module seals (to the service's public key, taken from a key document signed by
//! a pinned key) and builds requests; the only thing it ever opens is the service's
//! answer, sealed to its own one-time key. It never opens an envelope.

mod container;
mod error;
mod policy;
mod protector;
mod recovery;
mod reset;
mod state;
mod store;
mod tpm;

pub use container::{
    Container, ContainerStatus, DestructiveReset, Enrolment, PinProtectorKind, ServiceTrust, SignIn,
};
pub use error::ClientError;
pub use policy::{
    Argon2Profile, CharClass, CharRule, ContainerPolicy, Pin, PinPolicy, PinPolicyViolation,
    PinProtectorChoice,
};
pub use recovery::PendingRecovery;
pub use reset::{RecoveryIncomplete, Reset};
pub use store::{
    ContainerStore, FaultHook, FileStore, MemoryStore, StoreError, StoreLock, StoreStep,
    MAX_STATE_LEN,
};
pub use tpm::TpmError;
#[cfg(feature = "tpm")]
pub use tpm::{LockoutAuthorization, TpmConfig};

#[doc(hidden)]
pub fn __decode_state(bytes: &[u8]) -> Result<Vec<u8>, crate::DecodeError> {
    state::State::decode(bytes).and_then(|s| s.encode())
}

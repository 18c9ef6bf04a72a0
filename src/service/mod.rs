//! The service side: tenant keyrings, MFA-assertion checks against the issuers each
//! tenant trusts, replay and rate limits, device and envelope registration, the answer
//! sealed to the device's one-time key, and audit events, over a [`ServiceStore`].
//!
//! [`RecoveryService`] is async; [`blocking::RecoveryService`] is its synchronous front.
//! This module opens envelopes and answers; it never seals an envelope.

mod audit;
pub mod blocking;
mod devices;
mod error;
mod handler;
mod issuers;
mod kek;
mod keyring;
mod mfa;
mod register;
mod release;
mod start;
mod store;

pub use audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, JsonLinesAuditSink, MemoryAuditSink,
    RequestContext, ResetNotifier, SinkError,
};
pub use error::{RateScope, ServiceError};
pub use handler::RecoveryService;
pub use issuers::{
    AssertionAlgorithm, ClaimNames, IssuerError, IssuerTrust, SkippedKey, TrustedIssuer,
    MAX_JWKS_LEN, MIN_RSA_BITS,
};
pub use kek::{KekError, KeyEncryptionKey};
pub use keyring::KeyInfo;
pub use mfa::{AssertionClaims, Audience, MfaPolicy, AMR_MFA, FORBIDDEN_HEADER_PARAMETERS};
pub use start::{RecoveryServiceBuilder, ServiceConfig, StartError};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    DeviceRecord, EnvelopeSwap, KeyState, MemorySnapshot, MemoryStore, NewTenantKey, RateKey,
    RateLimit, RatePolicy, ReleaseCommit, ReleaseOutcome, ServiceStore, StorageFailure, StoredKey,
    StoredKeyring, WrappedKey,
};

//! The service side: versioned tenant keys, MFA-assertion checks, replay and rate
//! limits, device and envelope registration, the answer sealed to the device's one-time
//! key, and audit events.
//!
//! This module opens envelopes and answers; it never seals an envelope.

mod audit;
mod error;
mod handler;
mod issuers;
mod keyring;
mod mfa;
mod register;
mod release;
mod stores;

pub use audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, JsonLinesAuditSink, MemoryAuditSink,
    RequestContext, ResetNotifier, SinkError,
};
pub use error::{RateScope, ServiceError, StorageFailure};
pub use handler::{RecoveryService, RecoveryServiceBuilder, ServiceConfig};
pub use issuers::{
    AssertionAlgorithm, ClaimNames, IssuerError, IssuerTrust, SkippedKey, TrustedIssuer,
    MAX_JWKS_LEN, MIN_RSA_BITS,
};
pub use keyring::{KeyState, TenantKeyring};
pub use mfa::{AssertionClaims, Audience, MfaPolicy, AMR_MFA, FORBIDDEN_HEADER_PARAMETERS};
pub use stores::{
    DeviceRecord, DeviceRegistry, MemoryDeviceRegistry, MemoryRateLimiter, MemoryReplayCache,
    RateKey, RateLimit, RateLimiter, RatePolicy, ReplayCache,
};

//! The service side: versioned tenant keys, MFA-assertion checks, replay and rate
//! limits, device and envelope registration, the answer sealed to the device's one-time
//! key, and audit events.
//!
//! This module opens envelopes and answers; it never seals an envelope.

mod audit;
mod error;
mod handler;
mod keyring;
mod mfa;
mod stores;

pub use audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, JsonLinesAuditSink, MemoryAuditSink,
    RequestContext, ResetNotifier,
};
pub use error::{RateScope, ServiceError, StorageFailure};
pub use handler::{RecoveryService, RecoveryServiceBuilder, ServiceConfig};
pub use keyring::{KeyState, TenantKeyring};
pub use mfa::{AssertionClaims, Audience, MfaPolicy, TrustedIssuer, AMR_MFA};
pub use stores::{
    DeviceRecord, DeviceRegistry, MemoryDeviceRegistry, MemoryRateLimiter, MemoryReplayCache,
    RateKey, RateLimit, RateLimiter, RatePolicy, ReplayCache,
};

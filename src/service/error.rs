use core::fmt;

use super::store::StorageFailure;
use crate::error::DecodeError;
use crate::keys::KeyId;
use crate::protocol::refusal::{Refusal, RefusalCode};

/// Which rate limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateScope {
    /// Releases per user.
    User,
    /// Releases per device.
    Device,
}

/// Why the service refused a request. Each negative path has its own variant, emits one
/// audit event and changes no service state.
///
/// A caller learns what to do from the refusal sent to it: [`ServiceError::refusal`]
/// gives the stable code, and the device's [`crate::Refusal::advice`] the action, the
/// same table as docs/PROTOCOL.md §6a:
/// - [`ServiceError::Unavailable`]: send the same request again after `retry_after`
///   seconds; nothing was released or changed.
/// - [`ServiceError::RateLimited`]: start a new recovery (new MFA) after `retry_after`
///   seconds; the assertion will have expired by then.
/// - [`ServiceError::AssertionInvalid`], [`ServiceError::AssertionExpired`],
///   [`ServiceError::AssertionNotYetValid`], [`ServiceError::AssertionReplayed`],
///   [`ServiceError::NonceMismatch`], [`ServiceError::MfaMissing`]: authenticate again
///   (a new MFA assertion for the same nonce) and send the rebuilt request.
/// - [`ServiceError::StaleEnvelope`], [`ServiceError::RegistrationConflict`]: the service
///   may hold the device's newer envelope: send the pending registration, then start the
///   recovery again.
/// - [`ServiceError::RetiredKey`], [`ServiceError::UnknownKey`],
///   [`ServiceError::OpenFailed`]: recovery is not possible with this envelope; the
///   destructive reset is the way back.
/// - everything else: the request or the configuration is wrong and will fail the same
///   way again.
///
/// Its `Display` never repeats its cause's text: log it with its `source()` chain (a
/// malformed request's decoding error; a store failure's driver error).
///
/// Which reasons are safe to show the caller: all of them. None carries a secret, and
/// the refusals a caller could use to learn about other users' devices are merged:
/// an unknown device and a bad device signature are both
/// [`ServiceError::DeviceNotAuthenticated`] (the audit event keeps which it was).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// The message does not decode (size, JSON, base64, version, canonical form).
    MalformedRequest(DecodeError),
    /// The envelope's tenant has no keyring here.
    UnknownTenant,
    /// The device is not registered, or the device signature does not verify (tampered,
    /// or not from the registered device key). One answer for both, so that nobody can
    /// learn which devices exist; the audit event records which it was.
    DeviceNotAuthenticated,
    /// The assertion is not a valid JWS from a trusted key in an allowed algorithm (bad
    /// signature, `none`, HMAC or another algorithm, a forbidden header parameter such
    /// as `crit`, a duplicate member, malformed claims, or too long-lived).
    AssertionInvalid,
    /// The assertion's issuer is not trusted by the envelope's tenant, or its `kid` is
    /// not one of that issuer's keys.
    UntrustedIssuer,
    /// The assertion is for another audience.
    WrongAudience,
    /// The assertion has expired.
    AssertionExpired,
    /// The assertion is issued (`iat`) or valid from (`nbf`) in the future beyond the
    /// allowed skew.
    AssertionNotYetValid,
    /// The assertion does not show multi-factor authentication (`amr` lacks `mfa`).
    MfaMissing,
    /// The assertion's (or device record's) tenant differs from the envelope's.
    WrongTenant,
    /// The assertion's (or device record's) user differs from the envelope's.
    WrongUser,
    /// The assertion's device differs from the envelope's.
    WrongDevice,
    /// The assertion's nonce does not bind this request's envelope and one-time key.
    NonceMismatch,
    /// The assertion was already used (or is too old for the replay cache to vouch that
    /// it was not).
    AssertionReplayed,
    /// The envelope is not the one currently registered for the device (an old copy).
    StaleEnvelope,
    /// The envelope names a key this tenant never had.
    UnknownKey,
    /// The envelope is sealed to a key that has been retired.
    RetiredKey {
        /// The retired key.
        key_id: KeyId,
    },
    /// The envelope does not open (tampered, or not sealed to the named key).
    OpenFailed,
    /// Too many releases for this user or device.
    RateLimited {
        /// Which limit.
        scope: RateScope,
        /// Seconds until a release is allowed again.
        retry_after: u64,
    },
    /// A registration names a previous envelope that is not the registered one.
    RegistrationConflict,
    /// The device is registered under another key or user; re-registering it is an
    /// explicit act (`replace`, or `RecoveryService::reregister_device`).
    DeviceAlreadyRegistered,
    /// A re-registration gives the key the device already has: a new key is required,
    /// so that a copy of the old one (in a backup) stops working.
    DeviceKeyUnchanged,
    /// A registration's envelope is of another suite than the key it names.
    SuiteMismatch,
    /// A registration that replaces an envelope does not prove knowledge of the
    /// registered envelope's secret (as a stale backup cannot).
    RegistrationProofInvalid,
    /// The store failed (the database is down, a transaction failed, the audit event
    /// could not be recorded): nothing was released or changed.
    Unavailable(StorageFailure),
    /// This build cannot open the envelope's suite (an RSA envelope without the
    /// `aws-lc` feature): deploy the service with that feature.
    Unsupported,
    /// A cryptographic primitive failed unexpectedly.
    Crypto,
    /// An administrative act refused: `tenant` has no trusted identity provider
    /// ([`crate::service::IssuerTrust`]), so keys added for it could never release a
    /// secret. The tenant id must be the same string in the issuer trust, the keys and
    /// the devices' bindings (for Entra ID, the tenant id the tokens carry as `tid`).
    NoTrustedIssuer {
        /// The tenant.
        tenant: String,
    },
}

impl ServiceError {
    /// The refusal to send the caller: the stable code, the HTTP status, `retry_after`
    /// where waiting helps, and a sentence; never the store's own error or any other
    /// internal detail (log [`ServiceError`] itself for those).
    ///
    /// # Examples
    /// ```
    /// use pin_recovery::service::{RateScope, ServiceError};
    ///
    /// let refused = ServiceError::RateLimited { scope: RateScope::Device, retry_after: 600 };
    /// let wire = refused.refusal();
    /// assert_eq!((wire.http_status(), wire.retry_after()), (429, Some(600)));
    /// // The HTTP layer answers with `wire.to_json()` and `Retry-After: 600`.
    /// ```
    pub fn refusal(&self) -> Refusal {
        let retry_after = match self {
            ServiceError::RateLimited { retry_after, .. } => Some(*retry_after),
            ServiceError::Unavailable(_) => Some(5),
            _ => None,
        };
        Refusal::new(RefusalCode::parse(self.reason()), retry_after)
    }

    /// A short, stable class for audit logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ServiceError::MalformedRequest(_) => "malformed-request",
            ServiceError::UnknownTenant => "unknown-tenant",
            ServiceError::DeviceNotAuthenticated => "device-not-authenticated",
            ServiceError::AssertionInvalid => "assertion-invalid",
            ServiceError::UntrustedIssuer => "untrusted-issuer",
            ServiceError::WrongAudience => "wrong-audience",
            ServiceError::AssertionExpired => "assertion-expired",
            ServiceError::AssertionNotYetValid => "assertion-not-yet-valid",
            ServiceError::MfaMissing => "mfa-missing",
            ServiceError::WrongTenant => "wrong-tenant",
            ServiceError::WrongUser => "wrong-user",
            ServiceError::WrongDevice => "wrong-device",
            ServiceError::NonceMismatch => "nonce-mismatch",
            ServiceError::AssertionReplayed => "assertion-replayed",
            ServiceError::StaleEnvelope => "stale-envelope",
            ServiceError::UnknownKey => "unknown-key",
            ServiceError::RetiredKey { .. } => "retired-key",
            ServiceError::OpenFailed => "open-failed",
            ServiceError::RateLimited { .. } => "rate-limited",
            ServiceError::RegistrationConflict => "registration-conflict",
            ServiceError::DeviceAlreadyRegistered => "device-already-registered",
            ServiceError::DeviceKeyUnchanged => "device-key-unchanged",
            ServiceError::SuiteMismatch => "suite-mismatch",
            ServiceError::RegistrationProofInvalid => "registration-proof-invalid",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::Unsupported => "unsupported-suite",
            ServiceError::Crypto => "crypto-failure",
            ServiceError::NoTrustedIssuer { .. } => "no-trusted-issuer",
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::MalformedRequest(_) => f.write_str("malformed request"),
            ServiceError::RetiredKey { key_id } => {
                write!(f, "the envelope is sealed to retired key {key_id}")
            }
            ServiceError::RateLimited { scope, retry_after } => {
                write!(
                    f,
                    "too many releases for this {scope}; retry after {retry_after} s"
                )
            }
            ServiceError::Unavailable(e) => write!(f, "{e}"),
            ServiceError::NoTrustedIssuer { tenant } => write!(
                f,
                "no identity provider is trusted for tenant {tenant:?}: name it in the issuer trust, with the same tenant id"
            ),
            other => f.write_str(other.refusal().message()),
        }
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServiceError::MalformedRequest(e) => Some(e),
            // `Display` already is the failure's: its cause comes next.
            ServiceError::Unavailable(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

impl fmt::Display for RateScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RateScope::User => "user",
            RateScope::Device => "device",
        })
    }
}

impl From<StorageFailure> for ServiceError {
    fn from(e: StorageFailure) -> Self {
        ServiceError::Unavailable(e)
    }
}

impl From<DecodeError> for ServiceError {
    fn from(e: DecodeError) -> Self {
        ServiceError::MalformedRequest(e)
    }
}

//! A service's refusal as it crosses the wire: a stable code a program can act on, the
//! HTTP status a server answers with, the seconds to wait when waiting helps, and a
//! sentence for people. Built by the service (`ServiceError::refusal`), parsed back by the
//! device into the same typed value. It never carries internals (a database's error, a
//! key, a secret): those stay in the service's logs.

use serde::{Deserialize, Serialize};

use super::json::{check_version, from_canonical_json, WIRE_VERSION};
use crate::error::DecodeError;

/// What a refusal means for the device, by code. Codes this version does not know are
/// kept as [`RefusalCode::Other`] (and the HTTP status still says what class they are).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// `malformed-request`
    MalformedRequest,
    /// `unknown-tenant`
    UnknownTenant,
    /// `device-not-authenticated`
    DeviceNotAuthenticated,
    /// `assertion-invalid`
    AssertionInvalid,
    /// `untrusted-issuer`
    UntrustedIssuer,
    /// `wrong-audience`
    WrongAudience,
    /// `assertion-expired`
    AssertionExpired,
    /// `assertion-not-yet-valid`
    AssertionNotYetValid,
    /// `mfa-missing`
    MfaMissing,
    /// `wrong-tenant`
    WrongTenant,
    /// `wrong-user`
    WrongUser,
    /// `wrong-device`
    WrongDevice,
    /// `nonce-mismatch`
    NonceMismatch,
    /// `assertion-replayed`
    AssertionReplayed,
    /// `stale-envelope`
    StaleEnvelope,
    /// `unknown-key`
    UnknownKey,
    /// `retired-key`
    RetiredKey,
    /// `open-failed`
    OpenFailed,
    /// `rate-limited`
    RateLimited,
    /// `registration-conflict`
    RegistrationConflict,
    /// `device-already-registered`
    DeviceAlreadyRegistered,
    /// `device-key-unchanged`
    DeviceKeyUnchanged,
    /// `suite-mismatch`
    SuiteMismatch,
    /// `registration-proof-invalid`
    RegistrationProofInvalid,
    /// `unavailable`
    Unavailable,
    /// `unsupported-suite`
    UnsupportedSuite,
    /// `crypto-failure`
    CryptoFailure,
    /// `no-trusted-issuer` (an administrative refusal: a tenant's keys were added while
    /// no identity provider is trusted for it)
    NoTrustedIssuer,
    /// A code this version does not know.
    Other(String),
}

const CODES: [(RefusalCode, &str, u16, &str); 28] = [
    (
        RefusalCode::MalformedRequest,
        "malformed-request",
        400,
        "the request is not a valid message",
    ),
    (
        RefusalCode::UnknownTenant,
        "unknown-tenant",
        404,
        "the tenant has no recovery keys here",
    ),
    (
        RefusalCode::DeviceNotAuthenticated,
        "device-not-authenticated",
        401,
        "the device is not registered or its signature does not verify",
    ),
    (
        RefusalCode::AssertionInvalid,
        "assertion-invalid",
        401,
        "the MFA assertion is not valid",
    ),
    (
        RefusalCode::UntrustedIssuer,
        "untrusted-issuer",
        401,
        "the MFA assertion's issuer is not trusted for this tenant",
    ),
    (
        RefusalCode::WrongAudience,
        "wrong-audience",
        401,
        "the MFA assertion is for another audience",
    ),
    (
        RefusalCode::AssertionExpired,
        "assertion-expired",
        401,
        "the MFA assertion has expired",
    ),
    (
        RefusalCode::AssertionNotYetValid,
        "assertion-not-yet-valid",
        401,
        "the MFA assertion is not valid yet",
    ),
    (
        RefusalCode::MfaMissing,
        "mfa-missing",
        401,
        "the assertion does not show multi-factor authentication",
    ),
    (
        RefusalCode::WrongTenant,
        "wrong-tenant",
        403,
        "the MFA assertion is for another tenant",
    ),
    (
        RefusalCode::WrongUser,
        "wrong-user",
        403,
        "the MFA assertion or the device is another user's",
    ),
    (
        RefusalCode::WrongDevice,
        "wrong-device",
        403,
        "the MFA assertion is for another device",
    ),
    (
        RefusalCode::NonceMismatch,
        "nonce-mismatch",
        401,
        "the MFA assertion was issued for another request",
    ),
    (
        RefusalCode::AssertionReplayed,
        "assertion-replayed",
        401,
        "the MFA assertion was already used",
    ),
    (
        RefusalCode::StaleEnvelope,
        "stale-envelope",
        409,
        "the envelope is not the one registered for this device",
    ),
    (
        RefusalCode::UnknownKey,
        "unknown-key",
        404,
        "the envelope names a key the tenant never had",
    ),
    (
        RefusalCode::RetiredKey,
        "retired-key",
        410,
        "the envelope is sealed to a retired key",
    ),
    (
        RefusalCode::OpenFailed,
        "open-failed",
        422,
        "the envelope does not open",
    ),
    (
        RefusalCode::RateLimited,
        "rate-limited",
        429,
        "too many recoveries; try again later",
    ),
    (
        RefusalCode::RegistrationConflict,
        "registration-conflict",
        409,
        "the service holds another envelope than the one this registration replaces",
    ),
    (
        RefusalCode::DeviceAlreadyRegistered,
        "device-already-registered",
        409,
        "the device is registered under another key or user",
    ),
    (
        RefusalCode::DeviceKeyUnchanged,
        "device-key-unchanged",
        409,
        "re-registering a device needs a new key",
    ),
    (
        RefusalCode::SuiteMismatch,
        "suite-mismatch",
        422,
        "the envelope's suite is not its key's",
    ),
    (
        RefusalCode::RegistrationProofInvalid,
        "registration-proof-invalid",
        403,
        "the registration does not prove the registered envelope's secret",
    ),
    (
        RefusalCode::Unavailable,
        "unavailable",
        503,
        "the service is unavailable; try again later",
    ),
    (
        RefusalCode::UnsupportedSuite,
        "unsupported-suite",
        501,
        "the service cannot open this envelope's suite",
    ),
    (
        RefusalCode::CryptoFailure,
        "crypto-failure",
        500,
        "the service failed",
    ),
    (
        RefusalCode::NoTrustedIssuer,
        "no-trusted-issuer",
        409,
        "no identity provider is trusted for this tenant",
    ),
];

impl RefusalCode {
    /// The stable code string.
    pub fn as_str(&self) -> &str {
        match self {
            RefusalCode::Other(code) => code,
            known => CODES
                .iter()
                .find(|(c, ..)| c == known)
                .map_or("unknown", |(_, s, ..)| s),
        }
    }

    /// The code a string names.
    pub fn parse(code: &str) -> Self {
        CODES
            .iter()
            .find(|(_, s, ..)| *s == code)
            .map_or_else(|| RefusalCode::Other(code.to_owned()), |(c, ..)| c.clone())
    }

    /// The HTTP status a server answers with.
    pub fn http_status(&self) -> u16 {
        CODES
            .iter()
            .find(|(c, ..)| c == self)
            .map_or(400, |(_, _, status, _)| *status)
    }

    fn sentence(&self) -> &'static str {
        CODES
            .iter()
            .find(|(c, ..)| c == self)
            .map_or("the request was refused", |(.., m)| m)
    }
}

/// What a device should do about a refusal.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// The service is briefly unable to answer (nothing was spent): send the same request
    /// again after this many seconds, while its assertion is still valid.
    RetryAfter(u64),
    /// A limit refused it (nothing was spent): start a new recovery, with a new MFA
    /// assertion, after this many seconds. The request's assertion will have expired by
    /// then, so sending the same request again would only be refused
    /// `assertion-expired`.
    RestartAfter(u64),
    /// Authenticate the user again: ask the identity provider for a new MFA assertion
    /// for the same nonce (`PendingRecovery::mfa_nonce`), build the request again with it
    /// (`PendingRecovery::request`, which may be called more than once: the answer opens
    /// for the last request built) and send that.
    Reauthenticate,
    /// Send the pending envelope registration (the service may hold the newer envelope),
    /// then start the recovery again from `Container::begin_recovery` (a new MFA).
    SyncRegistration,
    /// Recovery is not possible with this envelope: the destructive reset is the way back.
    RecoveryImpossible,
    /// The request is wrong and will fail the same way again (a bug, or a misconfigured
    /// device or service).
    DoNotRetry,
}

/// A refusal on the wire.
///
/// # Examples
/// ```
/// use pin_recovery::{Advice, Refusal, RefusalCode};
///
/// // What a service's HTTP layer answers, and what the device parses back:
/// let body = br#"{"version":1,"code":"rate-limited","status":429,"retry_after":3600,"message":"too many recoveries; try again later"}"#;
/// let refusal = Refusal::from_json(body)?;
/// assert_eq!(refusal.code(), &RefusalCode::RateLimited);
/// assert_eq!(refusal.advice(), Advice::RestartAfter(3600)); // a new recovery, in an hour
/// # Ok::<(), pin_recovery::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    code: RefusalCode,
    status: u16,
    retry_after: Option<u64>,
    message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalWire {
    version: u8,
    code: String,
    status: u16,
    retry_after: Option<u64>,
    message: String,
}

/// The longest message accepted.
const MAX_MESSAGE: usize = 512;

impl TryFrom<RefusalWire> for Refusal {
    type Error = DecodeError;
    fn try_from(w: RefusalWire) -> Result<Self, DecodeError> {
        check_version(w.version)?;
        if w.code.is_empty() || w.code.len() > 64 || w.message.len() > MAX_MESSAGE {
            return Err(DecodeError::BadDocument {
                reason: "refusal code or message of a wrong length",
            });
        }
        if !(400..600).contains(&w.status) {
            return Err(DecodeError::BadDocument {
                reason: "a refusal's status is 4xx or 5xx",
            });
        }
        Ok(Refusal {
            code: RefusalCode::parse(&w.code),
            status: w.status,
            retry_after: w.retry_after,
            message: w.message,
        })
    }
}

impl From<&Refusal> for RefusalWire {
    fn from(r: &Refusal) -> Self {
        RefusalWire {
            version: WIRE_VERSION,
            code: r.code.as_str().to_owned(),
            status: r.status,
            retry_after: r.retry_after,
            message: r.message.clone(),
        }
    }
}

impl Refusal {
    /// The refusal for `code`, with its status and standard sentence. A device that gets
    /// no refusal body (a timeout, a proxy's error page) can treat it as
    /// `Refusal::new(RefusalCode::Unavailable, None)`.
    pub fn new(code: RefusalCode, retry_after: Option<u64>) -> Self {
        Refusal {
            status: code.http_status(),
            message: code.sentence().to_owned(),
            code,
            retry_after,
        }
    }

    /// Parses the canonical JSON form.
    ///
    /// # Errors
    /// [`DecodeError`] for malformed, non-canonical or unknown-version input.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        from_canonical_json::<Self, RefusalWire>(bytes)
    }

    /// The canonical JSON form (the body of the HTTP answer).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&RefusalWire::from(self)).unwrap_or_default()
    }

    /// The code.
    pub fn code(&self) -> &RefusalCode {
        &self.code
    }

    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        self.status
    }

    /// Seconds to wait before trying again, where waiting helps (the HTTP `Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// A sentence for people; safe to show the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the device should do. Without a `retry_after`, an `unavailable` refusal (or
    /// an unknown 5xx code) waits 60 s and a `rate-limited` one 3600 s.
    pub fn advice(&self) -> Advice {
        use RefusalCode as C;
        match &self.code {
            C::RateLimited => Advice::RestartAfter(self.retry_after.unwrap_or(3600)),
            C::Unavailable => Advice::RetryAfter(self.retry_after.unwrap_or(60)),
            C::AssertionInvalid
            | C::AssertionExpired
            | C::AssertionNotYetValid
            | C::AssertionReplayed
            | C::NonceMismatch
            | C::MfaMissing => Advice::Reauthenticate,
            C::StaleEnvelope | C::RegistrationConflict => Advice::SyncRegistration,
            C::RetiredKey | C::UnknownKey | C::OpenFailed => Advice::RecoveryImpossible,
            C::Other(_) if self.status >= 500 => Advice::RetryAfter(self.retry_after.unwrap_or(60)),
            _ => Advice::DoNotRetry,
        }
    }
}

impl core::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_with_its_status_and_unknown_codes_are_kept() {
        for (code, name, status, _) in CODES.iter() {
            let r = Refusal::new(code.clone(), Some(5));
            assert_eq!((r.code().as_str(), r.http_status()), (*name, *status));
            assert_eq!(Refusal::from_json(&r.to_json()).unwrap(), r);
        }
        let future =
            br#"{"version":1,"code":"new-thing","status":503,"retry_after":null,"message":"x"}"#;
        let r = Refusal::from_json(future).unwrap();
        assert_eq!(r.code(), &RefusalCode::Other("new-thing".into()));
        assert_eq!(r.advice(), Advice::RetryAfter(60));
        let bad = br#"{"version":1,"code":"x","status":200,"retry_after":null,"message":"x"}"#;
        assert!(
            Refusal::from_json(bad).is_err(),
            "a refusal is not a success"
        );
    }
}

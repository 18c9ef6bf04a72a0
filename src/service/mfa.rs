//! MFA assertions from the identity provider: compact JWS, ES256 only, verified with
//! `jsonwebtoken` against the trusted issuers' keys, then every claim checked against
//! the envelope and the request. `alg: none`, HMAC algorithms and keys of another kind
//! are refused before any claim is read.

use std::collections::{HashMap, HashSet};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::error::ServiceError;
use crate::binding::Binding;
use crate::signing::VerifyingKey;

/// The `amr` value that shows multi-factor authentication (RFC 8176).
pub const AMR_MFA: &str = "mfa";

/// An identity provider whose assertions the service accepts, with its signing keys by
/// `kid`.
#[derive(Clone, Debug)]
pub struct TrustedIssuer {
    /// The `iss` value its assertions carry.
    pub issuer: String,
    /// Its P-256 signing keys, by JWS `kid`.
    pub keys: HashMap<String, VerifyingKey>,
}

/// How assertions are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaPolicy {
    /// The `aud` the service requires (its own identifier).
    pub audience: String,
    /// Allowed clock difference with the identity provider, in seconds.
    pub max_skew: u64,
    /// The longest accepted lifetime (`exp - iat`), in seconds.
    pub max_lifetime: u64,
}

impl MfaPolicy {
    /// A policy for `audience` with 60 s of skew and at most 10 minutes of lifetime.
    pub fn new(audience: impl Into<String>) -> Self {
        MfaPolicy {
            audience: audience.into(),
            max_skew: 60,
            max_lifetime: 600,
        }
    }
}

/// An assertion's claims. Issuers may add others; these are the ones checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// Issuer.
    pub iss: String,
    /// Audience: one string or several.
    pub aud: Audience,
    /// Tenant id.
    pub tid: String,
    /// User id.
    pub sub: String,
    /// Device id.
    pub deviceid: String,
    /// Authentication methods (RFC 8176); must contain `mfa`.
    pub amr: Vec<String>,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// Unique id: each assertion is accepted once.
    pub jti: String,
    /// Binds the assertion to one request: see [`crate::mfa_nonce`].
    pub nonce: String,
}

/// A JWT audience: a string or an array of strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// The most bytes a `jti` may have.
const MAX_JTI_LEN: usize = 256;

/// A verified assertion: who authenticated, and the id to spend.
#[derive(Debug)]
pub(crate) struct VerifiedAssertion {
    pub(crate) issuer: String,
    pub(crate) jti: String,
    pub(crate) expires_at: u64,
}

/// Verifies `token` and checks it authorises this request for `binding`.
pub(crate) fn verify(
    token: &str,
    issuers: &[TrustedIssuer],
    policy: &MfaPolicy,
    binding: &Binding,
    expected_nonce: &str,
    now: u64,
) -> Result<VerifiedAssertion, ServiceError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| ServiceError::AssertionInvalid)?;
    if header.alg != Algorithm::ES256 {
        return Err(ServiceError::AssertionInvalid);
    }
    let kid = header.kid.as_deref().ok_or(ServiceError::UntrustedIssuer)?;
    let (issuer, key) = issuers
        .iter()
        .find_map(|i| i.keys.get(kid).map(|k| (i, k)))
        .ok_or(ServiceError::UntrustedIssuer)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<AssertionClaims>(
        token,
        &DecodingKey::from_ec_der(key.to_sec1()),
        &validation,
    )
    // Bad signature, wrong algorithm or key type, malformed: all one refusal.
    .map_err(|_| ServiceError::AssertionInvalid)?
    .claims;

    if claims.iss != issuer.issuer {
        return Err(ServiceError::UntrustedIssuer);
    }
    if !claims.aud.contains(&policy.audience) {
        return Err(ServiceError::WrongAudience);
    }
    if claims.iat > now.saturating_add(policy.max_skew) {
        return Err(ServiceError::AssertionNotYetValid);
    }
    if now >= claims.exp.saturating_add(policy.max_skew) {
        return Err(ServiceError::AssertionExpired);
    }
    if claims.exp < claims.iat || claims.exp - claims.iat > policy.max_lifetime {
        return Err(ServiceError::AssertionInvalid);
    }
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(ServiceError::AssertionInvalid);
    }
    if !claims.amr.iter().any(|m| m == AMR_MFA) {
        return Err(ServiceError::MfaMissing);
    }
    if claims.tid != binding.tenant() {
        return Err(ServiceError::WrongTenant);
    }
    if claims.sub != binding.user() {
        return Err(ServiceError::WrongUser);
    }
    if claims.deviceid != binding.device() {
        return Err(ServiceError::WrongDevice);
    }
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        claims.nonce.as_bytes(),
        expected_nonce.as_bytes(),
    )) {
        return Err(ServiceError::NonceMismatch);
    }
    Ok(VerifiedAssertion {
        issuer: claims.iss,
        jti: claims.jti,
        expires_at: claims.exp.saturating_add(policy.max_skew),
    })
}

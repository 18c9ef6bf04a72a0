//! MFA assertions from the identity provider: a compact JWS whose issuer is one the
//! envelope's tenant trusts, signed with an algorithm that issuer may use, by a key of
//! that issuer named by `kid`. The header may carry no parameter that changes how the
//! token is read (`crit`, `b64`, `jwk`, `jku`, `x5u`, `x5c`), no member may appear twice,
//! and the signature is verified by `jsonwebtoken` before any claim is believed. Then
//! every claim is checked against the envelope and the request.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ServiceError;
use super::issuers::{AssertionAlgorithm, IssuerTrust};
use crate::codec::base64url::b64_decode;
use crate::envelope::binding::Binding;
use crate::protocol::request::MAX_ASSERTION_LEN;

/// The `amr` value that shows multi-factor authentication (RFC 8176).
pub const AMR_MFA: &str = "mfa";

/// Header parameters that would change how a token is read or where its key comes from
/// (RFC 7515 §4.1.2 to §4.1.6, §4.1.11; RFC 7797): an assertion carrying one is refused.
pub const FORBIDDEN_HEADER_PARAMETERS: [&str; 6] = ["crit", "b64", "jwk", "jku", "x5u", "x5c"];

/// How assertions are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaPolicy {
    /// The `aud` the service requires (its own identifier).
    pub audience: String,
    /// Allowed clock difference with the identity provider, in seconds, for `iat`,
    /// `nbf` and `exp`.
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

/// The claims of an assertion in the standard claim names, as the test identity provider
/// issues them. Issuers may add others and may name the user, tenant, device and token id
/// claims their own way (see [`super::ClaimNames`]).
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
    /// Not before, seconds since the Unix epoch, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
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

/// The most bytes a token id may have.
const MAX_TOKEN_ID_LEN: usize = 256;

/// A verified assertion: who issued it, the id to spend, and until when it must be
/// remembered as spent.
#[derive(Debug)]
pub(crate) struct VerifiedAssertion {
    pub(crate) issuer: String,
    pub(crate) token_id: String,
    pub(crate) expires_at: u64,
}

/// A JSON object whose members are all distinct: a duplicate could be read one way here
/// and another way by a different parser.
struct UniqueObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<UniqueObject, A::Error> {
                let mut m = Map::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    if m.contains_key(&k) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    m.insert(k, v);
                }
                Ok(UniqueObject(m))
            }
        }
        d.deserialize_map(V)
    }
}

fn segment(part: &str) -> Result<Map<String, Value>, ServiceError> {
    let bytes = b64_decode(part, MAX_ASSERTION_LEN).map_err(|_| ServiceError::AssertionInvalid)?;
    serde_json::from_slice::<UniqueObject>(&bytes)
        .map(|o| o.0)
        .map_err(|_| ServiceError::AssertionInvalid)
}

fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, ServiceError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(ServiceError::AssertionInvalid)
}

fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, ServiceError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(ServiceError::AssertionInvalid),
    }
}

fn contains(value: Option<&Value>, wanted: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(wanted)),
        _ => false,
    }
}

/// Verifies `token` and checks it authorises this request for `binding`.
pub(crate) fn verify(
    token: &str,
    trust: &IssuerTrust,
    policy: &MfaPolicy,
    binding: &Binding,
    expected_nonce: &str,
    now: u64,
) -> Result<VerifiedAssertion, ServiceError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ServiceError::AssertionInvalid);
    };
    let header = segment(header)?;
    if FORBIDDEN_HEADER_PARAMETERS
        .iter()
        .any(|p| header.contains_key(*p))
    {
        return Err(ServiceError::AssertionInvalid);
    }
    // `none`, HMAC and every other algorithm are refused before any key is chosen.
    let alg = AssertionAlgorithm::from_jws_name(string(&header, "alg")?)
        .ok_or(ServiceError::AssertionInvalid)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(ServiceError::UntrustedIssuer)?;
    // The issuer is read before the signature is checked only to choose the key; the
    // signature then covers it.
    let claims = segment(payload)?;
    let iss = string(&claims, "iss")?;
    let issuer = trust
        .find(binding.tenant(), iss)
        .ok_or(ServiceError::UntrustedIssuer)?;
    let key = issuer.key(kid).ok_or(ServiceError::UntrustedIssuer)?;
    if !key.allows(alg) {
        return Err(ServiceError::AssertionInvalid);
    }
    let mut validation = jsonwebtoken::Validation::new(alg.jsonwebtoken());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    crate::crypto::jose::ensure_provider();
    jsonwebtoken::decode::<de::IgnoredAny>(token, key.decoding_key(), &validation)
        // Bad signature, malformed: one refusal.
        .map_err(|_| ServiceError::AssertionInvalid)?;

    let names = issuer.claim_names();
    if !contains(claims.get("aud"), &policy.audience) {
        return Err(ServiceError::WrongAudience);
    }
    let iat = time(&claims, "iat")?.ok_or(ServiceError::AssertionInvalid)?;
    let exp = time(&claims, "exp")?.ok_or(ServiceError::AssertionInvalid)?;
    let nbf = time(&claims, "nbf")?;
    if iat > now.saturating_add(policy.max_skew)
        || nbf.is_some_and(|nbf| nbf > now.saturating_add(policy.max_skew))
    {
        return Err(ServiceError::AssertionNotYetValid);
    }
    if now >= exp.saturating_add(policy.max_skew) {
        return Err(ServiceError::AssertionExpired);
    }
    if exp < iat || exp - iat > policy.max_lifetime {
        return Err(ServiceError::AssertionInvalid);
    }
    let token_id = string(&claims, &names.token_id)?;
    if token_id.is_empty() || token_id.len() > MAX_TOKEN_ID_LEN {
        return Err(ServiceError::AssertionInvalid);
    }
    if !contains(claims.get("amr"), AMR_MFA) || !claims.get("amr").is_some_and(Value::is_array) {
        return Err(ServiceError::MfaMissing);
    }
    if string(&claims, &names.tenant)? != binding.tenant() {
        return Err(ServiceError::WrongTenant);
    }
    if string(&claims, &names.user)? != binding.user() {
        return Err(ServiceError::WrongUser);
    }
    if string(&claims, &names.device)? != binding.device() {
        return Err(ServiceError::WrongDevice);
    }
    let nonce = string(&claims, "nonce")?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        nonce.as_bytes(),
        expected_nonce.as_bytes(),
    )) {
        return Err(ServiceError::NonceMismatch);
    }
    Ok(VerifiedAssertion {
        issuer: issuer.issuer().to_owned(),
        token_id: token_id.to_owned(),
        expires_at: exp.saturating_add(policy.max_skew),
    })
}
